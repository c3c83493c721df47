/**
 * Decoders of the messages a backend (server) sends. Like the frontend decoders, every function
 * takes a whole frame `buf[start..end)` as reported by FrameSplitter, header included, checks every
 * field against the frame's end and rejects trailing bytes with {@link ProtocolViolation}.
 */
import { AuthCode, Backend, Limits } from './codes.js';
import { ProtocolViolation } from './errors.js';
import type {
  Authentication,
  BackendKeyData,
  BackendMessage,
  CopyResponse,
  DataRow,
  ErrorResponse,
  FieldDescription,
  NegotiateProtocolVersion,
  NotificationResponse,
  ParameterDescription,
  RowDescription,
} from './messages.js';
import { openFrame, readFormats, type Reader } from './reader.js';

/** Decodes one backend frame; `code` is its type byte. */
export function decodeBackend(code: number, buf: Buffer, start: number, end: number): BackendMessage {
  switch (code) {
    case Backend.DataRow:
      return decodeDataRow(buf, start, end);
    case Backend.Authentication:
      return decodeAuthentication(openFrame(code, buf, start, end, 'Authentication'));
    case Backend.BackendKeyData:
      return decodeBackendKeyData(openFrame(code, buf, start, end, 'BackendKeyData'));
    case Backend.BindComplete:
      openFrame(code, buf, start, end, 'BindComplete').done();
      return { type: 'BindComplete' };
    case Backend.CloseComplete:
      openFrame(code, buf, start, end, 'CloseComplete').done();
      return { type: 'CloseComplete' };
    case Backend.CommandComplete: {
      const r = openFrame(code, buf, start, end, 'CommandComplete');
      const tag = r.cstring('command tag');
      r.done();
      return { type: 'CommandComplete', tag };
    }
    case Backend.CopyData:
      return { type: 'CopyData', data: openFrame(code, buf, start, end, 'CopyData').rest() };
    case Backend.CopyDone:
      openFrame(code, buf, start, end, 'CopyDone').done();
      return { type: 'CopyDone' };
    case Backend.CopyInResponse:
      return decodeCopyResponse(openFrame(code, buf, start, end, 'CopyInResponse'), 'CopyInResponse');
    case Backend.CopyOutResponse:
      return decodeCopyResponse(openFrame(code, buf, start, end, 'CopyOutResponse'), 'CopyOutResponse');
    case Backend.CopyBothResponse:
      return decodeCopyResponse(openFrame(code, buf, start, end, 'CopyBothResponse'), 'CopyBothResponse');
    case Backend.EmptyQueryResponse:
      openFrame(code, buf, start, end, 'EmptyQueryResponse').done();
      return { type: 'EmptyQueryResponse' };
    case Backend.ErrorResponse:
      return decodeErrorFields(openFrame(code, buf, start, end, 'ErrorResponse'), 'ErrorResponse');
    case Backend.NoticeResponse:
      return decodeErrorFields(openFrame(code, buf, start, end, 'NoticeResponse'), 'NoticeResponse');
    case Backend.FunctionCallResponse: {
      const r = openFrame(code, buf, start, end, 'FunctionCallResponse');
      const result = r.nullableBytes('result value');
      r.done();
      return { type: 'FunctionCallResponse', result };
    }
    case Backend.NegotiateProtocolVersion:
      return decodeNegotiateProtocolVersion(openFrame(code, buf, start, end, 'NegotiateProtocolVersion'));
    case Backend.NoData:
      openFrame(code, buf, start, end, 'NoData').done();
      return { type: 'NoData' };
    case Backend.NotificationResponse:
      return decodeNotificationResponse(openFrame(code, buf, start, end, 'NotificationResponse'));
    case Backend.ParameterDescription:
      return decodeParameterDescription(openFrame(code, buf, start, end, 'ParameterDescription'));
    case Backend.ParameterStatus: {
      const r = openFrame(code, buf, start, end, 'ParameterStatus');
      const name = r.cstring('parameter name');
      const value = r.cstring('parameter value');
      r.done();
      return { type: 'ParameterStatus', name, value };
    }
    case Backend.ParseComplete:
      openFrame(code, buf, start, end, 'ParseComplete').done();
      return { type: 'ParseComplete' };
    case Backend.PortalSuspended:
      openFrame(code, buf, start, end, 'PortalSuspended').done();
      return { type: 'PortalSuspended' };
    case Backend.ReadyForQuery: {
      const r = openFrame(code, buf, start, end, 'ReadyForQuery');
      const s = r.uint8('transaction status');
      r.done();
      if (s === 0x49) return { type: 'ReadyForQuery', status: 'I' };
      if (s === 0x54) return { type: 'ReadyForQuery', status: 'T' };
      if (s === 0x45) return { type: 'ReadyForQuery', status: 'E' };
      throw new ProtocolViolation(`ReadyForQuery: transaction status 0x${s.toString(16)} is not 'I', 'T' or 'E'`);
    }
    case Backend.RowDescription:
      return decodeRowDescription(openFrame(code, buf, start, end, 'RowDescription'));
    default:
      throw new ProtocolViolation(`unknown backend message type 0x${code.toString(16).padStart(2, '0')}`);
  }
}

