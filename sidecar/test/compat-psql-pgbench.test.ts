import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import {
  PGBENCH_CLIENTS,
  PGBENCH_TRANSACTIONS,
  pgbenchInit,
  pgbenchRun,
  preparePsql,
  runPsql,
  type PgbenchSummary,
  type PsqlRun,
} from './support/cli.js';
import { AUTH_METHODS, cellLabel, directTarget, sidecarTarget, startCellSidecar, type SidecarCell, type Target } from './support/compat.js';

// psql and pgbench (simple, extended, prepared) behave through the sidecar exactly as directly:
// every authentication method, pass-through and credential injection, TLS on both legs.

const MODES = ['simple', 'extended', 'prepared'] as const;
const TOTAL = PGBENCH_CLIENTS * PGBENCH_TRANSACTIONS;

const CELLS: readonly SidecarCell[] = [
  { mode: 'pass-through', upstreamTls: true },
  { mode: 'inject', upstreamTls: true },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbward-compat-psql-'));
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** pgbench -i through the target, then the three query modes; summaries without timings. */
async function bench(db: PgCluster, target: Target): Promise<PgbenchSummary[]> {
  const init = await pgbenchInit(target);
  expect(init.code, `${target.label}: pgbench -i\n${init.stderr}`).toBe(0);
  expect(init.stderr).toContain('done in');
  expect(await db.sql('select count(*) from pgbench_accounts', { database: 'app', user: 'app' })).toBe('100000');
  const summaries: PgbenchSummary[] = [];
  for (const mode of MODES) summaries.push(await pgbenchRun(db, target, mode));
  return summaries;
}

function checkBench(summaries: PgbenchSummary[], label: string): void {
  expect(summaries.map((s) => s.mode)).toEqual([...MODES]);
  for (const s of summaries) {
    expect(s, `${label} -M ${s.mode}\n${s.stderr}`).toMatchObject({ code: 0, processed: `${TOTAL}/${TOTAL}`, failed: '0', historyDelta: TOTAL, consistent: true });
  }
}

function checkPsql(r: PsqlRun): void {
  expect(r.code).toBe(0);
  for (const code of ['22012', '42601', '23505', '23502', '22P02', '42703', '25P02', 'P0001']) expect(r.stderr).toContain(`ERROR:  ${code}:`);
  expect(r.stderr).toContain('NOTICE:  00000: notice 7 ✓');
  expect(r.stderr).toContain('DETAIL:  Key (id)=(1) already exists.');
  expect(r.stderr).toContain('CONTEXT:  COPY compat_copy, line 1, column id: "bad"');
  expect(r.stdout).toContain('sqlstate 22012 last 22012 error true');
  expect(r.stdout).toContain('COPY 304');
  expect(r.stdout).toContain('délta ✓');
  expect(r.stdout).toContain('(2000 rows)');
  expect(r.outFile.split('\n')).toHaveLength(306); // header, 304 rows, final newline
}

describe.each(AUTH_METHODS)('auth %s', (auth) => {
  let db: PgCluster;
  let script: string;
  let psqlDirect: PsqlRun;
  let benchDirect: PgbenchSummary[];

  beforeAll(async () => {
    db = await startPostgres({ auth, tls: true, certNames: ['sidecar'] });
    script = await preparePsql(dir);
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('directly (TLS): the psql script and pgbench in all three modes', async () => {
    const target = directTarget(db, true);
    psqlDirect = await runPsql(db, target, script, dir);
    checkPsql(psqlDirect);
    benchDirect = await bench(db, target);
    checkBench(benchDirect, target.label);
  });

  it.each(CELLS.map((cell) => [cellLabel(auth, cell), cell] as const))('%s / client tls: psql and pgbench as directly', async (_label, cell: SidecarCell) => {
    expect(psqlDirect, 'the direct run').toBeDefined();
    const sidecar = await startCellSidecar(db, cell);
    try {
      const target = sidecarTarget(db, sidecar, cell, true);
      const psql = await runPsql(db, target, script, dir);
      expect(psql, target.label).toEqual(psqlDirect);
      const summaries = await bench(db, target);
      checkBench(summaries, target.label);
      const strip = (s: PgbenchSummary[]): Array<Omit<PgbenchSummary, 'stderr'>> => s.map(({ stderr: _stderr, ...rest }) => rest);
      expect(strip(summaries)).toEqual(strip(benchDirect));
    } finally {
      await sidecar.stop();
    }
  });

  // The known, refused combination only exists with SCRAM.
  if (auth === 'scram-sha-256') {
    it('psql with channel binding through a TLS sidecar to a TLS upstream: FATAL 28000 with a hint', async () => {
      const cell: SidecarCell = { mode: 'pass-through', upstreamTls: true };
      const sidecar = await startCellSidecar(db, cell);
      try {
        const target = sidecarTarget(db, sidecar, cell, true);
        const r = await run('psql', ['-X', '-c', 'select 1'], { env: { ...target.env, PGCHANNELBINDING: 'prefer' } });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain('FATAL:  dbward: SCRAM channel binding cannot pass through the sidecar');
        expect(r.stderr).toContain('channel_binding=disable');
        // With channel_binding=require libpq itself refuses: the sidecar never offers SCRAM-SHA-256-PLUS.
        const required = await run('psql', ['-X', '-c', 'select 1'], { env: { ...target.env, PGCHANNELBINDING: 'require' } });
        expect(required.code).toBe(2);
        expect(required.stderr).toContain('channel binding is required');
      } finally {
        await sidecar.stop();
      }
    });
  }
});
