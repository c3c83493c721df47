/**
 * Encoders of every message of both directions, named after the PostgreSQL docs' message names.
 * Each returns one Buffer holding the complete frame, sized exactly in advance (one allocation).
 * Strings are encoded as UTF-8; a string field that contains a NUL character cannot be encoded
 * and raises {@link WireError}; integers outside their field's range raise a RangeError.
 *
 * Messages without variable content are built once at load time and shared: the returned Buffer
 * must not be modified.
 */
import { AuthCode, Backend, Frontend, StartupCode, type TransactionStatus } from './codes.js';
import { WireError } from './errors.js';
import type { FieldDescription } from './messages.js';

/** A value of a Bind, FunctionCall or DataRow: bytes, a string (encoded as UTF-8) or null for SQL NULL. */
export type WireValue = Buffer | string | null;

/** Name/value pairs as a Map, a list of pairs or a plain object; encoded in iteration order. */
export type StringPairs = ReadonlyMap<string, string> | Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

/** Fields of an ErrorResponse/NoticeResponse, keyed by one-letter code (see ErrorField). */
export type ErrorFields = StringPairs;

/** A cursor over a Buffer allocated with exactly the frame's size. */
class FrameBuilder {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  u8(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }
  i8(v: number): this {
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }
  i16(v: number): this {
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }
  u16(v: number): this {
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }
  i32(v: number): this {
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }
  u32(v: number): this {
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }
  /** String: UTF-8 and a NUL; its size was counted with {@link cstringSize}. */
  cstring(s: string): this {
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
    return this;
  }
  bytes(b: Buffer): this {
    this.pos += b.copy(this.buf, this.pos);
    return this;
  }
  /** Int32 length then the bytes; -1 and nothing for null. */
  value(v: WireValue): this {
    if (v === null) return this.i32(-1);
    if (typeof v === 'string') {
      const n = this.buf.write(v, this.pos + 4, 'utf8');
      this.buf.writeInt32BE(n, this.pos);
      this.pos += 4 + n;
      return this;
    }
    return this.i32(v.length).bytes(v);
  }
  /** Int16 count then Int16 format codes. */
  formats(formats: readonly number[], what: string): this {
    this.u16(checkCount(formats.length, what));
    for (const f of formats) this.i16(f);
    return this;
  }
  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new WireError(`internal error: encoded ${this.pos} bytes into a frame of ${this.buf.length}`);
    }
    return this.buf;
  }
}

/** Starts a typed frame `type(1) length(4) body`. */
function typed(code: number, bodyLength: number): FrameBuilder {
  const b = new FrameBuilder(Buffer.allocUnsafe(5 + bodyLength));
  return b.u8(code).u32(4 + bodyLength);
}

/** Starts an untyped startup-phase frame `length(4) code(4) body`. */
function untyped(code: number, bodyLength: number): FrameBuilder {
  const b = new FrameBuilder(Buffer.allocUnsafe(8 + bodyLength));
  return b.u32(8 + bodyLength).u32(code);
}

/** Encoded size of a String field, NUL included. */
function cstringSize(s: string, what: string): number {
  if (s.includes('\0')) throw new WireError(`cannot encode ${what}: it contains a NUL character`);
  return Buffer.byteLength(s, 'utf8') + 1;
}

