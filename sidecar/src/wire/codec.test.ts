import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { decodeBackend, decodeDataRow, DataRowScanner, forEachDataRowField } from './backend.js';
import { Backend, ErrorField, StartupCode } from './codes.js';
import { encodeBackend, encodeFrontend } from './encode.js';
import { WireError } from './errors.js';
import {
  backendFixtures,
  decodeFrontendAs,
  frontendFixtures,
  startupFixtures,
  type FrontendFixtureMessage,
} from './fixtures.js';
import { decodeFrontend, decodeSASLInitialResponse, decodeStartupPhase } from './frontend.js';
import type { BackendMessage } from './messages.js';
import * as w from './writers.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Every message type must have at least one fixture: adding a type to a union breaks this table's type. */
const FRONTEND_TYPES: Record<FrontendFixtureMessage['type'], true> = {
  StartupMessage: true,
  SSLRequest: true,
  GSSENCRequest: true,
  CancelRequest: true,
  Query: true,
  Parse: true,
  Bind: true,
  Describe: true,
  Execute: true,
  Close: true,
  Sync: true,
  Flush: true,
  CopyData: true,
  CopyDone: true,
  CopyFail: true,
  FunctionCall: true,
  Terminate: true,
  PasswordFamily: true,
  PasswordMessage: true,
  SASLInitialResponse: true,
  SASLResponse: true,
  GSSResponse: true,
};
const BACKEND_TYPES: Record<BackendMessage['type'], true> = {
  AuthenticationOk: true,
  AuthenticationKerberosV5: true,
  AuthenticationCleartextPassword: true,
  AuthenticationMD5Password: true,
  AuthenticationGSS: true,
  AuthenticationGSSContinue: true,
  AuthenticationSSPI: true,
  AuthenticationSASL: true,
  AuthenticationSASLContinue: true,
  AuthenticationSASLFinal: true,
  BackendKeyData: true,
  BindComplete: true,
  CloseComplete: true,
  CommandComplete: true,
  CopyData: true,
  CopyDone: true,
  CopyInResponse: true,
  CopyOutResponse: true,
  CopyBothResponse: true,
  DataRow: true,
  EmptyQueryResponse: true,
  ErrorResponse: true,
  NoticeResponse: true,
  FunctionCallResponse: true,
  NegotiateProtocolVersion: true,
  NoData: true,
  NotificationResponse: true,
  ParameterDescription: true,
  ParameterStatus: true,
  ParseComplete: true,
  PortalSuspended: true,
  ReadyForQuery: true,
  RowDescription: true,
};

describe('fixture tables', () => {
  it('cover every frontend message type', () => {
    const seen = new Set([...startupFixtures, ...frontendFixtures].map((f) => f.message.type));
    expect([...seen].sort()).toEqual(Object.keys(FRONTEND_TYPES).sort());
  });
  it('cover every backend message type', () => {
    const seen = new Set(backendFixtures.map((f) => f.message.type));
    expect([...seen].sort()).toEqual(Object.keys(BACKEND_TYPES).sort());
  });
});

