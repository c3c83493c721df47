/** The benchmark's client programs (pgbench, psql) and the sidecar process. */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run, spawnProcess, type ManagedProcess } from '../harness/index.js';

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  database: string;
}

export type QueryMode = 'simple' | 'prepared';

export interface PgbenchOptions {
  clients: number;
  threads: number;
  seconds: number;
  mode: QueryMode;
}

export interface PgbenchResult {
  tps: number;
  transactions: number;
  failed: number;
  latencyMs: number;
  connectMs: number;
}

/** The pgbench arguments of a select-only run (also printed in the report). */
export function pgbenchArgs(endpoint: Endpoint, o: PgbenchOptions): string[] {
  return [
    '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user,
    '-S', '-n', '-M', o.mode, '-c', String(o.clients), '-j', String(o.threads), '-T', String(o.seconds),
    endpoint.database,
  ];
}

function num(text: string, re: RegExp): number {
  const m = re.exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

/** Parses pgbench's summary (PostgreSQL 14+ wording). */
export function parsePgbench(stdout: string): PgbenchResult {
  return {
    tps: num(stdout, /^tps = ([\d.]+) \(without initial connection time\)/m),
    transactions: num(stdout, /^number of transactions actually processed: (\d+)/m),
    failed: num(stdout, /^number of failed transactions: (\d+)/m),
    latencyMs: num(stdout, /^latency average = ([\d.]+) ms/m),
    connectMs: num(stdout, /^initial connection time = ([\d.]+) ms/m),
  };
}

export async function runPgbench(endpoint: Endpoint, o: PgbenchOptions): Promise<PgbenchResult> {
  const r = await run('pgbench', pgbenchArgs(endpoint, o), {
    timeoutMs: o.seconds * 1000 + 60_000,
    env: { PGCONNECT_TIMEOUT: '10', PGPASSWORD: undefined, PGSSLMODE: 'disable' },
  });
  const result = parsePgbench(r.stdout);
  if (r.code !== 0 || !Number.isFinite(result.tps)) {
    throw new Error(`pgbench against ${endpoint.host}:${endpoint.port} failed (exit ${String(r.code)}):\n${r.stderr.slice(-2000)}${r.stdout.slice(-1000)}`);
  }
  return result;
}

/** The psql arguments of the large read (also printed in the report). */
export function psqlReadArgs(endpoint: Endpoint, sql: string): string[] {
  return ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, '-d', endpoint.database, '-c', sql];
}

/**
 * Runs psql with its output sent to /dev/null and returns the wall-clock seconds from spawn to
 * exit (psql start-up and connection included; both are small next to a large result).
 */
export function psqlRead(endpoint: Endpoint, sql: string, timeoutMs = 300_000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const devNull = openSync('/dev/null', 'w');
    const t0 = process.hrtime.bigint();
    const child = spawn('psql', psqlReadArgs(endpoint, sql), {
      stdio: ['ignore', devNull, 'pipe'],
      env: { ...process.env, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
    });
    closeSync(devNull);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve(seconds);
      else reject(new Error(`psql against ${endpoint.host}:${endpoint.port} failed (exit ${String(code)}, signal ${String(signal)}): ${stderr.trim()}`));
    });
  });
}

/** The built sidecar entry point (`npx tsc -b sidecar`; `make bench` builds first). */
export const SIDECAR_MAIN = fileURLToPath(new URL('../../sidecar/dist/main.js', import.meta.url));

export interface RunningSidecar {
  host: string;
  port: number;
  pid: number;
  process: ManagedProcess;
  /** The command line, for the report. */
  argv: string[];
  stop(): Promise<void>;
}

/**
 * Starts the built sidecar (pass-through auth) on a free loopback port and waits for its
 * "listening" line. `nodeArgs` go before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR'];
 * `sidecarArgs` after the common ones, e.g. ['--policy', FILE, '--environment', 'production'].
 */
export async function startSidecar(
  upstream: string,
  nodeArgs: readonly string[] = [],
  sidecarArgs: readonly string[] = [],
  name = 'sidecar',
  env: NodeJS.ProcessEnv = {},
): Promise<RunningSidecar> {
  const argv = [...nodeArgs, SIDECAR_MAIN, '--upstream', upstream, '--listen', '127.0.0.1:0', '--log-level', 'info', ...sidecarArgs];
  const proc = spawnProcess(process.execPath, argv, { name, env });
  const match = await proc.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/, { timeoutMs: 15_000 });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('sidecar has no pid');
  return {
    host: '127.0.0.1',
    port: Number(match[1]),
    pid,
    process: proc,
    argv,
    // SIGTERM drains and exits 0, which also lets --cpu-prof write its profile.
    stop: async () => {
      await proc.kill('SIGTERM', 10_000);
    },
  };
}

/** Runs one statement with psql; returns the exit code and what psql printed. */
export async function psqlStatement(endpoint: Endpoint, sql: string): Promise<{ code: number | null; output: string }> {
  const r = await run('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, '-d', endpoint.database, '-c', sql], {
    timeoutMs: 30_000,
    env: { PGCONNECT_TIMEOUT: '10', PGPASSWORD: undefined, PGSSLMODE: 'disable' },
  });
  return { code: r.code, output: `${r.stdout}${r.stderr}`.trim() };
}

/**
 * Proves that a sidecar enforces its policy before it is measured: pgbench's statement passes, a
 * statement one of the policy's rules denies is refused with that rule's name.
 */
export async function verifyPolicyEnforced(endpoint: Endpoint, denied: { sql: string; rule: string }): Promise<void> {
  const allowed = await psqlStatement(endpoint, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1;');
  if (allowed.code !== 0) throw new Error(`sidecar+policy refused pgbench's statement: ${allowed.output}`);
  const refused = await psqlStatement(endpoint, denied.sql);
  if (refused.code === 0 || !refused.output.includes(denied.rule)) {
    throw new Error(`sidecar+policy did not refuse ${JSON.stringify(denied.sql)} by ${denied.rule} (exit ${String(refused.code)}): ${refused.output}`);
  }
}
