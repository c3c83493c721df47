/** The benchmark's result model: what run.ts measures, report.ts renders and proxy.json holds. */
import type { QueryMode } from './clients.js';
import type { Summary } from './stats.js';

/**
 * Every target the benchmark knows, in their order within a round (reversed in odd rounds):
 * `sidecar+policy` is a second sidecar that enforces e2e/bench/policy-20-rules.yaml;
 * `sidecar+policy+otel` a third, the same plus the audit trail exported over OTLP/HTTP to the
 * collector of BENCH_COLLECTOR (collector.ts). Every sidecar runs its plain-TCP sessions on the C
 * addon (the default, ADR 0022; `sidecar` without policy or audit in fast mode) except
 * `sidecar+node-io`: `sidecar` with `--no-native-io`, on Node sockets. `sidecar+js` is `sidecar`
 * with DBWARD_FAST_RELAY=off: the same I/O as `sidecar+policy`, every message through the session,
 * no policy: the baseline that isolates what the policy itself costs. `sidecar+epoll` is `sidecar`
 * with DBWARD_IO_URING=off: one read() or write() per socket operation instead of io_uring batches
 * (ADR 0023). `sidecar+loop` is `sidecar` with DBWARD_RELAY_THREAD=off: pass-through pairs relayed
 * on Node's loop (with io_uring batches) instead of the addon's relay thread (ADR 0024).
 */
export const TARGETS = ['direct', 'pgbouncer', 'sidecar', 'sidecar+loop', 'sidecar+epoll', 'sidecar+js', 'sidecar+node-io', 'sidecar+policy', 'sidecar+policy+otel'] as const;
export type Target = (typeof TARGETS)[number];

/**
 * What `make bench` measures without BENCH_TARGETS: the targets the checks compare, and direct.
 * The diagnostic variants (sidecar+loop, sidecar+epoll, sidecar+node-io) take `BENCH_TARGETS=all`
 * or a list: dropping them from the reference run buys rounds for the checks (ADR 0025).
 */
export const DEFAULT_TARGETS: readonly Target[] = ['direct', 'pgbouncer', 'sidecar', 'sidecar+js', 'sidecar+policy', 'sidecar+policy+otel'];

/**
 * How the targets were ordered within rounds: `alternating` is the fixed order in even rounds and
 * the reverse in odd ones (every compared pair is adjacent in every round, and each of the two goes
 * first in half of the rounds); `rotated`, of runs saved before it, the fixed order rotated by one
 * target per round.
 */
export type RoundOrder = 'alternating' | 'rotated';

/** The targets of runs saved before `sidecar+policy` existed (proxy.json without config.targets). */
export const LEGACY_TARGETS: readonly Target[] = ['direct', 'pgbouncer', 'sidecar'];

/** The ratios reported everywhere, each computed per round and then summarized. */
export const RATIOS = [
  { key: 'sidecar/direct', num: 'sidecar', den: 'direct' },
  { key: 'pgbouncer/direct', num: 'pgbouncer', den: 'direct' },
  { key: 'sidecar/pgbouncer', num: 'sidecar', den: 'pgbouncer' },
  { key: 'sidecar+loop/pgbouncer', num: 'sidecar+loop', den: 'pgbouncer' },
  { key: 'sidecar/sidecar+loop', num: 'sidecar', den: 'sidecar+loop' },
  { key: 'sidecar+epoll/pgbouncer', num: 'sidecar+epoll', den: 'pgbouncer' },
  { key: 'sidecar/sidecar+epoll', num: 'sidecar', den: 'sidecar+epoll' },
  { key: 'sidecar+node-io/pgbouncer', num: 'sidecar+node-io', den: 'pgbouncer' },
  { key: 'sidecar+policy/sidecar', num: 'sidecar+policy', den: 'sidecar' },
  { key: 'sidecar+policy/sidecar+js', num: 'sidecar+policy', den: 'sidecar+js' },
  { key: 'sidecar+js/pgbouncer', num: 'sidecar+js', den: 'pgbouncer' },
  { key: 'sidecar+policy/direct', num: 'sidecar+policy', den: 'direct' },
  { key: 'sidecar+policy+otel/sidecar+policy', num: 'sidecar+policy+otel', den: 'sidecar+policy' },
] as const satisfies ReadonlyArray<{ key: string; num: Target; den: Target }>;
export type RatioKey = (typeof RATIOS)[number]['key'];

/** True for the targets that are a proxy process (everything but direct). */
export function isProxy(target: Target): boolean {
  return target !== 'direct';
}

export type RatioSummary = Summary & { perRound: number[] };