describe('round trip: decode(encode(x)) equals x', () => {
  it.each(startupFixtures.map((f) => [f.name, f] as const))('startup phase: %s', (_name, f) => {
    const frame = encodeFrontend(f.message);
    expect(frame.readUInt32BE(0)).toBe(frame.length);
    expect(decodeStartupPhase(frame, 0, frame.length)).toEqual(f.message);
    expect(decodeFrontend(0, frame, 0, frame.length)).toEqual(f.message);
  });

  it.each(frontendFixtures.map((f) => [f.name, f] as const))('frontend: %s', (_name, f) => {
    const frame = encodeFrontend(f.message);
    expect(frame.readUInt32BE(1)).toBe(frame.length - 1);
    expect(decodeFrontendAs(f.message.type, frame[0]!, frame, 0, frame.length)).toEqual(f.message);
    // Inside a larger buffer, at an offset: the decoder honours start/end.
    const padded = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), frame, Buffer.from([0xdd])]);
    expect(decodeFrontendAs(f.message.type, frame[0]!, padded, 3, 3 + frame.length)).toEqual(f.message);
  });

  it.each(backendFixtures.map((f) => [f.name, f] as const))('backend: %s', (_name, f) => {
    const frame = encodeBackend(f.message);
    expect(frame.readUInt32BE(1)).toBe(frame.length - 1);
    expect(decodeBackend(frame[0]!, frame, 0, frame.length)).toEqual(f.message);
    const padded = Buffer.concat([Buffer.from([0x44, 0, 0]), frame, Buffer.from([0x44])]);
    expect(decodeBackend(frame[0]!, padded, 3, 3 + frame.length)).toEqual(f.message);
  });

  it('keeps the order of ErrorResponse fields and of startup parameters', () => {
    const fields: [string, string][] = [
      ['M', 'first'],
      ['S', 'ERROR'],
      ['C', '42501'],
      ['V', 'ERROR'],
    ];
    const frame = w.errorResponse(fields);
    const m = decodeBackend(frame[0]!, frame, 0, frame.length);
    expect(m.type === 'ErrorResponse' && [...m.fields.entries()]).toEqual(fields);
    const params: [string, string][] = [
      ['database', 'd'],
      ['user', 'u'],
      ['application_name', 'a'],
    ];
    const startup = w.startupMessage(params);
    const s = decodeStartupPhase(startup, 0, startup.length);
    expect(s.type === 'StartupMessage' && [...s.parameters.entries()]).toEqual(params);
  });

  it('decodes the p family as PasswordFamily with the body, and its concrete decoders read the same frame', () => {
    const frame = w.saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x'));
    const m = decodeFrontend(frame[0]!, frame, 0, frame.length);
    expect(m).toEqual({ type: 'PasswordFamily', body: frame.subarray(5) });
    expect(decodeSASLInitialResponse(frame, 0, frame.length)).toEqual({
      type: 'SASLInitialResponse',
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=x'),
    });
    expect(encodeFrontend(m)).toEqual(frame);
  });

  it('returns views of the input for byte fields (no copy)', () => {
    const frame = w.dataRow(['abc', null]);
    const m = decodeBackend(frame[0]!, frame, 0, frame.length);
    if (m.type !== 'DataRow') throw new Error(m.type);
    expect(m.values[0]!.buffer).toBe(frame.buffer);
    frame[frame.length - 4 - 3] = 0x78; // 'a' -> 'x' in the frame shows through the view
    expect(m.values[0]!.toString()).toBe('xbc');
  });
});

