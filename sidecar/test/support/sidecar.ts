import { fileURLToPath } from 'node:url';
import { spawnProcess, type ManagedProcess } from '../../../e2e/harness/index.js';

/** The built sidecar entry point (tests run after `tsc -b`; `make test` builds first). */
export const SIDECAR_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface SidecarOptions {
  /** The --upstream URL. */
  upstream: string;
  /** Further flags, e.g. ['--tls-cert', c, '--tls-key', k]. */
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Name shown in verbose output. */
  name?: string;
  /** A program that runs the sidecar's command line, e.g. [denyIoUring] (a seccomp wrapper). */
  launcher?: string[];
}

export interface RunningSidecar {
  host: string;
  port: number;
  process: ManagedProcess;
  /** Structured log lines printed so far. */
  logs(): Array<Record<string, unknown>>;
  /** SIGTERM (graceful drain), then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `dbward-sidecar` on a free loopback port and waits for its "listening" log line. */
export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  const command = [process.execPath, SIDECAR_MAIN, '--upstream', options.upstream, '--listen', '127.0.0.1:0', ...(options.args ?? [])];
  const [program, ...args] = [...(options.launcher ?? []), ...command] as [string, ...string[]];
  const proc = spawnProcess(program, args, {
    env: { DBWARD_LOG_LEVEL: 'info', ...options.env },
    name: options.name ?? 'sidecar',
  });
  const match = await proc.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/, { timeoutMs: 15_000 });
  const port = Number(match[1]);
  return {
    host: '127.0.0.1',
    port,
    process: proc,
    logs: () =>
      proc.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async (graceMs = 5_000) => {
      await proc.kill('SIGTERM', graceMs);
    },
  };
}
