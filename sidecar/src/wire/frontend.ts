/**
 * Decoders of the messages a frontend (client) sends. Every decoder takes a whole frame as reported
 * by FrameSplitter — `buf[start..end)`, header included — checks the header, reads every field with
 * bounds checks and rejects trailing bytes. Malformed input raises {@link ProtocolViolation}.
 */
import { Frontend, Limits, StartupCode } from './codes.js';
import { ProtocolViolation } from './errors.js';
import type {
  Bind,
  CancelRequest,
  Close,
  Describe,
  Execute,
  FrontendMessage,
  FunctionCall,
  GSSResponse,
  Parse,
  PasswordMessage,
  SASLInitialResponse,
  SASLResponse,
  StartupMessage,
  StartupPhaseMessage,
} from './messages.js';
import { openFrame, readFormats, Reader } from './reader.js';

/**
 * Decodes one frontend frame. `code` is the type byte, or 0 for an untyped startup-phase frame
 * (see {@link decodeStartupPhase}). A 'p' frame is returned as `PasswordFamily`: its layout depends
 * on the authentication in progress.
 */
export function decodeFrontend(code: number, buf: Buffer, start: number, end: number): FrontendMessage {
  switch (code) {
    case 0:
      return decodeStartupPhase(buf, start, end);
    case Frontend.Query: {
      const r = openFrame(code, buf, start, end, 'Query');
      const query = r.cstring('query string');
      r.done();
      return { type: 'Query', query };
    }
    case Frontend.Parse:
      return decodeParse(openFrame(code, buf, start, end, 'Parse'));
    case Frontend.Bind:
      return decodeBind(openFrame(code, buf, start, end, 'Bind'));
    case Frontend.Describe:
      return decodeTarget(openFrame(code, buf, start, end, 'Describe'), 'Describe');
    case Frontend.Execute:
      return decodeExecute(openFrame(code, buf, start, end, 'Execute'));
    case Frontend.Close:
      return decodeTarget(openFrame(code, buf, start, end, 'Close'), 'Close');
    case Frontend.Sync:
      openFrame(code, buf, start, end, 'Sync').done();
      return { type: 'Sync' };
    case Frontend.Flush:
      openFrame(code, buf, start, end, 'Flush').done();
      return { type: 'Flush' };
    case Frontend.CopyData:
      return { type: 'CopyData', data: openFrame(code, buf, start, end, 'CopyData').rest() };
    case Frontend.CopyDone:
      openFrame(code, buf, start, end, 'CopyDone').done();
      return { type: 'CopyDone' };
    case Frontend.CopyFail: {
      const r = openFrame(code, buf, start, end, 'CopyFail');
      const message = r.cstring('error message');
      r.done();
      return { type: 'CopyFail', message };
    }
    case Frontend.FunctionCall:
      return decodeFunctionCall(openFrame(code, buf, start, end, 'FunctionCall'));
    case Frontend.Terminate:
      openFrame(code, buf, start, end, 'Terminate').done();
      return { type: 'Terminate' };
    case Frontend.PasswordMessage:
      return { type: 'PasswordFamily', body: openFrame(code, buf, start, end, 'PasswordMessage').rest() };
    default:
      throw new ProtocolViolation(`unknown frontend message type 0x${code.toString(16).padStart(2, '0')}`);
  }
}

/**
 * Decodes an untyped startup-phase frame `length(4) code(4) ...`: a StartupMessage (protocol 3.x),
 * SSLRequest, GSSENCRequest or CancelRequest, told apart by the code after the length.
 */
export function decodeStartupPhase(buf: Buffer, start: number, end: number): StartupPhaseMessage {
  if (start < 0 || end > buf.length || end - start < 8) {
    throw new ProtocolViolation(`startup packet of ${end - start} bytes is shorter than its 8-byte header`);
  }
  const r = new Reader(buf, start, end, 'startup packet');
  const length = r.uint32('length');
  if (length !== end - start) {
    throw new ProtocolViolation(`startup packet: length field says ${length} but the frame holds ${end - start} bytes`);
  }
  // As in PostgreSQL's ProcessStartupPacket, the limit applies to the packet without its length word.
  if (length - 4 > Limits.MaxStartupPacketLength) {
    throw new ProtocolViolation(`startup packet: ${length - 4} bytes after the length exceeds ${Limits.MaxStartupPacketLength}`);
  }
  const code = r.uint32('request code');
  switch (code) {
    case StartupCode.SSLRequest:
      r.message = 'SSLRequest';
      r.done();
      return { type: 'SSLRequest' };
    case StartupCode.GSSENCRequest:
      r.message = 'GSSENCRequest';
      r.done();
      return { type: 'GSSENCRequest' };
    case StartupCode.CancelRequest:
      r.message = 'CancelRequest';
      return decodeCancelRequest(r);
    default:
      if (code >>> 16 !== 3) {
        throw new ProtocolViolation(
          `startup packet: unsupported protocol version ${code >>> 16}.${code & 0xffff} (or unknown request code ${code})`,
        );
      }
      r.message = 'StartupMessage';
      return decodeStartupParameters(r, code);
  }
}

