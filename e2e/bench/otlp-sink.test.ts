import { describe, expect, it } from 'vitest';
import { encodeAttributes, encodeResource, encodeScope, exportTraceRequest, ProtoWriter, SpanKind, StatusCode, writeSpan } from '../../sidecar/src/audit/proto.js';
import { countSpans } from './otlp-sink.js';

/** An ExportTraceServiceRequest with n spans, encoded the way the sidecar encodes its batches. */
function request(n: number): Buffer {
  const w = new ProtoWriter(64);
  const id = Buffer.alloc(16, 7);
  for (let i = 0; i < n; i++) {
    writeSpan(w, {
      traceId: id, traceIdOffset: 0, spanId: id, spanIdOffset: 0, parentSpanId: undefined, parentSpanIdOffset: 0,
      name: `SELECT public.t${i}`, kind: SpanKind.CLIENT, startUnixMs: 1_700_000_000_000 + i, endUnixMs: 1_700_000_000_001 + i,
      attributeBlocks: [encodeAttributes({ 'db.system.name': 'postgresql', 'db.response.returned_rows': i })],
      link: undefined, statusCode: i % 2 === 0 ? StatusCode.UNSET : StatusCode.ERROR, statusMessage: i % 2 === 0 ? undefined : '42501',
    });
  }
  return exportTraceRequest(encodeResource({ 'service.name': 'dbward-sidecar' }), encodeScope('dbward-sidecar', '0.0.0'), w.buf, 0, w.pos);
}

describe('the benchmark OTLP sink counts spans from the envelope', () => {
  it.each([0, 1, 3, 512, 2_000])('%d spans', (n) => {
    expect(countSpans(request(n))).toBe(n);
  });

  it('an empty body is a request without spans', () => {
    expect(countSpans(Buffer.alloc(0))).toBe(0);
  });

  it.each([1, 7, 100])('a body cut %d bytes short is malformed', (cut) => {
    const body = request(10);
    expect(countSpans(body.subarray(0, body.length - cut))).toBe(-1);
  });

  it('bytes that are not protobuf are malformed', () => {
    expect(countSpans(Buffer.from('POST /v1/traces HTTP/1.1\r\n\r\n{"json":true}'))).toBe(-1);
  });
});
