import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as HttpMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type MetricProducer,
  type MetricReader,
} from '@opentelemetry/sdk-metrics';
import type { ExportConfig } from './config.js';

/**
 * The sidecar's metrics (docs/audit.md). The statement path only increments plain fields: the
 * duration histogram is accumulated here and handed to the SDK's readers as a MetricProducer, the
 * counters are read by observable instruments at collection time. (The SDK's own
 * `Histogram.record()` hashes the attribute set on every call: about 1 µs, as much as the rest of
 * a statement's audit.)
 */

/** Semantic-convention buckets of db.client.operation.duration (seconds). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** One series of the duration histogram: cumulative bucket counts. */
interface DurationSeries {
  readonly attributes: Attributes;
  readonly counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

/** db.client.operation.duration, accumulated by the sidecar and collected by the SDK's readers. */
class DurationHistogram implements MetricProducer {
  private readonly series = new Map<string, DurationSeries>();
  private readonly startTime: HrTime = hrTimeNow();

  private last: DurationSeries | undefined;

  record(seconds: number, key: string, attributes: () => Attributes): void {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= 2000) return; // cardinality bound: operation × decision × SQLSTATE
      s = { attributes: attributes(), counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0, min: Infinity, max: -Infinity };
      this.series.set(key, s);
    }
    this.last = s;
    this.add(s, seconds);
  }

  /** Records into the series of the previous `record()`. */
  recordLast(seconds: number): void {
    if (this.last !== undefined) this.add(this.last, seconds);
  }

  private add(s: DurationSeries, seconds: number): void {
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    s.counts[i]!++;
    s.sum += seconds;
    s.count++;
    if (seconds < s.min) s.min = seconds;
    if (seconds > s.max) s.max = seconds;
  }

  collect(): Promise<CollectionResult> {
    const endTime = hrTimeNow();
    return Promise.resolve({
      resourceMetrics: {
        resource: resourceFromAttributes({}),
        scopeMetrics: [
          {
            scope: { name: 'dbward-sidecar' },
            metrics: [
              {
                descriptor: {
                  name: 'db.client.operation.duration',
                  description: 'Duration of statements through the sidecar, from the client message to the result.',
                  unit: 's',
                  valueType: ValueType.DOUBLE,
                },
                aggregationTemporality: AggregationTemporality.CUMULATIVE,
                dataPointType: DataPointType.HISTOGRAM,
                dataPoints: [...this.series.values()].map((s) => ({
                  startTime: this.startTime,
                  endTime,
                  attributes: s.attributes,
                  value: { buckets: { boundaries: DURATION_BUCKETS, counts: [...s.counts] }, sum: s.sum, count: s.count, min: s.min, max: s.max },
                })),
              },
            ],
          },
        ],
      },
      errors: [],
    });
  }
}

function hrTimeNow(): HrTime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

/** A counter keyed by an attribute set, read at collection time. */
export interface CountedSeries {
  readonly attributes: Attributes;
  value: number;
}

export interface MetricsSources {
  /** Current policy version, or undefined in pass-through mode / before a policy loaded. */
  policyVersion: () => string | undefined;
  /** Spans dropped by reason (queue_full, export_failed), exported, and queued. */
  spans: () => { exported: number; droppedQueueFull: number; droppedExportFailed: number; queued: number } | undefined;
}

export class AuditMetrics {
  private readonly provider: MeterProvider;
  private readonly prometheus: PrometheusExporter;
  private readonly duration = new DurationHistogram();
  private readonly decisions = new Map<string, CountedSeries>();
  private readonly upstreamErrors = new Map<string, CountedSeries>();
  maskedValues = 0;
  connections = 0;