/** Encoded size of an Int32-length-prefixed value. */
function valueSize(v: WireValue): number {
  if (v === null) return 4;
  return 4 + (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
}

function checkCount(n: number, what: string): number {
  if (n > 0xffff) throw new WireError(`cannot encode ${n} ${what}: the protocol allows at most 65535`);
  return n;
}

function checkCancelKey(key: Buffer, message: string): void {
  if (key.length < 4 || key.length > 256) {
    throw new WireError(`cannot encode ${message}: secret key of ${key.length} bytes, expected 4 to 256`);
  }
}

function empty(code: number): Buffer {
  return typed(code, 0).done();
}

function fromEntries(fields: StringPairs): Iterable<readonly [string, string]> {
  if (fields instanceof Map) return fields.entries();
  if (isIterable(fields)) return fields;
  return Object.entries(fields);
}

function isIterable(v: object): v is Iterable<readonly [string, string]> {
  return typeof (v as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function';
}

// ---------------------------------------------------------------------------------------------
// Constant frames, built once.
// ---------------------------------------------------------------------------------------------

const SYNC = empty(Frontend.Sync);
const FLUSH = empty(Frontend.Flush);
const TERMINATE = empty(Frontend.Terminate);
const COPY_DONE = empty(Frontend.CopyDone);
const BIND_COMPLETE = empty(Backend.BindComplete);
const CLOSE_COMPLETE = empty(Backend.CloseComplete);
const PARSE_COMPLETE = empty(Backend.ParseComplete);
const NO_DATA = empty(Backend.NoData);
const PORTAL_SUSPENDED = empty(Backend.PortalSuspended);
const EMPTY_QUERY_RESPONSE = empty(Backend.EmptyQueryResponse);
const SSL_REQUEST = untyped(StartupCode.SSLRequest, 0).done();
const GSSENC_REQUEST = untyped(StartupCode.GSSENCRequest, 0).done();
const READY_FOR_QUERY = {
  I: typed(Backend.ReadyForQuery, 1).u8(0x49).done(),
  T: typed(Backend.ReadyForQuery, 1).u8(0x54).done(),
  E: typed(Backend.ReadyForQuery, 1).u8(0x45).done(),
} as const;
const AUTH_OK = authenticationOnly(AuthCode.Ok);
const AUTH_KERBEROS = authenticationOnly(AuthCode.KerberosV5);
const AUTH_CLEARTEXT = authenticationOnly(AuthCode.CleartextPassword);
const AUTH_GSS = authenticationOnly(AuthCode.GSS);
const AUTH_SSPI = authenticationOnly(AuthCode.SSPI);
/** The one-byte answers to an SSLRequest or GSSENCRequest ('S'/'G' accept, 'N' refuse). */
const SSL_ACCEPT = Buffer.from('S');
const GSS_ACCEPT = Buffer.from('G');
const ENCRYPTION_REFUSED = Buffer.from('N');

function authenticationOnly(subtype: number): Buffer {
  return typed(Backend.Authentication, 4).i32(subtype).done();
}

// ---------------------------------------------------------------------------------------------
// Frontend, startup phase (untyped)
// ---------------------------------------------------------------------------------------------

/** StartupMessage: protocol version (default 3.0) and parameters (user is required by servers). */
export function startupMessage(
  parameters: StringPairs,
  protocolVersion: number = StartupCode.Protocol30,
): Buffer {
  const entries = [...fromEntries(parameters)];
  let size = 1;
  for (const [name, value] of entries) {
    if (name === '') throw new WireError('cannot encode StartupMessage: a parameter name is empty');
    size += cstringSize(name, 'StartupMessage parameter name') + cstringSize(value, `StartupMessage parameter "${name}"`);
  }
  const b = untyped(protocolVersion, size);
  for (const [name, value] of entries) b.cstring(name).cstring(value);
  return b.u8(0).done();
}

/** SSLRequest (shared constant). */
export function sslRequest(): Buffer {
  return SSL_REQUEST;
}

/** GSSENCRequest (shared constant). */
export function gssEncRequest(): Buffer {
  return GSSENC_REQUEST;
}

/** CancelRequest: process ID and secret key (4 bytes in 3.0, up to 256 in 3.2). */
export function cancelRequest(processId: number, secretKey: Buffer): Buffer {
  checkCancelKey(secretKey, 'CancelRequest');
  return untyped(StartupCode.CancelRequest, 4 + secretKey.length).i32(processId).bytes(secretKey).done();
}

/** The server's one-byte answer to SSLRequest ('S' or 'N') — not a frame (shared constant). */
export function sslResponse(accept: boolean): Buffer {
  return accept ? SSL_ACCEPT : ENCRYPTION_REFUSED;
}

/** The server's one-byte answer to GSSENCRequest ('G' or 'N') — not a frame (shared constant). */
export function gssEncResponse(accept: boolean): Buffer {
  return accept ? GSS_ACCEPT : ENCRYPTION_REFUSED;
}

// ---------------------------------------------------------------------------------------------
// Frontend, typed
// ---------------------------------------------------------------------------------------------

/** Query ('Q'). */
export function query(sql: string): Buffer {
  return typed(Frontend.Query, cstringSize(sql, 'Query')).cstring(sql).done();
}

/** Parse ('P'): statement name ('' = unnamed), query, parameter type OIDs. */
export function parse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  checkCount(paramTypes.length, 'Parse parameter types');
  const size = cstringSize(name, 'Parse statement name') + cstringSize(sql, 'Parse query') + 2 + 4 * paramTypes.length;
  const b = typed(Frontend.Parse, size).cstring(name).cstring(sql).u16(paramTypes.length);
  for (const oid of paramTypes) b.u32(oid);
  return b.done();
}

/** Bind ('B'): portal, statement, parameter values, their formats and the result formats. */
export function bind(
  portal: string,
  statement: string,
  params: readonly WireValue[],
  paramFormats: readonly number[] = [],
  resultFormats: readonly number[] = [],
): Buffer {
  checkCount(params.length, 'Bind parameters');
  let size = cstringSize(portal, 'Bind portal name') + cstringSize(statement, 'Bind statement name');
  size += 2 + 2 * paramFormats.length + 2 + 2 + 2 * resultFormats.length;
  for (const p of params) size += valueSize(p);
  const b = typed(Frontend.Bind, size).cstring(portal).cstring(statement).formats(paramFormats, 'Bind parameter formats');
  b.u16(params.length);
  for (const p of params) b.value(p);
  return b.formats(resultFormats, 'Bind result formats').done();
}

/** Describe ('D') of a statement ('S') or portal ('P'). */
export function describe(target: 'S' | 'P', name: string): Buffer {
  return typed(Frontend.Describe, 1 + cstringSize(name, 'Describe name'))
    .u8(target.charCodeAt(0))
    .cstring(name)
    .done();
}

/** Execute ('E'): portal and row limit (0 = all rows). */
export function execute(portal: string, maxRows = 0): Buffer {
  return typed(Frontend.Execute, cstringSize(portal, 'Execute portal name') + 4)
    .cstring(portal)
    .i32(maxRows)
    .done();
}

/** Close ('C') of a statement ('S') or portal ('P'). */
export function close(target: 'S' | 'P', name: string): Buffer {
  return typed(Frontend.Close, 1 + cstringSize(name, 'Close name'))
    .u8(target.charCodeAt(0))
    .cstring(name)
    .done();
}

/** Sync ('S') (shared constant). */
export function sync(): Buffer {
  return SYNC;
}

/** Flush ('H') (shared constant). */
export function flush(): Buffer {
  return FLUSH;
}

/** Terminate ('X') (shared constant). */
export function terminate(): Buffer {
  return TERMINATE;
}

/** CopyData ('d'), either direction. */
export function copyData(data: Buffer): Buffer {
  return typed(Frontend.CopyData, data.length).bytes(data).done();
}

/** CopyDone ('c'), either direction (shared constant). */
export function copyDone(): Buffer {
  return COPY_DONE;
}

/** CopyFail ('f'). */
export function copyFail(message: string): Buffer {
  return typed(Frontend.CopyFail, cstringSize(message, 'CopyFail message')).cstring(message).done();
}

/** FunctionCall ('F'). */
export function functionCall(
  functionOid: number,
  args: readonly WireValue[],
  argFormats: readonly number[] = [],
  resultFormat = 0,
): Buffer {
  checkCount(args.length, 'FunctionCall arguments');
  let size = 4 + 2 + 2 * argFormats.length + 2 + 2;
  for (const a of args) size += valueSize(a);
  const b = typed(Frontend.FunctionCall, size).u32(functionOid).formats(argFormats, 'FunctionCall argument formats');
  b.u16(args.length);
  for (const a of args) b.value(a);
  return b.i16(resultFormat).done();
}

/** PasswordMessage ('p'): cleartext password or "md5" + hex digest. */
export function passwordMessage(password: string): Buffer {
  return typed(Frontend.PasswordMessage, cstringSize(password, 'PasswordMessage')).cstring(password).done();
}

/** SASLInitialResponse ('p'): mechanism and client-first message (null: none, length -1). */
export function saslInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  const size = cstringSize(mechanism, 'SASLInitialResponse mechanism') + valueSize(data);
  return typed(Frontend.PasswordMessage, size).cstring(mechanism).value(data).done();
}

