/**
 * Message type bytes of the PostgreSQL frontend/backend protocol (protocol 3.0/3.2), named as
 * in the PostgreSQL documentation, chapter "Message Formats". Each constant carries its letter.
 */

/** Messages sent by the client (frontend). */
export const Frontend = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all use 'p'. */
  PasswordMessage: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** Messages sent by the server (backend). */
export const Backend = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

export type FrontendCode = (typeof Frontend)[keyof typeof Frontend];
export type BackendCode = (typeof Backend)[keyof typeof Backend];

/** Request codes carried in the untyped first message of a connection (in place of a version). */
export const StartupCode = {
  /** Protocol 3.0: major 3 << 16 | minor 0. */
  Protocol30: 196608,
  /** Protocol 3.2 (PostgreSQL 18): variable-length cancel keys. */
  Protocol32: 196610,
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Authentication request subtypes carried in an 'R' message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** A readable name for a message type byte, for errors and logs. */
export function codeName(code: number, side: 'frontend' | 'backend'): string {
  const table: Record<string, number> = side === 'frontend' ? Frontend : Backend;
  for (const [name, value] of Object.entries(table)) if (value === code) return name;
  return code === 0 ? 'untyped' : `unknown(0x${code.toString(16).padStart(2, '0')})`;
}

/** Limits PostgreSQL applies to the startup phase (src/include/libpq/pqcomm.h). */
export const Limits = {
  /** Largest untyped startup-phase packet the server accepts, not counting its length word (MAX_STARTUP_PACKET_LENGTH). */
  MaxStartupPacketLength: 10000,
  /** Smallest secret key of a BackendKeyData or CancelRequest (the fixed 4 bytes of protocol 3.0). */
  MinCancelKeyLength: 4,
  /** Largest secret key of a BackendKeyData or CancelRequest in protocol 3.2 (MAX_CANCEL_KEY_LENGTH). */
  MaxCancelKeyLength: 256,
} as const;

/**
 * Field types of an ErrorResponse ('E') or NoticeResponse ('N'), chapter "Error and Notice Message
 * Fields". Each field is a one-byte code followed by a string; unknown codes must be ignored.
 */
export const ErrorField = {
  Severity: 'S',
  SeverityNonLocalized: 'V',
  Code: 'C',
  Message: 'M',
  Detail: 'D',
  Hint: 'H',
  Position: 'P',
  InternalPosition: 'p',
  InternalQuery: 'q',
  Where: 'W',
  SchemaName: 's',
  TableName: 't',
  ColumnName: 'c',
  DataTypeName: 'd',
  ConstraintName: 'n',
  File: 'F',
  Line: 'L',
  Routine: 'R',
} as const;

export type ErrorFieldCode = (typeof ErrorField)[keyof typeof ErrorField];

/** Transaction status byte of a ReadyForQuery ('Z'): idle, in a transaction block, in a failed one. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** The protocol version number of a StartupMessage: major in the high 16 bits, minor in the low 16. */
export function protocolVersion(major: number, minor: number): number {
  return ((major << 16) | minor) >>> 0;
}
