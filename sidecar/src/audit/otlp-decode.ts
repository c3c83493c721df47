/**
 * A small reader for the OTLP trace requests the sidecar writes (tests and debugging): protobuf
 * fields by number, and spans with their attributes as plain values. Pure.
 */
export type ProtoField = { wire: number; value: number | bigint | Buffer };

/** Bytes that are not a well-formed protobuf message (truncated, or an unknown wire type). */
export class ProtoDecodeError extends Error {
  override readonly name = 'ProtoDecodeError';
}

export function decodeFields(buf: Buffer): Map<number, ProtoField[]> {
  const out = new Map<number, ProtoField[]>();
  let i = 0;
  const need = (n: number): void => {
    if (i + n > buf.length) throw new ProtoDecodeError(`truncated at byte ${i}: ${n} more bytes needed, ${buf.length - i} left`);
  };
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      need(1);
      const b = buf[i++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const wire = tag & 7;
    let value: ProtoField['value'];
    if (wire === 0) value = varint();
    else if (wire === 1) {
      need(8);
      value = buf.readBigUInt64LE(i);
      i += 8;
    } else if (wire === 2) {
      const len = varint();
      need(len);
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 5) {
      need(4);
      value = buf.readUInt32LE(i);
      i += 4;
    } else throw new ProtoDecodeError(`unsupported wire type ${wire}`);
    const field = Math.floor(tag / 8);
    const list = out.get(field) ?? [];
    list.push({ wire, value });
    out.set(field, list);
  }
  return out;
}

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean | string[]>;
  statusCode: number;
}

/** The spans of an ExportTraceServiceRequest. */
export function decodeTraceRequest(body: Buffer): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  for (const rs of decodeFields(body).get(1) ?? []) {
    for (const ss of decodeFields(rs.value as Buffer).get(2) ?? []) {
      for (const sp of decodeFields(ss.value as Buffer).get(2) ?? []) spans.push(decodeSpan(decodeFields(sp.value as Buffer)));
    }
  }
  return spans;
}

function bytes(fields: Map<number, ProtoField[]>, n: number): Buffer | undefined {
  return fields.get(n)?.[0]?.value as Buffer | undefined;
}

function decodeSpan(f: Map<number, ProtoField[]>): DecodedSpan {
  const attributes: DecodedSpan['attributes'] = {};
  for (const kv of f.get(9) ?? []) {
    const pair = decodeFields(kv.value as Buffer);
    const any = decodeFields(bytes(pair, 2) ?? Buffer.alloc(0));
    const key = bytes(pair, 1)?.toString('utf8') ?? '';
    if (any.has(1)) attributes[key] = bytes(any, 1)!.toString('utf8');
    else if (any.has(2)) attributes[key] = any.get(2)![0]!.value === 1;
    else if (any.has(3)) attributes[key] = any.get(3)![0]!.value as number;
    else if (any.has(5)) attributes[key] = (decodeFields(bytes(any, 5)!).get(1) ?? []).map((v) => bytes(decodeFields(v.value as Buffer), 1)!.toString('utf8'));
  }
  const status = bytes(f, 15);
  return {
    traceId: bytes(f, 1)!.toString('hex'),
    spanId: bytes(f, 2)!.toString('hex'),
    parentSpanId: bytes(f, 4)?.toString('hex'),
    name: bytes(f, 5)!.toString('utf8'),
    kind: f.get(6)![0]!.value as number,
    attributes,
    statusCode: status === undefined ? 0 : ((decodeFields(status).get(3)?.[0]?.value as number | undefined) ?? 0),
  };
}
