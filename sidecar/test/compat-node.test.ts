import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import {
  AUTH_METHODS,
  SIDECAR_CELLS,
  WRONG_PASSWORD,
  cellLabel,
  directTarget,
  sidecarTarget,
  startCellSidecar,
  type SidecarCell,
  type Target,
} from './support/compat.js';
import { errorFields, NODE_FIXTURES, nodeTranscript, sqlstates, type RunFacts, type Transcript } from './support/transcript.js';

// node-postgres (pg, pg-cursor, pg-copy-streams, LISTEN/NOTIFY, cancel, ParameterStatus) behaves
// through the sidecar exactly as directly: for every authentication method, pass-through and
// credential injection, TLS on the upstream leg or not, TLS on the client leg or not.

async function run(db: PgCluster, target: Target): Promise<{ transcript: Transcript; facts: RunFacts }> {
  await db.sql(NODE_FIXTURES, { database: 'app', user: 'app' });
  return nodeTranscript(target.pg);
}

/** Absolute facts, so that equal transcripts cannot be equal by being empty or broken alike. */
function checkAbsolute(transcript: Transcript, facts: RunFacts): void {
  expect(transcript.length).toBeGreaterThan(60);
  expect(transcript.filter((s) => s.step.startsWith('async-error'))).toEqual([]);
  const codes = sqlstates(transcript);
  for (const code of ['42601', '22012', '23505', '23502', '25P02', '22P02', '42703', 'P0001', '57014', '00000', '01000']) expect(codes).toContain(code);
  const step = (name: string): Record<string, unknown> => {
    const found = transcript.find((s) => s.step === name);
    expect(found, name).toBeDefined();
    return found!;
  };
  expect(step('who am i')['rows']).toEqual([{ current_user: 'app', session_user: 'app', current_database: 'app', enc: 'UTF8' }]);
  expect(step('unique violation')['error']).toMatchObject({ code: '23505', detail: 'Key (id)=(1) already exists.', constraint: 'compat_items_pkey' });
  expect(step('tx after error')['error']).toMatchObject({ code: '25P02' });
  expect(step('tx rollback')['command']).toBe('ROLLBACK');
  expect(step('visibility before commit (B)')['rows']).toEqual([{ n: 0 }]);
  expect(step('visibility after commit (B)')['rows']).toEqual([{ n: 1 }]);
  expect(step('100k rows')['rows']).toBe(100_000);
  expect(step('cursor')['batches']).toEqual([...Array<number>(25).fill(100), 0]);
  expect(step('copy from stdin')['rowCount']).toBe(20_000);
  expect(step('copy to stdout')['sameAsInput']).toBe(true);
  expect(step('copy bad row')['error']).toMatchObject({ code: '22P02' });
  expect(step('after bad copy')['rows']).toEqual([{ n: 20_000, s: String((20_000 * 20_001) / 2) }]);
  expect(transcript.filter((s) => s.step === 'notification').map((s) => s['payload'])).toEqual([expect.stringContaining('from B'), 'second', 'self']);
  expect(step('cancelled query')['error']).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
  expect(facts.cancelMs).toBeLessThan(5_000);
  expect(step('pg_backend_pid() is the BackendKeyData process id')['same']).toBe(true);
  expect(step('pg_cancel_backend (B)')['rows']).toEqual([{ cancelled: true }]);
  expect(step('pg_cancel_backend(processID)')['error']).toMatchObject({ code: '57014' });
  expect(transcript.filter((s) => s.step === 'notification').map((s) => [s['fromSelf'], s['fromOther']])).toEqual([
    [false, true],
    [false, true],
    [true, false],
  ]);
  expect(step('after cancel')['rows']).toEqual([{ s: 'after cancel' }]);
  expect(transcript.some((s) => s.step === 'parameter-status' && s['name'] === 'application_name')).toBe(true);
  expect(transcript.some((s) => s.step === 'parameter-status' && s['name'] === 'TimeZone' && s['value'] === 'Europe/Paris')).toBe(true);
}