describe('golden bytes (independent of the writers)', () => {
  const cases: [string, Buffer, Buffer][] = [
    ['Sync', w.sync(), hex('53 00000004')],
    ['Query', w.query('SELECT 1'), hex('51 0000000d 53454c45435420 31 00')],
    ['ReadyForQuery I', w.readyForQuery('I'), hex('5a 00000005 49')],
    ['ReadyForQuery E', w.readyForQuery('E'), hex('5a 00000005 45')],
    ['SSLRequest', w.sslRequest(), hex('00000008 04d2162f')],
    ['GSSENCRequest', w.gssEncRequest(), hex('00000008 04d21630')],
    ['CancelRequest', w.cancelRequest(4242, hex('01020304')), hex('00000010 04d2162e 00001092 01020304')],
    ['StartupMessage', w.startupMessage({ user: 'a' }), hex('00000010 00030000 7573657200 6100 00')],
    ['StartupMessage 3.2', w.startupMessage({}, StartupCode.Protocol32), hex('00000009 00030002 00')],
    ['DataRow', w.dataRow(['1', null]), hex('44 0000000f 0002 00000001 31 ffffffff')],
    ['AuthenticationMD5Password', w.authenticationMD5Password(hex('dead00ef')), hex('52 0000000c 00000005 dead00ef')],
    ['AuthenticationSASL', w.authenticationSASL(['A']), hex('52 0000000b 0000000a 4100 00')],
    ['ErrorResponse', w.errorResponse({ S: 'ERROR', M: 'x' }), hex('45 0000000f 53 4552524f5200 4d 7800 00')],
    ['Bind', w.bind('', 's', [null], [], [1]), hex('42 00000013 00 7300 0000 0001 ffffffff 0001 0001')],
    [
      'RowDescription',
      w.rowDescription([{ name: 'a', tableOid: 1, columnAttr: 2, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]),
      hex('54 0000001a 0001 6100 00000001 0002 00000017 0004 ffffffff 0000'),
    ],
    ['SASLInitialResponse null', w.saslInitialResponse('X', null), hex('70 0000000a 5800 ffffffff')],
    ['Describe', w.describe('S', 'q'), hex('44 00000007 53 7100')],
    ['Execute', w.execute('', 5), hex('45 00000009 00 00000005')],
    ['multi-byte UTF-8', w.commandComplete('é🐘'), hex('43 0000000b c3a9 f09f9098 00')],
  ];
  it.each(cases)('%s', (_name, actual, expected) => {
    expect(actual.toString('hex')).toBe(expected.toString('hex'));
  });
});

describe('writers', () => {
  it('share the constant frames', () => {
    expect(w.sync()).toBe(w.sync());
    expect(w.readyForQuery('T')).toBe(w.readyForQuery('T'));
    expect(w.readyForQuery('T')).not.toBe(w.readyForQuery('I'));
    expect(w.authenticationOk().toString('hex')).toBe('520000000800000000');
    expect(w.sslResponse(true).toString()).toBe('S');
    expect(w.sslResponse(false).toString()).toBe('N');
    expect(w.gssEncResponse(true).toString()).toBe('G');
  });

  it('refuse strings with NUL, bad field codes, bad keys and too many values', () => {
    expect(() => w.query('SELECT 1\0; DROP TABLE t')).toThrow(/Query: it contains a NUL/);
    expect(() => w.errorResponse({ MM: 'x' })).toThrow(WireError);
    expect(() => w.errorResponse([['', 'x']])).toThrow(/field code/);
    expect(() => w.startupMessage({ '': 'x' })).toThrow(/parameter name is empty/);
    expect(() => w.cancelRequest(1, Buffer.alloc(3))).toThrow(/secret key of 3 bytes/);
    expect(() => w.backendKeyData(1, Buffer.alloc(257))).toThrow(/secret key of 257 bytes/);
    expect(() => w.authenticationMD5Password(Buffer.alloc(5))).toThrow(/salt of 5 bytes/);
    expect(() => w.dataRow(new Array<null>(65536).fill(null))).toThrow(/at most 65535/);
    expect(() => w.readyForQuery('X' as 'I')).toThrow(/ReadyForQuery/);
  });

  it('encode 65535 parameters (counts are unsigned, as PostgreSQL reads them)', () => {
    const values = new Array<string>(65535).fill('1');
    const frame = w.bind('', '', values);
    const m = decodeFrontend(frame[0]!, frame, 0, frame.length);
    expect(m.type === 'Bind' && m.params.length).toBe(65535);
    const types = w.parse('', 'q', new Array<number>(40000).fill(23));
    const p = decodeFrontend(types[0]!, types, 0, types.length);
    expect(p.type === 'Parse' && p.paramTypes.length).toBe(40000);
  });

  it('accept Map, pairs and objects for error fields', () => {
    const fromMap = w.noticeResponse(new Map([[ErrorField.Severity, 'NOTICE']]));
    expect(w.noticeResponse([['S', 'NOTICE']])).toEqual(fromMap);
    expect(w.noticeResponse({ S: 'NOTICE' })).toEqual(fromMap);
  });
});

describe('DataRow field scanners', () => {
  const values = [Buffer.from('1'), null, Buffer.alloc(0), Buffer.from('ünï'), null];
  const frame = Buffer.concat([Buffer.from([9, 9]), w.dataRow(values), Buffer.from([9])]);
  const start = 2;
  const end = frame.length - 1;

  it('DataRowScanner locates every value and decodes only the ones asked for', () => {
    const s = new DataRowScanner(2); // grows past its initial size
    expect(s.scan(frame, start, end)).toBe(5);
    expect(s.count).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => s.value(i))).toEqual(values);
    expect(s.text(3)).toBe('ünï');
    expect(s.text(1)).toBeNull();
    expect(s.isNull(4)).toBe(true);
    expect(s.isNull(2)).toBe(false);
    expect(s.lengths[3]).toBe(5);
    expect(frame.subarray(s.offsets[3]!, s.offsets[3]! + 5).toString()).toBe('ünï');
    expect(() => s.value(5)).toThrow(RangeError);
    const empty = w.dataRow([]);
    expect(s.scan(empty, 0, empty.length)).toBe(0);
    expect(() => s.value(0)).toThrow(RangeError);
  });

  it('forEachDataRowField reports index, offset and length (-1 for NULL)', () => {
    const seen: [number, string | null][] = [];
    const n = forEachDataRowField(frame, start, end, (i, offset, length) => {
      seen.push([i, length < 0 ? null : frame.toString('utf8', offset, offset + length)]);
    });
    expect(n).toBe(5);
    expect(seen).toEqual([
      [0, '1'],
      [1, null],
      [2, ''],
      [3, 'ünï'],
      [4, null],
    ]);
  });

  it('decodeDataRow equals decodeBackend', () => {
    expect(decodeDataRow(frame, start, end)).toEqual(decodeBackend(Backend.DataRow, frame, start, end));
  });
});