/** A 'p' message around an opaque body, as decodeFrontend returns it (PasswordFamily). */
export function passwordFamily(body: Buffer): Buffer {
  return typed(Frontend.PasswordMessage, body.length).bytes(body).done();
}

/** SASLResponse ('p'). */
export function saslResponse(data: Buffer): Buffer {
  return typed(Frontend.PasswordMessage, data.length).bytes(data).done();
}

/** GSSResponse ('p'). */
export function gssResponse(data: Buffer): Buffer {
  return typed(Frontend.PasswordMessage, data.length).bytes(data).done();
}

// ---------------------------------------------------------------------------------------------
// Backend
// ---------------------------------------------------------------------------------------------

/** AuthenticationOk ('R', 0) (shared constant). */
export function authenticationOk(): Buffer {
  return AUTH_OK;
}

/** AuthenticationKerberosV5 ('R', 2) (shared constant). */
export function authenticationKerberosV5(): Buffer {
  return AUTH_KERBEROS;
}

/** AuthenticationCleartextPassword ('R', 3) (shared constant). */
export function authenticationCleartextPassword(): Buffer {
  return AUTH_CLEARTEXT;
}

/** AuthenticationMD5Password ('R', 5) with a 4-byte salt. */
export function authenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new WireError(`cannot encode AuthenticationMD5Password: salt of ${salt.length} bytes, expected 4`);
  return typed(Backend.Authentication, 8).i32(AuthCode.MD5Password).bytes(salt).done();
}

