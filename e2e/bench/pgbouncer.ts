/** A throw-away pgbouncer (session pooling, trust) in front of one database of a test cluster. */
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, onExit, run, serverOsUser, spawnProcess, type ManagedProcess } from '../harness/index.js';

export interface PgbouncerOptions {
  /** Upstream PostgreSQL. */
  upstreamHost: string;
  upstreamPort: number;
  /** Database exposed (same name upstream). */
  database: string;
  /** User allowed in (trust; listed in the auth file). */
  user: string;
  /** Pool size per database/user pair; also bounds client connections (x4). */
  poolSize?: number;
  binary?: string;
}

export interface RunningPgbouncer {
  host: string;
  port: number;
  pid: number;
  process: ManagedProcess;
  /** The configuration file's contents, for the report. */
  config: string;
  stop(): Promise<void>;
}

/** `pgbouncer --version`, first line (e.g. "PgBouncer 1.18.0"). */
export async function pgbouncerVersion(binary = 'pgbouncer'): Promise<string> {
  const r = await run(binary, ['--version'], { timeoutMs: 10_000 });
  return (r.stdout.split('\n')[0] ?? '').trim();
}

/**
 * Starts pgbouncer in the foreground on a free loopback port. As root it runs as the PostgreSQL
 * OS user (pgbouncer refuses root), with its config in a temp dir owned by that user.
 */
export async function startPgbouncer(options: PgbouncerOptions): Promise<RunningPgbouncer> {
  const binary = options.binary ?? 'pgbouncer';
  const poolSize = options.poolSize ?? 20;
  const osUser = serverOsUser();
  const dir = mkdtempSync(join(tmpdir(), 'dbward-pgbouncer-'));
  const unregisterDir = onExit(() => rmSync(dir, { recursive: true, force: true }));
  let proc: ManagedProcess | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = [
        '[databases]',
        `${options.database} = host=${options.upstreamHost} port=${options.upstreamPort} dbname=${options.database}`,
        '',
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        'pool_mode = session',
        `default_pool_size = ${poolSize}`,
        `max_client_conn = ${poolSize * 4}`,
        'ignore_startup_parameters = extra_float_digits',
        'log_connections = 0',
        'log_disconnections = 0',
        'stats_period = 600',
        '',
      ].join('\n');
      const iniPath = join(dir, 'pgbouncer.ini');
      writeFileSync(iniPath, config);
      writeFileSync(join(dir, 'userlist.txt'), `"${options.user}" ""\n`);
      if (osUser !== undefined) {
        for (const p of [dir, iniPath, join(dir, 'userlist.txt')]) chownSync(p, osUser.uid, osUser.gid);
      }
      proc = spawnProcess(binary, [iniPath], {
        name: 'pgbouncer',
        cwd: dir,
        ...(osUser !== undefined ? { uid: osUser.uid, gid: osUser.gid, env: { HOME: osUser.home, USER: osUser.name } } : {}),
      });
      try {
        await proc.waitFor(/process up|listening on 127\.0\.0\.1:\d+/, { timeoutMs: 15_000 });
      } catch (error) {
        await proc.kill('SIGKILL', 1_000);
        // A port taken between freePort() and bind: try another one.
        if (attempt < 3 && /Address already in use/i.test(proc.output)) continue;
        throw error;
      }
      const pid = proc.pid;
      if (pid === undefined) throw new Error('pgbouncer has no pid');
      const started = proc;
      return {
        host: '127.0.0.1',
        port,
        pid,
        process: started,
        config,
        stop: async () => {
          await started.kill('SIGINT', 5_000);
          rmSync(dir, { recursive: true, force: true });
          unregisterDir();
        },
      };
    }
  } catch (error) {
    await proc?.kill('SIGKILL', 1_000);
    rmSync(dir, { recursive: true, force: true });
    unregisterDir();
    throw error;
  }
}
