import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataAccessPolicyInput } from '@dbward/sidecar/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pgBinDir, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { startSidecar, type RunningSidecar } from '../../sidecar/test/support/sidecar.js';
import { memoryPorts, startControlPlane, type ControlPlane, type MemoryAccessRequest } from '../src/controlplane/index.js';

/**
 * The gRPC control plane end to end on one machine: the in-process server with in-memory ports,
 * the built sidecar (`sidecar/dist/main.js`) subscribing with a token, a real PostgreSQL, real
 * clients (node-postgres, psql). Tests run in order and share one sidecar.
 */

const NS = 'shop';
const POD = 'checkout-7d9f-abcde';
const EMAIL = 'alice@example.com';

function policy(name: string, spec: Record<string, unknown>): DataAccessPolicyInput {
  return { apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name, namespace: NS }, spec } as DataAccessPolicyInput;
}

/** Emails masked for everyone; DELETE needs approval (3 s). */
const MASK_EMAILS = policy('checkout', {
  workloadSelector: { matchLabels: { app: 'checkout' } },
  masking: { default: 'mask', rules: [{ name: 'emails', when: '"email" in column.classes', action: 'mask', mask: 'email' }] },
  guardrails: [{ name: 'hold-deletes', when: 'query.command == "DELETE"', action: 'requireApproval', message: 'deletes are reviewed' }],
  approvals: { timeout: '3s' },
});
/** The edit: the checkout service account sees emails (the service account the control plane verified, not the flag). */
const REVEAL_FOR_CHECKOUT = policy('checkout', {
  ...MASK_EMAILS.spec,
  masking: {
    default: 'mask',
    rules: [
      { name: 'checkout-sees-emails', when: 'identity.serviceAccount == "checkout" && "email" in column.classes', action: 'reveal' },
      { name: 'emails', when: '"email" in column.classes', action: 'mask', mask: 'email' },
    ],
  },
});
/** Selects other pods only: were it delivered here, every statement would be refused. */
const OTHER_WORKLOAD = policy('other', {
  workloadSelector: { matchLabels: { app: 'other' } },
  guardrails: [{ name: 'deny-everything', when: 'true', action: 'deny', message: 'not for checkout' }],
});
/** Valid YAML and schema, but a CEL type error: the sidecar must NACK it. */
const BROKEN = policy('checkout', {
  ...REVEAL_FOR_CHECKOUT.spec,
  guardrails: [{ name: 'broken', when: 'query.tables + 1 == 2', action: 'deny' }],
});

let db: PgCluster;
let dir: string;
let cpPort: number;
let cp: ControlPlane | undefined;
let sidecar: RunningSidecar | undefined;
let admin: string;
const ports = memoryPorts();

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  await db.sql(`create table customers (id int primary key, email text, name text); insert into customers values (1, '${EMAIL}', 'Alice'), (2, 'bob@example.com', 'Bob'), (3, 'carol@example.com', 'Carol')`, {
    database: 'app',
    user: 'app',
  });
  dir = mkdtempSync(join(tmpdir(), 'dbward-cp-'));
  const token = ports.tokens.issue({ namespace: NS, serviceAccount: 'checkout', pod: POD, podUid: 'uid-1' });
  writeFileSync(join(dir, 'token'), `${token}\n`);
  writeFileSync(join(dir, 'bad-token'), 'not-a-valid-token\n');
  ports.pods.set(NS, POD, { app: 'checkout', 'pod-template-hash': '7d9f' });
  ports.policies.apply(MASK_EMAILS);
  ports.policies.apply(OTHER_WORKLOAD);
  cpPort = await freePort();
  admin = `127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  await sidecar?.stop();
  await cp?.close();
  await db?.stop();
});

function sidecarArgs(tokenFile: string, adminAddress?: string): string[] {
  return [
    '--control-plane', `127.0.0.1:${cpPort}`,
    '--control-plane-token-file', join(dir, tokenFile),
    '--policy-cache-dir', join(dir, 'cache'),
    // What the sidecar claims about itself; the control plane's verified identity wins.
    '--identity', 'serviceAccount=spoofed',
    ...(adminAddress !== undefined ? ['--admin', adminAddress] : []),
  ];
}

async function connect(target: RunningSidecar): Promise<pg.Client> {
  const client = new pg.Client({ host: target.host, port: target.port, user: 'app', database: 'app' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function connectError(target: RunningSidecar): Promise<Error & { code?: string }> {
  const client = new pg.Client({ host: target.host, port: target.port, user: 'app', database: 'app' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return error as Error & { code?: string };
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('the connection was accepted');
}

async function readyz(): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const res = await fetch(`http://${admin}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function email(client: pg.Client): Promise<string> {
  return ((await client.query<{ email: string }>('select email from customers where id = 1')).rows[0]!).email;
}

const acked = (version?: string) => () => {
  const status = cp?.sidecars().find((s) => s.pod === POD);
  return status?.ackedVersion !== undefined && status.ackedVersion === (version ?? status.sentVersion) ? status : undefined;
};