  constructor(resource: Record<string, string>, exportConfig: ExportConfig | undefined, sources: MetricsSources) {
    this.prometheus = new PrometheusExporter({ preventServerStart: true, metricProducers: [this.duration] });
    const readers: MetricReader[] = [this.prometheus];
    if (exportConfig?.metrics === true) {
      const exporter =
        exportConfig.protocol === 'grpc'
          ? new GrpcMetricExporter({ url: `${exportConfig.secure ? 'https' : 'http'}://${exportConfig.metricsTarget}`, timeoutMillis: 10_000 })
          : new HttpMetricExporter({ url: exportConfig.metricsTarget, headers: exportConfig.headers, timeoutMillis: 10_000 });
      readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: exportConfig.metricIntervalMs, exportTimeoutMillis: 10_000, metricProducers: [this.duration] }));
    }
    this.provider = new MeterProvider({ resource: resourceFromAttributes(resource), readers });
    const meter = this.provider.getMeter('dbward-sidecar');
    const observeSeries = (series: Map<string, CountedSeries>) => (result: { observe(value: number, attributes?: Attributes): void }) => {
      for (const s of series.values()) result.observe(s.value, s.attributes);
    };
    meter
      .createObservableCounter('dbward.decisions', { unit: '{statement}', description: 'Statements decided, by decision and rule.' })
      .addCallback(observeSeries(this.decisions));
    meter
      .createObservableCounter('dbward.masked.values', { unit: '{value}', description: 'Values of masked columns sent to clients.' })
      .addCallback((r) => r.observe(this.maskedValues));
    meter
      .createObservableUpDownCounter('dbward.connections', { unit: '{connection}', description: 'Client connections open through the sidecar.' })
      .addCallback((r) => r.observe(this.connections));
    meter
      .createObservableGauge('dbward.policy.version', { description: 'Always 1; the policy version in force is the dbward.policy.version attribute.' })
      .addCallback((r) => {
        const version = sources.policyVersion();
        if (version !== undefined) r.observe(1, { 'dbward.policy.version': version });
      });
    meter
      .createObservableCounter('dbward.upstream.errors', { unit: '{error}', description: 'Upstream connection failures and unexpected closes, by reason.' })
      .addCallback(observeSeries(this.upstreamErrors));
    meter
      .createObservableCounter('dbward.audit.spans.dropped', { unit: '{span}', description: 'Audit spans not delivered: export queue full, or the collector did not take them.' })
      .addCallback((r) => {
        const s = sources.spans();
        if (s === undefined) return;
        r.observe(s.droppedQueueFull, { reason: 'queue_full' });
        r.observe(s.droppedExportFailed, { reason: 'export_failed' });
      });
    meter
      .createObservableCounter('dbward.audit.spans.exported', { unit: '{span}', description: 'Audit spans the collector accepted.' })
      .addCallback((r) => {
        const s = sources.spans();
        if (s !== undefined) r.observe(s.exported);
      });
    meter
      .createObservableUpDownCounter('dbward.audit.spans.queued', { unit: '{span}', description: 'Audit spans waiting for export.' })
      .addCallback((r) => {
        const s = sources.spans();
        if (s !== undefined) r.observe(s.queued);
      });
  }

  /** The series of the last statement (most statements repeat their predecessor's). */
  private last = { operation: '', decision: '', rule: undefined as string | undefined, sqlstate: undefined as string | undefined, series: undefined as CountedSeries | undefined };

  /** One statement: its duration (seconds), and its decision. */
  statement(seconds: number, operation: string, decision: string, rule: string | undefined, sqlstate: string | undefined): void {
    const last = this.last;
    if (last.series !== undefined && last.operation === operation && last.decision === decision && last.rule === rule && last.sqlstate === sqlstate) {
      this.duration.recordLast(seconds);
      last.series.value++;
      return;
    }
    const key = sqlstate === undefined ? `${operation}\u0000${decision}` : `${operation}\u0000${decision}\u0000${sqlstate}`;
    this.duration.record(seconds, key, () => {
      const attributes: Attributes = { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'dbward.decision': decision };
      if (sqlstate !== undefined) {
        attributes['db.response.status_code'] = sqlstate;
        attributes['error.type'] = sqlstate;
      }
      return attributes;
    });
    const decisionKey = rule === undefined ? decision : `${decision}\u0000${rule}`;
    let series = this.decisions.get(decisionKey);
    if (series === undefined) {
      series = { attributes: rule === undefined ? { 'dbward.decision': decision } : { 'dbward.decision': decision, 'dbward.rule': rule }, value: 0 };
      this.decisions.set(decisionKey, series);
    }
    series.value++;
    this.last = { operation, decision, rule, sqlstate, series };
  }

  upstreamError(reason: string): void {
    let series = this.upstreamErrors.get(reason);
    if (series === undefined) {
      series = { attributes: { reason }, value: 0 };
      this.upstreamErrors.set(reason, series);
    }
    series.value++;
  }

  /** GET /metrics on the admin server (Prometheus text format). */
  serve(req: IncomingMessage, res: ServerResponse): void {
    this.prometheus.getMetricsRequestHandler(req, res);
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown().catch(() => undefined);
  }
}
