import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates } from './certs.js';
import type { KeyPair } from './certs.js';
import { onExit } from './cleanup.js';
import { serverOsUser } from './osuser.js';
import type { OsUser } from './osuser.js';
import { freePort } from './ports.js';
import { run, runChecked } from './process.js';
import type { RunResult } from './process.js';

/** The pg_hba method of the TCP lines. `password` is cleartext. */
export type PgAuthMethod = 'trust' | 'password' | 'md5' | 'scram-sha-256';
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export type PasswordEncryption = 'md5' | 'scram-sha-256';

export interface StartPostgresOptions {
  /** Method of the `host` lines for 127.0.0.1; default 'scram-sha-256'. Unix-socket access is always `trust`. */
  auth?: PgAuthMethod;
  /** Turn TLS on with a generated CA and server certificate, and add `hostssl` lines. */
  tls?: boolean;
  /** With `tls`, accept TCP connections over TLS only (no plain `host` line). */
  tlsOnly?: boolean;
  /** Extra leaf certificates to issue from the cluster's CA (e.g. `['sidecar']`); implies nothing without `tls`. */
  certNames?: string[];
  /** postgresql.conf settings, applied after (and overriding) the harness defaults. */
  settings?: Record<string, string | number | boolean>;
  /** Extra pg_hba.conf lines, inserted before the harness's `host`/`hostssl` lines (first match wins). */
  hba?: string[];
  /** Label for the temp dir and error messages. */
  name?: string;
  /** How long to wait for the server to accept connections; default 30 s. */
  startTimeoutMs?: number;
}

export interface ConnectOptions {
  /** Default `app`. */
  user?: string;
  /** Default: the password the harness set for `user`; `null` leaves it out. */
  password?: string | null;
  /** Default `app`. */
  database?: string;
  sslmode?: SslMode;
}

export interface EnvOptions extends ConnectOptions {
  /** Point PGHOST at the unix socket directory instead of 127.0.0.1. */
  socket?: boolean;
}

/** Structurally a node-postgres `ClientConfig`. */
export interface PgClientConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  ssl?: false | { ca?: string; rejectUnauthorized?: boolean; checkServerIdentity?: () => undefined };
}

export interface PgTlsFiles {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** The leaves asked for with `certNames`. */
  leaves: Record<string, KeyPair>;
}

export interface CreateUserOptions {
  superuser?: boolean;
  createdb?: boolean;
  /** Default true. */
  login?: boolean;
  /** Hash the password this way regardless of the cluster's `password_encryption`. */
  passwordEncryption?: PasswordEncryption;
}

export interface SqlOptions {
  database?: string;
  /** Role to connect as over the unix socket (trust); default the superuser `postgres`. */
  user?: string;
}

