/**
 * Native I/O (docs/adr/0010-node-data-plane-floor.md, 0022): sessions with plain TCP on both legs
 * do their socket I/O through the C addon (built here with `make native`), by default; everything
 * else stays on Node sockets, and what clients see is the same as directly. Pass-through sessions
 * (no policy, no audit) let the addon relay whole messages itself (fast mode).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChecked, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let db: PgCluster;
let native: RunningSidecar;
let nativeWithTls: RunningSidecar;
let byDefault: RunningSidecar;
let nodeSockets: RunningSidecar;
let withPolicy: RunningSidecar;
let fastRelayOff: RunningSidecar;
let plainCalls: RunningSidecar;
let seccomped: RunningSidecar;
let onLoop: RunningSidecar;
const policyDir = mkdtempSync(join(tmpdir(), 'dbward-native-io-'));

beforeAll(async () => {
  await runChecked('make', ['-s', 'native'], { cwd: ROOT, timeoutMs: 60_000 });
  db = await startPostgres({ auth: 'scram-sha-256', tls: true, certNames: ['sidecar'] });
  await db.sql('create table items (id int primary key, label text)', { database: 'app', user: 'app' });
  await db.sql("insert into items select g, 'item ' || g from generate_series(1, 50000) g", { database: 'app', user: 'app' });
  const upstream = db.url({ password: null, sslmode: 'disable' });
  native = await startSidecar({ upstream, args: ['--native-io', '--log-level', 'debug'], name: 'sidecar-native' });
  const leaf = db.tls!.leaves['sidecar']!;
  nativeWithTls = await startSidecar({ upstream, args: ['--log-level', 'debug', '--tls-cert', leaf.cert, '--tls-key', leaf.key], env: { DBWARD_NATIVE_IO: '1' }, name: 'sidecar-native-tls' });
  byDefault = await startSidecar({ upstream, args: ['--log-level', 'debug'], env: { DBWARD_NATIVE_IO: undefined }, name: 'sidecar-default-io' });
  nodeSockets = await startSidecar({ upstream, args: ['--log-level', 'debug', '--no-native-io'], name: 'sidecar-node-io' });
  const policy = join(policyDir, 'allow-all.yaml');
  writeFileSync(policy, 'apiVersion: dbward.io/v1alpha1\nkind: DataAccessPolicy\nmetadata: { name: allow-all }\nspec:\n  classification: { automatic: false }\n');
  fastRelayOff = await startSidecar({ upstream, args: ['--log-level', 'debug', '--native-io'], env: { DBWARD_FAST_RELAY: 'off' }, name: 'sidecar-fast-relay-off' });
  // io_uring denied by seccomp, as under the RuntimeDefault profile of most container runtimes.
  const denyIoUring = join(policyDir, 'deny-io-uring');
  await runChecked('gcc', ['-O2', '-Wall', '-Wextra', '-o', denyIoUring, join(ROOT, 'sidecar/test/support/deny-io-uring.c')], { timeoutMs: 60_000 });
  seccomped = await startSidecar({ upstream, args: ['--log-level', 'debug'], launcher: [denyIoUring], name: 'sidecar-seccomp-no-io-uring' });
  plainCalls = await startSidecar({ upstream, args: ['--log-level', 'debug', '--native-io'], env: { DBWARD_IO_URING: 'off' }, name: 'sidecar-no-io-uring' });
  onLoop = await startSidecar({ upstream, args: ['--log-level', 'debug', '--native-io'], env: { DBWARD_RELAY_THREAD: 'off' }, name: 'sidecar-no-relay-thread' });
  withPolicy = await startSidecar({ upstream, args: ['--log-level', 'debug', '--native-io', '--policy', policy], name: 'sidecar-native-policy' });
}, 120_000);

afterAll(async () => {
  await native?.stop();
  await nativeWithTls?.stop();
  await byDefault?.stop();
  await nodeSockets?.stop();
  await withPolicy?.stop();
  await fastRelayOff?.stop();
  await plainCalls?.stop();
  await seccomped?.stop();
  await onLoop?.stop();
  await db?.stop();
  rmSync(policyDir, { recursive: true, force: true });
});

interface FastCounts {
  client: number;
  server: number;
  clientHandovers: number;
  serverHandovers: number;
}

/** The fast-mode counts of every 'session closed' line so far (sessions on the addon only). */
function closedSessions(sidecar: RunningSidecar): FastCounts[] {
  return sidecar.logs().filter((l) => l.msg === 'session closed').map((l) => l.fast as FastCounts);
}

