import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { AuditSink, SessionAudit } from '../audit/types.js';
import type { UpstreamTarget } from '../config/upstream-url.js';
import { refusal, type Refusal } from '../errors/catalog.js';
import type { Logger } from '../log/logger.js';
import type { Fdio } from '../net/fdio.js';
import { NativeSocket, socketFd } from '../net/native-socket.js';
import { Backend, Frontend, StartupCode } from '../wire/codes.js';
import { WireError } from '../wire/errors.js';
import { decodeSASLInitialResponse, decodeStartupPhase } from '../wire/frontend.js';
import { decodeBackend } from '../wire/backend.js';
import type { StartupMessage } from '../wire/messages.js';
import { FrameSplitter, type FrameHandler } from '../wire/splitter.js';
import {
  authenticationOk,
  authenticationSASL,
  backendKeyData,
  errorResponse,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  terminate,
} from '../wire/writers.js';
import { md5PasswordResponse, ScramClient, ScramError } from './auth/scram.js';
import type { CancelKeys } from './cancel-keys.js';
import { PolicyEnforcer, refusalFields, type PolicyRuntime } from './enforcer.js';
import type { Identity } from './policy-gate.js';
import { Relay } from './relay.js';
import { cancelUpstream, connectUpstream, UpstreamUnavailable } from './upstream.js';

/** What every session shares: configuration and process-wide registries. */
export interface SessionContext {
  upstream: UpstreamTarget;
  clientTls: SecureContext | undefined;
  connectTimeoutMs: number;
  /** A client must be authenticated and ready within this time (PostgreSQL's authentication_timeout). */
  startupTimeoutMs: number;
  maxClientMessageBytes: number;
  cancelKeys: CancelKeys;
  log: Logger;
  /** The policy half; absent: pure pass-through (nothing is analysed or enforced). */
  policy: PolicyRuntime | undefined;
  /** Workload identity from --identity / the downward API (namespace, serviceAccount, pod, labels). */
  identity: { fields: Record<string, string>; labels: Record<string, string> };
  /** Audit trail (spans, metrics); absent: nothing is recorded. */
  audit?: AuditSink;
  /** --native-io: the loaded addon; plain-TCP legs then do their I/O through it. */
  nativeIo?: Fdio;
  /** False (DBWARD_FAST_RELAY=off): the addon never relays a pass-through session's messages itself. */
  fastRelay?: boolean;
}

/** Whether the addon may relay sessions' messages itself (fast mode): nothing to judge or record, and not turned off. */
export function addonMayRelay(ctx: Pick<SessionContext, 'policy' | 'audit' | 'fastRelay'>): boolean {
  return ctx.policy === undefined && ctx.audit === undefined && ctx.fastRelay !== false;
}

/** The events the session listens to, on a net.Socket, a TLSSocket or a NativeSocket. */
interface SocketEvents {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (error: NodeJS.ErrnoException) => void): this;
  on(event: 'close' | 'drain', listener: () => void): this;
}

type Phase =
  /** Reading SSLRequest / GSSENCRequest / CancelRequest / StartupMessage. */
  | 'startup'
  /** StartupMessage received; connecting and authenticating upstream. */
  | 'connecting'
  /** Authenticated upstream; relaying ParameterStatus/BackendKeyData until the first ReadyForQuery. */
  | 'authenticated'
  /** Normal operation. */
  | 'ready'
  | 'closed';

/** Largest startup packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10_000;
/** Frames larger than this are forwarded in pieces as they arrive when nothing needs to read them. */
const STREAM_THRESHOLD = 256 * 1024;
/** PostgreSQL's own cap on a message (PQ_LARGE_MESSAGE_LIMIT is 1 GB minus one). */
const MAX_SERVER_MESSAGE = 1024 * 1024 * 1024 + 5;

/** Frontend message types accepted after authentication. Anything else is a protocol violation. */
const FRONTEND_TYPES = new Set<number>(Object.values(Frontend));

/**
 * Fast mode (--native-io, sessions with no policy and no audit; docs/adr/0010): the client
 * messages the addon forwards without the session. Terminate and unknown types still reach it.
 */
const FAST_CLIENT_TYPES = new Uint8Array(256);
for (const code of FRONTEND_TYPES) if (code !== Frontend.Terminate) FAST_CLIENT_TYPES[code] = 1;
/** ... and the server messages: all but ErrorResponse (a FATAL is noted) and ParameterStatus (recorded). */
const FAST_SERVER_TYPES = new Uint8Array(256).fill(1);
FAST_SERVER_TYPES[Backend.ErrorResponse] = 0;
FAST_SERVER_TYPES[Backend.ParameterStatus] = 0;

