/**
 * Encoders of decoded messages: `encodeFrontend(decodeFrontend(...))` reproduces the frame, so the
 * proxy can decode a message, change it and send it on. Dispatches to the writers.
 */
import { WireError } from './errors.js';
import type { BackendMessage, FrontendMessage, PasswordFamilyMessage } from './messages.js';
import * as w from './writers.js';

/** Encodes any frontend message, including the concrete 'p' messages. */
export function encodeFrontend(m: FrontendMessage | PasswordFamilyMessage): Buffer {
  switch (m.type) {
    case 'StartupMessage':
      return w.startupMessage(m.parameters, m.protocolVersion);
    case 'SSLRequest':
      return w.sslRequest();
    case 'GSSENCRequest':
      return w.gssEncRequest();
    case 'CancelRequest':
      return w.cancelRequest(m.processId, m.secretKey);
    case 'Query':
      return w.query(m.query);
    case 'Parse':
      return w.parse(m.name, m.query, m.paramTypes);
    case 'Bind':
      return w.bind(m.portal, m.statement, m.params, m.paramFormats, m.resultFormats);
    case 'Describe':
      return w.describe(m.target, m.name);
    case 'Execute':
      return w.execute(m.portal, m.maxRows);
    case 'Close':
      return w.close(m.target, m.name);
    case 'Sync':
      return w.sync();
    case 'Flush':
      return w.flush();
    case 'CopyData':
      return w.copyData(m.data);
    case 'CopyDone':
      return w.copyDone();
    case 'CopyFail':
      return w.copyFail(m.message);
    case 'FunctionCall':
      return w.functionCall(m.functionOid, m.args, m.argFormats, m.resultFormat);
    case 'Terminate':
      return w.terminate();
    case 'PasswordFamily':
      return w.passwordFamily(m.body);
    case 'PasswordMessage':
      return w.passwordMessage(m.password);
    case 'SASLInitialResponse':
      return w.saslInitialResponse(m.mechanism, m.data);
    case 'SASLResponse':
      return w.saslResponse(m.data);
    case 'GSSResponse':
      return w.gssResponse(m.data);
    default:
      return unknown(m, 'frontend');
  }
}

/** Encodes any backend message. */
export function encodeBackend(m: BackendMessage): Buffer {
  switch (m.type) {
    case 'AuthenticationOk':
      return w.authenticationOk();
    case 'AuthenticationKerberosV5':
      return w.authenticationKerberosV5();
    case 'AuthenticationCleartextPassword':
      return w.authenticationCleartextPassword();
    case 'AuthenticationMD5Password':
      return w.authenticationMD5Password(m.salt);
    case 'AuthenticationGSS':
      return w.authenticationGSS();
    case 'AuthenticationGSSContinue':
      return w.authenticationGSSContinue(m.data);
    case 'AuthenticationSSPI':
      return w.authenticationSSPI();
    case 'AuthenticationSASL':
      return w.authenticationSASL(m.mechanisms);
    case 'AuthenticationSASLContinue':
      return w.authenticationSASLContinue(m.data);
    case 'AuthenticationSASLFinal':
      return w.authenticationSASLFinal(m.data);
    case 'BackendKeyData':
      return w.backendKeyData(m.processId, m.secretKey);
    case 'BindComplete':
      return w.bindComplete();
    case 'CloseComplete':
      return w.closeComplete();
    case 'CommandComplete':
      return w.commandComplete(m.tag);
    case 'CopyData':
      return w.copyData(m.data);
    case 'CopyDone':
      return w.copyDone();
    case 'CopyInResponse':
      return w.copyInResponse(m.format, m.columnFormats);
    case 'CopyOutResponse':
      return w.copyOutResponse(m.format, m.columnFormats);
    case 'CopyBothResponse':
      return w.copyBothResponse(m.format, m.columnFormats);
    case 'DataRow':
      return w.dataRow(m.values);
    case 'EmptyQueryResponse':
      return w.emptyQueryResponse();
    case 'ErrorResponse':
      return w.errorResponse(m.fields);
    case 'NoticeResponse':
      return w.noticeResponse(m.fields);
    case 'FunctionCallResponse':
      return w.functionCallResponse(m.result);
    case 'NegotiateProtocolVersion':
      return w.negotiateProtocolVersion(m.newestMinorVersion, m.unrecognizedOptions);
    case 'NoData':
      return w.noData();
    case 'NotificationResponse':
      return w.notificationResponse(m.processId, m.channel, m.payload);
    case 'ParameterDescription':
      return w.parameterDescription(m.typeOids);
    case 'ParameterStatus':
      return w.parameterStatus(m.name, m.value);
    case 'ParseComplete':
      return w.parseComplete();
    case 'PortalSuspended':
      return w.portalSuspended();
    case 'ReadyForQuery':
      return w.readyForQuery(m.status);
    case 'RowDescription':
      return w.rowDescription(m.fields);
    default:
      return unknown(m, 'backend');
  }
}

function unknown(m: never, side: string): never {
  throw new WireError(`cannot encode ${side} message of type ${JSON.stringify((m as { type?: unknown }).type)}`);
}
