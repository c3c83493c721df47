import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { onExit } from './cleanup.js';

/** How a child process ended. `error` is set when it could not be started at all (e.g. ENOENT). */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface SpawnOptions {
  /** Added to (and overriding) the inherited environment; an `undefined` value removes a variable. */
  env?: NodeJS.ProcessEnv;
  /** Start from an empty environment instead of process.env. */
  inheritEnv?: boolean;
  cwd?: string;
  /** Run as this uid/gid (needs root). */
  uid?: number;
  gid?: number;
  /** Label used in error messages and echoed output; defaults to the command's basename. */
  name?: string;
  /** Copy the child's output to our stderr as it arrives. Default: DBWARD_E2E_VERBOSE=1. */
  echo?: boolean;
}

export interface RunOptions extends SpawnOptions {
  /** Written to stdin, which is then closed (stdin is always closed, even without input). */
  input?: string | Buffer;
  /** Kill the command (SIGTERM, then SIGKILL) and reject after this long. Default 60 s. */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface WaitForOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Which output to search; default 'any' (stdout and stderr interleaved as received). */
  stream?: 'stdout' | 'stderr' | 'any';
  /**
   * Only search the chosen text from this offset on, to wait for output that comes after a
   * point in time: pass `proc.outputLength` (or `proc.stdout.length` / `proc.stderr.length`
   * with `stream`). Default 0: output already received counts.
   */
  since?: number;
}

/** A failed command: non-zero exit, death by signal, timeout or failure to start. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly command: string,
    readonly result: Partial<RunResult>,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function describe(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

function buildEnv(options: SpawnOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = options.inheritEnv === false ? {} : { ...process.env };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * A child process whose output is collected, which can be waited on for a line, and which is
 * killed (with its whole process group) on kill() or when the test process exits.
 */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  readonly command: string;
  /** Resolves once the process has exited and its output streams are closed; never rejects. */
  readonly exited: Promise<ExitInfo>;
  private out = '';
  private err = '';
  private all = '';
  private exit: ExitInfo | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly unregister: () => void;

  constructor(cmd: string, args: readonly string[], options: SpawnOptions = {}) {
    this.command = describe(cmd, args);
    this.name = options.name ?? cmd.split('/').pop() ?? cmd;
    const echo = options.echo ?? process.env['DBWARD_E2E_VERBOSE'] === '1';
    this.child = spawn(cmd, args, {
      cwd: options.cwd,
      env: buildEnv(options),
      uid: options.uid,
      gid: options.gid,
      // Own process group, so kill() also reaches grandchildren (npx -> node, sh -> postgres).
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pid = this.child.pid;
    this.unregister = onExit(() => {
      if (pid !== undefined && this.exit === undefined) killGroup(pid, 'SIGKILL');
    });
    const collect = (stream: 'out' | 'err') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stream === 'out') this.out += text;
      else this.err += text;
      this.all += text;
      if (echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${this.name}] `));
      this.notify();
    };
    this.child.stdout?.on('data', collect('out'));
    this.child.stderr?.on('data', collect('err'));
    // A child that exits without reading its stdin must not crash us with EPIPE.
    this.child.stdin?.on('error', () => undefined);
    this.exited = new Promise<ExitInfo>((resolve) => {
      const finish = (info: ExitInfo): void => {
        if (this.exit !== undefined) return;
        this.exit = info;
        this.unregister();
        this.notify();
        resolve(info);
      };
      this.child.once('error', (error) => finish({ code: null, signal: null, error }));
      this.child.once('close', (code, signal) => finish({ code, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stdout(): string {
    return this.out;
  }
  get stderr(): string {
    return this.err;
  }
  /** stdout and stderr interleaved in arrival order. */
  get output(): string {
    return this.all;
  }
  /** Current length of `output`; pass it as `since` to wait only for output that comes later. */
  get outputLength(): number {
    return this.all.length;
  }
  /** Set once the process has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.exit;
  }

  write(data: string | Buffer): void {
    this.child.stdin?.write(data);
  }
  endInput(): void {
    this.child.stdin?.end();
  }

  /**
   * Waits until the output matches `pattern` (a RegExp, or a substring) and returns the match.
   * Rejects with the collected output if the process exits first or the timeout passes.
   */
  waitFor(pattern: RegExp | string, options: WaitForOptions = {}): Promise<RegExpExecArray> {
    const { timeoutMs = 30_000, stream = 'any', since = 0 } = options;
    const regex =
      typeof pattern === 'string'
        ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const text = (): string => {
      const source = stream === 'stdout' ? this.out : stream === 'stderr' ? this.err : this.all;
      return since > 0 ? source.slice(since) : source;
    };
    return new Promise<RegExpExecArray>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      const fail = (why: string): void => {
        cleanup();
        reject(
          new CommandError(`${this.name}: ${why} waiting for ${String(regex)}\n--- output ---\n${tail(this.all)}`, this.command, {
            stdout: this.out,
            stderr: this.err,
            code: this.exit?.code ?? null,
            signal: this.exit?.signal ?? null,
          }, this.exit?.error ? { cause: this.exit.error } : undefined),
        );
      };
      const check = (): void => {
        const match = regex.exec(text());
        if (match) {
          cleanup();
          resolve(match);
        } else if (this.exit !== undefined) {
          const how = this.exit.error
            ? `failed to start (${this.exit.error.message})`
            : `exited (code ${String(this.exit.code)}, signal ${String(this.exit.signal)})`;
          fail(how);
        }
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Sends `signal` (default SIGTERM) to the process group, then SIGKILL if it is still alive
   * after `graceMs` (default 5 s). Resolves with how it exited; safe to call repeatedly.
   */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<ExitInfo> {
    const pid = this.child.pid;
    if (this.exit !== undefined || pid === undefined) return this.exited;
    killGroup(pid, signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) killGroup(pid, 'SIGKILL');
    return this.exited;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Starts a long-running child process (a sidecar, psql, pgbench, ...). */
export function spawnProcess(cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): ManagedProcess {
  return new ManagedProcess(cmd, args, options);
}

/**
 * Runs a command to completion and returns its exit status and output. Resolves for any exit
 * status; rejects with CommandError only if the command cannot be started or times out.
 */
export async function run(cmd: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const { input, timeoutMs = 60_000, ...spawnOptions } = options;
  const started = Date.now();
  const proc = new ManagedProcess(cmd, args, spawnOptions);
  if (input !== undefined) proc.write(input);
  proc.endInput();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    proc.exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) await proc.kill('SIGTERM', 2_000);
  const info = await proc.exited;
  const result: RunResult = {
    code: info.code,
    signal: info.signal,
    stdout: proc.stdout,
    stderr: proc.stderr,
    durationMs: Date.now() - started,
  };
  if (info.error) {
    throw new CommandError(`${proc.command}: failed to start: ${info.error.message}`, proc.command, result, { cause: info.error });
  }
  if (timedOut) {
    throw new CommandError(`${proc.command}: timed out after ${timeoutMs} ms\n--- output ---\n${tail(proc.output)}`, proc.command, result);
  }
  return result;
}

/** Like run(), but also rejects with CommandError (carrying stdout/stderr) unless the exit code is 0. */
export async function runChecked(cmd: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    const status = result.signal ? `signal ${result.signal}` : `exit code ${String(result.code)}`;
    const detail = tail([result.stderr, result.stdout].filter((s) => s.trim() !== '').join('\n'));
    throw new CommandError(`${describe(cmd, args)} failed with ${status}${detail ? `:\n${detail}` : ''}`, describe(cmd, args), result);
  }
  return result;
}