function decodeAuthentication(r: Reader): Authentication {
  const subtype = r.int32('authentication type');
  switch (subtype) {
    case AuthCode.Ok:
      r.done();
      return { type: 'AuthenticationOk' };
    case AuthCode.KerberosV5:
      r.done();
      return { type: 'AuthenticationKerberosV5' };
    case AuthCode.CleartextPassword:
      r.done();
      return { type: 'AuthenticationCleartextPassword' };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4, 'MD5 salt');
      r.done();
      return { type: 'AuthenticationMD5Password', salt };
    }
    case AuthCode.GSS:
      r.done();
      return { type: 'AuthenticationGSS' };
    case AuthCode.GSSContinue:
      return { type: 'AuthenticationGSSContinue', data: r.rest() };
    case AuthCode.SSPI:
      r.done();
      return { type: 'AuthenticationSSPI' };
    case AuthCode.SASL: {
      // A list of mechanism names, each NUL-terminated, ended by an empty name.
      const mechanisms: string[] = [];
      for (;;) {
        const name = r.cstring('SASL mechanism name');
        if (name === '') break;
        mechanisms.push(name);
      }
      r.done();
      return { type: 'AuthenticationSASL', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { type: 'AuthenticationSASLContinue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { type: 'AuthenticationSASLFinal', data: r.rest() };
    default:
      throw new ProtocolViolation(`Authentication: unknown authentication type ${subtype}`);
  }
}

function decodeBackendKeyData(r: Reader): BackendKeyData {
  const processId = r.int32('process ID');
  const n = r.remaining();
  if (n < Limits.MinCancelKeyLength || n > Limits.MaxCancelKeyLength) {
    throw new ProtocolViolation(
      `BackendKeyData: secret key of ${n} bytes, expected ${Limits.MinCancelKeyLength} to ${Limits.MaxCancelKeyLength}`,
    );
  }
  return { type: 'BackendKeyData', processId, secretKey: r.rest() };
}

function decodeCopyResponse(r: Reader, type: CopyResponse['type']): CopyResponse {
  const format = r.int8('overall format');
  const columnFormats = readFormats(r, 'column format code');
  r.done();
  return { type, format, columnFormats };
}

function decodeErrorFields(r: Reader, type: ErrorResponse['type']): ErrorResponse {
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.uint8('field type');
    if (code === 0) break;
    const key = String.fromCharCode(code);
    fields.set(key, r.cstring(`field '${key}'`));
  }
  r.done();
  return { type, fields };
}

function decodeNegotiateProtocolVersion(r: Reader): NegotiateProtocolVersion {
  const newestMinorVersion = r.int32('newest minor protocol version');
  const n = r.count32('unrecognized option count', 1);
  const unrecognizedOptions = new Array<string>(n);
  for (let i = 0; i < n; i++) unrecognizedOptions[i] = r.cstring('unrecognized option name');
  r.done();
  return { type: 'NegotiateProtocolVersion', newestMinorVersion, unrecognizedOptions };
}

