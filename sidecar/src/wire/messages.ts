/**
 * Decoded messages of the PostgreSQL frontend/backend protocol (3.0 and 3.2), one interface per
 * message, named and documented as in the PostgreSQL docs, chapter "Message Formats". `type` is the
 * discriminant of the {@link FrontendMessage} and {@link BackendMessage} unions.
 *
 * Byte-valued fields (parameter values, row values, COPY data, SASL data) are views of the buffer
 * the message was decoded from: copy them before keeping them beyond the frame handler.
 */
import type { TransactionStatus } from './codes.js';

// ---------------------------------------------------------------------------------------------
// Messages of both directions
// ---------------------------------------------------------------------------------------------

/** CopyData ('d'): a chunk of COPY data stream, either direction. */
export interface CopyData {
  type: 'CopyData';
  data: Buffer;
}

/** CopyDone ('c'): end of the COPY data stream, either direction. */
export interface CopyDone {
  type: 'CopyDone';
}

// ---------------------------------------------------------------------------------------------
// Frontend: untyped startup-phase messages (no type byte; told apart by the code after the length)
// ---------------------------------------------------------------------------------------------

/** StartupMessage (untyped): protocol version 3.x and the session parameters, in arrival order. */
export interface StartupMessage {
  type: 'StartupMessage';
  /** Major version in the high 16 bits, minor in the low: 196608 is 3.0, 196610 is 3.2. */
  protocolVersion: number;
  /** user, database, application_name, options, _pq_.* ... When a name repeats, the last wins, as in PostgreSQL. */
  parameters: Map<string, string>;
}

/** SSLRequest (untyped, code 80877103): asks for TLS before the StartupMessage. */
export interface SSLRequest {
  type: 'SSLRequest';
}

/** GSSENCRequest (untyped, code 80877104): asks for GSSAPI encryption before the StartupMessage. */
export interface GSSENCRequest {
  type: 'GSSENCRequest';
}

/** CancelRequest (untyped, code 80877102), sent on a new connection to cancel a running query. */
export interface CancelRequest {
  type: 'CancelRequest';
  processId: number;
  /** 4 bytes in protocol 3.0; up to 256 bytes in protocol 3.2. */
  secretKey: Buffer;
}

// ---------------------------------------------------------------------------------------------
// Frontend: typed messages
// ---------------------------------------------------------------------------------------------

/** Query ('Q'): a simple-protocol query string, possibly several statements. */
export interface Query {
  type: 'Query';
  query: string;
}

/** Parse ('P'): prepares a statement; an empty name is the unnamed statement. */
export interface Parse {
  type: 'Parse';
  name: string;
  query: string;
  /** Parameter type OIDs; 0 leaves the type unspecified. May be fewer than the query's parameters. */
  paramTypes: number[];
}

/** Bind ('B'): binds parameter values to a prepared statement, making a portal. */
export interface Bind {
  type: 'Bind';
  portal: string;
  statement: string;
  /** None (all text), one (applies to all) or one per parameter; 0 text, 1 binary. */
  paramFormats: number[];
  /** Parameter values; null is SQL NULL (length -1). */
  params: (Buffer | null)[];
  /** None (all text), one (applies to all) or one per result column. */
  resultFormats: number[];
}

/** Describe ('D') of a prepared statement ('S') or a portal ('P'). */
export interface Describe {
  type: 'Describe';
  target: 'S' | 'P';
  name: string;
}

/** Execute ('E'): runs a portal; maxRows 0 means no limit. */
export interface Execute {
  type: 'Execute';
  portal: string;
  maxRows: number;
}

/** Close ('C') of a prepared statement ('S') or a portal ('P'). */
export interface Close {
  type: 'Close';
  target: 'S' | 'P';
  name: string;
}

/** Sync ('S'): ends an extended-query batch; the server answers ReadyForQuery. */
export interface Sync {
  type: 'Sync';
}

/** Flush ('H'): asks the server to send what it has buffered. */
export interface Flush {
  type: 'Flush';
}

/** CopyFail ('f'): the frontend aborts a COPY FROM STDIN with an error message. */
export interface CopyFail {
  type: 'CopyFail';
  message: string;
}

