import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, Histogram } from '@opentelemetry/api';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as HttpMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import type { ExportConfig } from './config.js';

/**
 * The sidecar's metrics (docs/audit.md): one histogram recorded per statement through the SDK;
 * everything else is counted in plain fields and read by observable instruments at collection
 * time, so the statement path pays one `record()` and a few increments.
 */

/** Semantic-convention buckets of db.client.operation.duration (seconds). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

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
  private readonly duration: Histogram;
  private readonly decisions = new Map<string, CountedSeries>();
  private readonly durationAttributes = new Map<string, Attributes>();
  private readonly upstreamErrors = new Map<string, CountedSeries>();
  maskedValues = 0;
  connections = 0;

  constructor(resource: Record<string, string>, exportConfig: ExportConfig | undefined, sources: MetricsSources) {
    this.prometheus = new PrometheusExporter({ preventServerStart: true });
    const readers: MetricReader[] = [this.prometheus];
    if (exportConfig?.metrics === true) {
      const exporter =
        exportConfig.protocol === 'grpc'
          ? new GrpcMetricExporter({ url: `${exportConfig.secure ? 'https' : 'http'}://${exportConfig.metricsTarget}`, timeoutMillis: 10_000 })
          : new HttpMetricExporter({ url: exportConfig.metricsTarget, headers: exportConfig.headers, timeoutMillis: 10_000 });
      readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: exportConfig.metricIntervalMs, exportTimeoutMillis: 10_000 }));
    }
    this.provider = new MeterProvider({ resource: resourceFromAttributes(resource), readers });
    const meter = this.provider.getMeter('dbward-sidecar');
    this.duration = meter.createHistogram('db.client.operation.duration', {
      unit: 's',
      description: 'Duration of statements through the sidecar, from the client message to the result.',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
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

  /** One statement: its duration (seconds), and its decision. */
  statement(seconds: number, operation: string, decision: string, rule: string | undefined, sqlstate: string | undefined): void {
    const key = `${operation}\u0000${decision}\u0000${sqlstate ?? ''}`;
    let attributes = this.durationAttributes.get(key);
    if (attributes === undefined) {
      if (this.durationAttributes.size > 2000) this.durationAttributes.clear();
      attributes = { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'dbward.decision': decision };
      if (sqlstate !== undefined) {
        attributes['db.response.status_code'] = sqlstate;
        attributes['error.type'] = sqlstate;
      }
      this.durationAttributes.set(key, attributes);
    }
    this.duration.record(seconds, attributes);
    const decisionKey = rule === undefined ? decision : `${decision}\u0000${rule}`;
    let series = this.decisions.get(decisionKey);
    if (series === undefined) {
      series = { attributes: rule === undefined ? { 'dbward.decision': decision } : { 'dbward.decision': decision, 'dbward.rule': rule }, value: 0 };
      this.decisions.set(decisionKey, series);
    }
    series.value++;
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