let nextSessionId = 1;

/**
 * One client connection and its upstream connection: the only place that touches sockets.
 *
 * Startup (TLS, cancel, protocol version), authentication (pass-through, or credential injection
 * when the upstream URL carries a password) and then frame-by-frame relaying in both directions.
 * Frames are forwarded as the very bytes received; only BackendKeyData is replaced (so cancels
 * come through the sidecar) and, when the sidecar terminates TLS, the SASL mechanism list loses
 * its channel-binding (-PLUS) entries.
 */
export class Session {
  readonly id = nextSessionId++;
  private phase: Phase = 'startup';
  private client: Socket | TLSSocket | NativeSocket;
  private clientOnTls = false;
  private upstream: Socket | TLSSocket | NativeSocket | null = null;
  private upstreamOnTls = false;
  private clientSplitter: FrameSplitter;
  private readonly serverSplitter = new FrameSplitter({ maxFrameLength: MAX_SERVER_MESSAGE, streamThreshold: STREAM_THRESHOLD });
  private toClient: Relay;
  private toServer: Relay | null = null;
  /** Client frames that arrived before the upstream was ready for them. */
  private queuedForServer: Buffer[] = [];
  private startupMessage: StartupMessage | null = null;
  private scram: ScramClient | null = null;
  /** Pass-through SCRAM: the next 'p' is the SASLInitialResponse. */
  private expectSaslInitial = false;
  private ourKey: { processId: number; secretKey: Buffer } | null = null;
  private upstreamKey: { processId: number; secretKey: Buffer } | null = null;
  /** ReadyForQuery messages the client still awaits (one per Query, Sync, FunctionCall). */
  private pendingReady = 0;
  private transactionStatus = 0x49; // 'I'
  private serverSentFatal = false;
  private draining = false;
  private readonly closedCallbacks: (() => void)[] = [];
  /** ParameterStatus values the server reported (client_encoding, standard_conforming_strings, ...). */
  private readonly serverParams = new Map<string, string>();
  /** Present when a policy is configured: judges statements and rewrites refusals. */
  private enforcer: PolicyEnforcer | null = null;
  /** Present when auditing: sees what the client sends and receives once the session is ready. */
  private audit: SessionAudit | null = null;
  private readonly log: Logger;
  /**
   * Both legs are NativeSockets linked in the addon, for a session that may use fast mode (no
   * policy, no audit, fast relay not turned off): its fast-mode counts must be folded in. Sessions
   * that can never use it are not linked, so their reads pay nothing for it.
   */
  private fastLinked = false;
  /** Fast mode is wanted: a pass-through session (no policy, no audit) on native I/O, not draining. */
  private fastPath = false;

