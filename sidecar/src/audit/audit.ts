import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import { maskedIndexes } from '../masking/plan.js';
import type { Identity } from '../session/policy-gate.js';
import { FactsCache, isUnparseable, type StatementFacts } from '../sql/index.js';
import type { AuditConfig } from './config.js';
import { AuditMetrics } from './metrics.js';
import { encodeAttributes, encodeResource, encodeScope, SpanKind, StatusCode, writeAttribute, writeSpan, type SpanExtra, type SpanFields } from './proto.js';
import { SpanQueue, type SpanQueueOptions } from './span-queue.js';
import { normalizeQueryText, ShapeCache, unknownShape, type StatementShape } from './statement-shape.js';
import { SessionTracker, type StatementRun, type TrackerHost } from './tracker.js';
import { createTransport, type TraceTransport } from './transport.js';
import type { AuditSink, SessionAudit } from './types.js';

/**
 * The audit trail (SPEC §8, docs/audit.md): a span per statement, parented to a span per client
 * connection, and the sidecar's metrics. Built by main.ts only when wanted: spans when an OTLP
 * endpoint is configured, metrics when spans are exported or the admin endpoint serves /metrics.
 */
export type QueryTextMode = 'normalized' | 'full' | 'none';

export interface AuditOptions {
  config: AuditConfig;
  /** Record metrics (the admin endpoint serves them at /metrics, and OTLP exports them). */
  metrics: boolean;
  /** The upstream PostgreSQL (server.address / server.port). */
  upstream: { host: string; port: number };
  log: Logger;
  /** The policy version in force; undefined in pass-through mode. */
  policyVersion: () => string | undefined;
  /** `audit.queryText` of the policy in force ('normalized' without a policy). */
  queryText: () => QueryTextMode;
  /** Extra static resource attributes (k8s.pod.name, ...). */
  resource?: Record<string, string>;
  version: string;
  /** Tests: a transport other than OTLP gRPC/HTTP, queue limits. */
  transport?: TraceTransport;
  queue?: Partial<Omit<SpanQueueOptions, 'transport' | 'resource' | 'scope'>>;
}

export interface Audit extends AuditSink {
  /** Admin route: serves GET /metrics; false for other requests. */
  serveMetrics(req: IncomingMessage, res: ServerResponse): boolean;
  /** Counters for logs and tests. */
  stats(): { exported: number; droppedQueueFull: number; droppedExportFailed: number; queued: number } | undefined;
  /** Ends export: sends what is queued within `deadlineMs`. */
  shutdown(deadlineMs: number): Promise<void>;
}

/** Minimum time between two "spans dropped" log lines. */
const DROP_LOG_INTERVAL_MS = 30_000;

export function createAudit(options: AuditOptions): Audit {
  const { config, log } = options;
  const resourceAttributes = { ...options.resource, ...config.resource, 'service.version': options.version };
  let queue: SpanQueue | undefined;
  const dropLog = rateLimited(log, DROP_LOG_INTERVAL_MS);
  if (config.export !== undefined || options.transport !== undefined) {
    queue = new SpanQueue({
      transport: options.transport ?? createTransport(config.export!),
      resource: encodeResource(resourceAttributes),
      scope: encodeScope('dbward-sidecar', options.version),
      ...(config.export === undefined
        ? {}
        : { maxBatchSpans: config.export.maxBatchSpans, flushIntervalMs: config.export.flushIntervalMs, exportTimeoutMs: config.export.exportTimeoutMs }),
      ...options.queue,
      onExportFailure: (error, spans) => dropLog('warn', { err: error.message, spans, endpoint: config.export?.endpoint }, 'audit export failed; spans dropped'),
    });
  }
  const stats = (): ReturnType<Audit['stats']> => {
    if (queue === undefined) return undefined;
    return { ...queue.stats, queued: queue.queued.spans + sink.waiting };
  };
  const metrics = options.metrics ? new AuditMetrics(resourceAttributes, config.export, { policyVersion: options.policyVersion, spans: stats }) : undefined;
  const sink = new SpanEmitter(queue, metrics, options, dropLog);
  let lastQueueFull = 0;
  // Queue-full drops are counted on the statement path; their log line is written from here.
  const dropWatch = setInterval(() => {
    const s = queue?.stats.droppedQueueFull ?? 0;
    if (s > lastQueueFull) dropLog('warn', { dropped: s - lastQueueFull, total: s }, 'audit export queue full; spans dropped');
    lastQueueFull = s;
  }, 5_000);
  dropWatch.unref();

  return {
    openSession: (identity, sessionId, policyMode) => sink.openSession(identity, sessionId, policyMode),
    upstreamError: (reason) => metrics?.upstreamError(reason),
    serveMetrics: (req, res) => {
      if (metrics === undefined || req.method !== 'GET' || !/^\/metrics\/?(\?.*)?$/.test(req.url ?? '')) return false;
      metrics.serve(req, res);
      return true;
    },
    stats,
    shutdown: async (deadlineMs) => {
      clearInterval(dropWatch);
      sink.drain();
      await queue?.shutdown(deadlineMs);
      await metrics?.shutdown();
    },
  };
}