export interface PgCluster {
  readonly name: string;
  /** Always 127.0.0.1. */
  readonly host: string;
  readonly port: number;
  readonly socketDir: string;
  readonly dataDir: string;
  /** Temp dir holding data, socket, certificates and log; removed by stop(). */
  readonly baseDir: string;
  readonly logFile: string;
  readonly auth: PgAuthMethod;
  readonly passwordEncryption: PasswordEncryption;
  /** Certificate paths when started with `tls: true`. */
  readonly tls: PgTlsFiles | undefined;
  readonly superuser: { readonly user: string; readonly password: string };
  readonly app: { readonly user: string; readonly password: string; readonly database: string };
  readonly stopped: boolean;
  /** `postgres://user:password@127.0.0.1:port/db[?sslmode=..&sslrootcert=..]` */
  url(options?: ConnectOptions): string;
  /** PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE/PGSSLMODE[/PGSSLROOTCERT] for psql, pgbench, libpq. */
  env(options?: EnvOptions): Record<string, string>;
  /** A node-postgres config over TCP (sslmode allow/prefer map to no TLS: pg cannot negotiate). */
  clientConfig(options?: ConnectOptions): PgClientConfig;
  /** Runs SQL (and psql meta-commands) with psql over the unix socket; returns unaligned tuples-only stdout without the final newline. */
  sql(text: string, options?: SqlOptions): Promise<string>;
  /** The password the harness set for a role, if any. */
  passwordOf(user: string): string | undefined;
  createUser(name: string, password: string | null, options?: CreateUserOptions): Promise<void>;
  /** Owner defaults to the superuser. */
  createDatabase(name: string, owner?: string): Promise<void>;
  /** Re-reads postgresql.conf / pg_hba.conf (pg_ctl reload). */
  reload(): Promise<void>;
  readLog(): Promise<string>;
  /** Stops the server (fast, then immediate, then SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const SUPERUSER = { user: 'postgres', password: 'postgres_pw' } as const;
export const APP_USER = { user: 'app', password: 'app_pw', database: 'app' } as const;

const TEMP_PREFIX = 'dbward-pg-';
const OWNER_FILE = 'owner.json';
const KEEP = process.env['DBWARD_E2E_KEEP'] === '1';

// ---------------------------------------------------------------------------------------------
// Binaries and the account that runs them

let binDir: string | undefined;

/** PostgreSQL server binaries: $DBWARD_PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
export function pgBinDir(): string {
  if (binDir !== undefined) return binDir;
  const candidates: string[] = [];
  const fromEnv = process.env['DBWARD_PG_BINDIR'];
  if (fromEnv) candidates.push(fromEnv);
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // Not a Debian layout.
  }
  const found = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (found === undefined) {
    throw new Error(`PostgreSQL server binaries not found (looked in: ${candidates.join(', ') || 'nothing'}); set DBWARD_PG_BINDIR`);
  }
  binDir = found;
  return found;
}

/** The environment minus inherited PG* variables, which would otherwise steer psql/pg_ctl. */
function scrubbedPgEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('PG')) env[key] = undefined;
  return { ...env, ...extra };
}