describe('interoperability with pg-protocol (node-postgres)', () => {
  const dec = (frame: Buffer): unknown => decodeFrontend(frame[0]!, frame, 0, frame.length);

  it('decodes what node-postgres sends', () => {
    const startup = serialize.startup({ user: 'alice', database: 'shop' });
    const s = decodeStartupPhase(startup, 0, startup.length);
    expect(s).toEqual({
      type: 'StartupMessage',
      protocolVersion: StartupCode.Protocol30,
      parameters: new Map([
        ['user', 'alice'],
        ['database', 'shop'],
        ['client_encoding', 'UTF8'],
      ]),
    });
    const ssl = serialize.requestSsl();
    expect(decodeStartupPhase(ssl, 0, ssl.length)).toEqual({ type: 'SSLRequest' });
    const cancel = serialize.cancel(77, 0x01020304);
    expect(decodeStartupPhase(cancel, 0, cancel.length)).toEqual({ type: 'CancelRequest', processId: 77, secretKey: hex('01020304') });
    expect(dec(serialize.query('SELECT ü'))).toEqual({ type: 'Query', query: 'SELECT ü' });
    expect(dec(serialize.parse({ name: 's', text: 'SELECT $1', types: [23] }))).toEqual({
      type: 'Parse',
      name: 's',
      query: 'SELECT $1',
      paramTypes: [23],
    });
    expect(dec(serialize.bind({ portal: 'p', statement: 's', values: ['a', null, Buffer.from([1, 2])] }))).toEqual({
      type: 'Bind',
      portal: 'p',
      statement: 's',
      paramFormats: [0, 0, 1],
      params: [Buffer.from('a'), null, Buffer.from([1, 2])],
      resultFormats: [0],
    });
    expect(dec(serialize.execute({ portal: 'p', rows: 10 }))).toEqual({ type: 'Execute', portal: 'p', maxRows: 10 });
    expect(dec(serialize.describe({ type: 'P', name: 'p' }))).toEqual({ type: 'Describe', target: 'P', name: 'p' });
    expect(dec(serialize.close({ type: 'S', name: 's' }))).toEqual({ type: 'Close', target: 'S', name: 's' });
    expect(dec(serialize.sync())).toEqual({ type: 'Sync' });
    expect(dec(serialize.flush())).toEqual({ type: 'Flush' });
    expect(dec(serialize.end())).toEqual({ type: 'Terminate' });
    expect(dec(serialize.copyData(Buffer.from('x\n')))).toEqual({ type: 'CopyData', data: Buffer.from('x\n') });
    expect(dec(serialize.copyDone())).toEqual({ type: 'CopyDone' });
    expect(dec(serialize.copyFail('no'))).toEqual({ type: 'CopyFail', message: 'no' });
    const sasl = serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc');
    expect(decodeSASLInitialResponse(sasl, 0, sasl.length)).toEqual({
      type: 'SASLInitialResponse',
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=abc'),
    });
  });

  it('encodes what node-postgres parses', () => {
    const frames = [
      w.authenticationMD5Password(hex('01020304')),
      w.authenticationSASL(['SCRAM-SHA-256']),
      w.backendKeyData(42, hex('00000007')),
      w.parameterStatus('TimeZone', 'UTC'),
      w.rowDescription([{ name: 'email', tableOid: 5, columnAttr: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]),
      w.dataRow(['a@b.c', null, 'ü']),
      w.commandComplete('SELECT 1'),
      w.errorResponse({ S: 'ERROR', C: '42501', M: 'dbward: denied by r: no' }),
      w.notificationResponse(9, 'ch', 'hi'),
      w.copyOutResponse(0, [0, 0]),
      w.readyForQuery('T'),
    ];
    const got: Record<string, unknown>[] = [];
    const parser = new Parser();
    // Split in two uneven halves to exercise pg-protocol's own buffering too.
    const all = Buffer.concat(frames);
    const cut = Math.floor(all.length / 3);
    parser.parse(all.subarray(0, cut), (m) => got.push(m as unknown as Record<string, unknown>));
    parser.parse(all.subarray(cut), (m) => got.push(m as unknown as Record<string, unknown>));
    expect(got.map((m) => m.name)).toEqual([
      'authenticationMD5Password',
      'authenticationSASL',
      'backendKeyData',
      'parameterStatus',
      'rowDescription',
      'dataRow',
      'commandComplete',
      'error',
      'notification',
      'copyOutResponse',
      'readyForQuery',
    ]);
    expect(got[0]!.salt).toEqual(hex('01020304'));
    expect(got[1]!.mechanisms).toEqual(['SCRAM-SHA-256']);
    expect(got[2]!.processID).toBe(42);
    expect(got[2]!.secretKey).toBe(7);
    expect([got[3]!.parameterName, got[3]!.parameterValue]).toEqual(['TimeZone', 'UTC']);
    expect((got[4]!.fields as { name: string; dataTypeID: number; columnID: number }[])[0]).toMatchObject({
      name: 'email',
      dataTypeID: 25,
      columnID: 2,
    });
    expect(got[5]!.fields).toEqual(['a@b.c', null, 'ü']);
    expect(got[6]!.text).toBe('SELECT 1');
    expect([got[7]!.severity, got[7]!.code, got[7]!.message]).toEqual(['ERROR', '42501', 'dbward: denied by r: no']);
    expect([got[8]!.processId, got[8]!.channel, got[8]!.payload]).toEqual([9, 'ch', 'hi']);
    expect(got[9]!.columnTypes).toEqual([0, 0]);
    expect(got[10]!.status).toBe('T');
  });
});

describe('startup packet size limit', () => {
  it('accepts 10000 bytes after the length word, as PostgreSQL does', () => {
    const frame = w.startupMessage({ user: 'u', options: 'x'.repeat(10000 - 4 - 5 - 2 - 8 - 1 - 1) });
    expect(frame.length).toBe(10004);
    const m = decodeStartupPhase(frame, 0, frame.length);
    expect(m.type === 'StartupMessage' && m.parameters.get('options')!.length).toBe(9979);
  });
});
