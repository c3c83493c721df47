import { connect, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { query } from '../src/wire/writers.js';
import { errorFields, RawClient } from './support/raw-client.js';
import { SIDECAR_MAIN, startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * The sidecar's life and its failures: bad configuration, an upstream that is down or drops the
 * connection, a client that never finishes its startup, and graceful shutdown on SIGTERM.
 */

let db: PgCluster;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  await db.sql('create table items (id int primary key, name text)', { database: 'app', user: 'app' });
});

afterAll(async () => {
  await db?.stop();
});

function upstreamUrl(port = db.port): string {
  return `postgres://app@127.0.0.1:${port}/app?sslmode=disable`;
}

function client(sidecar: RunningSidecar): pg.Client {
  const c = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
  c.on('error', () => undefined);
  return c;
}

/** Resolves with the error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; severity?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string; severity?: string };
  }
  throw new Error('expected a rejection');
}

describe('configuration errors', () => {
  it.each([
    [[], '--upstream'],
    [['--upstream', 'postgres://h?sslmode=sometimes'], '--upstream'],
    [['--upstream', 'postgres://u:pw@127.0.0.1:5432', '--listen', '0.0.0.0:6432'], '--listen'],
    [['--upstream', 'postgres://127.0.0.1:5432', '--no-such-flag'], '--no-such-flag'],
  ])('exits 2 with one line naming the flag: %j', async (args, flag) => {
    const result = await run(process.execPath, [SIDECAR_MAIN, ...args], { env: { DBWARD_UPSTREAM: undefined } });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^dbward-sidecar: ${flag}: `));
  });

  it('exits 2 when the listen address is taken', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const result = await run(process.execPath, [SIDECAR_MAIN, '--upstream', upstreamUrl(), '--listen', `127.0.0.1:${port}`]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^dbward-sidecar: --listen: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('reads its configuration from DBWARD_* variables', async () => {
    const proc = await startSidecar({ upstream: upstreamUrl(), env: { DBWARD_CONNECT_TIMEOUT: '2s' } });
    try {
      const c = client(proc);
      await c.connect();
      expect((await c.query('select 7 as n')).rows).toEqual([{ n: 7 }]);
      await c.end();
    } finally {
      await proc.stop();
    }
  });
});

describe('upstream failures', () => {
  it('answers FATAL 08006 when the upstream is down, and keeps serving', async () => {
    const deadPort = await freePort();
    const sidecar = await startSidecar({ upstream: upstreamUrl(deadPort), args: ['--connect-timeout', '2s'] });
    try {
      for (let i = 0; i < 3; i++) {
        const error = await rejection(client(sidecar).connect());
        expect(error.code).toBe('08006');
        expect(error.severity).toBe('FATAL');
        expect(error.message).toMatch(/^dbward: upstream unavailable: cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
      }
      expect(sidecar.process.exitInfo).toBeUndefined();
    } finally {
      await sidecar.stop();
    }
  });

  it('answers FATAL 08006 when the upstream connection is lost mid-session', async () => {
    // A TCP relay between the sidecar and PostgreSQL that the test can cut.
    const relaySockets = new Set<Socket>();
    const relay: Server = createServer((inbound) => {
      const outbound = connect({ host: '127.0.0.1', port: db.port });
      relaySockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    const relayPort = await freePort();
    await new Promise<void>((resolve) => relay.listen(relayPort, '127.0.0.1', resolve));
    const sidecar = await startSidecar({ upstream: upstreamUrl(relayPort) });
    try {
      const c = client(sidecar);
      await c.connect();
      expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      const running = rejection(c.query('select pg_sleep(5)'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const s of relaySockets) s.destroy();
      const error = await running;
      expect(error.code).toBe('08006');
      expect(error.message).toBe('dbward: upstream unavailable: the server closed the connection');
      // Other clients are unaffected: a new connection works once the relay accepts again.
      const c2 = client(sidecar);
      await c2.connect();
      expect((await c2.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
      await c2.end();
    } finally {
      await sidecar.stop();
      relay.close();
    }
  });

  it('forwards the server\u2019s own FATAL when its backend is terminated', async () => {
    const sidecar = await startSidecar({ upstream: upstreamUrl() });
    try {
      const c = client(sidecar);
      await c.connect();
      const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      const running = rejection(c.query('select pg_sleep(5)'));
      await db.sql(`select pg_terminate_backend(${pid})`);
      const error = await running;
      expect(error.code).toBe('57P01');
      expect(error.message).toBe('terminating connection due to administrator command');
    } finally {
      await sidecar.stop();
    }
  });
});

describe('clients that misbehave', () => {
  it('closes a connection that never completes its startup', async () => {
    const sidecar = await startSidecar({ upstream: upstreamUrl(), args: ['--startup-timeout', '500ms'] });
    try {
      const raw = await RawClient.connect(sidecar.port);
      raw.send(Buffer.from([0, 0, 0, 40])); // a startup packet that never arrives in full
      const started = Date.now();
      await raw.waitClosed(5_000);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(raw.invalid).toBeNull();
      // It was told why, in a well-formed ErrorResponse.
      const last = raw.frames.at(-1);
      expect(last?.code).toBe(0x45);
      expect(last?.bytes.toString('latin1')).toContain('08P01');
    } finally {
      await sidecar.stop();
    }
  });
});

describe('graceful shutdown (SIGTERM)', () => {
  it('lets running statements and open transactions finish, refuses new clients, then exits 0', async () => {
    const sidecar = await startSidecar({ upstream: upstreamUrl(), args: ['--drain-timeout', '20s'] });
    const idle = client(sidecar);
    const busy = client(sidecar);
    const inTx = client(sidecar);
    await Promise.all([idle.connect(), busy.connect(), inTx.connect()]);
    const idleClosed = new Promise<Error>((resolve) => idle.on('error', resolve));
    await inTx.query('begin');
    await inTx.query("insert into items values (1, 'kept')");
    const slow = busy.query("select pg_sleep(1.5), 'finished' as state");

    process.kill(sidecar.process.pid!, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));

    // The idle client is told at once.
    const idleError = (await idleClosed) as Error & { code?: string };
    expect(idleError.code).toBe('57P01');
    expect(idleError.message).toMatch(/^dbward: the sidecar is shutting down/);
    // No new clients.
    const refused = await rejection(client(sidecar).connect());
    expect(refused.message).toMatch(/ECONNREFUSED|ECONNRESET|Connection terminated/);
    // The running statement completes with its result.
    expect((await slow).rows).toEqual([{ pg_sleep: '', state: 'finished' }]);
    // The open transaction can still commit; then its connection is closed.
    await inTx.query("insert into items values (2, 'also kept')");
    await inTx.query('commit');
    const exit = await sidecar.process.exited;
    expect(exit.code).toBe(0);
    expect(await db.sql('select string_agg(name, \',\' order by id) from items', { database: 'app' })).toBe('kept,also kept');
    await db.sql('truncate items', { database: 'app' });
  });

  // On the addon, a statement already received when SIGTERM arrives runs even if the signal is
  // handled before the read (the session asks the kernel for unread bytes). Node sockets cannot
  // tell, so this race is only asserted where the sessions run on the addon.
  it.skipIf(process.env['DBWARD_NATIVE_IO'] === '0')('runs a statement that arrived together with SIGTERM, then closes (10 times)', async () => {
    for (let i = 0; i < 10; i++) {
      const sidecar = await startSidecar({ upstream: upstreamUrl(), args: ['--drain-timeout', '10s'] });
      const raw = await RawClient.login(sidecar.port, { user: 'app', database: 'app' });
      const before = raw.frames.length;
      raw.send(query(`select ${i} as round`));
      process.kill(sidecar.process.pid!, 'SIGTERM');
      // The result, then the refusal that closes the now idle session.
      const refusal = await raw.waitFor((f) => f.code === 0x45, 10_000);
      const codes = raw.frames.slice(before).map((f) => String.fromCharCode(f.code)).join('');
      expect(codes, `round ${i}`).toBe('TDCZE');
      expect(errorFields(refusal!).get('C')).toBe('57P01');
      expect((await sidecar.process.exited).code).toBe(0);
      raw.close();
    }
  });

  it('cuts off and cancels work still running at the drain deadline', async () => {
    const sidecar = await startSidecar({ upstream: upstreamUrl(), args: ['--drain-timeout', '500ms'] });
    const busy = client(sidecar);
    await busy.connect();
    const slow = rejection(busy.query("select pg_sleep(30), 'never'"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    process.kill(sidecar.process.pid!, 'SIGTERM');
    const error = await slow;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.message).toMatch(/dbward: the sidecar is shutting down|canceling statement due to user request|Connection terminated/);
    expect((await sidecar.process.exited).code).toBe(0);
    // The server stopped the statement too (it was cancelled, not left running for 30 s).
    let running = '1';
    for (let i = 0; i < 50 && running !== '0'; i++) {
      running = await db.sql("select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()");
      if (running !== '0') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(running).toBe('0');
  });
});
