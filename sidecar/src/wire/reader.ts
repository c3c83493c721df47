import { ProtocolViolation } from './errors.js';

/**
 * A bounds-checked cursor over the body of one message: `buf[pos..end)`.
 *
 * Every read checks that the field fits before the end of the message and throws
 * {@link ProtocolViolation} naming the message and the field otherwise, so a decoder never reads
 * into the next frame of a chunk. Reads allocate nothing but the values they return: integers are
 * assembled from bytes, byte ranges are returned as views (`subarray`) of the input buffer.
 *
 * Strings are decoded as UTF-8. A client may use another client_encoding; the proxy forwards the
 * original bytes anyway, and the decoded text is only used for analysis.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  /** The message being read, as the PostgreSQL docs name it, for error messages. */
  message: string;

  constructor(buf: Buffer, start: number, end: number, message: string) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.message = message;
  }

  /** Bytes left before the end of the message. */
  remaining(): number {
    return this.end - this.pos;
  }

  /** Byte1 / Int8, unsigned. */
  uint8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  /** Int8, signed. */
  int8(field: string): number {
    return (this.uint8(field) << 24) >> 24;
  }

  /** Int16, signed. */
  int16(field: string): number {
    return (this.uint16(field) << 16) >> 16;
  }

  /** Int16 read unsigned, as PostgreSQL's pq_getmsgint() reads counts. */
  uint16(field: string): number {
    this.need(2, field);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  /** Int32, signed. */
  int32(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /** Int32 read unsigned (object identifiers). */
  uint32(field: string): number {
    return this.int32(field) >>> 0;
  }

  /** String: UTF-8 bytes up to a NUL terminator, which is consumed. */
  cstring(field: string): string {
    const b = this.buf;
    const start = this.pos;
    const end = this.end;
    let nul = start;
    // Short strings (names, tags, settings) are the common case: a loop beats indexOf's call cost.
    const stop = Math.min(end, start + 32);
    while (nul < stop && b[nul] !== 0) nul++;
    if (nul === stop) {
      nul = stop < end ? b.indexOf(0, stop) : -1;
      if (nul < 0 || nul >= end) {
        throw new ProtocolViolation(`${this.message}: ${field} is not terminated by a NUL byte before the end of the message`);
      }
    }
    this.pos = nul + 1;
    return nul === start ? '' : b.toString('utf8', start, nul);
  }

  /** Byten: a view of the next n bytes (no copy). */
  bytes(n: number, field: string): Buffer {
    if (n < 0) throw new ProtocolViolation(`${this.message}: ${field} has invalid length ${n}`);
    this.need(n, field);
    const p = this.pos;
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }

  /** A view of every byte left in the message. */
  rest(): Buffer {
    const p = this.pos;
    this.pos = this.end;
    return this.buf.subarray(p, this.end);
  }

  /**
   * Reads an Int16 count, read unsigned like PostgreSQL does, and checks that the message has room
   * for that many elements of at least `minElementSize` bytes, before anything is allocated.
   */
  count16(field: string, minElementSize: number): number {
    return this.checkCount(this.uint16(field), field, minElementSize);
  }

  /** Like {@link count16} for an Int32 count; a negative count is a violation. */
  count32(field: string, minElementSize: number): number {
    const n = this.int32(field);
    if (n < 0) throw new ProtocolViolation(`${this.message}: ${field} is negative (${n})`);
    return this.checkCount(n, field, minElementSize);
  }

  /**
   * Int32 length of a value followed by its bytes; -1 is NULL. Any other negative length, or one
   * that runs past the end of the message, is a violation.
   */
  nullableBytes(field: string): Buffer | null {
    const n = this.int32(field);
    if (n === -1) return null;
    if (n < -1) throw new ProtocolViolation(`${this.message}: ${field} has invalid length ${n}`);
    return this.bytes(n, field);
  }

  /** Asserts the message has been read entirely: trailing bytes are a violation. */
  done(): void {
    if (this.pos !== this.end) {
      throw new ProtocolViolation(`${this.message}: ${this.end - this.pos} unexpected bytes after the last field`);
    }
  }

  private checkCount(n: number, field: string, minElementSize: number): number {
    if (n * minElementSize > this.end - this.pos) {
      throw new ProtocolViolation(
        `${this.message}: ${field} is ${n} but only ${this.end - this.pos} bytes remain in the message`,
      );
    }
    return n;
  }

  private need(n: number, field: string): void {
    if (this.end - this.pos < n) {
      throw new ProtocolViolation(
        `${this.message}: ${field} needs ${n} bytes but only ${this.end - this.pos} remain in the message`,
      );
    }
  }
}

/**
 * Checks the 5-byte header of the typed frame `buf[start..end)` (as reported by FrameSplitter) and
 * returns a reader over its body. The type byte must be `code` and the length must span the frame.
 */
export function openFrame(code: number, buf: Buffer, start: number, end: number, message: string): Reader {
  if (start < 0 || end > buf.length || end - start < 5) {
    throw new ProtocolViolation(`${message}: frame of ${end - start} bytes is shorter than its 5-byte header`);
  }
  if (buf[start] !== code) {
    throw new ProtocolViolation(`${message}: frame starts with type byte 0x${buf[start]!.toString(16)}, not 0x${code.toString(16)}`);
  }
  const length = ((buf[start + 1]! << 24) | (buf[start + 2]! << 16) | (buf[start + 3]! << 8) | buf[start + 4]!) >>> 0;
  if (length !== end - start - 1) {
    throw new ProtocolViolation(`${message}: length field says ${length} but the frame holds ${end - start - 1} bytes after the type byte`);
  }
  return new Reader(buf, start + 5, end, message);
}

/** Int16 count then that many Int16 format codes. */
export function readFormats(r: Reader, field: string): number[] {
  const n = r.count16(`${field} count`, 2);
  const formats = new Array<number>(n);
  for (let i = 0; i < n; i++) formats[i] = r.int16(field);
  return formats;
}
