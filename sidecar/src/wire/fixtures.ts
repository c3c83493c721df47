/**
 * Example messages of every type of both directions, with edge cases (empty strings, NULL values,
 * zero columns, 3.2 cancel keys up to 256 bytes, multi-byte UTF-8). Used by the codec's tests and
 * available to the tests of the layers above; not part of the runtime API (not exported by index).
 */
import { ErrorField, StartupCode } from './codes.js';
import {
  decodeFrontend,
  decodeGSSResponse,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
} from './frontend.js';
import type { BackendMessage, FrontendMessage, PasswordFamilyMessage } from './messages.js';

/** A frontend message as the decoders return it; 'p' messages under their concrete names. */
export type FrontendFixtureMessage = FrontendMessage | PasswordFamilyMessage;

export interface Fixture<M> {
  name: string;
  message: M;
}

const utf8 = 'Grüße, 世界 🐘';
const bytes = (...xs: number[]): Buffer => Buffer.from(xs);
const text = (s: string): Buffer => Buffer.from(s, 'utf8');
/** Deterministic pseudo-random bytes. */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

/** The untyped messages that may open a frontend stream. */
export const startupFixtures: Fixture<FrontendFixtureMessage>[] = [
  {
    name: 'StartupMessage 3.0',
    message: {
      type: 'StartupMessage',
      protocolVersion: StartupCode.Protocol30,
      parameters: new Map([
        ['user', 'alice'],
        ['database', 'shop'],
        ['application_name', 'psql'],
        ['client_encoding', 'UTF8'],
      ]),
    },
  },
  {
    name: 'StartupMessage 3.2, protocol option, empty and multi-byte values',
    message: {
      type: 'StartupMessage',
      protocolVersion: StartupCode.Protocol32,
      parameters: new Map([
        ['user', 'bob'],
        ['options', ''],
        ['application_name', utf8],
        ['_pq_.test_option', 'on'],
      ]),
    },
  },
  {
    name: 'StartupMessage without parameters',
    message: { type: 'StartupMessage', protocolVersion: StartupCode.Protocol30, parameters: new Map() },
  },
  { name: 'SSLRequest', message: { type: 'SSLRequest' } },
  { name: 'GSSENCRequest', message: { type: 'GSSENCRequest' } },
  { name: 'CancelRequest 3.0 (4-byte key)', message: { type: 'CancelRequest', processId: 4242, secretKey: bytes(1, 2, 3, 4) } },
  { name: 'CancelRequest 3.2 (32-byte key)', message: { type: 'CancelRequest', processId: -7, secretKey: patternBytes(32, 7) } },
  { name: 'CancelRequest 3.2 (256-byte key)', message: { type: 'CancelRequest', processId: 2147483647, secretKey: patternBytes(256, 9) } },
];

/** Typed frontend messages. */
export const frontendFixtures: Fixture<FrontendFixtureMessage>[] = [
  { name: 'Query', message: { type: 'Query', query: 'SELECT 1' } },
  { name: 'Query empty', message: { type: 'Query', query: '' } },
  { name: 'Query multi-statement, multi-byte', message: { type: 'Query', query: `SELECT '${utf8}'; SELECT 2;` } },
  {
    name: 'Parse named with types',
    message: { type: 'Parse', name: 's1', query: 'SELECT $1::int, $2, $3', paramTypes: [23, 0, 4294967295] },
  },
  { name: 'Parse unnamed, no types', message: { type: 'Parse', name: '', query: '', paramTypes: [] } },
  {
    name: 'Bind with NULL, empty and binary params',
    message: {
      type: 'Bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 1, 0],
      params: [text('42'), null, Buffer.alloc(0)],
      resultFormats: [1],
    },
  },
  {
    name: 'Bind unnamed, no params, no formats',
    message: { type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] },
  },
  {
    name: 'Bind one format for all params, per-column result formats',
    message: {
      type: 'Bind',
      portal: '',
      statement: utf8,
      paramFormats: [1],
      params: [bytes(0, 0, 0, 1), bytes(0, 0, 0, 2)],
      resultFormats: [0, 1, 0],
    },
  },
  { name: 'Describe statement', message: { type: 'Describe', target: 'S', name: 's1' } },
  { name: 'Describe unnamed portal', message: { type: 'Describe', target: 'P', name: '' } },
  { name: 'Execute all rows', message: { type: 'Execute', portal: '', maxRows: 0 } },
  { name: 'Execute 100 rows', message: { type: 'Execute', portal: 'c1', maxRows: 100 } },
  { name: 'Close statement', message: { type: 'Close', target: 'S', name: 's1' } },
  { name: 'Close portal', message: { type: 'Close', target: 'P', name: 'p1' } },
  { name: 'Sync', message: { type: 'Sync' } },
  { name: 'Flush', message: { type: 'Flush' } },
  { name: 'CopyData', message: { type: 'CopyData', data: text('1\tAlice\t\\N\n') } },
  { name: 'CopyData empty', message: { type: 'CopyData', data: Buffer.alloc(0) } },
  { name: 'CopyDone', message: { type: 'CopyDone' } },
  { name: 'CopyFail', message: { type: 'CopyFail', message: 'aborted by user' } },
  {
    name: 'FunctionCall',
    message: { type: 'FunctionCall', functionOid: 1598, argFormats: [1], args: [bytes(0, 0, 0, 1), null], resultFormat: 1 },
  },
  {
    name: 'FunctionCall without arguments',
    message: { type: 'FunctionCall', functionOid: 2, argFormats: [], args: [], resultFormat: 0 },
  },
  { name: 'Terminate', message: { type: 'Terminate' } },
  { name: 'PasswordFamily (opaque)', message: { type: 'PasswordFamily', body: text('hunter2\0') } },
  { name: 'PasswordMessage cleartext', message: { type: 'PasswordMessage', password: 'hunter2' } },
  { name: 'PasswordMessage md5', message: { type: 'PasswordMessage', password: 'md5' + 'a'.repeat(32) } },
  { name: 'PasswordMessage empty', message: { type: 'PasswordMessage', password: '' } },
  {
    name: 'SASLInitialResponse',
    message: { type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: text('n,,n=,r=rOprNGfwEbeRWgbNEkqO') },
  },
  { name: 'SASLInitialResponse without data', message: { type: 'SASLInitialResponse', mechanism: 'OAUTHBEARER', data: null } },
  { name: 'SASLInitialResponse empty data', message: { type: 'SASLInitialResponse', mechanism: 'X', data: Buffer.alloc(0) } },
  { name: 'SASLResponse', message: { type: 'SASLResponse', data: text('c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=') } },
  { name: 'GSSResponse', message: { type: 'GSSResponse', data: patternBytes(40, 3) } },
];