describe('control plane', () => {
  it('fails closed before the first snapshot: 57P03 and not ready', async () => {
    sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), args: sidecarArgs('token', admin), name: 'sidecar-cp' });
    const error = await connectError(sidecar);
    expect(error.code).toBe('57P03');
    expect(error.message).toBe('dbward: no policy loaded');
    expect(await readyz()).toMatchObject({ status: 503, body: { status: 'not ready' } });
  });

  it('delivers the selected policy over gRPC: emails masked for node-postgres and psql', async () => {
    cp = await startControlPlane({ address: `127.0.0.1:${cpPort}`, ports });
    await until('the first ACK', acked());
    const status = cp.sidecars()[0]!;
    expect(status).toMatchObject({ namespace: NS, pod: POD, serviceAccount: 'checkout' });
    expect((await readyz()).status).toBe(200);
    const client = await connect(sidecar!);
    const masked = await email(client);
    expect(masked).not.toBe(EMAIL);
    expect(masked).toMatch(/@example\.com$/);
    // The policy for app=other was not delivered: its deny-everything rule does not apply here.
    expect((await client.query('select count(*)::int as n from customers')).rows).toEqual([{ n: 3 }]);
    await client.end();

    const psql = await run(join(pgBinDir(), 'psql'), ['-X', '-At', '-h', sidecar!.host, '-p', String(sidecar!.port), '-U', 'app', '-d', 'app', '-c', 'select email from customers order by id']);
    expect(psql.code, psql.stderr).toBe(0);
    const lines = psql.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines).not.toContain(EMAIL);
    for (const line of lines) expect(line).toMatch(/@example\.com$/);
  });

  it('applies a policy edit within 2 s on the same connection (same backend pid)', async () => {
    const client = await connect(sidecar!);
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    expect(await email(client)).not.toBe(EMAIL);
    const started = performance.now();
    ports.policies.apply(REVEAL_FOR_CHECKOUT);
    await until('the edit to take effect', async () => ((await email(client)) === EMAIL ? true : undefined), 2_000);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(2_000);
    expect((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid).toBe(pid);
    await until('the ACK of the edit', acked());
    await client.end();
  });

  it('does not re-send identical content', async () => {
    const sent = cp!.metrics.snapshotsSent;
    const version = cp!.sidecars()[0]!.sentVersion;
    ports.policies.apply(REVEAL_FOR_CHECKOUT); // same spec: same generation, new resourceVersion
    ports.policies.apply(OTHER_WORKLOAD); // a policy that does not select this pod
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cp!.metrics.snapshotsSent).toBe(sent);
    expect(cp!.sidecars()[0]!.sentVersion).toBe(version);
  });

  it('NACKs a policy that does not compile, records it, and keeps the last good one', async () => {
    const client = await connect(sidecar!);
    const good = cp!.sidecars()[0]!.ackedVersion;
    ports.policies.apply(BROKEN);
    const record = await until('the rejection', () => ports.rejections.records.at(-1));
    expect(record).toMatchObject({ namespace: NS, policies: ['checkout'], sidecar: { pod: POD } });
    expect(record.error).toMatch(/broken/);
    expect(cp!.sidecars()[0]).toMatchObject({ ackedVersion: good, nackedVersion: record.version });
    expect(await email(client)).toBe(EMAIL); // the last good policy (reveal) is still in force
    expect(sidecar!.logs().some((l) => l.msg === 'control plane: snapshot rejected (NACK); keeping the last good policy')).toBe(true);
    ports.policies.apply(REVEAL_FOR_CHECKOUT);
    await until('the ACK of the fixed policy', acked(good));
    await client.end();
  });

  describe('approvals through AccessRequests', () => {
    const hints: string[] = [];
    async function hold(sql: string): Promise<{ client: pg.Client; result: Promise<pg.QueryResult | (Error & { code?: string; detail?: string })>; request: MemoryAccessRequest; notices: string[] }> {
      const client = await connect(sidecar!);
      const notices: string[] = [];
      client.on('notice', (n) => {
        notices.push(n.message ?? '');
        hints.push(n.hint ?? '');
      });
      const before = ports.accessRequests.list().length;
      const result = client.query(sql).catch((error: Error & { code?: string; detail?: string }) => error);
      const request = await until('the AccessRequest', () => ports.accessRequests.list()[before]);
      await until('the NOTICE', () => (notices.length > 0 ? true : undefined));
      return { client, result, request, notices };
    }

    it('creates an AccessRequest whose name is the approval id; approving runs the statement', async () => {
      const { client, result, request, notices } = await hold('delete from customers where id = 3');
      expect(notices).toEqual([`dbward: waiting for approval ${request.name}`]);
      expect(hints.at(-1)).toBe(`kubectl dbward approve ${request.name}   (or deny ${request.name})`);
      expect(request.namespace).toBe(NS);
      expect(request.spec).toMatchObject({
        policy: 'checkout',
        rule: 'hold-deletes',
        identity: { user: 'app', database: 'app', namespace: NS, serviceAccount: 'checkout', pod: POD, labels: { app: 'checkout' } },
      });
      expect(request.spec.statement).toContain('delete from customers');
      expect(await db.sql('select count(*) from customers', { database: 'app' })).toBe('3');
      ports.accessRequests.approve(NS, request.name, 'alice', 'INC-42');
      const done = await result;
      expect(done).toMatchObject({ rowCount: 1 });
      expect(await db.sql('select count(*) from customers', { database: 'app' })).toBe('2');
      await client.end();
    });

    it('denying gives 42501 with the SPEC message and the reason', async () => {
      const { client, result, request } = await hold('delete from customers where id = 2');
      ports.accessRequests.deny(NS, request.name, 'bob', 'not during the freeze');
      const error = (await result) as Error & { code?: string; detail?: string };
      expect(error.code).toBe('42501');
      expect(error.message).toBe(`dbward: approval ${request.name} denied`);
      expect(error.detail).toBe('not during the freeze');
      expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
      await client.end();
    });

    it('the sidecar timeout expires the AccessRequest (57014)', async () => {
      const { client, result, request } = await hold('delete from customers where id = 2');
      const error = (await result) as Error & { code?: string };
      expect(error.code).toBe('57014');
      expect(error.message).toBe(`dbward: approval ${request.name} timed out`);
      await until('Expired', () => (ports.accessRequests.get(NS, request.name)?.status.phase === 'Expired' ? true : undefined), 5_000);
      expect(ports.accessRequests.get(NS, request.name)?.status).toMatchObject({ phase: 'Expired', decidedBy: 'dbward' });
      await client.end();
    });
  });

  it('restarted with the control plane down, the sidecar enforces the last-known-good cache', async () => {
    const version = cp!.sidecars()[0]!.ackedVersion;
    await sidecar!.stop();
    await cp!.close();
    cp = undefined;
    sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), args: sidecarArgs('token', admin), name: 'sidecar-cp-cached' });
    const loaded = await until('the cache', () => sidecar!.logs().find((l) => l.msg === 'policy loaded' && l.source === 'cache'), 10_000);
    expect(loaded.policyVersion).toBe(version);
    const client = await connect(sidecar);
    expect(await email(client)).toBe(EMAIL); // the cached policy reveals for the verified service account
    expect((await readyz()).status).toBe(200);
    await client.end();
  });

  it('restarted while the control plane serves a snapshot it rejects, the sidecar NACKs and enforces the last-known-good cache', async () => {
    const version = cp === undefined ? (sidecar!.logs().find((l) => l.msg === 'policy loaded' && l.source === 'cache')?.policyVersion as string | undefined) : cp.sidecars()[0]?.ackedVersion;
    expect(version).toBeDefined();
    await sidecar?.stop();
    await cp?.close();
    ports.policies.apply(BROKEN);
    cp = await startControlPlane({ address: `127.0.0.1:${cpPort}`, ports });
    const rejections = ports.rejections.records.length;
    try {
      sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), args: sidecarArgs('token', admin), name: 'sidecar-cp-nacked' });
      const loaded = await until('the cache', () => sidecar!.logs().find((l) => l.msg === 'policy loaded' && l.source === 'cache'), 10_000);
      expect(loaded.policyVersion).toBe(version);
      expect(ports.rejections.records.length).toBeGreaterThan(rejections);
      expect(cp!.sidecars()[0]).toMatchObject({ nackedVersion: ports.rejections.records.at(-1)?.version });
      const client = await connect(sidecar!);
      expect(await email(client)).toBe(EMAIL);
      // The fix arrives: the control plane's snapshot replaces the cache on the same connection.
      ports.policies.apply(REVEAL_FOR_CHECKOUT);
      await until('the ACK of the fixed policy', acked());
      expect(sidecar!.logs().some((l) => l.msg === 'policy loaded' && l.source === 'control-plane')).toBe(true);
      expect(await email(client)).toBe(EMAIL);
      await client.end();
    } finally {
      ports.policies.apply(REVEAL_FOR_CHECKOUT);
      await cp?.close();
      cp = undefined;
    }
  });

  it('a rejected token: the stream is refused, the sidecar stays fail-closed and says why', async () => {
    await sidecar?.stop();
    cp = await startControlPlane({ address: `127.0.0.1:${cpPort}`, ports });
    const refused = cp.metrics.refused;
    const bad = await startSidecar({
      upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }),
      args: ['--control-plane', `127.0.0.1:${cpPort}`, '--control-plane-token-file', join(dir, 'bad-token')],
      name: 'sidecar-bad-token',
    });
    sidecar = bad;
    const line = await until('the refusal log', () => bad.logs().find((l) => l.msg?.toString().startsWith('control plane refused this sidecar')), 10_000);
    expect(line).toMatchObject({ code: 'UNAUTHENTICATED', failingClosed: true });
    expect(String(line.details)).toContain('token rejected');
    expect(cp.metrics.refused).toBeGreaterThan(refused);
    expect(cp.sidecars()).toHaveLength(0);
    // Refused streams are not kept (the sidecar retries with backoff: wait for a moment between attempts).
    await until('no open stream', () => (cp!.metrics.open === 0 ? true : undefined), 5_000);
    expect(cp.metrics.connected).toBe(0);
    const error = await connectError(bad);
    expect(error.code).toBe('57P03');
  });
});