function decodeNotificationResponse(r: Reader): NotificationResponse {
  const processId = r.int32('process ID');
  const channel = r.cstring('channel name');
  const payload = r.cstring('payload');
  r.done();
  return { type: 'NotificationResponse', processId, channel, payload };
}

function decodeParameterDescription(r: Reader): ParameterDescription {
  const n = r.count16('parameter count', 4);
  const typeOids = new Array<number>(n);
  for (let i = 0; i < n; i++) typeOids[i] = r.uint32('parameter type OID');
  r.done();
  return { type: 'ParameterDescription', typeOids };
}

const EMPTY = Buffer.alloc(0);

/** Bytes of one RowDescription field after its name. */
const FIELD_FIXED = 18;

function decodeRowDescription(r: Reader): RowDescription {
  const n = r.count16('field count', 1 + FIELD_FIXED);
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    const name = r.cstring('field name');
    fields[i] = {
      name,
      tableOid: r.uint32('table OID'),
      columnAttr: r.int16('column attribute number'),
      typeOid: r.uint32('data type OID'),
      typeSize: r.int16('data type size'),
      typeModifier: r.int32('type modifier'),
      format: r.int16('format code'),
    };
  }
  r.done();
  return { type: 'RowDescription', fields };
}

// ---------------------------------------------------------------------------------------------
// DataRow ('D'): the hottest backend message. Decoded without a Reader, and scannable without
// allocating anything, so masking can decode only the columns it rewrites.
// ---------------------------------------------------------------------------------------------