const field = (name: string, typeOid: number, extra: Partial<{ tableOid: number; columnAttr: number; typeSize: number; typeModifier: number; format: number }> = {}) => ({
  name,
  tableOid: extra.tableOid ?? 0,
  columnAttr: extra.columnAttr ?? 0,
  typeOid,
  typeSize: extra.typeSize ?? -1,
  typeModifier: extra.typeModifier ?? -1,
  format: extra.format ?? 0,
});

/** Backend messages. */
export const backendFixtures: Fixture<BackendMessage>[] = [
  { name: 'AuthenticationOk', message: { type: 'AuthenticationOk' } },
  { name: 'AuthenticationKerberosV5', message: { type: 'AuthenticationKerberosV5' } },
  { name: 'AuthenticationCleartextPassword', message: { type: 'AuthenticationCleartextPassword' } },
  { name: 'AuthenticationMD5Password', message: { type: 'AuthenticationMD5Password', salt: bytes(0xde, 0xad, 0x00, 0xef) } },
  { name: 'AuthenticationGSS', message: { type: 'AuthenticationGSS' } },
  { name: 'AuthenticationGSSContinue', message: { type: 'AuthenticationGSSContinue', data: patternBytes(24, 5) } },
  { name: 'AuthenticationSSPI', message: { type: 'AuthenticationSSPI' } },
  { name: 'AuthenticationSASL', message: { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] } },
  { name: 'AuthenticationSASL empty list', message: { type: 'AuthenticationSASL', mechanisms: [] } },
  {
    name: 'AuthenticationSASLContinue',
    message: { type: 'AuthenticationSASLContinue', data: text('r=abcdef,s=QSXCR+Q6sek8bf92,i=4096') },
  },
  { name: 'AuthenticationSASLFinal', message: { type: 'AuthenticationSASLFinal', data: text('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=') } },
  { name: 'BackendKeyData 3.0', message: { type: 'BackendKeyData', processId: 12345, secretKey: bytes(0xff, 0, 0x80, 1) } },
  { name: 'BackendKeyData 3.2 (32 bytes)', message: { type: 'BackendKeyData', processId: 1, secretKey: patternBytes(32, 11) } },
  { name: 'BackendKeyData 3.2 (256 bytes)', message: { type: 'BackendKeyData', processId: 99, secretKey: patternBytes(256, 13) } },
  { name: 'BindComplete', message: { type: 'BindComplete' } },
  { name: 'CloseComplete', message: { type: 'CloseComplete' } },
  { name: 'CommandComplete SELECT', message: { type: 'CommandComplete', tag: 'SELECT 5' } },
  { name: 'CommandComplete INSERT', message: { type: 'CommandComplete', tag: 'INSERT 0 1' } },
  { name: 'CommandComplete empty', message: { type: 'CommandComplete', tag: '' } },
  { name: 'CopyData', message: { type: 'CopyData', data: text(`42\t${utf8}\n`) } },
  { name: 'CopyDone', message: { type: 'CopyDone' } },
  { name: 'CopyInResponse', message: { type: 'CopyInResponse', format: 0, columnFormats: [0, 0, 0] } },
  { name: 'CopyOutResponse binary', message: { type: 'CopyOutResponse', format: 1, columnFormats: [1, 1] } },
  { name: 'CopyBothResponse no columns', message: { type: 'CopyBothResponse', format: 0, columnFormats: [] } },
  {
    name: 'DataRow with NULL, empty and multi-byte values',
    message: { type: 'DataRow', values: [text('1'), null, Buffer.alloc(0), text(utf8), bytes(0, 0, 0, 0)] },
  },
  { name: 'DataRow zero columns', message: { type: 'DataRow', values: [] } },
  { name: 'EmptyQueryResponse', message: { type: 'EmptyQueryResponse' } },
  {
    name: 'ErrorResponse with every documented field',
    message: {
      type: 'ErrorResponse',
      fields: new Map(
        Object.values(ErrorField).map((code, i) => [code, code === ErrorField.Message ? `value ${utf8}` : `value ${i}`]),
      ),
    },
  },
  {
    name: 'ErrorResponse minimal, unknown field code kept',
    message: {
      type: 'ErrorResponse',
      fields: new Map([
        ['S', 'FATAL'],
        ['C', '08P01'],
        ['M', 'dbward: protocol violation'],
        ['Z', 'future field'],
      ]),
    },
  },
  { name: 'ErrorResponse no fields', message: { type: 'ErrorResponse', fields: new Map() } },
  {
    name: 'NoticeResponse',
    message: {
      type: 'NoticeResponse',
      fields: new Map([
        ['S', 'NOTICE'],
        ['V', 'NOTICE'],
        ['C', '00000'],
        ['M', 'dbward: waiting for approval areq-1'],
      ]),
    },
  },
  { name: 'FunctionCallResponse', message: { type: 'FunctionCallResponse', result: bytes(0, 0, 0, 7) } },
  { name: 'FunctionCallResponse NULL', message: { type: 'FunctionCallResponse', result: null } },
  {
    name: 'NegotiateProtocolVersion',
    message: { type: 'NegotiateProtocolVersion', newestMinorVersion: 0, unrecognizedOptions: ['_pq_.test_option'] },
  },
  { name: 'NegotiateProtocolVersion no options', message: { type: 'NegotiateProtocolVersion', newestMinorVersion: 2, unrecognizedOptions: [] } },
  { name: 'NoData', message: { type: 'NoData' } },
  { name: 'NotificationResponse', message: { type: 'NotificationResponse', processId: 77, channel: 'orders', payload: utf8 } },
  { name: 'NotificationResponse empty payload', message: { type: 'NotificationResponse', processId: 77, channel: 'c', payload: '' } },
  { name: 'ParameterDescription', message: { type: 'ParameterDescription', typeOids: [23, 25, 4294967295] } },
  { name: 'ParameterDescription none', message: { type: 'ParameterDescription', typeOids: [] } },
  { name: 'ParameterStatus', message: { type: 'ParameterStatus', name: 'client_encoding', value: 'UTF8' } },
  { name: 'ParameterStatus empty value', message: { type: 'ParameterStatus', name: 'application_name', value: '' } },
  { name: 'ParseComplete', message: { type: 'ParseComplete' } },
  { name: 'PortalSuspended', message: { type: 'PortalSuspended' } },
  { name: 'ReadyForQuery idle', message: { type: 'ReadyForQuery', status: 'I' } },
  { name: 'ReadyForQuery in transaction', message: { type: 'ReadyForQuery', status: 'T' } },
  { name: 'ReadyForQuery failed transaction', message: { type: 'ReadyForQuery', status: 'E' } },
  {
    name: 'RowDescription',
    message: {
      type: 'RowDescription',
      fields: [
        field('id', 23, { tableOid: 16398, columnAttr: 1, typeSize: 4 }),
        field('email', 1043, { tableOid: 16398, columnAttr: 2, typeModifier: 259 }),
        field(utf8, 25, { format: 1 }),
        field('', 2249, { columnAttr: -3, typeSize: -2 }),
      ],
    },
  },
  { name: 'RowDescription zero columns', message: { type: 'RowDescription', fields: [] } },
];

/**
 * Decodes a frontend frame the way a session would: the 'p' family with the decoder for the
 * concrete message expected (`as`), everything else with decodeFrontend.
 */
export function decodeFrontendAs(
  as: FrontendFixtureMessage['type'],
  code: number,
  buf: Buffer,
  start: number,
  end: number,
): FrontendFixtureMessage {
  switch (as) {
    case 'PasswordMessage':
      return decodePasswordMessage(buf, start, end);
    case 'SASLInitialResponse':
      return decodeSASLInitialResponse(buf, start, end);
    case 'SASLResponse':
      return decodeSASLResponse(buf, start, end);
    case 'GSSResponse':
      return decodeGSSResponse(buf, start, end);
    default:
      return decodeFrontend(code, buf, start, end);
  }
}