function asUser(user: OsUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

// ---------------------------------------------------------------------------------------------
// Quoting

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function quoteIdent(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

function confValue(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Stale clusters of crashed runs

interface OwnerRecord {
  pid: number;
  dirs: string[];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

let reaped = false;

/**
 * Stops and removes clusters left behind by test processes that died without cleaning up
 * (SIGKILL, OOM). Only touches temp dirs whose recorded owner process no longer exists.
 */
export async function reapStaleClusters(): Promise<number> {
  let count = 0;
  const root = tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(root).filter((e) => e.startsWith(TEMP_PREFIX));
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const baseDir = join(root, entry);
    let owner: OwnerRecord;
    try {
      owner = JSON.parse(readFileSync(join(baseDir, OWNER_FILE), 'utf8')) as OwnerRecord;
    } catch {
      continue; // Still being created, or not ours.
    }
    if (!Number.isInteger(owner.pid) || processAlive(owner.pid)) continue;
    const dataDir = join(baseDir, 'data');
    const pid = postmasterPid(dataDir);
    if (pid !== undefined && processAlive(pid)) {
      await run(join(pgBinDir(), 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10'], {
        ...asUser(serverOsUser()),
        env: scrubbedPgEnv(),
        timeoutMs: 15_000,
      }).catch(() => undefined);
      if (processAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
    }
    for (const dir of [baseDir, ...(owner.dirs ?? [])]) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    count += 1;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// The cluster

class PostgresCluster implements PgCluster {
  readonly host = '127.0.0.1';
  port = 0;
  tls: PgTlsFiles | undefined;
  readonly superuser = SUPERUSER;
  readonly app = APP_USER;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly passwords = new Map<string, string>();
  private running = false;
  private stopping: Promise<void> | undefined;
  private readonly unregisterExit: () => void;
  private caPem: string | undefined;

  constructor(
    readonly name: string,
    readonly auth: PgAuthMethod,
    readonly passwordEncryption: PasswordEncryption,
    readonly baseDir: string,
    readonly socketDir: string,
    private readonly extraDirs: string[],
    private readonly bin: string,
    private readonly osUser: OsUser | undefined,
  ) {
    this.dataDir = join(baseDir, 'data');
    this.logFile = join(baseDir, 'postgres.log');
    this.unregisterExit = onExit(() => this.stopSync());
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  // --- connection details -------------------------------------------------------------------

  passwordOf(user: string): string | undefined {
    return this.passwords.get(user);
  }

  private resolve(options: ConnectOptions): { user: string; password: string | undefined; database: string } {
    const user = options.user ?? APP_USER.user;
    const password = options.password === null ? undefined : (options.password ?? this.passwords.get(user));
    return { user, password, database: options.database ?? APP_USER.database };
  }

  url(options: ConnectOptions = {}): string {
    const { user, password, database } = this.resolve(options);
    const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const params = new URLSearchParams();
    if (options.sslmode) params.set('sslmode', options.sslmode);
    if (this.tls && (options.sslmode === 'verify-ca' || options.sslmode === 'verify-full')) params.set('sslrootcert', this.tls.caCert);
    const query = params.size > 0 ? `?${params.toString()}` : '';
    return `postgres://${auth}@${this.host}:${this.port}/${encodeURIComponent(database)}${query}`;
  }

  env(options: EnvOptions = {}): Record<string, string> {
    const { user, password, database } = this.resolve(options);
    const env: Record<string, string> = {
      PGHOST: options.socket ? this.socketDir : this.host,
      PGPORT: String(this.port),
      PGUSER: user,
      PGDATABASE: database,
      PGSSLMODE: options.sslmode ?? 'prefer',
      PGCONNECT_TIMEOUT: '10',
    };
    if (password !== undefined) env['PGPASSWORD'] = password;
    if (this.tls && (options.sslmode === 'verify-ca' || options.sslmode === 'verify-full')) env['PGSSLROOTCERT'] = this.tls.caCert;
    return env;
  }

  clientConfig(options: ConnectOptions = {}): PgClientConfig {
    const { user, password, database } = this.resolve(options);
    const config: PgClientConfig = { host: this.host, port: this.port, user, database };
    if (password !== undefined) config.password = password;
    switch (options.sslmode) {
      case undefined:
      case 'disable':
      case 'allow':
      case 'prefer':
        break;
      case 'require':
        config.ssl = { rejectUnauthorized: false };
        break;
      case 'verify-ca':
        config.ssl = { ca: this.caCertPem(), checkServerIdentity: () => undefined };
        break;
      case 'verify-full':
        config.ssl = { ca: this.caCertPem() };
        break;
    }
    return config;
  }

  private caCertPem(): string {
    if (!this.tls) throw new Error(`cluster ${this.name} was started without tls: no CA certificate`);
    this.caPem ??= readFileSync(this.tls.caCert, 'utf8');
    return this.caPem;
  }

  // --- administration -----------------------------------------------------------------------

  async sql(text: string, options: SqlOptions = {}): Promise<string> {
    if (!this.running) throw new Error(`cluster ${this.name} is not running`);
    const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', this.socketDir, '-p', String(this.port)];
    args.push('-U', options.user ?? SUPERUSER.user, '-d', options.database ?? 'postgres', '-f', '-');
    const result = await runChecked(join(this.bin, 'psql'), args, {
      input: text,
      env: scrubbedPgEnv({ PGAPPNAME: 'dbward-harness' }),
      timeoutMs: 60_000,
    });
    return result.stdout.replace(/\n$/, '');
  }

  async createUser(name: string, password: string | null, options: CreateUserOptions = {}): Promise<void> {
    const attrs = [options.login === false ? 'NOLOGIN' : 'LOGIN'];
    if (options.superuser) attrs.push('SUPERUSER');
    if (options.createdb) attrs.push('CREATEDB');
    if (password !== null) attrs.push(`PASSWORD ${quoteLiteral(password)}`);
    const encryption = options.passwordEncryption ?? this.passwordEncryption;
    await this.sql(`SET password_encryption = ${quoteLiteral(encryption)};\nCREATE ROLE ${quoteIdent(name)} ${attrs.join(' ')};`);
    if (password !== null) this.passwords.set(name, password);
  }

  async createDatabase(name: string, owner: string = SUPERUSER.user): Promise<void> {
    await this.sql(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)};`);
  }

  async reload(): Promise<void> {
    await this.pgCtl(['reload', '-D', this.dataDir, '-s'], 15_000, true);
  }

  async readLog(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  private pgCtl(args: string[], timeoutMs: number, checked: boolean): Promise<RunResult> {
    const options = { ...asUser(this.osUser), cwd: this.baseDir, env: scrubbedPgEnv(), timeoutMs };
    return checked ? runChecked(join(this.bin, 'pg_ctl'), args, options) : run(join(this.bin, 'pg_ctl'), args, options);
  }

  private async logTail(lines = 30): Promise<string> {
    return `--- ${this.logFile} (last ${lines} lines) ---\n${tail(await this.readLog(), lines)}`;
  }

  // --- lifecycle ----------------------------------------------------------------------------

  /** initdb, certificates, postgresql.conf, pg_hba.conf. */
  async init(options: StartPostgresOptions): Promise<void> {
    const initdb = await run(
      join(this.bin, 'initdb'),
      ['-D', this.dataDir, '-U', SUPERUSER.user, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      { ...asUser(this.osUser), cwd: this.baseDir, env: scrubbedPgEnv(), timeoutMs: 60_000 },
    );
    if (initdb.code !== 0) {
      throw new Error(`initdb failed for cluster ${this.name} (exit ${String(initdb.code)}):\n${tail(initdb.stdout + initdb.stderr, 60)}`);
    }

    if (options.tls) {
      const certs = await makeCertificates(join(this.baseDir, 'certs'), options.certNames ?? [], {
        ...(this.osUser ? { serverKeyOwner: { uid: this.osUser.uid, gid: this.osUser.gid } } : {}),
      });
      this.tls = {
        dir: certs.dir,
        caCert: certs.caCert,
        caKey: certs.caKey,
        serverCert: certs.server.cert,
        serverKey: certs.server.key,
        leaves: certs.leaves,
      };
    }

    const settings: Record<string, string | number | boolean> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: this.socketDir,
      max_connections: 200,
      shared_buffers: '128MB',
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      password_encryption: this.passwordEncryption,
      timezone: 'UTC',
      log_timezone: 'UTC',
      log_line_prefix: '%m [%p] %q%u@%d ',
      ...(this.tls
        ? { ssl: true, ssl_cert_file: this.tls.serverCert, ssl_key_file: this.tls.serverKey, ssl_ca_file: this.tls.caCert }
        : {}),
      ...options.settings,
    };
    for (const key of Object.keys(settings)) {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) throw new Error(`startPostgres: bad setting name ${JSON.stringify(key)}`);
    }
    const conf = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
    await appendFile(join(this.dataDir, 'postgresql.conf'), `\n# --- dbward e2e harness ---\n${conf.join('\n')}\n`);

    const method = this.auth;
    const hba = [
      '# TYPE  DATABASE USER ADDRESS       METHOD',
      'local   all      all                trust',
      ...(options.hba ?? []),
      ...(this.tls ? [`hostssl all      all  127.0.0.1/32  ${method}`] : []),
      ...(options.tlsOnly ? [] : [`host    all      all  127.0.0.1/32  ${method}`]),
      '',
    ];
    await writeFile(join(this.dataDir, 'pg_hba.conf'), hba.join('\n'));
  }

  /** Starts the postmaster on a fresh port, retrying on a port collision. */
  async start(timeoutMs: number): Promise<void> {
    const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logBefore = (await this.readLog()).length;
      const result = await this.pgCtl(
        ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', seconds, '-s', '-o', `-p ${port}`],
        timeoutMs + 10_000,
        false,
      ).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      if (!(result instanceof Error) && result.code === 0) {
        this.port = port;
        this.running = true;
        return;
      }
      // pg_ctl gives up waiting but leaves a slow server running: make sure it is gone.
      await this.pgCtl(['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '10'], 15_000, false).catch(() => undefined);
      const log = (await this.readLog()).slice(logBefore);
      if (attempt < 5 && /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(log)) continue;
      const why =
        result instanceof Error
          ? result.message
          : `pg_ctl exit ${String(result.code)}: ${tail(result.stderr + result.stdout, 5) || 'no output'}`;
      throw new Error(`PostgreSQL cluster ${this.name} did not become ready within ${timeoutMs} ms (${why})\n${await this.logTail()}`, {
        cause: result instanceof Error ? result : undefined,
      });
    }
  }

  async bootstrap(): Promise<void> {
    await this.sql(
      [
        `ALTER ROLE ${quoteIdent(SUPERUSER.user)} PASSWORD ${quoteLiteral(SUPERUSER.password)};`,
        `CREATE ROLE ${quoteIdent(APP_USER.user)} LOGIN PASSWORD ${quoteLiteral(APP_USER.password)};`,
        `CREATE DATABASE ${quoteIdent(APP_USER.database)} OWNER ${quoteIdent(APP_USER.user)};`,
      ].join('\n'),
    );
    this.passwords.set(SUPERUSER.user, SUPERUSER.password);
    this.passwords.set(APP_USER.user, APP_USER.password);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.running = false;
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      const pid = postmasterPid(this.dataDir);
      const fast = await this.pgCtl(['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', '15'], 20_000, false).catch(() => undefined);
      if (fast?.code !== 0 && pid !== undefined && processAlive(pid)) {
        await this.pgCtl(['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '10'], 15_000, false).catch(() => undefined);
        if (processAlive(pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      }
    }
    this.unregisterExit();
    if (!KEEP) await this.removeDirs();
  }

  private async removeDirs(): Promise<void> {
    for (const dir of [this.baseDir, ...this.extraDirs]) await rm(dir, { recursive: true, force: true });
  }

  /** Exit-time cleanup: only synchronous calls work here. */
  private stopSync(): void {
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      spawnSync(join(this.bin, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '10'], {
        ...asUser(this.osUser),
        cwd: this.baseDir,
        env: { ...process.env, ...scrubbedPgEnv() },
        stdio: 'ignore',
        timeout: 15_000,
      });
      const pid = postmasterPid(this.dataDir);
      if (pid !== undefined && processAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
    }
    if (!KEEP) for (const dir of [this.baseDir, ...this.extraDirs]) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts a throw-away PostgreSQL cluster: initdb into a fresh temp dir, listen on 127.0.0.1 at a
 * free port (plus a unix socket in the temp dir), superuser `postgres`/`postgres_pw`, and `app`/
 * `app_pw` owning database `app`. As root, the server runs as the `postgres` OS user. Call
 * stop() when done; a cluster still running at process exit is stopped then.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgCluster> {
  const auth = options.auth ?? 'scram-sha-256';
  if (options.tlsOnly && !options.tls) throw new Error('startPostgres: tlsOnly needs tls: true');
  const bin = pgBinDir();
  const osUser = serverOsUser();
  if (!reaped) {
    reaped = true;
    await reapStaleClusters().catch(() => 0);
  }

  const label = (options.name ?? `${auth}${options.tls ? '-tls' : ''}`).replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 24);
  const baseDir = await mkdtemp(join(tmpdir(), `${TEMP_PREFIX}${label}-`));
  const extraDirs: string[] = [];
  let socketDir = join(baseDir, 'sock');
  // A unix socket path (dir + "/.s.PGSQL.NNNNN") must fit in 107 bytes.
  if (socketDir.length > 80) {
    socketDir = await mkdtemp('/tmp/dbward-pgs-');
    extraDirs.push(socketDir);
  } else {
    await mkdir(socketDir);
  }
  const owner: OwnerRecord = { pid: process.pid, dirs: extraDirs };
  await writeFile(join(baseDir, OWNER_FILE), JSON.stringify(owner));
  for (const dir of [baseDir, socketDir]) {
    await chmod(dir, 0o755);
    if (osUser) await chown(dir, osUser.uid, osUser.gid);
  }

  const passwordEncryption: PasswordEncryption = auth === 'md5' ? 'md5' : 'scram-sha-256';
  const cluster = new PostgresCluster(label, auth, passwordEncryption, baseDir, socketDir, extraDirs, bin, osUser);
  try {
    await cluster.init(options);
    await cluster.start(options.startTimeoutMs ?? 30_000);
    await cluster.bootstrap();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return cluster;
}