/** AuthenticationGSS ('R', 7) (shared constant). */
export function authenticationGSS(): Buffer {
  return AUTH_GSS;
}

/** AuthenticationGSSContinue ('R', 8). */
export function authenticationGSSContinue(data: Buffer): Buffer {
  return typed(Backend.Authentication, 4 + data.length).i32(AuthCode.GSSContinue).bytes(data).done();
}

/** AuthenticationSSPI ('R', 9) (shared constant). */
export function authenticationSSPI(): Buffer {
  return AUTH_SSPI;
}

/** AuthenticationSASL ('R', 10): the mechanisms offered, e.g. ["SCRAM-SHA-256"]. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  let size = 4 + 1;
  for (const m of mechanisms) {
    if (m === '') throw new WireError('cannot encode AuthenticationSASL: a mechanism name is empty');
    size += cstringSize(m, 'SASL mechanism name');
  }
  const b = typed(Backend.Authentication, size).i32(AuthCode.SASL);
  for (const m of mechanisms) b.cstring(m);
  return b.u8(0).done();
}

/** AuthenticationSASLContinue ('R', 11). */
export function authenticationSASLContinue(data: Buffer): Buffer {
  return typed(Backend.Authentication, 4 + data.length).i32(AuthCode.SASLContinue).bytes(data).done();
}

/** AuthenticationSASLFinal ('R', 12). */
export function authenticationSASLFinal(data: Buffer): Buffer {
  return typed(Backend.Authentication, 4 + data.length).i32(AuthCode.SASLFinal).bytes(data).done();
}

/** BackendKeyData ('K'): process ID and secret key (4 bytes in 3.0, up to 256 in 3.2). */
export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  checkCancelKey(secretKey, 'BackendKeyData');
  return typed(Backend.BackendKeyData, 4 + secretKey.length).i32(processId).bytes(secretKey).done();
}

/** BindComplete ('2') (shared constant). */
export function bindComplete(): Buffer {
  return BIND_COMPLETE;
}

/** CloseComplete ('3') (shared constant). */
export function closeComplete(): Buffer {
  return CLOSE_COMPLETE;
}

/** CommandComplete ('C'): the command tag. */
export function commandComplete(tag: string): Buffer {
  return typed(Backend.CommandComplete, cstringSize(tag, 'CommandComplete tag')).cstring(tag).done();
}

function copyResponse(code: number, format: number, columnFormats: readonly number[]): Buffer {
  return typed(code, 1 + 2 + 2 * columnFormats.length)
    .i8(format)
    .formats(columnFormats, 'COPY column formats')
    .done();
}

/** CopyInResponse ('G'): overall format (0 text, 1 binary) and per-column formats. */
export function copyInResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(Backend.CopyInResponse, format, columnFormats);
}

/** CopyOutResponse ('H'). */
export function copyOutResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(Backend.CopyOutResponse, format, columnFormats);
}

/** CopyBothResponse ('W'). */
export function copyBothResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(Backend.CopyBothResponse, format, columnFormats);
}

/** DataRow ('D'): column values; strings are encoded as UTF-8, null is SQL NULL. */
export function dataRow(values: readonly WireValue[]): Buffer {
  checkCount(values.length, 'DataRow columns');
  let size = 2;
  for (const v of values) size += valueSize(v);
  const b = typed(Backend.DataRow, size).u16(values.length);
  for (const v of values) b.value(v);
  return b.done();
}