function decodeCancelRequest(r: Reader): CancelRequest {
  const processId = r.int32('process ID');
  const n = r.remaining();
  if (n < Limits.MinCancelKeyLength || n > Limits.MaxCancelKeyLength) {
    throw new ProtocolViolation(
      `CancelRequest: secret key of ${n} bytes, expected ${Limits.MinCancelKeyLength} to ${Limits.MaxCancelKeyLength}`,
    );
  }
  return { type: 'CancelRequest', processId, secretKey: r.rest() };
}

/**
 * Name/value pairs, then a final NUL that must be the last byte, as PostgreSQL's
 * ProcessStartupPacket requires. A repeated name keeps its last value, as PostgreSQL does.
 */
function decodeStartupParameters(r: Reader, protocolVersion: number): StartupMessage {
  const parameters = new Map<string, string>();
  for (;;) {
    const name = r.cstring('parameter name');
    if (name === '') break;
    parameters.set(name, r.cstring(`value of parameter "${name}"`));
  }
  r.done();
  return { type: 'StartupMessage', protocolVersion, parameters };
}

function decodeParse(r: Reader): Parse {
  const name = r.cstring('statement name');
  const query = r.cstring('query string');
  const n = r.count16('parameter type count', 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32('parameter type OID');
  r.done();
  return { type: 'Parse', name, query, paramTypes };
}

function decodeBind(r: Reader): Bind {
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const paramFormats = readFormats(r, 'parameter format code');
  const n = r.count16('parameter count', 4);
  const params = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) params[i] = r.nullableBytes('parameter value');
  if (paramFormats.length > 1 && paramFormats.length !== n) {
    throw new ProtocolViolation(`Bind: ${paramFormats.length} parameter format codes for ${n} parameters`);
  }
  const resultFormats = readFormats(r, 'result format code');
  r.done();
  return { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
}

function decodeExecute(r: Reader): Execute {
  const portal = r.cstring('portal name');
  const maxRows = r.int32('maximum row count');
  r.done();
  return { type: 'Execute', portal, maxRows };
}

/** Describe ('D') and Close ('C') share their layout: Byte1 'S' or 'P', then a name. */
function decodeTarget(r: Reader, type: 'Describe' | 'Close'): Describe | Close {
  const t = r.uint8('target');
  if (t !== 0x53 && t !== 0x50) {
    throw new ProtocolViolation(`${r.message}: target 0x${t.toString(16)} is neither 'S' (statement) nor 'P' (portal)`);
  }
  const name = r.cstring('name');
  r.done();
  const target = t === 0x53 ? 'S' : 'P';
  return type === 'Describe' ? { type, target, name } : { type, target, name };
}

function decodeFunctionCall(r: Reader): FunctionCall {
  const functionOid = r.uint32('function OID');
  const argFormats = readFormats(r, 'argument format code');
  const n = r.count16('argument count', 4);
  const args = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) args[i] = r.nullableBytes('argument value');
  if (argFormats.length > 1 && argFormats.length !== n) {
    throw new ProtocolViolation(`FunctionCall: ${argFormats.length} argument format codes for ${n} arguments`);
  }
  const resultFormat = r.int16('result format code');
  r.done();
  return { type: 'FunctionCall', functionOid, argFormats, args, resultFormat };
}

// ---------------------------------------------------------------------------------------------
// The 'p' family: the session picks the decoder from the authentication request it forwarded.
// Like every decoder here, each takes the whole 'p' frame, header included.
// ---------------------------------------------------------------------------------------------

/** PasswordMessage ('p'), the answer to AuthenticationCleartextPassword or AuthenticationMD5Password. */
export function decodePasswordMessage(buf: Buffer, start: number, end: number): PasswordMessage {
  const r = openFrame(Frontend.PasswordMessage, buf, start, end, 'PasswordMessage');
  const password = r.cstring('password');
  r.done();
  return { type: 'PasswordMessage', password };
}

/** SASLInitialResponse ('p'), the first answer to AuthenticationSASL. */
export function decodeSASLInitialResponse(buf: Buffer, start: number, end: number): SASLInitialResponse {
  const r = openFrame(Frontend.PasswordMessage, buf, start, end, 'SASLInitialResponse');
  const mechanism = r.cstring('mechanism name');
  const data = r.nullableBytes('initial response');
  r.done();
  return { type: 'SASLInitialResponse', mechanism, data };
}

/** SASLResponse ('p'), the answer to AuthenticationSASLContinue: the body is the SASL data. */
export function decodeSASLResponse(buf: Buffer, start: number, end: number): SASLResponse {
  return { type: 'SASLResponse', data: openFrame(Frontend.PasswordMessage, buf, start, end, 'SASLResponse').rest() };
}

/** GSSResponse ('p'), the answer to AuthenticationGSS/GSSContinue/SSPI: the body is the GSSAPI data. */
export function decodeGSSResponse(buf: Buffer, start: number, end: number): GSSResponse {
  return { type: 'GSSResponse', data: openFrame(Frontend.PasswordMessage, buf, start, end, 'GSSResponse').rest() };
}
