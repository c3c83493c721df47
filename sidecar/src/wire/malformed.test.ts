import { describe, expect, it } from 'vitest';
import { DataRowScanner, decodeBackend, forEachDataRowField } from './backend.js';
import { encodeBackend, encodeFrontend } from './encode.js';
import { ProtocolViolation, WireError } from './errors.js';
import { backendFixtures, frontendFixtures, startupFixtures } from './fixtures.js';
import {
  decodeFrontend,
  decodeGSSResponse,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPhase,
} from './frontend.js';
import { FrameSplitter } from './splitter.js';
import { prng as rng } from '../../test/support/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const str = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** A typed frame with a correct header around the body given in hex. */
function typed(letter: string, bodyHex: string): Buffer {
  const body = hex(bodyHex);
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = letter.charCodeAt(0);
  frame.writeUInt32BE(4 + body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/** An untyped frame with a correct length around the request code and body given in hex. */
function untyped(bodyHex: string): Buffer {
  const body = hex(bodyHex);
  const frame = Buffer.alloc(4 + body.length);
  frame.writeUInt32BE(4 + body.length, 0);
  body.copy(frame, 4);
  return frame;
}

type Decode = (buf: Buffer, start: number, end: number) => unknown;
const fe: Decode = (buf, start, end) => decodeFrontend(buf[start] ?? 0, buf, start, end);
const be: Decode = (buf, start, end) => decodeBackend(buf[start] ?? 0, buf, start, end);
const startup: Decode = decodeStartupPhase;
const scan: Decode = (buf, start, end) => new DataRowScanner().scan(buf, start, end);
const fields: Decode = (buf, start, end) =>
  forEachDataRowField(buf, start, end, () => {
    throw new Error('callback called for a malformed row');
  });

const cases: [string, Decode, Buffer, RegExp][] = [
  // Frame headers
  ['frame shorter than its header', fe, hex('51000000'), /shorter than its 5-byte header/],
  ['length field larger than the frame', fe, hex('5100000009 41 00'), /length field says 9/],
  ['length field smaller than the frame', fe, hex('5100000004 41 00'), /length field says 4/],
  ['type byte differs from the code', (b, s, e) => decodeFrontend(0x50, b, s, e), typed('Q', '00'), /not 0x50/],
  ['unknown frontend type', fe, typed('z', ''), /unknown frontend message type 0x7a/],
  ['unknown backend type', be, typed('z', ''), /unknown backend message type 0x7a/],
  ['backend code on the frontend decoder', fe, typed('Z', '49'), /unknown frontend message type 0x5a/],
  // Startup phase
  ['startup packet under 8 bytes', startup, hex('00000004'), /shorter than its 8-byte header/],
  ['startup length field mismatch', startup, hex('0000000c 04d2162f'), /length field says 12/],
  ['startup packet above 10000 bytes', startup, untyped('00030000' + '61'.repeat(9996) + '00'), /10001 bytes after the length exceeds 10000/],
  ['SSLRequest with extra bytes', startup, untyped('04d2162f 00'), /SSLRequest: 1 unexpected bytes/],
  ['GSSENCRequest with extra bytes', startup, untyped('04d21630 0000'), /GSSENCRequest: 2 unexpected bytes/],
  ['CancelRequest without process ID', startup, untyped('04d2162e 0000'), /process ID needs 4 bytes/],
  ['CancelRequest with a 3-byte key', startup, untyped('04d2162e 00000001 010203'), /secret key of 3 bytes/],
  ['CancelRequest with a 257-byte key', startup, untyped('04d2162e 00000001' + '01'.repeat(257)), /secret key of 257 bytes/],
  ['protocol 2.0', startup, untyped('00020000' + str('user\0a\0\0')), /unsupported protocol version 2\.0/],
  ['unknown request code', startup, untyped('04d21631'), /unknown request code 80877105/],
  ['StartupMessage without final terminator', startup, untyped('00030000' + str('user\0a\0')), /parameter name is not terminated/],
  ['StartupMessage parameter without value', startup, untyped('00030000' + str('user\0')), /value of parameter "user" is not terminated/],
  ['StartupMessage value not terminated', startup, untyped('00030000' + str('user\0ab')), /value of parameter "user" is not terminated/],
  ['StartupMessage bytes after the terminator', startup, untyped('00030000' + str('user\0a\0\0x')), /StartupMessage: 1 unexpected bytes/],
  ['StartupMessage empty body', startup, untyped('00030000'), /StartupMessage: parameter name is not terminated/],
  // Frontend typed messages
  ['Query without NUL', fe, typed('Q', str('SELECT 1')), /Query: query string is not terminated/],
  ['Query with trailing bytes', fe, typed('Q', str('SELECT 1\0xx')), /Query: 2 unexpected bytes/],
  ['Query long string without NUL', fe, typed('Q', str('x'.repeat(100))), /query string is not terminated/],
  ['Parse count beyond the frame', fe, typed('P', '00 00 03e8 00000017'), /parameter type count is 1000/],
  ['Parse OIDs fewer than the count', fe, typed('P', '00 00 0002 00000017 0000'), /parameter type count is 2 but only 6 bytes remain/],
  ['Parse missing count', fe, typed('P', '00 00'), /parameter type count needs 2 bytes/],
  ['Bind NULL-length -2', fe, typed('B', '00 00 0000 0001 fffffffe 0000'), /parameter value has invalid length -2/],
  ['Bind value beyond the frame', fe, typed('B', '00 00 0000 0001 00000010 4141 0000'), /parameter value needs 16 bytes but only/],
  ['Bind 2 formats for 3 params', fe, typed('B', '00 00 0002 0000 0001 0003 ffffffff ffffffff ffffffff 0000'), /2 parameter format codes for 3 parameters/],
  ['Bind format count beyond the frame', fe, typed('B', '00 00 7fff 0000'), /parameter format code count is 32767/],
  ['Bind missing result formats', fe, typed('B', '00 00 0000 0000'), /result format code count needs 2 bytes/],
  ['Bind trailing bytes', fe, typed('B', '00 00 0000 0000 0000 ff'), /Bind: 1 unexpected bytes/],
  ['Bind portal without NUL', fe, typed('B', '41'), /portal name is not terminated/],
  ['Describe bad target', fe, typed('D', '58 00'), /neither 'S' \(statement\) nor 'P'/],
  ['Describe missing target', fe, typed('D', ''), /target needs 1 bytes/],
  ['Close name without NUL', fe, typed('C', '53 41'), /Close: name is not terminated/],
  ['Execute truncated row count', fe, typed('E', '00 0000'), /maximum row count needs 4 bytes/],
  ['Sync with a body', fe, typed('S', '00'), /Sync: 1 unexpected bytes/],
  ['Flush with a body', fe, typed('H', '00'), /Flush: 1 unexpected bytes/],
  ['Terminate with a body', fe, typed('X', '0000'), /Terminate: 2 unexpected bytes/],
  ['CopyDone with a body', fe, typed('c', '00'), /CopyDone: 1 unexpected bytes/],
  ['CopyFail without NUL', fe, typed('f', str('oops')), /CopyFail: error message is not terminated/],
  ['FunctionCall truncated result format', fe, typed('F', '00000001 0000 0000 00'), /result format code needs 2 bytes/],
  ['FunctionCall argument length -3', fe, typed('F', '00000001 0000 0001 fffffffd 0000'), /argument value has invalid length -3/],
  ['FunctionCall 2 formats for 1 argument', fe, typed('F', '00000001 0002 0000 0000 0001 ffffffff 0000'), /2 argument format codes for 1 arguments/],
  // The 'p' family
  ['PasswordMessage without NUL', decodePasswordMessage, typed('p', str('secret')), /PasswordMessage: password is not terminated/],
  ['PasswordMessage trailing bytes', decodePasswordMessage, typed('p', str('a\0b')), /PasswordMessage: 1 unexpected bytes/],
  ['SASLInitialResponse length -2', decodeSASLInitialResponse, typed('p', str('M\0') + 'fffffffe'), /initial response has invalid length -2/],
  ['SASLInitialResponse data beyond frame', decodeSASLInitialResponse, typed('p', str('M\0') + '00000005 41'), /initial response needs 5 bytes/],
  ['SASLInitialResponse missing length', decodeSASLInitialResponse, typed('p', str('M\0')), /initial response needs 4 bytes/],
  ['SASLInitialResponse mechanism without NUL', decodeSASLInitialResponse, typed('p', str('SCRAM')), /mechanism name is not terminated/],
  ['SASLResponse with wrong type byte', decodeSASLResponse, typed('Q', '00'), /not 0x70/],
  ['GSSResponse with bad length', decodeGSSResponse, hex('70 00000009 00'), /length field says 9/],
  // Backend
  ['Authentication unknown subtype', be, typed('R', '00000006'), /unknown authentication type 6/],
  ['Authentication missing subtype', be, typed('R', '0000'), /authentication type needs 4 bytes/],
  ['AuthenticationOk with extra bytes', be, typed('R', '00000000 00'), /1 unexpected bytes/],
  ['AuthenticationMD5Password short salt', be, typed('R', '00000005 010203'), /MD5 salt needs 4 bytes/],
  ['AuthenticationMD5Password long salt', be, typed('R', '00000005 0102030405'), /1 unexpected bytes/],
  ['AuthenticationSASL without list terminator', be, typed('R', '0000000a' + str('SCRAM-SHA-256\0')), /SASL mechanism name is not terminated/],
  ['AuthenticationSASL trailing bytes', be, typed('R', '0000000a' + str('A\0\0B')), /1 unexpected bytes/],
  ['BackendKeyData 3-byte key', be, typed('K', '00000001 010203'), /secret key of 3 bytes/],
  ['BackendKeyData 257-byte key', be, typed('K', '00000001' + '00'.repeat(257)), /secret key of 257 bytes/],
  ['BackendKeyData no process ID', be, typed('K', '0001'), /process ID needs 4 bytes/],
  ['CommandComplete without NUL', be, typed('C', str('SELECT 1')), /command tag is not terminated/],
  ['CopyInResponse count beyond frame', be, typed('G', '00 0003 0000'), /column format code count is 3/],
  ['CopyOutResponse missing format', be, typed('H', ''), /overall format needs 1 bytes/],
  ['CopyBothResponse trailing', be, typed('W', '00 0000 00'), /CopyBothResponse: 1 unexpected bytes/],
  ['DataRow missing count', be, typed('D', ''), /DataRow: the column count is missing/],
  ['DataRow count beyond frame', be, typed('D', '0003 ffffffff'), /column count is 3 but only 4 bytes remain/],
  ['DataRow length -5', be, typed('D', '0001 fffffffb'), /column 0 has invalid length -5/],
  ['DataRow value beyond frame', be, typed('D', '0002 ffffffff 00000009 414141 41'), /column 1 needs 9 bytes but only 4 remain/],
  ['DataRow truncated length', be, typed('D', '0002 00000001 41 000000'), /length of column 1 needs 4 bytes but only 3 remain/],
  ['DataRow trailing bytes', be, typed('D', '0001 00000001 41 42'), /DataRow: 1 unexpected bytes after the last column/],
  ['DataRow length mismatch', be, hex('44 00000010 0000'), /length field says 16/],
  ['DataRowScanner: length -5', scan, typed('D', '0001 fffffffb'), /column 0 has invalid length -5/],
  ['DataRowScanner: trailing bytes', scan, typed('D', '0001 00000001 41 42'), /1 unexpected bytes/],
  ['DataRowScanner: wrong type byte', scan, typed('T', '0000'), /not 0x44/],
  ['forEachDataRowField: value beyond frame', fields, typed('D', '0002 00000000 00000009 41'), /column 1 needs 9 bytes/],
  ['forEachDataRowField: count beyond frame', fields, typed('D', '0009'), /column count is 9/],
  ['ErrorResponse without final terminator', be, typed('E', '53' + str('ERROR\0')), /field type needs 1 bytes/],
  ['ErrorResponse value without NUL', be, typed('E', '4d' + str('oops')), /field 'M' is not terminated/],
  ['ErrorResponse trailing bytes', be, typed('E', '00 00'), /ErrorResponse: 1 unexpected bytes/],
  ['NoticeResponse empty body', be, typed('N', ''), /NoticeResponse: field type needs 1 bytes/],
  ['FunctionCallResponse length -2', be, typed('V', 'fffffffe'), /result value has invalid length -2/],
  ['NegotiateProtocolVersion negative count', be, typed('v', '00000000 ffffffff'), /unrecognized option count is negative/],
  ['NegotiateProtocolVersion count beyond frame', be, typed('v', '00000000 00000005' + str('a\0')), /unrecognized option count is 5/],
  ['NotificationResponse payload without NUL', be, typed('A', '00000001' + str('ch\0pay')), /payload is not terminated/],
  ['ParameterDescription count beyond frame', be, typed('t', '0002 00000017'), /parameter count is 2/],
  ['ParameterStatus value missing', be, typed('S', str('a\0')), /parameter value is not terminated/],
  ['ReadyForQuery bad status', be, typed('Z', '58'), /transaction status 0x58 is not 'I', 'T' or 'E'/],
  ['ReadyForQuery missing status', be, typed('Z', ''), /transaction status needs 1 bytes/],
  ['ReadyForQuery trailing', be, typed('Z', '4900'), /ReadyForQuery: 1 unexpected bytes/],
  ['RowDescription count beyond frame', be, typed('T', '0002' + str('a\0') + '00'.repeat(18)), /field count is 2/],
  ['RowDescription truncated field', be, typed('T', '0001' + str('abc\0') + '00'.repeat(16)), /format code needs 2 bytes/],
  ['RowDescription name without NUL', be, typed('T', '0001' + '41'.repeat(19)), /field name is not terminated/],
  ['ParseComplete with body', be, typed('1', '00'), /ParseComplete: 1 unexpected bytes/],
  ['BindComplete with body', be, typed('2', '00'), /BindComplete: 1 unexpected bytes/],
  ['CloseComplete with body', be, typed('3', '00'), /CloseComplete: 1 unexpected bytes/],
  ['NoData with body', be, typed('n', '00'), /NoData: 1 unexpected bytes/],
  ['PortalSuspended with body', be, typed('s', '00'), /PortalSuspended: 1 unexpected bytes/],
  ['EmptyQueryResponse with body', be, typed('I', '00'), /EmptyQueryResponse: 1 unexpected bytes/],
];

describe('malformed messages raise ProtocolViolation naming the field', () => {
  it.each(cases)('%s', (_name, decode, frame, message) => {
    let error: unknown;
    try {
      decode(frame, 0, frame.length);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolViolation);
    expect((error as Error).message).toMatch(message);
    // The same bytes inside a larger buffer: the decoder must not read past `end` into what follows.
    const padded = Buffer.concat([hex('aabb'), frame, Buffer.from('\0\0\0\0\0\0\0\0\0', 'latin1')]);
    expect(() => decode(padded, 2, 2 + frame.length)).toThrow(ProtocolViolation);
  });

  it('a string terminated only after `end` is not read into the next frame', () => {
    // "SELECT 1" has no NUL before end, but the next frame in the chunk starts with a NUL byte.
    const chunk = Buffer.concat([typed('Q', str('SELECT 1')), hex('00000008 04d2162f')]);
    expect(() => decodeFrontend(0x51, chunk, 0, 13)).toThrow(/query string is not terminated/);
    const long = Buffer.concat([typed('Q', str('x'.repeat(200))), hex('00')]);
    expect(() => decodeFrontend(0x51, long, 0, long.length - 1)).toThrow(/not terminated/);
  });
});


describe('fuzz: random mutations of valid frames', () => {
  const frontend = frontendFixtures.map((f) => encodeFrontend(f.message));
  const startupFrames = startupFixtures.map((f) => encodeFrontend(f.message));
  const backend = backendFixtures.map((f) => encodeBackend(f.message));
  const interesting = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x53, 0x50];

  function mutate(frame: Buffer, random: () => number): Buffer {
    const b = Buffer.from(frame);
    const pick = (n: number): number => Math.floor(random() * n);
    switch (pick(6)) {
      case 0: // flip bytes
        for (let k = 1 + pick(3); k > 0; k--) b[pick(b.length)] = pick(256);
        return b;
      case 1: // truncate, keeping or fixing the length field
        return fixLength(b.subarray(0, pick(b.length + 1)), frame, random() < 0.5);
      case 2: // append random bytes
        return fixLength(Buffer.concat([b, Buffer.from(Array.from({ length: 1 + pick(8) }, () => pick(256)))]), frame, random() < 0.5);
      case 3: // interesting values at a random place (counts, lengths, terminators)
        for (let k = 1 + pick(4); k > 0; k--) b[pick(b.length)] = interesting[pick(interesting.length)]!;
        return b;
      case 4: // remove one byte from the middle
        return fixLength(Buffer.concat([b.subarray(0, pick(b.length)), b.subarray(pick(b.length))]), frame, true);
      default: // corrupt an aligned Int16/Int32 after the header
        if (b.length > 7) b.writeInt16BE(pick(65536) - 32768, 5 + pick(b.length - 6));
        return b;
    }
  }

  /** Rewrites the length field of a mutated frame so the damage reaches the body decoder. */
  function fixLength(b: Buffer, original: Buffer, fix: boolean): Buffer {
    if (!fix) return b;
    const typedFrame = original[0] !== 0;
    const at = typedFrame ? 1 : 0;
    if (b.length >= at + 4) b.writeUInt32BE(b.length - at, at);
    return b;
  }

  function expectOnlyWireErrors(f: () => unknown): unknown {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      return undefined;
    }
  }

  it('20,000 mutations: decoders throw only WireError, and what decodes re-encodes stably', () => {
    const random = rng(20260522);
    const scanner = new DataRowScanner();
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      const kind = Math.floor(random() * 3);
      const pool = kind === 0 ? frontend : kind === 1 ? backend : startupFrames;
      const b = mutate(pool[Math.floor(random() * pool.length)]!, random);
      const code = b[0] ?? 0;
      const results: unknown[] = [];
      if (kind === 0) {
        const m = expectOnlyWireErrors(() => decodeFrontend(code, b, 0, b.length));
        results.push(m);
        if (m !== undefined && (m as { type: string }).type !== 'PasswordFamily') {
          const again = encodeFrontend(m as Parameters<typeof encodeFrontend>[0]);
          expect(decodeFrontend(again[0]!, again, 0, again.length)).toEqual(m);
        }
        for (const d of [decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse, decodeGSSResponse]) {
          results.push(expectOnlyWireErrors(() => d(b, 0, b.length)));
        }
      } else if (kind === 1) {
        const m = expectOnlyWireErrors(() => decodeBackend(code, b, 0, b.length));
        results.push(m);
        if (m !== undefined) {
          const again = encodeBackend(m as Parameters<typeof encodeBackend>[0]);
          expect(decodeBackend(again[0]!, again, 0, again.length)).toEqual(m);
        }
        results.push(expectOnlyWireErrors(() => scanner.scan(b, 0, b.length)));
        results.push(expectOnlyWireErrors(() => forEachDataRowField(b, 0, b.length, () => {})));
      } else {
        const m = expectOnlyWireErrors(() => decodeStartupPhase(b, 0, b.length));
        results.push(m);
        if (m !== undefined) {
          const again = encodeFrontend(m as Parameters<typeof encodeFrontend>[0]);
          expect(decodeStartupPhase(again, 0, again.length)).toEqual(m);
        }
      }
      if (results[0] === undefined) rejected++;
      else decoded++;
    }
    // The mutations exercise both outcomes substantially.
    expect(rejected).toBeGreaterThan(5_000);
    expect(decoded).toBeGreaterThan(2_000);
  });

  it('2,000 mutated streams through FrameSplitter throw only WireError', () => {
    const random = rng(7);
    const stream = Buffer.concat(backend);
    let thrown = 0;
    for (let i = 0; i < 2_000; i++) {
      const b = Buffer.from(stream);
      for (let k = 0; k < 3; k++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      const splitter = new FrameSplitter({ maxFrameLength: 4096, streamThreshold: 512 });
      const cut = Math.floor(random() * b.length);
      try {
        const handler = {
          onFrame(code: number, buf: Buffer, start: number, end: number) {
            expectOnlyWireErrors(() => decodeBackend(code, buf, start, end));
          },
          streamFrame: () => random() < 0.5,
          onFramePiece() {},
        };
        splitter.push(b.subarray(0, cut), handler);
        splitter.push(b.subarray(cut), handler);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        thrown++;
      }
    }
    expect(thrown).toBeGreaterThan(100);
  });
});