/** EmptyQueryResponse ('I') (shared constant). */
export function emptyQueryResponse(): Buffer {
  return EMPTY_QUERY_RESPONSE;
}

function errorFields(code: number, message: string, fields: ErrorFields): Buffer {
  const entries = [...fromEntries(fields)];
  let size = 1;
  for (const [key, value] of entries) {
    if (key.length !== 1 || key.charCodeAt(0) === 0 || key.charCodeAt(0) > 0xff) {
      throw new WireError(`cannot encode ${message}: field code ${JSON.stringify(key)} is not one non-NUL byte`);
    }
    size += 1 + cstringSize(value, `${message} field '${key}'`);
  }
  const b = typed(code, size);
  for (const [key, value] of entries) b.u8(key.charCodeAt(0)).cstring(value);
  return b.u8(0).done();
}

/** ErrorResponse ('E'): fields by one-letter code (see ErrorField), in the given order. */
export function errorResponse(fields: ErrorFields): Buffer {
  return errorFields(Backend.ErrorResponse, 'ErrorResponse', fields);
}

/** NoticeResponse ('N'): fields by one-letter code (see ErrorField), in the given order. */
export function noticeResponse(fields: ErrorFields): Buffer {
  return errorFields(Backend.NoticeResponse, 'NoticeResponse', fields);
}

/** FunctionCallResponse ('V'): the result, null for SQL NULL. */
export function functionCallResponse(result: WireValue): Buffer {
  return typed(Backend.FunctionCallResponse, valueSize(result)).value(result).done();
}

/** NegotiateProtocolVersion ('v'). */
export function negotiateProtocolVersion(newestMinorVersion: number, unrecognizedOptions: readonly string[]): Buffer {
  let size = 8;
  for (const o of unrecognizedOptions) size += cstringSize(o, 'NegotiateProtocolVersion option');
  const b = typed(Backend.NegotiateProtocolVersion, size).i32(newestMinorVersion).i32(unrecognizedOptions.length);
  for (const o of unrecognizedOptions) b.cstring(o);
  return b.done();
}

/** NoData ('n') (shared constant). */
export function noData(): Buffer {
  return NO_DATA;
}

/** NotificationResponse ('A'). */
export function notificationResponse(processId: number, channel: string, payload: string): Buffer {
  const size = 4 + cstringSize(channel, 'NotificationResponse channel') + cstringSize(payload, 'NotificationResponse payload');
  return typed(Backend.NotificationResponse, size).i32(processId).cstring(channel).cstring(payload).done();
}

/** ParameterDescription ('t'): parameter type OIDs. */
export function parameterDescription(typeOids: readonly number[]): Buffer {
  checkCount(typeOids.length, 'ParameterDescription parameters');
  const b = typed(Backend.ParameterDescription, 2 + 4 * typeOids.length).u16(typeOids.length);
  for (const oid of typeOids) b.u32(oid);
  return b.done();
}

/** ParameterStatus ('S'). */
export function parameterStatus(name: string, value: string): Buffer {
  const size = cstringSize(name, 'ParameterStatus name') + cstringSize(value, 'ParameterStatus value');
  return typed(Backend.ParameterStatus, size).cstring(name).cstring(value).done();
}

/** ParseComplete ('1') (shared constant). */
export function parseComplete(): Buffer {
  return PARSE_COMPLETE;
}

/** PortalSuspended ('s') (shared constant). */
export function portalSuspended(): Buffer {
  return PORTAL_SUSPENDED;
}

/** ReadyForQuery ('Z') with status 'I', 'T' or 'E' (shared constants). */
export function readyForQuery(status: TransactionStatus): Buffer {
  const frame = READY_FOR_QUERY[status] as Buffer | undefined;
  if (frame === undefined) throw new WireError(`cannot encode ReadyForQuery: status ${JSON.stringify(status)} is not I, T or E`);
  return frame;
}

/** RowDescription ('T'). */
export function rowDescription(fields: readonly FieldDescription[]): Buffer {
  checkCount(fields.length, 'RowDescription fields');
  let size = 2;
  for (const f of fields) size += cstringSize(f.name, 'RowDescription field name') + 18;
  const b = typed(Backend.RowDescription, size).u16(fields.length);
  for (const f of fields) {
    b.cstring(f.name).u32(f.tableOid).i16(f.columnAttr).u32(f.typeOid).i16(f.typeSize).i32(f.typeModifier).i16(f.format);
  }
  return b.done();
}