  private readonly clientHandler: FrameHandler;
  private readonly serverHandler: FrameHandler;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.client = socket;
    this.log = ctx.log.child({ session: this.id });
    socket.setNoDelay(true);
    this.clientSplitter = new FrameSplitter({ maxFrameLength: MAX_STARTUP_PACKET, untyped: true });
    this.toClient = new Relay(socket);
    this.clientHandler = {
      onFrame: (code, buf, start, end) => this.onClientFrame(code, buf, start, end),
      // Not while a statement is held for approval: pieces would overtake the held statement.
      streamFrame: (code) => this.phase === 'ready' && code === Frontend.CopyData && this.enforcer?.holding !== true,
      onFramePiece: (buf, start, end) => this.toServer!.pass(buf, start, end),
    };
    this.serverHandler = {
      onFrame: (code, buf, start, end) => this.onServerFrame(code, buf, start, end),
      // Not while the sidecar captures the answer of its own query (the catalog is one big row).
      streamFrame: (code) => this.phase === 'ready' && (code === Backend.DataRow || code === Backend.CopyData) && this.enforcer?.capturing !== true,
      onFramePiece: (buf, start, end) => this.toClient.pass(buf, start, end),
    };
    this.attachClient(socket);
    this.startupTimer = setTimeout(() => this.onStartupTimeout(), ctx.startupTimeoutMs);
    this.startupTimer.unref();
  }

  private startupTimer: NodeJS.Timeout | null = null;

  private onStartupTimeout(): void {
    this.startupTimer = null;
    if (this.phase === 'ready' || this.phase === 'closed') return;
    this.log.info({ phase: this.phase }, 'startup not completed in time');
    this.refuseAndClose(refusal('protocol-violation', `startup not completed within ${this.ctx.startupTimeoutMs} ms`));
  }

  /** Registers a callback run once when both connections are gone. */
  onClosed(callback: () => void): void {
    this.closedCallbacks.push(callback);
  }

  /** True when no statement is running and no transaction is open: safe to close on shutdown. */
  get idle(): boolean {
    if (this.fastLinked) this.syncFast();
    return this.phase !== 'ready' || (this.pendingReady === 0 && this.transactionStatus === 0x49 && !this.serverMidMessage);
  }

  /** SIGTERM: close now if idle, else after the running statement and transaction end. */
  drain(): void {
    this.draining = true;
    this.leaveFast();
    if (this.phase === 'startup' || this.idleWithNothingUnread) this.refuseAndClose(refusal('shutting-down'));
  }

  /**
   * Idle, and the client sent nothing that was not read yet. A statement sent just before the
   * signal can still be in the socket (or, on the addon, wait for the loop turn's batch of reads):
   * it is read and runs, and the session closes once idle after it (onClientData, onServerFrame).
   * Node sockets cannot tell, so there a statement racing the signal may be refused.
   */
  private get idleWithNothingUnread(): boolean {
    return this.idle && !(this.client instanceof NativeSocket && this.client.unread > 0);
  }

  // ---- fast mode ----------------------------------------------------------------------------

  /** Folds what the addon forwarded in fast mode into the session's count of awaited ReadyForQuery. */
  private syncFast(): void {
    const client = this.client as NativeSocket;
    const upstream = this.upstream as NativeSocket;
    const sent = client.takeFastCount(Frontend.Query) + client.takeFastCount(Frontend.Sync) + client.takeFastCount(Frontend.FunctionCall);
    const ready = upstream.takeFastCount(Backend.ReadyForQuery);
    if (sent === 0 && ready === 0) return;
    this.pendingReady = Math.max(0, this.pendingReady + sent - ready);
    if (ready > 0) this.transactionStatus = upstream.fastReadyStatus;
  }

  /** Hands each leg whose splitter is at a message boundary back to the addon's fast mode. */
  private enterFast(): void {
    if (this.phase !== 'ready') return;
    const client = this.client as NativeSocket;
    const upstream = this.upstream as NativeSocket;
    if (!client.fast && !this.clientSplitter.hasPartial()) client.goFast(FAST_CLIENT_TYPES, this.ctx.maxClientMessageBytes - 1);
    if (!upstream.fast && !this.serverSplitter.hasPartial()) upstream.goFast(FAST_SERVER_TYPES, MAX_SERVER_MESSAGE - 1);
  }

  /** From the next message boundary on, every message reaches the session again. */
  private leaveFast(): void {
    if (!this.fastPath) return;
    this.fastPath = false;
    (this.client as NativeSocket).leaveFast();
    (this.upstream as NativeSocket).leaveFast();
  }

  /** True when part of a server message has reached the client and the rest has not. */
  private get serverMidMessage(): boolean {
    return this.serverSplitter.hasPartial() || (this.upstream instanceof NativeSocket && this.upstream.fastPartial);
  }

  /** True when part of a client message has reached the server and the rest has not. */
  private get clientMidMessage(): boolean {
    return this.clientSplitter.hasPartial() || (this.client instanceof NativeSocket && this.client.fastPartial);
  }

  /** Deadline of a drain passed: close whatever runs. */
  forceClose(): void {
    // Closing the sockets would not stop the server's work: PostgreSQL notices a vanished client
    // only when it next writes. Cancel the running statement first.
    if (this.fastLinked) this.syncFast();
    if (this.phase === 'ready' && this.pendingReady > 0) this.cancelUpstreamQuery();
    this.refuseAndClose(refusal('shutting-down', 'in-flight work was cut off at the drain deadline'));
  }

  // ---- client side ------------------------------------------------------------------------

  private attachClient(socket: SocketEvents): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.log.debug({ err: error.code ?? error.message }, 'client socket error');
      this.close();
    });
    socket.on('close', () => this.close());
    socket.on('drain', () => this.resumeUpstream());
  }

  private onClientData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    if (this.fastLinked) this.syncFast();
    try {
      this.clientSplitter.push(chunk, this.clientHandler);
      this.toServer?.flush();
      this.toClient.flush();
    } catch (error) {
      this.onClientError(error);
      return;
    }
    if (this.toServer?.congested === true) this.client.pause();
    if (this.fastPath) this.enterFast();
    // Draining: what the client had sent may not have started anything (e.g. a Flush).
    else if (this.draining && this.phase === 'ready' && this.idleWithNothingUnread) this.refuseAndClose(refusal('shutting-down'));
  }

  private onClientError(error: unknown): void {
    if (error instanceof ChannelBindingRefused) {
      this.log.info('client asked for SCRAM channel binding through a TLS-terminating sidecar');
      this.refuseAndClose(
        refusal('channel-binding', undefined, {
          detail: 'The client connected with TLS and supports channel binding; the sidecar terminates TLS, so the server cannot bind to the client.',
          hint: 'Connect with channel_binding=disable, or configure the sidecar with the upstream credentials.',
        }),
      );
    } else if (error instanceof WireError) {
      this.log.info({ err: error.message }, 'client protocol violation');
      this.refuseAndClose(refusal('protocol-violation', error.message));
    } else {
      this.log.error({ err: error }, 'unexpected error handling client data');
      this.refuseAndClose(refusal('protocol-violation', 'internal error while reading the message'));
    }
  }

  private onClientFrame(code: number, buf: Buffer, start: number, end: number): void {
    if (this.phase === 'ready') {
      if (code === Frontend.Query || code === Frontend.Sync || code === Frontend.FunctionCall) this.pendingReady++;
      else if (code === Frontend.Terminate) return this.onClientTerminate(buf, start, end);
      else if (!FRONTEND_TYPES.has(code)) throw new WireError(`unknown frontend message type 0x${code.toString(16)}`);
      this.audit?.clientMessage(code, buf, start, end);
      if (this.enforcer !== null) this.enforcer.onClientMessage(code, buf, start, end);
      else this.toServer!.pass(buf, start, end);
      return;
    }
    if (this.phase === 'startup') return this.onStartupFrame(buf, start, end);
    // Authentication in progress.
    if (code === Frontend.Terminate) return this.close();
    if (this.ctx.upstream.credentials === undefined && this.toServer !== null && code === Frontend.PasswordMessage) {
      if (this.expectSaslInitial) this.checkChannelBinding(buf, start, end);
      this.toServer.pass(buf, start, end);
      return;
    }
    if (!FRONTEND_TYPES.has(code)) throw new WireError(`unknown frontend message type 0x${code.toString(16)}`);
    // Early frames (a client pipelining before authentication completes) wait for the upstream.
    this.queuedForServer.push(Buffer.from(buf.subarray(start, end)));
  }

  private onStartupFrame(buf: Buffer, start: number, end: number): void {
    if (end - start > MAX_STARTUP_PACKET) throw new WireError(`startup packet of ${end - start} bytes exceeds ${MAX_STARTUP_PACKET}`);
    const message = decodeStartupPhase(buf, start, end);
    switch (message.type) {
      case 'SSLRequest':
        return this.onSslRequest();
      case 'GSSENCRequest':
        // GSSAPI encryption is not offered; the client proceeds (or retries with SSL).
        this.client.write(Buffer.from('N'));
        this.clientSplitter.expectUntyped();
        return;
      case 'CancelRequest':
        this.clientSplitter.stop();
        this.onCancelRequest(message.processId, message.secretKey);
        return;
      case 'StartupMessage':
        this.clientSplitter.stop();
        this.onStartupMessage(message, buf, start, end);
        return;
    }
  }

  private onSslRequest(): void {
    if (this.ctx.clientTls === undefined || this.clientOnTls) {
      this.client.write(Buffer.from('N'));
      this.clientSplitter.expectUntyped();
      return;
    }
    this.clientSplitter.stop();
    const raw = this.client;
    // Not reached: a client moves to native I/O only after its StartupMessage.
    if (raw instanceof NativeSocket) throw new WireError('SSLRequest after the StartupMessage');
    raw.removeAllListeners('data');
    raw.pause();
    // Bytes sent after SSLRequest but before the handshake would be trusted as if encrypted
    // (CVE-2021-23214): refuse them.
    if (this.clientSplitter.takeRemainder().length > 0) {
      this.log.info('client sent data after SSLRequest before the TLS handshake');
      this.close();
      return;
    }
    raw.write(Buffer.from('S'));
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.ctx.clientTls });
    tls.setNoDelay?.(true);
    this.client = tls;
    this.clientOnTls = true;
    this.toClient = new Relay(tls);
    this.clientSplitter = new FrameSplitter({ maxFrameLength: MAX_STARTUP_PACKET, untyped: true });
    this.attachClient(tls);
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.on('error', () => this.close());
    raw.resume();
  }

  private onCancelRequest(processId: number, secretKey: Buffer): void {
    const target = this.ctx.cancelKeys.lookup(processId, secretKey);
    if (target === undefined) this.log.info({ processId }, 'cancel request with an unknown key ignored');
    else target.cancel();
    // PostgreSQL answers nothing to a CancelRequest and closes the connection.
    this.client.end();
  }

  private onStartupMessage(message: StartupMessage, buf: Buffer, start: number, end: number): void {
    const major = message.protocolVersion >>> 16;
    if (major !== 3) {
      this.refuseAndClose(refusal('unsupported-protocol', `${major}.${message.protocolVersion & 0xffff}`, { detail: 'dbward supports protocol 3.x' }));
      return;
    }
    if (this.clientSplitter.takeRemainder().length > 0) {
      throw new WireError('client sent data before authentication was requested');
    }
    this.startupMessage = message;
    if (this.ctx.nativeIo !== undefined && !this.clientOnTls) this.adoptClient(this.ctx.nativeIo);
    if (this.ctx.policy !== undefined && this.ctx.policy.current() === null) {
      this.refuseAndClose(refusal('no-policy', undefined, { detail: 'the sidecar has not received a valid policy yet; it refuses connections until it has one' }));
      return;
    }
    this.clientSplitter = new FrameSplitter({ maxFrameLength: this.ctx.maxClientMessageBytes, streamThreshold: STREAM_THRESHOLD });
    this.phase = 'connecting';
    const credentials = this.ctx.upstream.credentials;
    const startupBytes =
      credentials === undefined
        ? Buffer.from(buf.subarray(start, end))
        : startupMessage(this.upstreamParameters(message, credentials.user), message.protocolVersion === StartupCode.Protocol32 ? StartupCode.Protocol32 : StartupCode.Protocol30);
    this.log.debug({ user: message.parameters.get('user'), database: message.parameters.get('database') }, 'startup');
    connectUpstream(this.ctx.upstream, this.ctx.connectTimeoutMs, (chunk) => this.onServerData(chunk)).then(
      ({ socket, tls, readBuffer }) => this.onUpstreamConnected(socket, tls, readBuffer, startupBytes),
      (error: unknown) => {
        const reason = error instanceof UpstreamUnavailable ? error.message : String(error);
        this.ctx.audit?.upstreamError('connect_failed');
        this.log.warn({ err: reason }, 'upstream unavailable');
        this.refuseAndClose(refusal('upstream-unavailable', reason));
      },
    );
  }

  /**
   * --native-io: moves a plain-TCP client connection onto the addon once its StartupMessage is in
   * (nothing else may have arrived, and nothing is left unsent: otherwise it stays on Node).
   */
  private adoptClient(fdio: Fdio): void {
    const raw = this.client;
    if (raw instanceof NativeSocket || raw.destroyed || raw.writableLength > 0 || socketFd(raw) === undefined) return;
    raw.removeAllListeners('data').removeAllListeners('error').removeAllListeners('close').removeAllListeners('drain');
    const native = NativeSocket.adopt(fdio, raw);
    if (native === undefined) {
      this.attachClient(raw); // not reached: adopt() fails only on what was checked above
      return;
    }
    this.client = native;
    this.toClient = new Relay(native);
    this.attachClient(native);
  }

  /** Startup parameters for credential injection: the client's, with the upstream user (and database). */
  private upstreamParameters(message: StartupMessage, user: string): Map<string, string> {
    const params = new Map(message.parameters);
    params.set('user', user);
    if (this.ctx.upstream.database !== undefined) params.set('database', this.ctx.upstream.database);
    else if (!params.has('database')) params.set('database', message.parameters.get('user') ?? user);
    return params;
  }

  private checkChannelBinding(buf: Buffer, start: number, end: number): void {
    this.expectSaslInitial = false;
    const initial = decodeSASLInitialResponse(buf, start, end);
    const flag = initial.data === null ? 0 : initial.data[0];
    // 'y': the client could bind but thinks the server cannot. A server on TLS treats that as a
    // downgrade attack (28000). The sidecar can never bind (it is not the server's TLS endpoint),
    // so explain instead of letting the server's confusing message through.
    if (flag === 0x79 && this.upstreamOnTls) {
      throw new ChannelBindingRefused();
    }
  }

  private onClientTerminate(buf: Buffer, start: number, end: number): void {
    this.toServer!.pass(buf, start, end);
    this.toServer!.flush();
    this.upstream?.end();
    this.client.end();
    this.phase = 'closed';
    this.finish();
  }

  // ---- upstream side ----------------------------------------------------------------------

  private onUpstreamConnected(connected: Socket | TLSSocket, tls: boolean, readBuffer: Buffer | undefined, startupBytes: Buffer): void {
    if (this.phase === 'closed') {
      connected.destroy();
      return;
    }
    // Native on both legs or neither: the addon's read buffer is shared by every session, so a
    // view of it may only go to a socket that copies what it cannot write at once (a NativeSocket).
    const native =
      this.ctx.nativeIo !== undefined && !tls && this.client instanceof NativeSocket
        ? NativeSocket.adopt(this.ctx.nativeIo, connected, (chunk) => this.onServerData(chunk))
        : undefined;
    const socket = native ?? connected;
    const events: SocketEvents = socket;
    this.upstream = socket;
    this.upstreamOnTls = tls;
    this.toServer = new Relay(socket);
    // Both legs native: client reads may be views too (everything the session keeps is copied,
    // and both relays write to sockets that copy). A NativeSocket upstream hands its reads to the
    // reader given to adopt().
    if (native !== undefined && this.client instanceof NativeSocket) {
      this.client.readWith((chunk) => this.onClientData(chunk));
      this.fastLinked = addonMayRelay(this.ctx) && NativeSocket.link(this.client, native);
    }
    if (native === undefined) {
      if (readBuffer === undefined) events.on('data', (chunk: Buffer) => this.onServerData(chunk));
      // Reads go into one reused buffer: while a forwarded slice of it waits in the client socket,
      // reading stops; it resumes when that write completes.
      else this.toClient.lend(readBuffer, () => this.resumeUpstream());
    }
    events.on('error', (error: NodeJS.ErrnoException) => {
      this.log.info({ err: error.code ?? error.message }, 'upstream socket error');
      this.onUpstreamClosed();
    });
    events.on('close', () => this.onUpstreamClosed());
    events.on('drain', () => this.client.resume());
    socket.resume();
    this.toServer.send(startupBytes);
  }

  private onServerData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    if (this.fastLinked) {
      this.syncFast();
      // The hand-over after drain() left fast mode inside a message: maybe that was the last ReadyForQuery.
      if (chunk.length === 0 && this.draining && this.idle) {
        this.refuseAndClose(refusal('shutting-down'));
        return;
      }
    }
    try {
      this.serverSplitter.push(chunk, this.serverHandler);
      this.toClient.flush();
      this.toServer?.flush();
    } catch (error) {
      if (error instanceof ChannelBindingRefused) return; // unreachable from the server side
      const message = error instanceof Error ? error.message : String(error);
      this.ctx.audit?.upstreamError('invalid_message');
      this.log.error({ err: message }, 'invalid data from the upstream server');
      this.refuseAndClose(refusal('upstream-unavailable', `the server sent an invalid message: ${message}`));
      return;
    }
    if (this.toClient.congested || this.toClient.holdsLent) this.upstream?.pause();
    if (this.fastPath) this.enterFast();
  }

  private resumeUpstream(): void {
    if (!this.toClient.congested && !this.toClient.holdsLent) this.upstream?.resume();
  }

  private onServerFrame(code: number, buf: Buffer, start: number, end: number): void {
    if (this.phase === 'ready') {
      if (this.enforcer !== null && this.enforcer.onServerMessage(code, buf, start, end)) return;
      this.audit?.serverMessage(code, buf, start, end);
      if (code === Backend.ReadyForQuery) {
        this.transactionStatus = buf[start + 5]!;
        if (this.pendingReady > 0) this.pendingReady--;
        this.toClient.pass(buf, start, end);
        if (this.draining && this.idle) this.refuseAndClose(refusal('shutting-down'));
        return;
      }
      if (code === Backend.ErrorResponse) this.noteServerError(buf, start, end);
      else if (code === Backend.ParameterStatus) this.noteParameterStatus(buf, start, end);
      this.toClient.pass(buf, start, end);
      return;
    }
    if (code === Backend.ParameterStatus) this.noteParameterStatus(buf, start, end);
    this.onServerStartupFrame(code, buf, start, end);
  }

  /** Authentication and the session's opening messages. */
  private onServerStartupFrame(code: number, buf: Buffer, start: number, end: number): void {
    switch (code) {
      case Backend.Authentication:
        return this.onAuthentication(buf, start, end);
      case Backend.BackendKeyData: {
        const message = decodeBackend(code, buf, start, end);
        if (message.type !== 'BackendKeyData') return;
        this.upstreamKey = { processId: message.processId, secretKey: Buffer.from(message.secretKey) };
        this.ourKey = this.ctx.cancelKeys.issue({ cancel: () => (this.enforcer?.cancelHeld() === true ? undefined : this.cancelUpstreamQuery()) }, message.secretKey.length, message.processId);
        this.toClient.send(backendKeyData(this.ourKey.processId, this.ourKey.secretKey));
        return;
      }
      case Backend.ReadyForQuery:
        this.transactionStatus = buf[start + 5]!;
        this.phase = 'ready';
        if (this.startupTimer !== null) clearTimeout(this.startupTimer);
        if (this.ctx.audit !== undefined) this.audit = this.ctx.audit.openSession(this.identity(), this.id, this.ctx.policy !== undefined);
        if (this.ctx.policy !== undefined) {
          this.enforcer = this.createEnforcer(this.ctx.policy);
          this.enforcer.start();
        }
        // Nothing to judge or record: the addon may relay whole messages itself (enterFast, after this chunk).
        this.fastPath = this.fastLinked && !this.draining;
        this.toClient.pass(buf, start, end);
        for (const frame of this.queuedForServer) this.onClientFrame(frame[0]!, frame, 0, frame.length);
        this.queuedForServer = [];
        this.log.debug({ io: this.upstream instanceof NativeSocket ? 'native' : 'node' }, 'session ready');
        if (this.draining) this.refuseAndClose(refusal('shutting-down'));
        return;
      case Backend.ErrorResponse:
        this.noteServerError(buf, start, end);
        this.toClient.pass(buf, start, end);
        return;
      default:
        // ParameterStatus, NoticeResponse, NegotiateProtocolVersion: the client sees them as sent.
        this.toClient.pass(buf, start, end);
    }
  }

  private onAuthentication(buf: Buffer, start: number, end: number): void {
    const message = decodeBackend(Backend.Authentication, buf, start, end);
    const credentials = this.ctx.upstream.credentials;
    if (message.type === 'AuthenticationOk') {
      this.phase = 'authenticated';
      if (credentials === undefined) this.toClient.pass(buf, start, end);
      else this.toClient.send(authenticationOk());
      return;
    }
    if (credentials === undefined) {
      // Pass-through: the client answers. Never offer channel binding: the sidecar terminates TLS.
      if (message.type === 'AuthenticationSASL') {
        const mechanisms = message.mechanisms.filter((m) => !m.endsWith('-PLUS'));
        this.expectSaslInitial = true;
        if (mechanisms.length === message.mechanisms.length) this.toClient.pass(buf, start, end);
        else this.toClient.send(authenticationSASL(mechanisms));
        return;
      }
      this.toClient.pass(buf, start, end);
      return;
    }
    // Credential injection: the sidecar answers with its own credentials.
    try {
      switch (message.type) {
        case 'AuthenticationCleartextPassword':
          this.toServer!.send(passwordMessage(credentials.password));
          return;
        case 'AuthenticationMD5Password':
          this.toServer!.send(passwordMessage(md5PasswordResponse(credentials.user, credentials.password, message.salt)));
          return;
        case 'AuthenticationSASL': {
          const mechanism = ScramClient.pick(message.mechanisms);
          if (mechanism === null) break;
          this.scram = new ScramClient(credentials.password);
          this.toServer!.send(saslInitialResponse(mechanism, this.scram.clientFirst()));
          return;
        }
        case 'AuthenticationSASLContinue':
          if (this.scram === null) break;
          this.toServer!.send(saslResponse(this.scram.clientFinal(message.data)));
          return;
        case 'AuthenticationSASLFinal':
          if (this.scram === null) break;
          this.scram.verifyServerFinal(message.data);
          return;
        default:
          break;
      }
    } catch (error) {
      if (error instanceof ScramError) {
        this.log.warn({ err: error.message }, 'upstream SCRAM authentication failed');
        this.refuseAndClose(refusal('upstream-auth-failed', error.message));
        return;
      }
      throw error;
    }
    this.refuseAndClose(
      refusal('unsupported-auth', `the server asked for ${message.type.replace('Authentication', '')}, which the sidecar cannot answer with its credentials`),
    );
  }

  private noteParameterStatus(buf: Buffer, start: number, end: number): void {
    const message = decodeBackend(Backend.ParameterStatus, buf, start, end);
    if (message.type === 'ParameterStatus') this.serverParams.set(message.name, message.value);
  }

  private noteServerError(buf: Buffer, start: number, end: number): void {
    const message = decodeBackend(Backend.ErrorResponse, buf, start, end);
    if (message.type !== 'ErrorResponse') return;
    const severity = message.fields.get('V') ?? message.fields.get('S');
    if (severity === 'FATAL' || severity === 'PANIC') this.serverSentFatal = true;
  }

  private cancelUpstreamQuery(): void {
    const key = this.upstreamKey;
    if (key === null) return;
    cancelUpstream(this.ctx.upstream, key.processId, key.secretKey, this.ctx.connectTimeoutMs).then(
      () => this.log.debug('cancel forwarded'),
      (error: unknown) => this.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'cancel could not be forwarded'),
    );
  }

  private onUpstreamClosed(): void {
    if (this.phase === 'closed') return;
    if (this.serverSentFatal) {
      this.toClient.flush();
      this.client.end();
      this.phase = 'closed';
      this.finish();
      return;
    }
    this.ctx.audit?.upstreamError('closed');
    this.refuseAndClose(refusal('upstream-unavailable', 'the server closed the connection'));
  }

  /** Who this session is: the startup parameters and the workload identity. */
  private identity(): Identity {
    const params = this.startupMessage?.parameters ?? new Map<string, string>();
    const fields = this.ctx.identity.fields;
    const user = params.get('user') ?? '';
    return {
      user,
      database: params.get('database') ?? user,
      application: params.get('application_name') ?? '',
      namespace: fields.namespace ?? '',
      serviceAccount: fields.serviceAccount ?? '',
      pod: fields.pod ?? '',
      labels: { ...this.ctx.identity.labels },
    };
  }

  private createEnforcer(runtime: PolicyRuntime): PolicyEnforcer {
    const audit = this.audit;
    return new PolicyEnforcer(
      runtime,
      this.identity(),
      this.id,
      {
        forward: (buf, start, end) => this.toServer!.pass(buf, start, end),
        sendToServer: (bytes) => this.toServer!.send(bytes),
        // What the enforcer sends the client in place of the server's messages is what the audit sees.
        sendToClient: audit === null ? (bytes) => this.toClient.send(bytes) : (bytes) => {
          audit.serverMessage(bytes[0]!, bytes, 0, bytes.length);
          this.toClient.send(bytes);
        },
        clientFrames: this.toClient,
        flush: () => {
          this.toServer?.flush();
          this.toClient.flush();
        },
      },
      this.log,
      this.serverParams,
      audit?.decisions,
    );
  }

  // ---- closing ------------------------------------------------------------------------------

  /** Sends a FATAL (or ERROR) refusal if the client stream is at a message boundary, then closes. */
  refuseAndClose(why: Refusal): void {
    if (this.phase === 'closed') return;
    const atBoundary = !this.serverMidMessage;
    if (atBoundary && !this.client.destroyed) {
      this.toClient.send(errorResponse(refusalFields(why)));
    }
    this.toClient.flush();
    this.client.end();
    this.endUpstream(this.phase === 'ready');
    this.phase = 'closed';
    this.finish();
  }

  /** Closes both sides without a message (the client went away, or an error already said why). */
  close(): void {
    if (this.phase === 'closed') {
      this.finish();
      return;
    }
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    this.endUpstream(wasReady);
    this.client.destroy();
    this.finish();
  }

  /** Ends the upstream connection, with a Terminate when the session was ready and at a message boundary. */
  private endUpstream(wasReady: boolean): void {
    if (this.upstream === null || this.upstream.destroyed) return;
    if (wasReady && this.toServer !== null && !this.clientMidMessage) this.toServer.send(terminate());
    this.upstream.end();
  }

  private finished = false;
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const client = this.client;
    const upstream = this.upstream;
    if (client instanceof NativeSocket && upstream instanceof NativeSocket) {
      this.log.debug(
        { fast: { client: client.fastMessages, server: upstream.fastMessages, clientHandovers: client.fastHandovers, serverHandovers: upstream.fastHandovers } },
        'session closed',
      );
    }
    if (this.ourKey !== null) this.ctx.cancelKeys.release(this.ourKey.processId);
    this.enforcer?.close();
    this.audit?.close();
    // Give sockets a moment to flush, then make sure nothing lingers.
    setTimeout(() => {
      this.client.destroy();
      this.upstream?.destroy();
    }, 5_000).unref();
    for (const callback of this.closedCallbacks) callback();
  }
}

/** Thrown when a pass-through SCRAM exchange cannot succeed through a TLS-terminating sidecar. */
class ChannelBindingRefused extends WireError {
  override readonly name = 'ChannelBindingRefused';
  constructor() {
    super('SCRAM channel binding cannot pass through the sidecar');
  }
}
