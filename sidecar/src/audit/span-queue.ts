import { envelopeInPlace, envelopeRoom, ProtoWriter } from './proto.js';
import type { TraceTransport } from './transport.js';

/**
 * The bounded export queue (ADR 0013). Spans are encoded straight into the open batch (a
 * ProtoWriter holding ScopeSpans.spans fields); full batches wait in a FIFO; one export is in
 * flight at a time. When the queued bytes reach the limit, new spans are dropped and counted
 * (never queued, never blocking the caller); a batch the collector does not take is dropped and
 * counted too. Nothing here waits on the collector in the statement path.
 */
export interface SpanQueueOptions {
  transport: TraceTransport;
  resource: Buffer;
  scope: Buffer;
  /** Spans per export request. Default 512. */
  maxBatchSpans?: number;
  /** A batch is also sent once it holds this many bytes. Default 1 MiB (gRPC servers refuse messages over 4 MiB by default). */
  maxBatchBytes?: number;
  /** Bytes queued (open batch + waiting batches) before spans are dropped. Default 8 MiB. */
  maxQueueBytes?: number;
  /** How long spans may wait before a partial batch is sent. Default 500 ms. */
  flushIntervalMs?: number;
  /** How long one export may take. Default 10 s. */
  exportTimeoutMs?: number;
  /** Called for each batch the collector did not take (the caller rate-limits its log line). */
  onExportFailure?: (error: Error, spans: number) => void;
}

export interface SpanQueueStats {
  exported: number;
  droppedQueueFull: number;
  droppedExportFailed: number;
}

interface Batch {
  writer: ProtoWriter;
  spans: number;
}

export class SpanQueue {
  private open: Batch;
  private readonly waiting: Batch[] = [];
  private waitingBytes = 0;
  private waitingSpans = 0;
  private inFlight = false;
  /** Spans of the batch being sent (still in memory, neither exported nor dropped yet). */
  private inFlightSpans = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly maxBatchSpans: number;
  private readonly maxBatchBytes: number;
  private readonly maxQueueBytes: number;
  /** Bytes left free at the front of each batch for the request's envelope (no copy when sending). */
  private readonly room: number;
  private readonly exportTimeoutMs: number;
  readonly stats: SpanQueueStats = { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 };
  /** Writers of sent batches, reused (at most two are kept). */
  private readonly spare: ProtoWriter[] = [];
  /** After a failed export, the next waits (1 s doubling to 30 s): a dead collector costs no busy loop. */
  private backoffMs = 0;
  private retryAt = 0;

  constructor(private readonly options: SpanQueueOptions) {
    this.maxBatchSpans = options.maxBatchSpans ?? 512;
    this.room = envelopeRoom(options.resource, options.scope);
    this.maxBatchBytes = this.room + (options.maxBatchBytes ?? 1024 * 1024);
    this.maxQueueBytes = options.maxQueueBytes ?? 8 * 1024 * 1024;
    this.exportTimeoutMs = options.exportTimeoutMs ?? 10_000;
    this.open = this.newBatch();
    this.timer = setInterval(() => this.flush(), options.flushIntervalMs ?? 500);
    this.timer.unref();
  }

  /**
   * The writer to encode one span into, or undefined when the queue is full (the span is then
   * counted as dropped). Call `committed()` after writing.
   */
  writer(): ProtoWriter | undefined {
    if (this.closed || this.waitingBytes + this.open.writer.pos >= this.maxQueueBytes) {
      this.stats.droppedQueueFull++;
      return undefined;
    }
    return this.open.writer;
  }

  committed(): void {
    if (++this.open.spans >= this.maxBatchSpans || this.open.writer.pos >= this.maxBatchBytes) this.seal();
  }

  /** Spans waiting or being sent (open batch included), and the bytes waiting. */
  get queued(): { spans: number; bytes: number } {
    return { spans: this.waitingSpans + this.open.spans + this.inFlightSpans, bytes: this.waitingBytes + this.open.writer.pos };
  }

  /** Seals the open batch and starts an export if none runs. */
  flush(): void {
    if (this.open.spans > 0) this.seal();
    this.pump();
  }

  /** Sends what is queued, waiting at most `deadlineMs`; then stops. */
  async shutdown(deadlineMs: number): Promise<void> {
    clearInterval(this.timer);
    this.backoffMs = 0;
    if (this.open.spans > 0) this.seal();
    const until = Date.now() + deadlineMs;
    while ((this.waiting.length > 0 || this.inFlight) && Date.now() < until) {
      this.pump();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.closed = true;
    this.options.transport.close();
  }

  private newBatch(): Batch {
    const writer = this.spare.pop() ?? new ProtoWriter(64 * 1024);
    writer.reset(this.room);
    return { writer, spans: 0 };
  }

  private seal(): void {
    const batch = this.open;
    this.waiting.push(batch);
    this.waitingBytes += batch.writer.pos;
    this.waitingSpans += batch.spans;
    this.open = this.newBatch();
    this.pump();
  }

  private pump(): void {
    if (this.inFlight || this.closed || (this.backoffMs > 0 && Date.now() < this.retryAt)) return;
    const batch = this.waiting.shift();
    if (batch === undefined) return;
    this.waitingBytes -= batch.writer.pos;
    this.waitingSpans -= batch.spans;
    this.inFlight = true;
    // The request is a view of the batch's buffer: the writer is reused only once it is sent.
    const body = envelopeInPlace(this.options.resource, this.options.scope, batch.writer.buf, this.room, batch.writer.pos);
    const spans = batch.spans;
    this.inFlightSpans = spans;
    const recycle = (): void => {
      if (this.spare.length < 2 && batch.writer.buf.length <= 2 * 1024 * 1024) this.spare.push(batch.writer);
    };
    this.options.transport.send(body, this.exportTimeoutMs).then(
      () => {
        recycle();
        this.stats.exported += spans;
        this.inFlight = false;
        this.inFlightSpans = 0;
        this.backoffMs = 0;
        this.pump();
      },
      (error: unknown) => {
        recycle();
        this.stats.droppedExportFailed += spans;
        this.inFlight = false;
        this.inFlightSpans = 0;
        this.backoffMs = Math.min(30_000, this.backoffMs === 0 ? 1000 : this.backoffMs * 2);
        this.retryAt = Date.now() + this.backoffMs;
        this.options.onExportFailure?.(error instanceof Error ? error : new Error(String(error)), spans);
        this.pump();
      },
    );
  }
}