/** FunctionCall ('F'): the legacy fast-path function call interface. */
export interface FunctionCall {
  type: 'FunctionCall';
  functionOid: number;
  argFormats: number[];
  args: (Buffer | null)[];
  resultFormat: number;
}

/** Terminate ('X'): the frontend closes the session. */
export interface Terminate {
  type: 'Terminate';
}

/**
 * A 'p' message. Its layout depends on the authentication exchange in progress, which only the
 * session knows: decode the same frame with decodePasswordMessage, decodeSASLInitialResponse,
 * decodeSASLResponse or decodeGSSResponse.
 */
export interface PasswordFamily {
  type: 'PasswordFamily';
  /** The body of the message, after the 5-byte header. */
  body: Buffer;
}

/** PasswordMessage ('p'): a cleartext password, or "md5" and the hex MD5 digest. */
export interface PasswordMessage {
  type: 'PasswordMessage';
  password: string;
}

/** SASLInitialResponse ('p'): the chosen mechanism and the client-first message. */
export interface SASLInitialResponse {
  type: 'SASLInitialResponse';
  mechanism: string;
  /** null when no initial response was sent (length -1). */
  data: Buffer | null;
}

/** SASLResponse ('p'): mechanism-specific data, e.g. the SCRAM client-final message. */
export interface SASLResponse {
  type: 'SASLResponse';
  data: Buffer;
}

/** GSSResponse ('p'): GSSAPI or SSPI data. */
export interface GSSResponse {
  type: 'GSSResponse';
  data: Buffer;
}

/** The untyped messages that may open a connection. */
export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

/** The concrete 'p' messages, decoded by the session according to its authentication state. */
export type PasswordFamilyMessage = PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse;

/** Every message a frontend sends, as returned by decodeFrontend. */
export type FrontendMessage =
  | StartupPhaseMessage
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Close
  | Sync
  | Flush
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | Terminate
  | PasswordFamily;

// ---------------------------------------------------------------------------------------------
// Backend
// ---------------------------------------------------------------------------------------------

/** AuthenticationOk ('R', 0). */
export interface AuthenticationOk {
  type: 'AuthenticationOk';
}

/** AuthenticationKerberosV5 ('R', 2); no longer sent by servers, decoded for completeness. */
export interface AuthenticationKerberosV5 {
  type: 'AuthenticationKerberosV5';
}

/** AuthenticationCleartextPassword ('R', 3). */
export interface AuthenticationCleartextPassword {
  type: 'AuthenticationCleartextPassword';
}

/** AuthenticationMD5Password ('R', 5) with its 4-byte salt. */
export interface AuthenticationMD5Password {
  type: 'AuthenticationMD5Password';
  salt: Buffer;
}

/** AuthenticationGSS ('R', 7). */
export interface AuthenticationGSS {
  type: 'AuthenticationGSS';
}

/** AuthenticationGSSContinue ('R', 8) with GSSAPI or SSPI data. */
export interface AuthenticationGSSContinue {
  type: 'AuthenticationGSSContinue';
  data: Buffer;
}

/** AuthenticationSSPI ('R', 9). */
export interface AuthenticationSSPI {
  type: 'AuthenticationSSPI';
}

/** AuthenticationSASL ('R', 10): the SASL mechanisms the server offers, in preference order. */
export interface AuthenticationSASL {
  type: 'AuthenticationSASL';
  mechanisms: string[];
}

/** AuthenticationSASLContinue ('R', 11): e.g. the SCRAM server-first message. */
export interface AuthenticationSASLContinue {
  type: 'AuthenticationSASLContinue';
  data: Buffer;
}

/** AuthenticationSASLFinal ('R', 12): e.g. the SCRAM server-final message. */
export interface AuthenticationSASLFinal {
  type: 'AuthenticationSASLFinal';
  data: Buffer;
}

export type Authentication =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

/** BackendKeyData ('K'): the key a CancelRequest must present. */
export interface BackendKeyData {
  type: 'BackendKeyData';
  processId: number;
  /** 4 bytes in protocol 3.0; up to 256 bytes in protocol 3.2. */
  secretKey: Buffer;
}

