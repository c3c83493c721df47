/**
 * The targets of the benchmark: PostgreSQL itself, and pgbouncer, the sidecar and the
 * policy-enforcing sidecar in front of it. A proxy that dies is restarted (and the incident recorded for the report) so that one crash
 * costs one run, not the whole benchmark; a run that fails because its proxy died is retried once.
 */
import type { PgCluster } from '../harness/index.js';
import { startSidecar, type Endpoint, type RunningSidecar } from './clients.js';
import type { Incident, Target } from './model.js';
import { startPgbouncer, type RunningPgbouncer } from './pgbouncer.js';

export interface StackOptions {
  database: string;
  user: string;
  /** Node flags for the sidecars, e.g. --cpu-prof. */
  sidecarNodeArgs: string[];
  /** Sidecar flags of the `sidecar+policy` target (--policy FILE --environment ... --identity ...). */
  policyArgs: string[];
  /** Extra flags of the `sidecar+policy+otel` target (--otlp-endpoint ...), after policyArgs. */
  otelArgs?: string[];
}

export type SidecarTarget = Exclude<Target, 'direct' | 'pgbouncer'>;

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export class BenchStack {
  pgbouncer: RunningPgbouncer | undefined;
  /** The running sidecar of each sidecar target started. */
  private readonly sidecars = new Map<SidecarTarget, RunningSidecar>();
  readonly incidents: Incident[] = [];
  /** Output of every sidecar process that exited and was restarted, for .cache/bench/sidecar.log. */
  private readonly sidecarLogs: string[] = [];
  /** Which target each sidecar process (by pid) served, for naming CPU profiles. */
  readonly sidecarPids = new Map<number, SidecarTarget>();

  constructor(
    readonly db: PgCluster,
    private readonly options: StackOptions,
  ) {}

  get upstreamUrl(): string {
    return `postgres://${this.db.host}:${this.db.port}/${this.options.database}?sslmode=disable`;
  }

  async startPgbouncer(): Promise<RunningPgbouncer> {
    this.pgbouncer = await startPgbouncer({
      upstreamHost: this.db.host,
      upstreamPort: this.db.port,
      database: this.options.database,
      user: this.options.user,
      poolSize: 20,
    });
    return this.pgbouncer;
  }

  async startSidecar(target: SidecarTarget): Promise<RunningSidecar> {
    const args =
      target === 'sidecar' || target === 'sidecar+js' || target === 'sidecar+epoll' || target === 'sidecar+loop'
        ? []
        : target === 'sidecar+node-io'
          ? ['--no-native-io']
          : target === 'sidecar+policy'
            ? this.options.policyArgs
            : [...this.options.policyArgs, ...(this.options.otelArgs ?? [])];
    const env =
      target === 'sidecar+js'
        ? { DBWARD_FAST_RELAY: 'off' }
        : target === 'sidecar+epoll'
          ? { DBWARD_IO_URING: 'off' }
          : target === 'sidecar+loop'
            ? { DBWARD_RELAY_THREAD: 'off' }
            : {};
    const started = await startSidecar(this.upstreamUrl, this.options.sidecarNodeArgs, args, target, env);
    this.sidecars.set(target, started);
    this.sidecarPids.set(started.pid, target);
    return started;
  }

  endpoint(target: Target): Endpoint {
    const base = { user: this.options.user, database: this.options.database };
    switch (target) {
      case 'direct':
        return { ...base, host: this.db.host, port: this.db.port };
      case 'pgbouncer':
        if (this.pgbouncer === undefined) throw new Error('pgbouncer is not running');
        return { ...base, host: this.pgbouncer.host, port: this.pgbouncer.port };
      default: {
        const sidecar = this.sidecars.get(target);
        if (sidecar === undefined) throw new Error(`${target} is not running`);
        return { ...base, host: sidecar.host, port: sidecar.port };
      }
    }
  }

  /** pid of the process whose CPU is the target's proxy cost (none for direct). */
  proxyPid(target: Target): number | undefined {
    return this.proxy(target)?.pid;
  }

  private proxy(target: Target): RunningPgbouncer | RunningSidecar | undefined {
    if (target === 'direct') return undefined;
    if (target === 'pgbouncer') return this.pgbouncer;
    return this.sidecars.get(target);
  }

  /** Restarts the target's proxy if it has exited; returns true if it did. */
  private async reviveIfDead(target: Target, during: string, waitMs: number): Promise<boolean> {
    const proxy = this.proxy(target);
    if (proxy === undefined) return false;
    if (proxy.process.exitInfo === undefined && waitMs > 0) await Promise.race([proxy.process.exited, sleep(waitMs)]);
    const exit = proxy.process.exitInfo;
    if (exit === undefined) return false;
    const how = exit.error !== undefined ? `error ${exit.error.message}` : `exit code ${String(exit.code)}, signal ${String(exit.signal)}`;
    this.incidents.push({ target, at: new Date().toISOString(), during, exit: how, outputTail: tail(proxy.process.output) });
    process.stdout.write(`[bench] ${target} died (${how}) during ${during}; restarting it\n${tail(proxy.process.output, 10)}\n`);
    if (target !== 'direct' && target !== 'pgbouncer') {
      this.sidecarLogs.push(`--- ${target} (exited) ---\n${proxy.process.output}`);
      await this.startSidecar(target);
    } else {
      await this.startPgbouncer();
    }
    return true;
  }

  /**
   * Runs one measurement against `target`: restarts its proxy first if it died in between, and
   * retries the measurement once if it fails because the proxy died during it.
   */
  async measure<T>(target: Target, during: string, fn: (endpoint: Endpoint, proxyPid: number | undefined) => Promise<T>): Promise<T> {
    await this.reviveIfDead(target, `the pause before ${during}`, 0);
    try {
      return await fn(this.endpoint(target), this.proxyPid(target));
    } catch (error) {
      if (!(await this.reviveIfDead(target, during, 2_000))) throw error;
      return await fn(this.endpoint(target), this.proxyPid(target));
    }
  }

  /** Everything the sidecar processes printed (info level: start, stop, warnings, errors). */
  sidecarOutput(): string {
    const running = [...this.sidecars].map(([name, s]) => `--- ${name} ---\n${s.process.output}`);
    return [...this.sidecarLogs, ...running].join('\n');
  }

  async stop(): Promise<void> {
    const errors: unknown[] = [];
    for (const stop of [...[...this.sidecars.values()].map((s) => () => s.stop()), () => this.pgbouncer?.stop()]) {
      try {
        await stop();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the proxies failed');
  }
}
