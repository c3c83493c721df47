/**
 * The few protobuf messages of OTLP/trace the sidecar sends (opentelemetry/proto/trace/v1,
 * common/v1, resource/v1, collector/trace/v1), written by hand so that a span costs a memcpy of
 * attribute bytes encoded once per statement shape, not a walk over attribute objects per span
 * (see ADR 0013). Pure: bytes in, bytes out.
 *
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
 */

/** An attribute value as OTLP's AnyValue can carry it (the kinds the sidecar uses). */
export type AttributeValue = string | number | boolean | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;

/** OTLP SpanKind. */
export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
/** OTLP Status.StatusCode. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** A growable write buffer with protobuf primitives. Reused: `reset()` between messages. */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Starts over; `start` bytes are left free at the front (see envelopeInPlace). */
  reset(start = 0): void {
    this.ensure(start);
    this.pos = start;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(value: number): void {
    this.ensure(10);
    let v = value;
    if (v < 0x80000000) {
      while (v > 0x7f) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
    } else {
      while (v > 0x7f) {
        this.buf[this.pos++] = (v % 128) | 0x80;
        v = Math.floor(v / 128);
      }
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  bytesField(field: number, src: Buffer | Uint8Array, start = 0, end = src.length): void {
    this.tag(field, 2);
    this.varint(end - start);
    this.ensure(end - start);
    if (Buffer.isBuffer(src)) src.copy(this.buf, this.pos, start, end);
    else this.buf.set(src.subarray(start, end), this.pos);
    this.pos += end - start;
  }

  /** Raw bytes already encoded as fields (pre-encoded attributes). */
  raw(src: Buffer): void {
    this.ensure(src.length);
    src.copy(this.buf, this.pos);
    this.pos += src.length;
  }

  stringField(field: number, value: string): void {
    const n = Buffer.byteLength(value, 'utf8');
    this.tag(field, 2);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  fixed64Field(field: number, value: bigint): void {
    this.tag(field, 1);
    this.ensure(8);
    this.buf.writeBigUInt64LE(value, this.pos);
    this.pos += 8;
  }

  /**
   * A fixed64 time in Unix nanoseconds from Unix milliseconds (a double: microsecond precision),
   * with exact integer arithmetic in doubles (no BigInt on the statement path).
   */
  unixNanoField(field: number, unixMs: number): void {
    this.tag(field, 1);
    this.ensure(8);
    const us = Math.round(unixMs * 1000); // < 2^53
    const lowUs = us % 4294967296;
    const highUs = (us - lowUs) / 4294967296;
    const lowNs = lowUs * 1000; // < 2^42: exact
    const carry = Math.floor(lowNs / 4294967296);
    this.buf.writeUInt32LE(lowNs - carry * 4294967296, this.pos);
    this.buf.writeUInt32LE(highUs * 1000 + carry, this.pos + 4);
    this.pos += 8;
  }

  fixed32Field(field: number, value: number): void {
    this.tag(field, 5);
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  varintField(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  /**
   * Starts a length-delimited submessage; returns the position to pass to `end()`. Reserves 3
   * bytes for the length (messages up to 2 MiB) and moves the body if it is shorter.
   */
  begin(field: number): number {
    this.tag(field, 2);
    this.ensure(3);
    const at = this.pos;
    this.pos += 3;
    return at;
  }

  end(at: number): void {
    const len = this.pos - at - 3;
    const size = len < 0x80 ? 1 : len < 0x4000 ? 2 : 3;
    if (len >= 0x200000) throw new RangeError(`protobuf submessage of ${len} bytes exceeds 2 MiB`);
    if (size < 3) this.buf.copy(this.buf, at + size, at + 3, this.pos);
    let v = len;
    for (let i = 0; i < size; i++) {
      this.buf[at + i] = i === size - 1 ? v & 0x7f : (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.pos -= 3 - size;
  }

  /** A copy of what was written. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** KeyValue { key = 1; AnyValue value = 2 }, as a repeated field `field` of the enclosing message. */
export function writeAttribute(w: ProtoWriter, field: number, key: string, value: AttributeValue): void {
  const kv = w.begin(field);
  w.stringField(1, key);
  const any = w.begin(2);
  writeAnyValue(w, value);
  w.end(any);
  w.end(kv);
}

function writeAnyValue(w: ProtoWriter, value: AttributeValue): void {
  if (typeof value === 'string') w.stringField(1, value);
  else if (typeof value === 'boolean') w.varintField(2, value ? 1 : 0);
  else if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) w.varintField(3, value);
    else {
      w.tag(4, 1);
      w.ensure(8);
      w.buf.writeDoubleLE(value, w.pos);
      w.pos += 8;
    }
  } else {
    const array = w.begin(5);
    for (const item of value) {
      const element = w.begin(1);
      w.stringField(1, item);
      w.end(element);
    }
    w.end(array);
  }
}

/** Attributes encoded as repeated KeyValue fields `field` (9 for Span, 1 for Resource). */
export function encodeAttributes(attributes: Attributes, field = 9): Buffer {
  const w = new ProtoWriter(256);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    writeAttribute(w, field, key, value);
  }
  return w.take();
}

/** What varies per span; attribute blocks are pre-encoded Span.attributes (field 9) fields. */
export interface SpanFields {
  traceId: Buffer;
  traceIdOffset: number;
  spanId: Buffer;
  spanIdOffset: number;
  /** Absent for a root span. */
  parentSpanId: Buffer | undefined;
  parentSpanIdOffset: number;
  name: string;
  kind: number;
  /** Unix time in milliseconds (performance.timeOrigin + performance.now()). */
  startUnixMs: number;
  endUnixMs: number;
  /** Pre-encoded attribute fields, written in order. */
  attributeBlocks: readonly Buffer[];
  /** A link to another span (the session span when a statement continues the client's trace). */
  link: { traceId: Buffer; traceIdOffset: number; spanId: Buffer; spanIdOffset: number } | undefined;
  statusCode: number;
  statusMessage: string | undefined;
}

/** Per-span attributes written after the pre-encoded blocks (an object reused across spans, not a closure per span). */
export interface SpanExtra {
  write(w: ProtoWriter): void;
}

/**
 * Writes one Span as field 2 of ScopeSpans. `extra` writes per-span attributes (field 9) after
 * the pre-encoded blocks.
 */
export function writeSpan(w: ProtoWriter, span: SpanFields, extra?: SpanExtra): void {
  const at = w.begin(2);
  w.bytesField(1, span.traceId, span.traceIdOffset, span.traceIdOffset + 16);
  w.bytesField(2, span.spanId, span.spanIdOffset, span.spanIdOffset + 8);
  if (span.parentSpanId !== undefined) w.bytesField(4, span.parentSpanId, span.parentSpanIdOffset, span.parentSpanIdOffset + 8);
  w.stringField(5, span.name);
  w.varintField(6, span.kind);
  w.unixNanoField(7, span.startUnixMs);
  w.unixNanoField(8, span.endUnixMs);
  for (const block of span.attributeBlocks) w.raw(block);
  if (extra !== undefined) extra.write(w);
  if (span.link !== undefined) {
    const link = w.begin(13);
    w.bytesField(1, span.link.traceId, span.link.traceIdOffset, span.link.traceIdOffset + 16);
    w.bytesField(2, span.link.spanId, span.link.spanIdOffset, span.link.spanIdOffset + 8);
    w.end(link);
  }
  if (span.statusCode !== StatusCode.UNSET) {
    const status = w.begin(15);
    if (span.statusMessage !== undefined) w.stringField(2, span.statusMessage);
    w.varintField(3, span.statusCode);
    w.end(status);
  }
  // flags (W3C trace flags: sampled) = 16, fixed32
  w.fixed32Field(16, 0x101);
  w.end(at);
}

/**
 * ExportTraceServiceRequest { ResourceSpans resource_spans = 1 } around spans already written as
 * ScopeSpans.spans fields: `resource` is the encoded Resource message body, `scope` the encoded
 * InstrumentationScope body.
 */
export function exportTraceRequest(resource: Buffer, scope: Buffer, spans: Buffer, spansStart: number, spansEnd: number): Buffer {
  const spansLen = spansEnd - spansStart;
  const w = envelopeHeader(resource, scope, spansLen);
  w.ensure(spansLen);
  spans.copy(w.buf, w.pos, spansStart, spansEnd);
  w.pos += spansLen;
  return w.take();
}

/** ExportTraceServiceRequest up to where the ScopeSpans.spans fields (`spansLen` bytes) begin. */
function envelopeHeader(resource: Buffer, scope: Buffer, spansLen: number): ProtoWriter {
  const scopeSpansLen = fieldLen(scope.length) + spansLen;
  const resourceSpansLen = fieldLen(resource.length) + fieldLen(scopeSpansLen);
  const w = new ProtoWriter(64 + resource.length + scope.length);
  w.tag(1, 2);
  w.varint(resourceSpansLen);
  w.bytesField(1, resource);
  w.tag(2, 2);
  w.varint(scopeSpansLen);
  w.bytesField(1, scope);
  return w;
}

/** The most bytes the envelope of exportTraceRequest takes in front of the spans. */
export function envelopeRoom(resource: Buffer, scope: Buffer): number {
  // Four one-byte tags and four varint lengths (at most 5 bytes each), the resource and the scope.
  return 4 + 4 * 5 + resource.length + scope.length;
}

/**
 * exportTraceRequest without copying the spans: they were written into `buf` from `room`
 * (envelopeRoom) to `end`, and the envelope is written just before them. Returns the request, a
 * view of `buf`: `buf` must not be reused until it is sent.
 */
export function envelopeInPlace(resource: Buffer, scope: Buffer, buf: Buffer, room: number, end: number): Buffer {
  const header = envelopeHeader(resource, scope, end - room);
  const start = room - header.pos;
  if (start < 0) throw new RangeError('envelope larger than the room left for it');
  header.buf.copy(buf, start, 0, header.pos);
  return buf.subarray(start, end);
}

/** Bytes of a length-delimited field (one-byte tag) with a body of `len` bytes. */
function fieldLen(len: number): number {
  return 1 + varintLen(len) + len;
}

function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** InstrumentationScope { name = 1; version = 2 }. */
export function encodeScope(name: string, version: string): Buffer {
  const w = new ProtoWriter(64);
  w.stringField(1, name);
  w.stringField(2, version);
  return w.take();
}

/** Resource { attributes = 1 }. */
export function encodeResource(attributes: Attributes): Buffer {
  return encodeAttributes(attributes, 1);
}
