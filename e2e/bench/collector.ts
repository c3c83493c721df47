/**
 * The OTLP collector the `sidecar+policy+otel` target exports to (BENCH_COLLECTOR):
 * - `sink` (default): e2e/bench/otlp-sink.ts, a discarding receiver that stands for a collector on
 *   another machine, so that the ratio measures what exporting costs the sidecar and not what
 *   storing spans costs a collector sharing the benchmark's two cores;
 * - `jaeger`: the Jaeger built by `make tools-jaeger`, on the same cores (an end-to-end view of a
 *   small single-node install);
 * - BENCH_OTLP_ENDPOINT: a collector elsewhere, started by whoever runs the benchmark.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnProcess, type ManagedProcess } from '../harness/index.js';
import { HAVE_JAEGER, startJaeger } from '../harness/jaeger.js';

export type CollectorKind = 'sink' | 'jaeger' | 'external';

export interface Collector {
  kind: CollectorKind;
  /** OTLP/HTTP base URL for --otlp-endpoint. */
  endpoint: string;
  /** The collector's process (for its CPU), when the benchmark started it. */
  pid: number | undefined;
  /** Spans the sink received (sink only). */
  stats(): Promise<SinkStats | undefined>;
  stop(): Promise<void>;
}

export interface SinkStats {
  requests: number;
  spans: number;
  bytes: number;
  malformed: number;
}

const SINK = join(dirname(fileURLToPath(import.meta.url)), 'otlp-sink.ts');

export function collectorKind(): CollectorKind {
  if (process.env['BENCH_OTLP_ENDPOINT']) return 'external';
  const raw = process.env['BENCH_COLLECTOR'] || 'sink';
  if (raw !== 'sink' && raw !== 'jaeger') throw new Error(`BENCH_COLLECTOR must be sink or jaeger, got ${JSON.stringify(raw)}`);
  if (raw === 'jaeger' && !HAVE_JAEGER) throw new Error('BENCH_COLLECTOR=jaeger needs the Jaeger binary: run `make tools` first');
  return raw;
}

export async function startCollector(kind: CollectorKind): Promise<Collector> {
  if (kind === 'external') {
    const endpoint = process.env['BENCH_OTLP_ENDPOINT']!;
    return { kind, endpoint, pid: undefined, stats: () => Promise.resolve(undefined), stop: () => Promise.resolve() };
  }
  if (kind === 'jaeger') {
    const jaeger = await startJaeger();
    return { kind, endpoint: jaeger.otlpHttp, pid: jaeger.process.pid, stats: () => Promise.resolve(undefined), stop: () => jaeger.stop() };
  }
  const proc: ManagedProcess = spawnProcess(process.execPath, ['--import', 'tsx', SINK], { name: 'otlp-sink' });
  const match = await proc.waitFor(/listening (\d+)/, { timeoutMs: 30_000 });
  const base = `http://127.0.0.1:${match[1]}`;
  return {
    kind,
    endpoint: base,
    pid: proc.pid,
    stats: async () => (await (await fetch(`${base}/stats`)).json()) as SinkStats,
    stop: async () => {
      await proc.kill();
    },
  };
}
