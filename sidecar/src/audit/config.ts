import { ConfigError } from '../config/errors.js';

/**
 * Where and how the audit trail is exported: `--otlp-endpoint` and the standard OpenTelemetry
 * environment variables (the flag wins over OTEL_EXPORTER_OTLP_ENDPOINT). Pure.
 */
export type OtlpProtocol = 'grpc' | 'http/protobuf';

export interface ExportConfig {
  protocol: OtlpProtocol;
  /** http(s)://host:port as given, without a trailing slash. */
  endpoint: string;
  /** Full URL of the traces endpoint (HTTP) or host:port (gRPC). */
  tracesTarget: string;
  /** Full URL of the metrics endpoint (HTTP) or host:port (gRPC). */
  metricsTarget: string;
  secure: boolean;
  headers: Record<string, string>;
  /** OTEL_METRICS_EXPORTER: `otlp` (default) or `none`. */
  metrics: boolean;
  /** Milliseconds between metric exports (OTEL_METRIC_EXPORT_INTERVAL, default 60000). */
  metricIntervalMs: number;
  /** Spans per export request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512). */
  maxBatchSpans: number;
  /** Longest wait before a partial batch is sent, ms (OTEL_BSP_SCHEDULE_DELAY, default 500; the SDK's is 5000). */
  flushIntervalMs: number;
  /** Longest one export may take, ms (OTEL_BSP_EXPORT_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, default 10000). */
  exportTimeoutMs: number;
}

export interface AuditConfig {
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES plus service.name. */
  resource: Record<string, string>;
  /** Absent: no OTLP export (spans are not built at all). */
  export: ExportConfig | undefined;
}

/** Reads the audit export settings; throws ConfigError with the variable's name on bad input. */
export function resolveAuditConfig(flagEndpoint: string | undefined, env: NodeJS.ProcessEnv): AuditConfig {
  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME) ?? 'dbward-sidecar';
  const resource = { ...parseKeyValues(env.OTEL_RESOURCE_ATTRIBUTES, 'OTEL_RESOURCE_ATTRIBUTES'), 'service.name': serviceName };
  const tracesEndpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const raw = flagEndpoint ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) ?? tracesEndpoint;
  if (raw === undefined) return { serviceName, resource, export: undefined };
  const source = flagEndpoint !== undefined ? '--otlp-endpoint' : nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) !== undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new ConfigError(source, `must be an http:// or https:// URL, got "${raw}"`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(source, `must be an http:// or https:// URL, got "${raw}"`);
  const protocolRaw = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL) ?? 'http/protobuf';
  if (protocolRaw === 'http/json') {
    throw new ConfigError('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json is not supported for the audit trail; use grpc or http/protobuf (see docs/audit.md)');
  }
  if (protocolRaw !== 'grpc' && protocolRaw !== 'http/protobuf') {
    throw new ConfigError('OTEL_EXPORTER_OTLP_PROTOCOL', `must be grpc or http/protobuf, got "${protocolRaw}"`);
  }
  const protocol: OtlpProtocol = protocolRaw;
  const endpoint = raw.replace(/\/+$/, '');
  const hostPort = url.host;
  // The generic endpoint gets /v1/traces appended (OTLP spec); a traces-specific one is used as is,
  // unless the flag gave it (the flag names the collector, like OTEL_EXPORTER_OTLP_ENDPOINT).
  const tracesTarget =
    protocol === 'grpc' ? hostPort : source === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' ? endpoint : `${endpoint}/v1/traces`;
  const metricsTarget = protocol === 'grpc' ? hostPort : `${source === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' ? url.origin : endpoint}/v1/metrics`;
  const metricsExporter = nonEmpty(env.OTEL_METRICS_EXPORTER) ?? 'otlp';
  if (metricsExporter !== 'otlp' && metricsExporter !== 'none') {
    throw new ConfigError('OTEL_METRICS_EXPORTER', `must be otlp or none, got "${metricsExporter}" (Prometheus is served on the admin port at /metrics)`);
  }
  const intervalRaw = nonEmpty(env.OTEL_METRIC_EXPORT_INTERVAL) ?? '60000';
  const metricIntervalMs = Number(intervalRaw);
  if (!Number.isInteger(metricIntervalMs) || metricIntervalMs < 1000) {
    throw new ConfigError('OTEL_METRIC_EXPORT_INTERVAL', `must be a number of milliseconds >= 1000, got "${intervalRaw}"`);
  }
  const maxBatchSpans = intVar(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1, 65_536);
  const flushIntervalMs = intVar(env, 'OTEL_BSP_SCHEDULE_DELAY', 500, 10, 60_000);
  const exportTimeoutMs = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT) !== undefined
    ? intVar(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 10_000, 100, 600_000)
    : intVar(env, 'OTEL_BSP_EXPORT_TIMEOUT', 10_000, 100, 600_000);
  return {
    serviceName,
    resource,
    export: {
      maxBatchSpans,
      flushIntervalMs,
      exportTimeoutMs,
      protocol,
      endpoint,
      tracesTarget,
      metricsTarget,
      secure: url.protocol === 'https:',
      headers: parseKeyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS'),
      metrics: metricsExporter === 'otlp',
      metricIntervalMs,
    },
  };
}

/** `k1=v1,k2=v2` with percent-encoded values (the W3C baggage format the OTel variables use). */
export function parseKeyValues(raw: string | undefined, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined || raw.trim() === '') return out;
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(name, `expected key=value pairs separated by commas, got "${part.trim()}"`);
    const key = part.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch (cause) {
      throw new ConfigError(name, `value of "${key}" is not valid percent-encoding`, { cause });
    }
  }
  return out;
}

/** An integer variable within [min, max], or the default when unset. */
function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(name, `must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
