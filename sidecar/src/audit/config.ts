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
  return {
    serviceName,
    resource,
    export: {
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

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