export interface Config {
  rounds: number;
  /** Rounds of the large read. */
  readRounds: number;
  seconds: number;
  warmupSeconds: number;
  scale: number;
  clients: number;
  threads: number;
  modes: QueryMode[];
  readRows: number;
  only: 'pgbench' | 'read' | undefined;
  /** The targets measured (BENCH_TARGETS), in round order; absent in runs saved before it existed. */
  targets: Target[];
  /** How targets were ordered within rounds; absent in runs saved before it existed (rotated). */
  order?: RoundOrder | undefined;
  /** Where sidecar+policy+otel exports (absent when it is not a target, and in older runs). */
  collector?: 'sink' | 'jaeger' | 'external' | undefined;
  cpuProfileDir: string | undefined;
  writeDocs: boolean;
}

export interface Environment {
  date: string;
  host: string;
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  pgbench: string;
  psql: string;
  pgbouncer: string;
  gitHead: string;
  /** Files with uncommitted changes under sidecar/src when the sidecar was built. */
  sidecarDirtyFiles: number;
  loadBefore: [number, number, number];
  loadAfter: [number, number, number];
  durationSeconds: number;
}

export interface Commands {
  pgbench: string;
  psql: string;
  sidecar: string;
  /** The policy-enforcing sidecar's command line; absent in runs saved before it existed. */
  sidecarPolicy?: string;
  /** The policy file of `sidecar+policy`, relative to the repository. */
  policyFile?: string;
  pgbouncerConfig: string;
  postgresSettings: Record<string, string>;
}

/** Shared fields of one measured run. */
export interface RunBase {
  round: number;
  /** Position in the round (0-based). */
  slot: number;
  target: Target;
  startedAt: string;
  load1: number;
  /** CPU seconds of the proxy process (pgbouncer or sidecar) during the run; NaN for direct. */
  proxyCpuSeconds: number;
  /** Busy fraction of all host CPUs during the run (0..1), anything running on the machine. */
  hostBusy: number;
  hostSteal: number;
}

export interface PgbenchRun extends RunBase {
  tps: number;
  transactions: number;
  latencyMs: number;
  connectMs: number;
  /** proxyCpuSeconds per 1,000 transactions. */
  cpuPer1000: number;
  /** Involuntary context switches of the proxy's main thread per 1,000 transactions. */
  preemptionsPer1000: number;
  /** sidecar+policy+otel runs: CPU seconds of the collector the bench started, per 1,000 transactions. */
  collectorCpuPer1000?: number;
}

export interface PgbenchMode {
  mode: QueryMode;
  runs: PgbenchRun[];
  tps: Record<Target, Summary>;
  cpuPer1000: Record<Target, Summary>;
  preemptionsPer1000: Record<Target, Summary>;
  ratios: Record<RatioKey, RatioSummary>;
}

export type ReadClient = 'raw' | 'psql';

export interface ReadRun extends RunBase {
  client: ReadClient;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** MB/s of protocol bytes (raw client only; NaN for psql). */
  mbPerSecond: number;
  /** proxyCpuSeconds per 1,000,000 rows. */
  cpuPerMillionRows: number;
  /** Raw client only (NaN for psql): average bytes per socket read, and the client's own CPU seconds. */
  bytesPerRead: number;
  clientCpuSeconds: number;
}

export interface ReadClientResult {
  client: ReadClient;
  runs: ReadRun[];
  rowsPerSecond: Record<Target, Summary>;
  cpuPerMillionRows: Record<Target, Summary>;
  ratios: Record<RatioKey, RatioSummary>;
}

export interface ReadResult {
  rows: number;
  tableMiB: number;
  /** Average DataRow frame size in bytes (from the raw client). */
  bytesPerRow: number;
  sql: string;
  clients: ReadClientResult[];
}

/** A proxy process that exited during the benchmark (and was restarted). */
export interface Incident {
  target: Target;
  at: string;
  during: string;
  exit: string;
  outputTail: string;
}

export interface TargetCheck {
  name: string;
  measured: string;
  threshold: string;
  value: number;
  pass: boolean;
  /** Rounds whose own ratio meets the threshold, out of `rounds`: how far the verdict is from the noise. */
  roundsMeeting: number;
  rounds: number;
}

export interface BenchResult {
  version: 1;
  config: Config;
  environment: Environment;
  commands: Commands;
  pgbench: PgbenchMode[];
  read: ReadResult | undefined;
  /** The OTLP collector of sidecar+policy+otel and, for the sink, what it received. */
  collector?: { kind: 'sink' | 'jaeger' | 'external'; requests?: number; spans?: number; bytes?: number; malformed?: number } | undefined;
  targets: TargetCheck[];
  incidents: Incident[];
}