/** BindComplete ('2'). */
export interface BindComplete {
  type: 'BindComplete';
}

/** CloseComplete ('3'). */
export interface CloseComplete {
  type: 'CloseComplete';
}

/** CommandComplete ('C'): the command tag, e.g. "SELECT 5" or "INSERT 0 1". */
export interface CommandComplete {
  type: 'CommandComplete';
  tag: string;
}

/** CopyInResponse ('G'), CopyOutResponse ('H') and CopyBothResponse ('W'). */
export interface CopyResponse {
  type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse';
  /** Overall format: 0 textual, 1 binary. */
  format: number;
  /** One format code per column (all 0 when `format` is 0). */
  columnFormats: number[];
}

/** DataRow ('D'): one row; null is SQL NULL. See also forEachDataRowField / DataRowScanner. */
export interface DataRow {
  type: 'DataRow';
  values: (Buffer | null)[];
}

/** EmptyQueryResponse ('I'): the query string was empty. */
export interface EmptyQueryResponse {
  type: 'EmptyQueryResponse';
}

/**
 * ErrorResponse ('E') and NoticeResponse ('N'): fields keyed by their one-letter code (see
 * ErrorField), in the order received, so that re-encoding reproduces the message.
 */
export interface ErrorResponse {
  type: 'ErrorResponse' | 'NoticeResponse';
  fields: Map<string, string>;
}

/** FunctionCallResponse ('V'): the result of a FunctionCall; null is SQL NULL. */
export interface FunctionCallResponse {
  type: 'FunctionCallResponse';
  result: Buffer | null;
}

/** NegotiateProtocolVersion ('v'): the newest minor version the server supports and the options it did not recognise. */
export interface NegotiateProtocolVersion {
  type: 'NegotiateProtocolVersion';
  newestMinorVersion: number;
  unrecognizedOptions: string[];
}

/** NoData ('n'): the statement or portal returns no rows. */
export interface NoData {
  type: 'NoData';
}

/** NotificationResponse ('A'): a NOTIFY delivered to a listening session. */
export interface NotificationResponse {
  type: 'NotificationResponse';
  processId: number;
  channel: string;
  payload: string;
}

/** ParameterDescription ('t'): the parameter type OIDs of a prepared statement. */
export interface ParameterDescription {
  type: 'ParameterDescription';
  typeOids: number[];
}

/** ParameterStatus ('S'): a run-time parameter's current value. */
export interface ParameterStatus {
  type: 'ParameterStatus';
  name: string;
  value: string;
}

/** ParseComplete ('1'). */
export interface ParseComplete {
  type: 'ParseComplete';
}

/** PortalSuspended ('s'): Execute stopped at its row limit. */
export interface PortalSuspended {
  type: 'PortalSuspended';
}

/** ReadyForQuery ('Z'): the backend awaits a new query; status of the transaction. */
export interface ReadyForQuery {
  type: 'ReadyForQuery';
  status: TransactionStatus;
}

/** One column of a RowDescription. */
export interface FieldDescription {
  name: string;
  /** OID of the source table, or 0 when the column is not a plain table column. */
  tableOid: number;
  /** Attribute number of the source column, or 0. */
  columnAttr: number;
  typeOid: number;
  /** pg_type.typlen: negative for variable-width types. */
  typeSize: number;
  /** pg_attribute.atttypmod. */
  typeModifier: number;
  /** 0 text, 1 binary; always 0 in the reply to a Describe of a statement. */
  format: number;
}

/** RowDescription ('T'): the columns of the rows that follow. */
export interface RowDescription {
  type: 'RowDescription';
  fields: FieldDescription[];
}

/** Every message a backend sends, as returned by decodeBackend. */
export type BackendMessage =
  | Authentication
  | BackendKeyData
  | BindComplete
  | CloseComplete
  | CommandComplete
  | CopyData
  | CopyDone
  | CopyResponse
  | DataRow
  | EmptyQueryResponse
  | ErrorResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | NoData
  | NotificationResponse
  | ParameterDescription
  | ParameterStatus
  | ParseComplete
  | PortalSuspended
  | ReadyForQuery
  | RowDescription;
