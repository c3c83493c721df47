import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { PGBENCH_CLIENTS, PGBENCH_TRANSACTIONS, pgbenchInit, pgbenchRun, preparePsql, runPsql, type PgbenchSummary } from './support/cli.js';
import { directTarget, type Target } from './support/compat.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * Issue 4: psql, pgbench and node-postgres work unchanged through a sidecar that masks, on data
 * that is not sensitive. The sidecar enforces a masking policy (automatic classification plus
 * explicit columns and rules; another database of the same server holds customers' PII, masked
 * for this identity), so every result passes through the masking machinery: the psql script
 * (errors, notices, COPY in and out, \gset, large results), pgbench -i and all three query modes,
 * and node-postgres must see exactly what they see directly.
 */

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: masking-on }
spec:
  # The script has a deliberate syntax error; refusing it is the guardrails' business, not masking's.
  unparseable: allow
  classification:
    columns:
      - { table: public.customers, column: notes, classes: [free_text_pii] }
  masking:
    rules:
      - name: emails-keep-domain
        when: '"email" in column.classes'
        action: mask
        mask: email
`;

let db: PgCluster;
let sidecar: RunningSidecar;
let dir: string;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  dir = await mkdtemp(join(tmpdir(), 'dbward-compat-masking-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  await db.createDatabase('crm', 'app');
  await db.sql("create table customers (id int primary key, email text, ssn text, notes text); insert into customers values (1, 'ada@analytical.example', '123-45-6789', 'call ada')", { database: 'crm', user: 'app' });
  sidecar = await startSidecar({ upstream: db.url({ password: null, sslmode: 'disable' }), args: ['--policy', join(dir, 'policy.yaml'), '--identity', 'serviceAccount=agent'], name: 'masking' });
});

afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function viaSidecar(): Target {
  const direct = directTarget(db, false);
  return { ...direct, label: 'sidecar (masking policy)', port: sidecar.port, pg: { ...direct.pg, port: sidecar.port }, env: { ...direct.env, PGPORT: String(sidecar.port) } };
}

describe('the masking machinery is invisible on data that is not sensitive', () => {
  it('the policy masks for this identity (control: the crm database)', async () => {
    const c = new pg.Client({ ...viaSidecar().pg, database: 'crm' });
    await c.connect();
    const r = await c.query('select email, ssn, notes from customers');
    await c.end();
    expect(r.rows).toEqual([{ email: '***@analytical.example', ssn: '[redacted]', notes: '[redacted]' }]);
  });

  it('psql: the compatibility script gives the same output, errors and COPY file', async () => {
    const script = await preparePsql(dir);
    const direct = await runPsql(db, directTarget(db, false), script, dir);
    const masked = await runPsql(db, viaSidecar(), script, dir);
    expect(direct.code).toBe(0);
    expect(masked).toEqual(direct);
  });

  it('pgbench: -i, then simple, extended and prepared, as directly', async () => {
    const strip = (s: PgbenchSummary): Omit<PgbenchSummary, 'stderr'> => {
      const { stderr: _stderr, ...rest } = s;
      return rest;
    };
    const results: Record<string, Omit<PgbenchSummary, 'stderr'>[]> = {};
    for (const target of [directTarget(db, false), viaSidecar()]) {
      const init = await pgbenchInit(target);
      expect(init.code, init.stderr).toBe(0);
      results[target.label] = [];
      for (const mode of ['simple', 'extended', 'prepared'] as const) results[target.label]!.push(strip(await pgbenchRun(db, target, mode)));
    }
    const total = PGBENCH_CLIENTS * PGBENCH_TRANSACTIONS;
    for (const s of results['sidecar (masking policy)']!) expect(s).toMatchObject({ code: 0, processed: `${total}/${total}`, failed: '0', consistent: true });
    expect(results['sidecar (masking policy)']).toEqual(results[directTarget(db, false).label]);
  });

  it('node-postgres: queries, parameters, types, errors and a transaction, as directly', async () => {
    const run = async (target: Target): Promise<unknown[]> => {
      const c = new pg.Client(target.pg);
      await c.connect();
      const out: unknown[] = [];
      try {
        await c.query('create table if not exists compat_node (id int primary key, label text, amount numeric, at timestamptz, tags text[], doc jsonb)');
        await c.query('truncate compat_node');
        await c.query('begin');
        for (let i = 1; i <= 50; i++) await c.query('insert into compat_node values ($1, $2, $3, $4, $5, $6)', [i, `label ${i}`, i * 1.5, new Date(Date.UTC(2024, 0, i)), [`t${i}`, 'x'], { i, ok: true }]);
        await c.query('commit');
        out.push((await c.query('select * from compat_node order by id')).rows);
        out.push((await c.query({ text: 'select id, label from compat_node where id < $1 order by id', values: [5], rowMode: 'array' })).rows);
        out.push((await c.query('select count(*), sum(amount), max(at) from compat_node')).rows);
        out.push(await c.query('insert into compat_node values (1)').then(() => 'no error', (e: Error & { code?: string; detail?: string }) => [e.code, e.message, e.detail]));
        out.push(await c.query('select 1/0').then(() => 'no error', (e: Error & { code?: string }) => [e.code, e.message]));
        out.push((await c.query('select $1::int + 1 as n', [41])).rows);
      } finally {
        await c.end();
      }
      return out;
    };
    const direct = await run(directTarget(db, false));
    const masked = await run(viaSidecar());
    expect(direct[3]).toEqual(['23505', 'duplicate key value violates unique constraint "compat_node_pkey"', 'Key (id)=(1) already exists.']);
    expect(masked).toEqual(direct);
  });
});
