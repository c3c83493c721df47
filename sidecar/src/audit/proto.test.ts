import { describe, expect, it } from 'vitest';
import { decodeFields, type ProtoField } from './otlp-decode.js';
import { encodeAttributes, encodeResource, encodeScope, envelopeInPlace, envelopeRoom, exportTraceRequest, ProtoWriter, SpanKind, StatusCode, writeAttribute, writeSpan, type SpanFields } from './proto.js';

/** The protobuf reader the other audit tests use too: field number -> list of raw values. */
type Field = ProtoField;
const decode = decodeFields;

function sub(fields: Map<number, Field[]>, n: number, k = 0): Map<number, Field[]> {
  return decode(fields.get(n)![k]!.value as Buffer);
}
function str(fields: Map<number, Field[]>, n: number): string {
  return (fields.get(n)![0]!.value as Buffer).toString('utf8');
}

/** KeyValue list -> plain object (string, int, bool, string array). */
function attributes(fields: Map<number, Field[]>, n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of fields.get(n) ?? []) {
    const pair = decode(kv.value as Buffer);
    const any = sub(pair, 2);
    const key = str(pair, 1);
    if (any.has(1)) out[key] = str(any, 1);
    else if (any.has(2)) out[key] = any.get(2)![0]!.value === 1;
    else if (any.has(3)) out[key] = any.get(3)![0]!.value;
    else if (any.has(5)) out[key] = (sub(any, 5).get(1) ?? []).map((v) => str(decode(v.value as Buffer), 1));
  }
  return out;
}

describe('ProtoWriter', () => {
  it.each([0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1])('varint %d round-trips', (n) => {
    const w = new ProtoWriter(1);
    w.varintField(1, n);
    expect(decode(w.take()).get(1)![0]!.value).toBe(n);
  });

  it.each([0, 0.001, 1_700_000_000_123.456, 1_763_812_345_678.999, 4_000_000_000_000.25])('unix time %d ms is written as exact nanoseconds (µs precision)', (ms) => {
    const w = new ProtoWriter(1);
    w.unixNanoField(1, ms);
    expect(decode(w.take()).get(1)![0]!.value).toBe(BigInt(Math.round(ms * 1000)) * 1000n);
  });

  it.each([0, 1, 127, 128, 16_383, 16_384, 100_000])('a submessage of %d bytes gets the right length prefix', (len) => {
    const w = new ProtoWriter(8);
    const at = w.begin(7);
    w.raw(Buffer.alloc(len, 0x61));
    w.end(at);
    w.varintField(2, 42);
    const fields = decode(w.take());
    expect((fields.get(7)![0]!.value as Buffer).length).toBe(len);
    expect(fields.get(2)![0]!.value).toBe(42);
  });
});