type DropLog = (level: 'warn', fields: Record<string, unknown>, message: string) => void;

/** One log line per interval per message; the lines in between are counted into the next one. */
function rateLimited(log: Logger, intervalMs: number): DropLog {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (level, fields, message) => {
    const now = Date.now();
    const state = last.get(message);
    if (state !== undefined && now - state.at < intervalMs) {
      state.suppressed++;
      return;
    }
    last.set(message, { at: now, suppressed: 0 });
    log[level]({ ...fields, suppressedSince: state?.suppressed }, message);
  };
}

/** Random trace and span ids from a pooled buffer (one randomBytes call per 1,024 span ids). */
class IdPool {
  /** The buffer of the last `take()`; a new one replaces it when used up (older ones stay valid). */
  buf = randomBytes(8192);
  private pos = 0;

  /** The offset in `this.buf` of `n` fresh random bytes. */
  take(n: number): number {
    if (this.pos + n > this.buf.length) {
      this.buf = randomBytes(8192);
      this.pos = 0;
    }
    const offset = this.pos;
    this.pos += n;
    return offset;
  }
}

/** Encodes spans into the queue and records metrics. */
class SpanEmitter {
  private readonly shapes = new ShapeCache();
  private readonly unknown = new Map<string, StatementShape>();
  private readonly decisionBlocks = new Map<string, Buffer>();
  private readonly facts = new FactsCache({ maxEntries: 2_000 });
  private readonly ids = new IdPool();
  /** Unix time in ms at performance.now() 0. */
  private readonly epoch = performance.timeOrigin;
  /** The decision block of the last span (most spans repeat their predecessor's). */
  private last: { decision: string; rule: string | undefined; version: string | undefined; block: Buffer } = { decision: '', rule: undefined, version: undefined, block: Buffer.alloc(0) };
  /** The current span's per-span attributes, written by `extra` (one object, no closure per span). */
  private current: { run: StatementRun | undefined; rows: number | undefined; sqlstate: string | undefined; full: boolean } = {
    run: undefined,
    rows: undefined,
    sqlstate: undefined,
    full: false,
  };
  private readonly extra: SpanExtra = {
    write: (out) => {
      const { run, rows, sqlstate, full } = this.current;
      if (rows !== undefined) writeAttribute(out, 9, 'db.response.returned_rows', rows);
      if (sqlstate !== undefined) {
        writeAttribute(out, 9, 'db.response.status_code', sqlstate);
        writeAttribute(out, 9, 'error.type', sqlstate);
      }
      if (run === undefined) return;
      if (full && run.facts !== undefined) writeAttribute(out, 9, 'db.query.text', run.facts.text);
      if (run.maskedPlan !== undefined) writeAttribute(out, 9, 'dbward.masked_columns', maskedColumnNames(run));
    },
  };
  private readonly span: SpanFields;
  private readonly upstreamBlock: Buffer;

  constructor(
    private readonly queue: SpanQueue | undefined,
    private readonly metrics: AuditMetrics | undefined,
    private readonly options: AuditOptions,
    private readonly dropLog: DropLog,
  ) {
    const zero = Buffer.alloc(16);
    this.span = {
      traceId: zero,
      traceIdOffset: 0,
      spanId: zero,
      spanIdOffset: 0,
      parentSpanId: undefined,
      parentSpanIdOffset: 0,
      name: '',
      kind: SpanKind.CLIENT,
      startUnixMs: 0,
      endUnixMs: 0,
      attributeBlocks: [],
      link: undefined,
      statusCode: StatusCode.UNSET,
      statusMessage: undefined,
    };
    this.upstreamBlock = encodeAttributes({
      'db.system.name': 'postgresql',
      'server.address': options.upstream.host,
      'server.port': options.upstream.port,
    });
  }

