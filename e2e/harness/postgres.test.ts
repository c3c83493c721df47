import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortOpen, run, runChecked, startPostgres } from './index.js';
import type { ConnectOptions, PgAuthMethod, PgCluster } from './index.js';

const { Client } = pg;

/** Connects with node-postgres, runs one query, and returns its first row (or the error). */
async function query(cluster: PgCluster, sql: string, options: ConnectOptions = {}): Promise<Record<string, unknown>> {
  const client = new Client({ ...cluster.clientConfig(options), connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const result = await client.query<Record<string, unknown>>(sql);
    return result.rows[0] ?? {};
  } finally {
    await client.end();
  }
}

async function queryError(cluster: PgCluster, options: ConnectOptions): Promise<{ code?: string; message: string }> {
  try {
    await query(cluster, 'select 1', options);
  } catch (err) {
    const e = err as Error & { code?: string };
    return { code: e.code, message: e.message };
  }
  throw new Error('expected the connection to fail');
}

const HASH_PREFIX: Record<PgAuthMethod, string> = {
  trust: 'SCRAM-SHA-256$',
  password: 'SCRAM-SHA-256$',
  md5: 'md5',
  'scram-sha-256': 'SCRAM-SHA-256$',
};

const MATRIX: { auth: PgAuthMethod; tls: boolean }[] = [];
for (const auth of ['trust', 'md5', 'scram-sha-256'] as const) for (const tls of [false, true]) MATRIX.push({ auth, tls });

describe.each(MATRIX)('startPostgres auth=$auth tls=$tls', ({ auth, tls }) => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await startPostgres({ auth, tls, settings: { log_connections: true } });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('accepts app with the right password (node-postgres)', async () => {
    expect(cluster.host).toBe('127.0.0.1');
    const row = await query(cluster, 'select current_user as u, current_database() as d');
    expect(row).toEqual({ u: 'app', d: 'app' });
    if (auth !== 'trust') {
      // The server logs the method that authenticated the connection: the hba line is in force.
      await expect.poll(() => cluster.readLog()).toMatch(new RegExp(`identity="app" method=${auth}`));
    }
  });

  it.runIf(auth !== 'trust')('rejects a wrong password with SQLSTATE 28P01', async () => {
    const err = await queryError(cluster, { password: 'wrong' });
    expect(err.code).toBe('28P01');
    const psql = await run('psql', ['-X', '-w', '-c', 'select 1'], { env: cluster.env({ password: 'wrong' }), timeoutMs: 15_000 });
    expect(psql.code).not.toBe(0);
    expect(psql.stderr).toContain('password authentication failed for user "app"');
  });

  it.runIf(auth === 'trust')('lets anyone in regardless of the password', async () => {
    expect(await query(cluster, 'select 1 as one', { password: 'wrong' })).toEqual({ one: 1 });
  });

  it(`stores ${HASH_PREFIX[auth]} password hashes`, async () => {
    const hashes = await cluster.sql(`select rolname || ' ' || rolpassword from pg_authid where rolname in ('postgres', 'app') order by 1`);
    const lines = hashes.split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.split(' ')[1]?.startsWith(HASH_PREFIX[auth])).toBe(true);
    expect(await cluster.sql('show password_encryption')).toBe(auth === 'md5' ? 'md5' : 'scram-sha-256');
  });

  it('serves psql over TCP with the env() and url() helpers, and the superuser password', async () => {
    const viaEnv = await runChecked('psql', ['-X', '-A', '-t', '-w', '-c', 'select current_user'], { env: cluster.env(), timeoutMs: 15_000 });
    expect(viaEnv.stdout.trim()).toBe('app');
    const viaUrl = await runChecked('psql', ['-X', '-A', '-t', '-w', '-d', cluster.url({ user: 'postgres', database: 'postgres' }), '-c', 'select current_user'], {
      timeoutMs: 15_000,
    });
    expect(viaUrl.stdout.trim()).toBe('postgres');
  });

  if (tls) {
    it('speaks TLS, verified against the generated CA (node-postgres and psql verify-full)', async () => {
      const tlsFiles = cluster.tls;
      expect(tlsFiles).toBeDefined();
      expect(await readFile(tlsFiles?.caCert ?? '', 'utf8')).toContain('BEGIN CERTIFICATE');
      const row = await query(cluster, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', { sslmode: 'verify-full' });
      expect(row).toEqual({ ssl: true });

      const psql = await runChecked('psql', ['-X', '-A', '-t', '-w'], {
        env: cluster.env({ sslmode: 'verify-full' }),
        input: '\\conninfo\nselect ssl from pg_stat_ssl where pid = pg_backend_pid();\n',
        timeoutMs: 15_000,
      });
      expect(psql.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      expect(psql.stdout).toMatch(/^t$/m);

      const viaUrl = await runChecked('psql', ['-X', '-A', '-t', '-w', '-d', cluster.url({ sslmode: 'verify-full' }), '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'], {
        timeoutMs: 15_000,
      });
      expect(viaUrl.stdout.trim()).toBe('t');
    });
  } else {
    it('refuses TLS when it is off', async () => {
      const err = await queryError(cluster, { sslmode: 'require' });
      expect(err.message).toMatch(/does not support SSL/i);
      const plain = await query(cluster, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      expect(plain).toEqual({ ssl: false });
    });
  }

  it('stop() stops the server, closes the port and removes the temp dir; it is idempotent', async () => {
    const { port, baseDir } = cluster;
    expect(await isPortOpen(port)).toBe(true);
    await Promise.all([cluster.stop(), cluster.stop()]);
    await cluster.stop();
    expect(cluster.stopped).toBe(true);
    expect(await isPortOpen(port)).toBe(false);
    expect(existsSync(baseDir)).toBe(false);
  });
});

describe('startPostgres extras', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await startPostgres({ auth: 'scram-sha-256', tls: true, tlsOnly: true, certNames: ['sidecar'], name: 'extras' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('tlsOnly rejects plaintext TCP and accepts TLS', async () => {
    const err = await queryError(cluster, {});
    expect(err.code).toBe('28000');
    expect(err.message).toMatch(/no encryption/);
    expect(await query(cluster, 'select current_user as u', { sslmode: 'require' })).toEqual({ u: 'app' });
  });

  it('issues named leaves from the same CA', async () => {
    const leaf = cluster.tls?.leaves['sidecar'];
    expect(leaf).toBeDefined();
    const verify = await run('openssl', ['verify', '-CAfile', cluster.tls?.caCert ?? '', leaf?.cert ?? '']);
    expect(verify.stdout).toContain(': OK');
  });

  it('createUser / createDatabase, with a per-user hash', async () => {
    await cluster.createUser('bob', 'b0b pw', { passwordEncryption: 'md5', createdb: true });
    await cluster.createDatabase('shop', 'bob');
    expect(cluster.passwordOf('bob')).toBe('b0b pw');
    // scram-sha-256 in pg_hba accepts only SCRAM secrets: bob's md5 hash cannot log in over TCP.
    expect((await queryError(cluster, { user: 'bob', database: 'shop', sslmode: 'require' })).code).toBe('28P01');
    expect(await cluster.sql('select current_user, current_database()', { user: 'bob', database: 'shop' })).toBe('bob|shop');
    await cluster.sql("alter role bob password 'b0b pw'");
    expect(await query(cluster, 'select current_user as u', { user: 'bob', database: 'shop', sslmode: 'verify-full' })).toEqual({ u: 'bob' });
  });

  it('sql() reports failures with psql stderr', async () => {
    await expect(cluster.sql('select * from no_such_table')).rejects.toThrow(/relation "no_such_table" does not exist/);
  });
});

describe('startPostgres failures', () => {
  it('throws with the server log when the server cannot start, and cleans up', async () => {
    const err = await startPostgres({ name: 'broken', settings: { no_such_setting: 1 } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/did not become ready/);
    expect(err?.message).toMatch(/unrecognized configuration parameter "no_such_setting"/);
    const logPath = /--- (\S+postgres\.log)/.exec(err?.message ?? '')?.[1];
    expect(logPath).toBeDefined();
    expect(existsSync(logPath ?? '/')).toBe(false);
  });
});