/** Whether the upstream leg of a connection through `target` is TLS, as the server sees it. */
async function upstreamSsl(target: Target): Promise<boolean> {
  const client = new pg.Client(target.pg);
  await client.connect();
  try {
    const r = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return r.rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

/** Connects, runs `select 1`, and reports the error fields, or null on success. */
async function tryConnect(config: pg.ClientConfig): Promise<Record<string, unknown> | null> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return errorFields(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe.each(AUTH_METHODS)('auth %s', (auth) => {
  let db: PgCluster;
  let direct: Transcript;

  beforeAll(async () => {
    db = await startPostgres({ auth, tls: true, certNames: ['sidecar'] });
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('directly: the transcript is complete and the same with and without TLS', async () => {
    const plain = await run(db, directTarget(db, false));
    checkAbsolute(plain.transcript, plain.facts);
    const tls = await run(db, directTarget(db, true));
    expect(tls.transcript).toEqual(plain.transcript);
    direct = plain.transcript;
  });

  it.each(SIDECAR_CELLS.map((cell) => [cellLabel(auth, cell), cell] as const))('%s: same transcript as directly, client leg plain and TLS', async (_label, cell: SidecarCell) => {
    expect(direct, 'the direct transcript').toBeDefined();
    const sidecar = await startCellSidecar(db, cell);
    try {
      for (const clientTls of [false, true]) {
        const target = sidecarTarget(db, sidecar, cell, clientTls);
        expect(await upstreamSsl(target), `${target.label}: upstream leg on TLS`).toBe(cell.upstreamTls);
        const { transcript, facts } = await run(db, target);
        expect(transcript, target.label).toEqual(direct);
        checkAbsolute(transcript, facts);
      }
    } finally {
      await sidecar.stop();
    }
  });

  it('a wrong password: 28P01 through pass-through exactly as directly; ignored with credential injection', async () => {
    const plain = await startCellSidecar(db, { mode: 'pass-through', upstreamTls: true });
    const inject = await startCellSidecar(db, { mode: 'inject', upstreamTls: true });
    try {
      const wrong = { ...directTarget(db, false).pg, password: WRONG_PASSWORD };
      const directError = await tryConnect(wrong);
      const viaSidecar = await tryConnect({ ...wrong, host: plain.host, port: plain.port });
      if (auth === 'trust') {
        expect(directError).toBeNull();
      } else {
        expect(directError).toMatchObject({ severity: 'FATAL', code: '28P01', message: 'password authentication failed for user "app"' });
      }
      expect(viaSidecar).toEqual(directError);
      // Credential injection: the client's password (wrong, or none at all) is never used.
      expect(await tryConnect({ ...wrong, host: inject.host, port: inject.port })).toBeNull();
      const { password: _unused, ...withoutPassword } = wrong;
      expect(await tryConnect({ ...withoutPassword, host: inject.host, port: inject.port })).toBeNull();
    } finally {
      await Promise.all([plain.stop(), inject.stop()]);
    }
  });

  // The known, refused combination only exists with SCRAM.
  if (auth === 'scram-sha-256') {
    it('pass-through SCRAM with TLS on both legs: channel binding is refused with 28000, works without it', async () => {
      const cell: SidecarCell = { mode: 'pass-through', upstreamTls: true };
      const sidecar = await startCellSidecar(db, cell);
      try {
        const target = sidecarTarget(db, sidecar, cell, true);
        const refused = await tryConnect({ ...target.pg, enableChannelBinding: true });
        expect(refused).toMatchObject({
          severity: 'FATAL',
          code: '28000',
          message: 'dbward: SCRAM channel binding cannot pass through the sidecar',
          hint: expect.stringContaining('channel_binding=disable'),
        });
        expect(await tryConnect(target.pg)).toBeNull();
        // Directly, the same client binds to the server's certificate (SCRAM-SHA-256-PLUS).
        expect(await tryConnect({ ...directTarget(db, true).pg, enableChannelBinding: true })).toBeNull();
      } finally {
        await sidecar.stop();
      }
    });
  }
});
