import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { query } from '../src/wire/writers.js';
import { RawClient } from './support/raw-client.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * requireApproval, standalone (SPEC §7): the statement is held, the client gets a NOTICE with the
 * request id, and `dbward approvals approve|deny` on the admin endpoint decides; a timeout gives
 * 57014. Everything the client pipelines behind a held statement waits, in order.
 */

const DBWARD = fileURLToPath(new URL('../dist/dbward.js', import.meta.url));

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: ops, namespace: shop }
spec:
  guardrails:
    - name: hold-deletes
      when: 'query.command == "DELETE"'
      action: requireApproval
      message: deletes are reviewed
  approvals: { timeout: 3s }
`;

let db: PgCluster;
let sidecar: RunningSidecar;
let admin: string;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  await db.sql('create table orders (id int primary key, note text); insert into orders select g, \'n\' || g from generate_series(1, 10) g', { database: 'app', user: 'app' });
  const dir = mkdtempSync(join(tmpdir(), 'dbward-approvals-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  admin = `127.0.0.1:${await freePort()}`;
  sidecar = await startSidecar({
    upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }),
    args: ['--policy', join(dir, 'policy.yaml'), '--admin', admin, '--environment', 'production'],
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

async function connect(): Promise<{ client: pg.Client; notices: string[] }> {
  const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
  const notices: string[] = [];
  client.on('notice', (notice) => notices.push(notice.message ?? ''));
  client.on('error', () => undefined);
  await client.connect();
  return { client, notices };
}

async function waitForHold(notices: string[]): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const match = notices.map((n) => /^dbward: waiting for approval (apr-[0-9a-z]+)$/.exec(n)).find((m) => m !== null);
    if (match) return match[1]!;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no approval notice; notices: ${JSON.stringify(notices)}`);
}

async function dbward(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [DBWARD, ...args, '--admin', admin]);
}

async function count(): Promise<string> {
  return db.sql('select count(*) from orders', { database: 'app' });
}

describe('requireApproval', () => {
  it('holds the statement until it is approved with `dbward approvals approve`, recording who', async () => {
    const { client, notices } = await connect();
    const deleting = client.query('delete from orders where id = 1');
    const id = await waitForHold(notices);
    expect(await count()).toBe('10'); // nothing reached the server yet

    const listed = await dbward('approvals', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+PENDING\\s+hold-deletes`));
    expect(listed.stdout).toContain('delete from orders where id = 1');

    const approved = await dbward('approvals', 'approve', id, '--by', 'alice', '--reason', 'INC-42');
    expect(approved.stdout.trim()).toBe(`approval ${id} approved by alice`);
    expect((await deleting).rowCount).toBe(1);
    expect(await count()).toBe('9');
    const json = JSON.parse((await dbward('approvals', 'list', '-o', 'json')).stdout) as Array<{ id: string; state: string; decidedBy: string; reason: string }>;
    expect(json.find((r) => r.id === id)).toMatchObject({ state: 'approved', decidedBy: 'alice', reason: 'INC-42' });
    await client.end();
  });

  it('refuses with 42501 when denied, and the connection goes on', async () => {
    const { client, notices } = await connect();
    const deleting = client.query('delete from orders where id = 2').catch((error: Error & { code?: string }) => error);
    const id = await waitForHold(notices);
    expect((await dbward('approvals', 'deny', id, '--reason', 'not during the freeze')).code).toBe(0);
    const error = (await deleting) as Error & { code?: string; detail?: string };
    expect(error.code).toBe('42501');
    expect(error.message).toBe(`dbward: approval ${id} denied`);
    expect(error.detail).toBe('not during the freeze');
    expect(await count()).toBe('9');
    expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    await client.end();
  });

  it('times out with 57014 after approvals.timeout', async () => {
    const { client, notices } = await connect();
    const started = Date.now();
    const error = await client.query('delete from orders where id = 3').catch((e: Error & { code?: string }) => e);
    const id = await waitForHold(notices);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    expect((error as Error & { code?: string }).code).toBe('57014');
    expect((error as Error).message).toBe(`dbward: approval ${id} timed out`);
    expect((await dbward('approvals', 'approve', id)).stderr).toMatch(/already expired/);
    expect(await count()).toBe('9');
    await client.end();
  });

  it('keeps order: a query pipelined behind a held one runs after it', async () => {
    const raw = await RawClient.login(sidecar.port, { user: 'app', database: 'app' });
    raw.send(Buffer.concat([query('delete from orders where id = 4'), query('select count(*) from orders')]));
    const notice = await raw.waitFor((f) => f.code === 0x4e, 10_000);
    const id = /waiting for approval (apr-[0-9a-z]+)/.exec(notice!.bytes.toString('utf8'))![1]!;
    // Held: the second query has not run either (it would answer 9 now).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(raw.frames.map((f) => String.fromCharCode(f.code)).join('')).toBe('N');
    await dbward('approvals', 'approve', id);
    await raw.waitFor((f) => f.code === 0x5a && raw.frames.filter((g) => g.code === 0x5a).length === 2, 10_000);
    expect(raw.frames.map((f) => String.fromCharCode(f.code)).join('')).toBe('NCZTDCZ');
    const dataRow = raw.frames.find((f) => f.code === 0x44)!;
    expect(dataRow.bytes.subarray(11).toString()).toBe('8'); // the count after the approved delete
    raw.close();
  });

  it('a client cancel withdraws the held statement (57014)', async () => {
    const { client, notices } = await connect();
    const deleting = client.query('delete from orders where id = 5').catch((e: Error & { code?: string }) => e);
    const id = await waitForHold(notices);
    const canceller = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
    (canceller as unknown as { cancel: (c: pg.Client, q: unknown) => void }).cancel(client, (client as unknown as { activeQuery: unknown }).activeQuery);
    const error = (await deleting) as Error & { code?: string };
    expect(error.code).toBe('57014');
    expect(error.message).toBe(`dbward: approval ${id} cancelled`);
    const listed = JSON.parse((await dbward('approvals', 'list', '-o', 'json')).stdout) as Array<{ id: string; state: string }>;
    expect(listed.find((r) => r.id === id)?.state).toBe('cancelled');
    expect(await count()).toBe('8');
    await client.end();
  });
});