  openSession(identity: Identity, sessionId: number, policyMode: boolean): SessionAudit {
    if (this.metrics !== undefined) this.metrics.connections++;
    const start = performance.now();
    const traceAt = this.ids.take(16);
    const traceId = Buffer.from(this.ids.buf.subarray(traceAt, traceAt + 16));
    const spanAt = this.ids.take(8);
    const session: SessionSpan = {
      traceId,
      spanId: Buffer.from(this.ids.buf.subarray(spanAt, spanAt + 8)),
      identityBlock: encodeAttributes({
        'db.namespace': identity.database,
        'dbward.identity.user': identity.user,
        'dbward.identity.database': identity.database,
        'dbward.identity.application': identity.application || undefined,
        'dbward.identity.namespace': identity.namespace || undefined,
        'dbward.identity.service_account': identity.serviceAccount || undefined,
        'dbward.identity.pod': identity.pod || undefined,
        ...Object.fromEntries(Object.entries(identity.labels).map(([k, v]) => [`dbward.identity.labels.${k}`, v])),
      }),
      statements: 0,
    };
    const host: TrackerHost = {
      shape: (facts, text) => this.shapeOf(facts, text),
      analyze: (text) => this.analyze(text, identity.database),
      emit: (run, end, rows, sqlstate) => {
        session.statements++;
        this.emitStatement(session, run, end, rows, sqlstate);
      },
      closed: () => {
        if (this.metrics !== undefined) this.metrics.connections--;
        this.drain();
        this.emitSession(session, sessionId, start, performance.now());
      },
    };
    return new SessionTracker(host, policyMode);
  }

  private shapeOf(facts: StatementFacts | undefined, text: string | undefined): StatementShape {
    if (facts !== undefined) return this.shapes.of(facts);
    const key = text === undefined ? '' : (/^\s*([A-Za-z]+)/.exec(text)?.[1] ?? '').toUpperCase();
    let shape = this.unknown.get(key);
    if (shape === undefined) {
      shape = unknownShape(text);
      if (this.unknown.size < 100) this.unknown.set(key, shape);
    }
    return shape;
  }

  /** Pass-through mode: facts from the shared analysis cache; [] when unknown. */
  private analyze(text: string, database: string): StatementFacts[] {
    try {
      const result = this.facts.analyze(text, { searchPath: ['public'], standardConformingStrings: true });
      return isUnparseable(result) ? [] : result.statements;
    } catch (error) {
      this.dropLog('warn', { err: error instanceof Error ? error.message : String(error), database }, 'audit: statement analysis failed');
      return [];
    }
  }

  /**
   * A statement ended: its span is encoded and its metrics recorded with the others that ended in
   * the same few milliseconds (metrics at once when no span is exported) (a tight loop over a batch runs several times faster than the same work
   * spread between socket reads and writes, whose caches it would share).
   */
  private emitStatement(session: SessionSpan, run: StatementRun, end: number, rows: number | undefined, sqlstate: string | undefined): void {
    const decision = run.decision === 'allow' && run.maskedValues > 0 ? 'mask' : run.decision;
    const queue = this.queue;
    const ended = this.ended;
    if (queue === undefined || ended.length >= MAX_ENDED) {
      this.record(run, end, sqlstate, decision);
      if (queue !== undefined) queue.stats.droppedQueueFull++;
      return;
    }
    ended.push({ session, run, end, rows, sqlstate, decision, version: this.options.policyVersion() });
    if (ended.length >= ENCODE_BATCH) this.drain();
    else if (this.drainTimer === undefined) {
      this.drainTimer = setTimeout(() => this.drain(), ENCODE_DELAY_MS);
      this.drainTimer.unref();
    }
  }

  /** Ended statements waiting to be encoded. */
  private readonly ended: EndedStatement[] = [];
  private drainTimer: NodeJS.Timeout | undefined;

  get waiting(): number {
    return this.ended.length;
  }

  /** Encodes the spans of the statements that ended since the last drain. */
  drain(): void {
    if (this.drainTimer !== undefined) {
      clearTimeout(this.drainTimer);
      this.drainTimer = undefined;
    }
    const ended = this.ended;
    for (let i = 0; i < ended.length; i++) {
      const e = ended[i]!;
      this.record(e.run, e.end, e.sqlstate, e.decision);
      this.encodeStatement(e.session, e.run, e.end, e.rows, e.sqlstate, e.decision, e.version);
    }
    ended.length = 0;
  }

  private record(run: StatementRun, end: number, sqlstate: string | undefined, decision: string): void {
    const metrics = this.metrics;
    if (metrics === undefined) return;
    metrics.statement((end - run.start) / 1000, run.shape.operation, decision, run.rule, sqlstate);
    metrics.maskedValues += run.maskedValues;
  }