/** Waits until every native session the sidecar opened has logged its close (earlier tests' included). */
async function settled(sidecar: RunningSidecar): Promise<number> {
  await waitFor(() => closedSessions(sidecar).length === sessionIo(sidecar).filter((io) => io === 'native').length);
  return closedSessions(sidecar).length;
}

/** The `io` of every 'session ready' log line so far. */
function sessionIo(sidecar: RunningSidecar): unknown[] {
  return sidecar.logs().filter((l) => l.msg === 'session ready').map((l) => l.io);
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function appBackends(): Promise<number> {
  return Number(await db.sql("select count(*) from pg_stat_activity where usename = 'app' and backend_type = 'client backend'"));
}

async function transcript(config: pg.ClientConfig): Promise<unknown[]> {
  const client = new pg.Client(config);
  await client.connect();
  const out: unknown[] = [];
  try {
    out.push((await client.query('select $1::int + 1 as n, current_user as u', [41])).rows);
    out.push(await client.query('select 1 / 0').then(() => 'no error', (e: { code?: string; message?: string }) => [e.code, e.message]));
    out.push((await client.query('select count(*)::int as c, sum(length(label))::int as s from items')).rows);
    const all = await client.query('select id, label from items order by id');
    out.push([all.rowCount, all.rows[0], all.rows.at(-1)]);
    // Several statements in one message: several result sets in one reply.
    const many = (await client.query('select 1 as a; select 2 as b; select 3 as c')) as unknown as pg.QueryResult[];
    out.push(many.map((r) => r.rows));
    await client.query('begin');
    await client.query("insert into items values (100001, 'in a transaction')");
    out.push((await client.query('select label from items where id = 100001')).rows);
    await client.query('rollback');
  } finally {
    await client.end();
  }
  return out;
}

describe('--native-io', () => {
  it('reports the addon at start: on by default and with --native-io, off with --no-native-io', () => {
    const state = (s: RunningSidecar): unknown => s.logs().find((l) => typeof l.listen === 'string')?.nativeIo;
    expect(state(native)).toBe('on (sessions with plain TCP on both legs)');
    expect(state(byDefault)).toBe('on (sessions with plain TCP on both legs)');
    expect(state(nodeSockets)).toBe('off (Node sockets)');
    // io_uring batching (ADR 0023): on where the kernel allows it, off with DBWARD_IO_URING=off.
    const ring = (s: RunningSidecar): unknown => s.logs().find((l) => typeof l.listen === 'string')?.ioUring;
    expect(ring(native)).toMatch(/^(on|unavailable \(E[A-Z]+\))$/);
    expect(ring(byDefault)).toBe(ring(native));
    expect(ring(plainCalls)).toMatch(/^(off|unavailable \(E[A-Z]+\))$/);
    expect(ring(nodeSockets)).toBeUndefined();
    expect(ring(seccomped)).toBe('unavailable (EPERM)');
    // The relay thread (ADR 0024) needs io_uring: on with it, off with either switch off.
    const thread = (s: RunningSidecar): unknown => s.logs().find((l) => typeof l.listen === 'string')?.relayThread;
    if (ring(native) === 'on') expect(thread(native)).toBe('on');
    else expect(thread(native)).toMatch(/^unavailable \(E[A-Z]+\)$/);
    expect(thread(onLoop)).toBe('off');
    expect(thread(plainCalls)).toBe('off');
    expect(thread(nodeSockets)).toBeUndefined();
    expect(thread(seccomped)).toBe('unavailable (EPERM)');
    // With a policy every session goes through JavaScript: no thread is started.
    expect(thread(withPolicy)).toBe('not used (every session goes through the policy or the audit)');
  });

  it('relays pgbench sessions on the relay thread: its counters at stop show the hand-offs, wake-ups and sends', async (ctx) => {
    const upstream = db.url({ password: null, sslmode: 'disable' });
    const own = await startSidecar({ upstream, args: ['--log-level', 'debug'], name: 'sidecar-relay-thread-counters' });
    try {
      const state = own.logs().find((l) => typeof l.listen === 'string')?.relayThread;
      if (state !== 'on') ctx.skip(`no relay thread here: ${String(state)}`);
      const env = { ...db.env({ user: 'postgres', database: 'postgres' }) };
      await runChecked('pgbench', ['-i', '-s', '1', '-q'], { env, timeoutMs: 60_000 });
      const r = await run('pgbench', ['-S', '-n', '-M', 'simple', '-c', '4', '-j', '2', '-t', '300', '-h', own.host, '-p', String(own.port), '-U', 'postgres', 'postgres'], {
        env: { ...env, PGSSLMODE: 'disable' },
        timeoutMs: 60_000,
      });
      expect(r.stdout).toMatch(/number of transactions actually processed: 1200\/1200/);
    } finally {
      await own.stop();
    }
    const stopped = own.logs().find((l) => l.msg === 'stopped') as { relayThread?: Record<string, number> } | undefined;
    const counters = stopped?.relayThread;
    expect(counters).toBeDefined();
    // Each of the 4 client sessions (and pgbench's check connection) went to the thread and came back at its Terminate.
    expect(counters!['offloads']).toBeGreaterThanOrEqual(4);
    expect(counters!['returns']).toBeGreaterThanOrEqual(4);
    // 1,200 queries and their replies: at least one send each way per transaction, made by the thread.
    expect(counters!['sends']).toBeGreaterThanOrEqual(2400);
    expect(counters!['wakeUps']).toBeGreaterThan(0);
  });

  it('by default a plain session runs on the addon; with --no-native-io on Node sockets; same transcript', async () => {
    const direct = await transcript(db.clientConfig());
    const before = [sessionIo(byDefault).length, sessionIo(nodeSockets).length];
    expect(await transcript({ ...db.clientConfig(), host: byDefault.host, port: byDefault.port })).toEqual(direct);
    expect(await transcript({ ...db.clientConfig(), host: nodeSockets.host, port: nodeSockets.port })).toEqual(direct);
    expect(sessionIo(byDefault).slice(before[0])).toEqual(['native']);
    expect(sessionIo(nodeSockets).slice(before[1])).toEqual(['node']);
  });

  it('runs a plain-TCP session on the addon with the same transcript as directly', async () => {
    const before = sessionIo(native).length;
    const direct = await transcript(db.clientConfig());
    const through = await transcript({ ...db.clientConfig(), host: native.host, port: native.port });
    expect(through).toEqual(direct);
    expect(through[1]).toEqual(['22012', 'division by zero']);
    expect(sessionIo(native).slice(before)).toEqual(['native']);
  });

  it.each([
    { calls: 'io_uring batches', sidecar: () => native },
    { calls: 'plain system calls (DBWARD_IO_URING=off)', sidecar: () => plainCalls },
    { calls: 'plain system calls (io_uring denied by seccomp)', sidecar: () => seccomped },
    { calls: 'io_uring batches on the loop (DBWARD_RELAY_THREAD=off)', sidecar: () => onLoop },
  ])('pgbench through the addon with $calls: every transaction of every client completes, relayed in fast mode', async ({ sidecar }) => {
    const native = sidecar();
    const env = { ...db.env({ user: 'postgres', database: 'postgres' }) };
    await runChecked('pgbench', ['-i', '-s', '1', '-q'], { env, timeoutMs: 60_000 });
    const before = await settled(native);
    for (const mode of ['simple', 'prepared']) {
      const r = await run('pgbench', ['-S', '-n', '-M', mode, '-c', '4', '-j', '2', '-t', '300', '-h', native.host, '-p', String(native.port), '-U', 'postgres', 'postgres'], {
        env: { ...env, PGSSLMODE: 'disable' },
        timeoutMs: 60_000,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/number of transactions actually processed: 1200\/1200/);
      expect(r.stdout).toMatch(/number of failed transactions: 0 /);
    }
    // Every session pgbench opened (a check connection per run besides its clients) has closed.
    await settled(native);
    const sessions = closedSessions(native).slice(before);
    // Simple: one Query per transaction; prepared: Bind, Execute, Sync (after the first Parse).
    const clientMessages = sessions.reduce((n, s) => n + s.client, 0);
    const serverMessages = sessions.reduce((n, s) => n + s.server, 0);
    expect(clientMessages).toBeGreaterThanOrEqual(1200 + 3 * 1200);
    // Every transaction's reply (RowDescription or BindComplete, DataRow, CommandComplete, ReadyForQuery).
    expect(serverMessages).toBeGreaterThanOrEqual(4 * 2400);
    // pgbench sends nothing the session must see before its Terminate.
    for (const s of sessions) expect(s.clientHandovers).toBe(1);
  });

  it('an error or a SET reaches the session and fast mode resumes after it; a policy keeps every message in JavaScript', async () => {
    const before = await settled(native);
    const client = new pg.Client({ ...db.clientConfig(), host: native.host, port: native.port });
    await client.connect();
    await expect(client.query('select 1 / 0')).rejects.toMatchObject({ code: '22012' });
    await client.query("set application_name = 'fast-mode test'"); // ParameterStatus from the server
    for (let i = 0; i < 20; i++) expect((await client.query('select $1::int as n', [i])).rows).toEqual([{ n: i }]);
    expect((await client.query('show application_name')).rows).toEqual([{ application_name: 'fast-mode test' }]);
    await client.end();
    await waitFor(() => closedSessions(native).length > before);
    const [session] = closedSessions(native).slice(before);
    expect(session!.serverHandovers).toBeGreaterThanOrEqual(2);
    // The 20 statements after the hand-overs went through the addon (Parse, Bind, Describe, Execute, Sync each).
    expect(session!.client).toBeGreaterThanOrEqual(20 * 4);

    const beforePolicy = await settled(withPolicy);
    const judged = new pg.Client({ ...db.clientConfig(), host: withPolicy.host, port: withPolicy.port });
    await judged.connect();
    expect((await judged.query('select 41 + 1 as n')).rows).toEqual([{ n: 42 }]);
    await judged.end();
    await waitFor(() => closedSessions(withPolicy).length > beforePolicy);
    expect(closedSessions(withPolicy).slice(beforePolicy)).toEqual([{ client: 0, server: 0, clientHandovers: 0, serverHandovers: 0 }]);
  });

  it('DBWARD_FAST_RELAY=off: sessions stay on the addon but every message goes through the session', async () => {
    expect(fastRelayOff.logs().find((l) => typeof l.listen === 'string')?.fastRelay).toBe('off');
    const before = await settled(fastRelayOff);
    const direct = await transcript(db.clientConfig());
    expect(await transcript({ ...db.clientConfig(), host: fastRelayOff.host, port: fastRelayOff.port })).toEqual(direct);
    await waitFor(() => closedSessions(fastRelayOff).length > before);
    expect(closedSessions(fastRelayOff).slice(before)).toEqual([{ client: 0, server: 0, clientHandovers: 0, serverHandovers: 0 }]);
    expect(sessionIo(fastRelayOff).at(-1)).toBe('native');
  });

  it('a client that vanishes ends its server backend; a terminated backend reaches the client as an error', async () => {
    await waitFor(async () => (await appBackends()) === 0);
    const client = new pg.Client({ ...db.clientConfig(), host: native.host, port: native.port });
    await client.connect();
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const ended = new Promise<Error>((resolve) => client.on('error', resolve));
    await db.sql(`select pg_terminate_backend(${pid})`);
    const error = await ended;
    expect(error.message).toMatch(/terminating connection due to administrator command|Connection terminated/);

    const rude = new pg.Client({ ...db.clientConfig(), host: native.host, port: native.port });
    rude.on('error', () => undefined); // its own 'Connection terminated' once we cut it
    await rude.connect();
    await rude.query('select 1');
    expect(await appBackends()).toBe(1);
    // Close the TCP connection without a Terminate message.
    (rude as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await waitFor(async () => (await appBackends()) === 0);
  });

  it('with --tls-cert, a TLS client keeps Node sockets and a plain client goes native', async () => {
    const before = sessionIo(nativeWithTls).length;
    const viaTls = await transcript({ ...db.clientConfig({ sslmode: 'require' }), host: nativeWithTls.host, port: nativeWithTls.port });
    const viaPlain = await transcript({ ...db.clientConfig(), host: nativeWithTls.host, port: nativeWithTls.port });
    const direct = await transcript(db.clientConfig());
    expect(viaTls).toEqual(direct);
    expect(viaPlain).toEqual(direct);
    expect(sessionIo(nativeWithTls).slice(before)).toEqual(['node', 'native']);
  });
});
