import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, spawnProcess, type ManagedProcess } from './index.js';

/** The Jaeger v2 binary built by `make tools-jaeger` (e2e/tools/README.md). */
export const JAEGER_BIN = fileURLToPath(new URL('../tools/bin/jaeger', import.meta.url));
export const JAEGER_CONFIG = fileURLToPath(new URL('../tools/jaeger/config.yaml', import.meta.url));
export const HAVE_JAEGER = existsSync(JAEGER_BIN);

/** A span as Jaeger's query API (/api/traces) returns it, tags flattened. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  parent: { traceID: string; spanID: string } | undefined;
  references: Array<{ refType: string; traceID: string; spanID: string }>;
  tags: Record<string, unknown>;
  kind: unknown;
}

export interface RunningJaeger {
  otlpGrpc: string;
  otlpHttp: string;
  query: string;
  process: ManagedProcess;
  /** Every span of the service's recent traces. */
  spans(service: string): Promise<JaegerSpan[]>;
  /** The spans of one trace (hex id), [] when unknown. */
  trace(traceId: string): Promise<JaegerSpan[]>;
  stop(): Promise<void>;
}

interface RawSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: Array<{ refType: string; traceID: string; spanID: string }>;
  tags?: Array<{ key: string; value: unknown }>;
}

function flatten(raw: RawSpan): JaegerSpan {
  const tags: Record<string, unknown> = {};
  for (const tag of raw.tags ?? []) tags[tag.key] = tag.value;
  const references = raw.references ?? [];
  const child = references.find((r) => r.refType === 'CHILD_OF');
  return {
    traceID: raw.traceID,
    spanID: raw.spanID,
    operationName: raw.operationName,
    parent: child === undefined ? undefined : { traceID: child.traceID, spanID: child.spanID },
    references,
    tags,
    kind: tags['span.kind'],
  };
}

/** Starts Jaeger on free loopback ports and waits for its health endpoint and query API. */
export async function startJaeger(): Promise<RunningJaeger> {
  const [grpc, http, query, queryGrpc, health, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const proc = spawnProcess(JAEGER_BIN, ['--config', JAEGER_CONFIG], {
    env: {
      JAEGER_OTLP_GRPC_PORT: String(grpc),
      JAEGER_OTLP_HTTP_PORT: String(http),
      JAEGER_QUERY_HTTP_PORT: String(query),
      JAEGER_QUERY_GRPC_PORT: String(queryGrpc),
      JAEGER_HEALTH_PORT: String(health),
      JAEGER_METRICS_PORT: String(metrics),
      JAEGER_LOG_LEVEL: 'warn',
    },
    name: 'jaeger',
  });
  const base = `http://127.0.0.1:${query}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const [status, services] = await Promise.all([fetch(`http://127.0.0.1:${health}/status`), fetch(`${base}/api/services`)]);
      if (status.ok && services.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await proc.kill('SIGKILL', 1000);
      throw new Error(`jaeger did not become ready within 30 s:\n${proc.stdout}\n${proc.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const get = async (path: string): Promise<RawSpan[]> => {
    const res = await fetch(`${base}${path}`);
    if (res.status === 404) return [];
    if (!res.ok) throw new Error(`jaeger ${path}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { data: Array<{ spans: RawSpan[] }> | null };
    return (body.data ?? []).flatMap((t) => t.spans);
  };
  return {
    otlpGrpc: `http://127.0.0.1:${grpc}`,
    otlpHttp: `http://127.0.0.1:${http}`,
    query: base,
    process: proc,
    spans: async (service) => (await get(`/api/traces?service=${encodeURIComponent(service)}&limit=1000&lookback=1h`)).map(flatten),
    trace: async (traceId) => (await get(`/api/traces/${traceId}`)).map(flatten),
    stop: async () => {
      await proc.kill('SIGTERM', 5_000);
    },
  };
}