  private encodeStatement(
    session: SessionSpan,
    run: StatementRun,
    end: number,
    rows: number | undefined,
    sqlstate: string | undefined,
    decision: string,
    version: string | undefined,
  ): void {
    const queue = this.queue!;
    const w = queue.writer();
    if (w === undefined) return;
    const last = this.last;
    let decisionBlock: Buffer;
    if (last.decision === decision && last.rule === run.rule && last.version === version) decisionBlock = last.block;
    else {
      const blockKey = `${decision}\u0000${run.rule ?? ''}\u0000${version ?? ''}`;
      let block = this.decisionBlocks.get(blockKey);
      if (block === undefined) {
        if (this.decisionBlocks.size > 1000) this.decisionBlocks.clear();
        block = encodeAttributes({ 'dbward.decision': decision, 'dbward.rule': run.rule, 'dbward.policy.version': version });
        this.decisionBlocks.set(blockKey, block);
      }
      this.last = { decision, rule: run.rule, version, block };
      decisionBlock = block;
    }
    const mode = this.options.queryText();
    const textBlock = mode === 'normalized' ? this.normalizedText(run) : undefined;
    const span = this.span;
    span.spanIdOffset = this.ids.take(8);
    span.spanId = this.ids.buf;
    if (run.trace !== undefined) {
      span.traceId = run.trace.traceId;
      span.traceIdOffset = 0;
      span.parentSpanId = run.trace.spanId;
      span.link = { traceId: session.traceId, traceIdOffset: 0, spanId: session.spanId, spanIdOffset: 0 };
    } else {
      span.traceId = session.traceId;
      span.traceIdOffset = 0;
      span.parentSpanId = session.spanId;
      span.link = undefined;
    }
    span.parentSpanIdOffset = 0;
    span.name = run.shape.summary;
    span.kind = SpanKind.CLIENT;
    span.startUnixMs = this.epoch + run.start;
    span.endUnixMs = this.epoch + end;
    const blocks = this.blocks;
    blocks[0] = this.upstreamBlock;
    blocks[1] = session.identityBlock;
    blocks[2] = run.shape.attributes;
    blocks[3] = decisionBlock;
    blocks.length = textBlock === undefined || textBlock === null ? 4 : 5;
    if (textBlock !== undefined && textBlock !== null) blocks[4] = textBlock;
    span.attributeBlocks = blocks;
    span.statusCode = sqlstate === undefined ? StatusCode.UNSET : StatusCode.ERROR;
    span.statusMessage = sqlstate;
    const current = this.current;
    current.run = run;
    current.rows = rows;
    current.sqlstate = sqlstate;
    current.full = mode === 'full';
    writeSpan(w, span, this.extra);
    current.run = undefined;
    queue.committed();
  }

  private readonly blocks: Buffer[] = [];

  /** db.query.text for `normalized`: once per shape. */
  private normalizedText(run: StatementRun): Buffer | null {
    const shape = run.shape;
    if (shape.normalizedText !== undefined) return shape.normalizedText;
    if (run.facts === undefined) return null;
    const text = normalizeQueryText(run.facts.text);
    const block = text === null ? null : encodeAttributes({ 'db.query.text': text });
    // Only shapes from the facts cache are shared (frozen); others are per statement anyway.
    shape.normalizedText = block;
    return block;
  }

  private emitSession(session: SessionSpan, sessionId: number, start: number, end: number): void {
    const queue = this.queue;
    if (queue === undefined) return;
    const w = queue.writer();
    if (w === undefined) return;
    const span = this.span;
    span.traceId = session.traceId;
    span.traceIdOffset = 0;
    span.spanId = session.spanId;
    span.spanIdOffset = 0;
    span.parentSpanId = undefined;
    span.link = undefined;
    span.name = 'dbward session';
    span.kind = SpanKind.SERVER;
    span.startUnixMs = this.epoch + start;
    span.endUnixMs = this.epoch + end;
    span.attributeBlocks = [this.upstreamBlock, session.identityBlock];
    span.statusCode = StatusCode.UNSET;
    span.statusMessage = undefined;
    writeSpan(w, span, {
      write: (out) => {
        writeAttribute(out, 9, 'dbward.session.id', sessionId);
        writeAttribute(out, 9, 'dbward.session.statements', session.statements);
      },
    });
    queue.committed();
  }
}

/** Statements whose spans are encoded at most this long after they end... */
const ENCODE_DELAY_MS = 20;
/** ...or as soon as this many have ended. */
const ENCODE_BATCH = 256;
/** Ended statements held for encoding at most (beyond: dropped and counted as queue_full). */
const MAX_ENDED = 4096;

interface EndedStatement {
  session: SessionSpan;
  run: StatementRun;
  end: number;
  rows: number | undefined;
  sqlstate: string | undefined;
  decision: string;
  version: string | undefined;
}

interface SessionSpan {
  traceId: Buffer;
  spanId: Buffer;
  identityBlock: Buffer;
  statements: number;
}

/** `schema.table.column` of each masked output column (its source when it has exactly one), else its output name. */
function maskedColumnNames(run: StatementRun): string[] {
  const plan = run.maskedPlan;
  if (plan === undefined) return [];
  return maskedIndexes(plan).map((i) => {
    const column = run.facts?.output[i];
    if (column === undefined) return `column ${i + 1}`;
    const only = column.sources.length === 1 ? column.sources[0] : undefined;
    return only !== undefined ? `${only.table}.${only.column}` : column.name;
  });
}