describe('OTLP span encoding', () => {
  const traceId = Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex');
  const spanId = Buffer.from('00f067aa0ba902b7', 'hex');
  const parent = Buffer.from('1111111111111111', 'hex');

  it('writes a Span inside ExportTraceServiceRequest > ResourceSpans > ScopeSpans', () => {
    const batch = new ProtoWriter(16);
    const span: SpanFields = {
      traceId,
      traceIdOffset: 0,
      spanId,
      spanIdOffset: 0,
      parentSpanId: parent,
      parentSpanIdOffset: 0,
      name: 'SELECT public.t',
      kind: SpanKind.CLIENT,
      startUnixMs: 1_700_000_000_000,
      endUnixMs: 1_700_000_000_000.5,
      attributeBlocks: [encodeAttributes({ 'db.system.name': 'postgresql', 'dbward.tables.read': ['public.t', 'public.u'], skipped: undefined, empty: [] })],
      link: { traceId, traceIdOffset: 0, spanId: parent, spanIdOffset: 0 },
      statusCode: StatusCode.ERROR,
      statusMessage: '42501',
    };
    writeSpan(batch, span, { write: (w) => writeAttribute(w, 9, 'db.response.returned_rows', 3) });
    writeSpan(batch, { ...span, statusCode: StatusCode.UNSET, link: undefined, parentSpanId: undefined });
    const body = exportTraceRequest(encodeResource({ 'service.name': 'dbward-sidecar' }), encodeScope('dbward-sidecar', '0.1.0'), batch.buf, 0, batch.pos);

    const request = decode(body);
    const resourceSpans = sub(request, 1);
    expect(attributes(sub(resourceSpans, 1), 1)).toEqual({ 'service.name': 'dbward-sidecar' });
    const scopeSpans = sub(resourceSpans, 2);
    expect(str(sub(scopeSpans, 1), 1)).toBe('dbward-sidecar');
    expect(scopeSpans.get(2)).toHaveLength(2);

    const first = sub(scopeSpans, 2, 0);
    expect(first.get(1)![0]!.value).toEqual(traceId);
    expect(first.get(2)![0]!.value).toEqual(spanId);
    expect(first.get(4)![0]!.value).toEqual(parent);
    expect(str(first, 5)).toBe('SELECT public.t');
    expect(first.get(6)![0]!.value).toBe(3);
    expect(first.get(7)![0]!.value).toBe(1_700_000_000_000_000_000n);
    expect(first.get(8)![0]!.value).toBe(1_700_000_000_000_500_000n);
    expect(attributes(first, 9)).toEqual({ 'db.system.name': 'postgresql', 'dbward.tables.read': ['public.t', 'public.u'], 'db.response.returned_rows': 3 });
    const link = sub(first, 13);
    expect(link.get(2)![0]!.value).toEqual(parent);
    const status = sub(first, 15);
    expect(str(status, 2)).toBe('42501');
    expect(status.get(3)![0]!.value).toBe(StatusCode.ERROR);
    expect(first.get(16)![0]!.value).toBe(0x101);

    const second = sub(scopeSpans, 2, 1);
    expect(second.has(4)).toBe(false);
    expect(second.has(13)).toBe(false);
    expect(second.has(15)).toBe(false);
  });

  it('encodes booleans, and negative or fractional numbers as doubles', () => {
    const fields = decode(encodeAttributes({ yes: true, no: false, ratio: 0.5, negative: -2 }));
    expect(attributes(fields, 9)).toMatchObject({ yes: true, no: false });
    const doubles: Record<string, number> = {};
    for (const kv of fields.get(9) ?? []) {
      const pair = decode(kv.value as Buffer);
      const any = sub(pair, 2);
      if (!any.has(4)) continue;
      const bytes = Buffer.alloc(8);
      bytes.writeBigUInt64LE(any.get(4)![0]!.value as bigint);
      doubles[str(pair, 1)] = bytes.readDoubleLE(0);
    }
    expect(doubles).toEqual({ ratio: 0.5, negative: -2 });
  });
});

describe('envelopeInPlace', () => {
  it.each([0, 1, 100, 5_000])('writes the same request as exportTraceRequest around %d spans written after the room it leaves', (n) => {
    const resource = encodeResource({ 'service.name': 'dbward-sidecar', 'k8s.pod.name': 'p'.repeat(300) });
    const scope = encodeScope('dbward-sidecar', '0.1.0');
    const room = envelopeRoom(resource, scope);
    const inPlace = new ProtoWriter(16);
    inPlace.reset(room);
    const plain = new ProtoWriter(16);
    const id = Buffer.alloc(16, 3);
    for (let i = 0; i < n; i++) {
      const span: SpanFields = {
        traceId: id, traceIdOffset: 0, spanId: id, spanIdOffset: 0, parentSpanId: undefined, parentSpanIdOffset: 0,
        name: `s${i}`, kind: SpanKind.CLIENT, startUnixMs: i, endUnixMs: i + 1, attributeBlocks: [], link: undefined,
        statusCode: StatusCode.UNSET, statusMessage: undefined,
      };
      writeSpan(inPlace, span);
      writeSpan(plain, span);
    }
    const expected = exportTraceRequest(resource, scope, plain.buf, 0, plain.pos);
    expect(Buffer.compare(envelopeInPlace(resource, scope, inPlace.buf, room, inPlace.pos), expected)).toBe(0);
  });
});