function readInt32(buf: Buffer, p: number): number {
  return (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
}

/**
 * Checks the header of a DataRow frame and returns its column count; the values start at start + 7.
 */
function openDataRow(buf: Buffer, start: number, end: number): number {
  if (start < 0 || end > buf.length || end - start < 7 || buf[start] !== Backend.DataRow) {
    openFrame(Backend.DataRow, buf, start, end, 'DataRow'); // throws the precise error
    throw new ProtocolViolation('DataRow: the column count is missing');
  }
  const length = readInt32(buf, start + 1) >>> 0;
  if (length !== end - start - 1) openFrame(Backend.DataRow, buf, start, end, 'DataRow');
  const n = (buf[start + 5]! << 8) | buf[start + 6]!;
  if (n * 4 > end - start - 7) {
    throw new ProtocolViolation(`DataRow: column count is ${n} but only ${end - start - 7} bytes remain in the message`);
  }
  return n;
}

function valueOverrun(i: number, length: number, remaining: number): ProtocolViolation {
  return length < -1
    ? new ProtocolViolation(`DataRow: column ${i} has invalid length ${length}`)
    : new ProtocolViolation(`DataRow: column ${i} needs ${length} bytes but only ${remaining} remain in the message`);
}

/** Decodes a DataRow ('D') frame; values are views of `buf` (null for SQL NULL). */
export function decodeDataRow(buf: Buffer, start: number, end: number): DataRow {
  const n = openDataRow(buf, start, end);
  const values = new Array<Buffer | null>(n);
  let p = start + 7;
  for (let i = 0; i < n; i++) {
    if (end - p < 4) throw new ProtocolViolation(`DataRow: length of column ${i} needs 4 bytes but only ${end - p} remain in the message`);
    const length = readInt32(buf, p);
    p += 4;
    if (length === -1) {
      values[i] = null;
      continue;
    }
    if (length < -1 || length > end - p) throw valueOverrun(i, length, end - p);
    values[i] = buf.subarray(p, p + length);
    p += length;
  }
  if (p !== end) throw new ProtocolViolation(`DataRow: ${end - p} unexpected bytes after the last column`);
  return { type: 'DataRow', values };
}

/** Receives one DataRow value: its index, the offset of its first byte in the buffer, and its length (-1 for NULL). */
export type DataRowFieldCallback = (index: number, valueStart: number, valueLength: number) => void;

/**
 * Walks the values of a DataRow ('D') frame without allocating, validating the whole frame first,
 * so the callback is never called for a malformed row. Returns the number of columns.
 */
export function forEachDataRowField(buf: Buffer, start: number, end: number, fn: DataRowFieldCallback): number {
  const n = scanDataRowLengths(buf, start, end);
  let p = start + 7;
  for (let i = 0; i < n; i++) {
    const length = readInt32(buf, p);
    p += 4;
    fn(i, p, length);
    if (length > 0) p += length;
  }
  return n;
}

/** Validates every value length of a DataRow frame and returns its column count. */
function scanDataRowLengths(buf: Buffer, start: number, end: number): number {
  const n = openDataRow(buf, start, end);
  let p = start + 7;
  for (let i = 0; i < n; i++) {
    if (end - p < 4) throw new ProtocolViolation(`DataRow: length of column ${i} needs 4 bytes but only ${end - p} remain in the message`);
    const length = readInt32(buf, p);
    p += 4;
    if (length === -1) continue;
    if (length < -1 || length > end - p) throw valueOverrun(i, length, end - p);
    p += length;
  }
  if (p !== end) throw new ProtocolViolation(`DataRow: ${end - p} unexpected bytes after the last column`);
  return n;
}

/**
 * A reusable field-offset index of DataRow ('D') frames: {@link scan} records where each value
 * starts and how long it is, in typed arrays that grow once and are then reused row after row, so
 * masking can locate, decode and rewrite only the columns it cares about.
 *
 * ```ts
 * const row = new DataRowScanner();
 * row.scan(buf, start, end);
 * const email = row.text(2); // decodes column 2 only
 * ```
 */
export class DataRowScanner {
  /** Number of columns of the last scanned row. */
  count = 0;
  /** Offset in {@link buf} of the first byte of each value. */
  offsets: Int32Array;
  /** Length of each value in bytes; -1 for NULL. */
  lengths: Int32Array;
  /** The buffer of the last scanned row. */
  buf: Buffer = EMPTY;

  constructor(initialColumns = 16) {
    this.offsets = new Int32Array(initialColumns);
    this.lengths = new Int32Array(initialColumns);
  }

  /** Indexes the DataRow frame `buf[start..end)`, validating it entirely; returns its column count. */
  scan(buf: Buffer, start: number, end: number): number {
    const n = openDataRow(buf, start, end);
    if (n > this.offsets.length) {
      const size = Math.max(n, this.offsets.length * 2);
      this.offsets = new Int32Array(size);
      this.lengths = new Int32Array(size);
    }
    const offsets = this.offsets;
    const lengths = this.lengths;
    this.count = 0;
    let p = start + 7;
    for (let i = 0; i < n; i++) {
      if (end - p < 4) throw new ProtocolViolation(`DataRow: length of column ${i} needs 4 bytes but only ${end - p} remain in the message`);
      const length = readInt32(buf, p);
      p += 4;
      offsets[i] = p;
      lengths[i] = length;
      if (length === -1) continue;
      if (length < -1 || length > end - p) throw valueOverrun(i, length, end - p);
      p += length;
    }
    if (p !== end) throw new ProtocolViolation(`DataRow: ${end - p} unexpected bytes after the last column`);
    this.buf = buf;
    this.count = n;
    return n;
  }

  /** True when column i is SQL NULL. */
  isNull(i: number): boolean {
    return this.lengthAt(i) === -1;
  }

  /** A view of column i's bytes, or null for SQL NULL. */
  value(i: number): Buffer | null {
    const length = this.lengthAt(i);
    if (length === -1) return null;
    const offset = this.offsets[i]!;
    return this.buf.subarray(offset, offset + length);
  }

  /** Column i decoded as UTF-8 text, or null for SQL NULL. */
  text(i: number): string | null {
    const length = this.lengthAt(i);
    if (length === -1) return null;
    const offset = this.offsets[i]!;
    return this.buf.toString('utf8', offset, offset + length);
  }

  private lengthAt(i: number): number {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`column ${i} is outside the ${this.count} columns of the row`);
    return this.lengths[i]!;
  }
}
