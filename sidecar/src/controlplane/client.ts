import { readFile } from 'node:fs/promises';
import { Client, credentials, Metadata, type ChannelCredentials, status as Status, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from '../log/logger.js';
import type { CompiledPolicySet } from '../policy/compile.js';
import { ControlPlaneApprovals } from './approvals.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { readCachedSnapshot, writeCachedSnapshot } from './cache.js';
import { CHANNEL_OPTIONS, controlPlaneService, SUBSCRIBE_PATH, type DecodedControlPlaneMessage, type SidecarMessage, type Snapshot, type WorkloadIdentity } from './proto.js';
import { compileSnapshot, type CompiledSnapshot } from './snapshot.js';

export interface ControlPlaneClientOptions {
  /** `host:port` of the control plane. */
  target: string;
  /** The projected service-account token; re-read on every connect (kubelet rotates it). */
  tokenFile: string;
  /** PEM CA bundle that signed the control plane's certificate; undefined: plaintext (loopback only, checked by the CLI). */
  ca: Buffer | undefined;
  /** Last-known-good snapshot directory; undefined: none kept. */
  cacheDir: string | undefined;
  sidecarVersion: string;
  /** What the sidecar believes about itself (logged by the server, never trusted). */
  hints: { node: string; pod: string; namespace: string };
  log: Logger;
  backoff?: BackoffOptions;
  /** Without a snapshot from the control plane by then, the cached one is put in force. Default 3 s. */
  cacheFallbackMs?: number;
}

export type PolicySource = 'control-plane' | 'cache';

export interface PolicyInForce {
  version: string;
  /** undefined: the control plane says no policy selects this pod (connections are refused). */
  set: CompiledPolicySet | undefined;
  identity: WorkloadIdentity;
  source: PolicySource;
}

type Stream = ClientDuplexStream<SidecarMessage, DecodedControlPlaneMessage>;

/**
 * The sidecar's end of the control plane (docs/control-plane.md): one Subscribe stream, reconnected
 * with exponential backoff and jitter; each snapshot is compiled by the sidecar's own compiler
 * and either put in force atomically and ACKed, or NACKed with the error (the policy in force
 * stays). The last ACKed snapshot is written to the cache directory and used at start when the
 * control plane cannot be reached. Until a policy is in force, `current` is undefined and the
 * sidecar refuses connections (57P03).
 */
export class ControlPlaneClient {
  readonly approvals: ControlPlaneApprovals;
  #inForce: PolicyInForce | undefined;
  #everConnected = false;
  #cacheTried = false;
  #stream: Stream | undefined;
  #streamLive = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  #fallback: NodeJS.Timeout | undefined;
  #cacheWrite: Promise<void> = Promise.resolve();
  #client: Client | undefined;
  readonly #credentials: ChannelCredentials;
  readonly #backoff: Backoff;
  readonly #listeners = new Set<(policy: PolicyInForce) => void>();

  constructor(private readonly options: ControlPlaneClientOptions) {
    this.#credentials = options.ca === undefined ? credentials.createInsecure() : credentials.createSsl(options.ca);
    this.#backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF);
    this.approvals = new ControlPlaneApprovals({ send: (message) => this.#send(message) });
  }

  /** The policy set in force, if any. */
  get current(): CompiledPolicySet | undefined {
    return this.#inForce?.set;
  }

  get inForce(): PolicyInForce | undefined {
    return this.#inForce;
  }

  /** Why the sidecar is not ready, or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.#inForce?.set !== undefined) return undefined;
    if (this.#inForce !== undefined) return 'no DataAccessPolicy selects this pod';
    return 'no policy loaded (waiting for the control plane)';
  }

  /** Called each time a policy is put in force (from the control plane or the cache). */
  onPolicy(listener: (policy: PolicyInForce) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    const fallbackMs = this.options.cacheFallbackMs ?? 3_000;
    this.#fallback = setTimeout(() => void this.#useCache('no snapshot from the control plane yet'), fallbackMs);
    this.#fallback.unref();
    void this.#connect();
  }

  /** Stops reconnecting, closes the stream and the channel; waits for a cache write in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#fallback);
    this.#stream?.cancel();
    this.#client?.close();
    await this.#cacheWrite;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let token: string;
    try {
      token = (await readFile(this.options.tokenFile, 'utf8')).trim();
      if (token === '') throw new Error('the file is empty');
    } catch (error) {
      this.options.log.error({ tokenFile: this.options.tokenFile, err: (error as Error).message }, 'control plane: cannot read the token file');
      this.#failed();
      return;
    }
    if (this.#closed) return;
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    const method = controlPlaneService().Subscribe;
    // A fresh channel per attempt, with its own subchannel: reconnect timing is this client's
    // backoff alone (a reused channel would add gRPC's own reconnect backoff, up to two minutes).
    this.#client?.close();
    this.#client = new Client(this.options.target, this.#credentials, { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
    const stream: Stream = this.#client.makeBidiStreamRequest(
      SUBSCRIBE_PATH,
      method.requestSerialize,
      method.responseDeserialize as (bytes: Buffer) => DecodedControlPlaneMessage,
      metadata,
      {},
    );
    this.#stream = stream;
    this.#streamLive = false;
    let ended = false;
    const end = (status: Partial<StatusObject>): void => {
      if (ended) return;
      ended = true;
      if (this.#stream === stream) {
        this.#stream = undefined;
        this.#streamLive = false;
        this.approvals.onDisconnected();
      }
      if (this.#closed) return;
      this.#logEnd(status);
      this.#failed();
    };
    stream.on('data', (message: DecodedControlPlaneMessage) => this.#onMessage(stream, message));
    stream.on('error', (error: ServiceError) => end(error));
    stream.on('status', (status: StatusObject) => end(status));
    stream.on('end', () => end({ code: Status.UNAVAILABLE, details: 'the control plane ended the stream' }));
    const [node, pod, namespace] = [this.options.hints.node, this.options.hints.pod, this.options.hints.namespace];
    stream.write({ hello: { sidecarVersion: this.options.sidecarVersion, node, pod, namespace, currentVersion: this.#inForce?.version ?? '' } });
  }

  #onMessage(stream: Stream, message: DecodedControlPlaneMessage): void {
    if (stream !== this.#stream || this.#closed) return;
    if (!this.#streamLive) {
      // The first message proves the stream is authenticated and subscribed.
      this.#streamLive = true;
      this.#backoff.reset();
      this.approvals.onConnected();
    }
    switch (message.message) {
      case 'snapshot':
        if (message.snapshot !== undefined) this.#onSnapshot(stream, message.snapshot);
        return;
      case 'approvalCreated':
        if (message.approvalCreated !== undefined) this.approvals.onCreated(message.approvalCreated);
        return;
      case 'approvalDecision':
        if (message.approvalDecision !== undefined) this.approvals.onDecision(message.approvalDecision);
        return;
    }
  }

  #onSnapshot(stream: Stream, snapshot: Snapshot): void {
    clearTimeout(this.#fallback);
    const compiled = compileSnapshot(snapshot);
    if (!compiled.ok) {
      this.options.log.warn({ version: compiled.version, keptVersion: this.#inForce?.version, error: compiled.error }, 'control plane: snapshot rejected (NACK); keeping the last good policy');
      stream.write({ nack: { version: compiled.version, error: compiled.error } });
      // Nothing in force yet (a restart while the control plane serves something this sidecar
      // rejects): the last-known-good from the cache is the last good policy.
      if (this.#inForce === undefined) void this.#useCache('the control plane sent a snapshot this sidecar rejects');
      return;
    }
    // Only a snapshot put in force counts: after it, the cache is never used again.
    this.#everConnected = true;
    this.#install(compiled, 'control-plane');
    stream.write({ ack: { version: compiled.version } });
    const dir = this.options.cacheDir;
    if (dir !== undefined) {
      this.#cacheWrite = this.#cacheWrite
        .then(() => writeCachedSnapshot(dir, snapshot))
        .catch((error: unknown) => this.options.log.warn({ err: (error as Error).message }, 'control plane: cannot save the last-known-good policy'));
    }
  }

  #install(compiled: Extract<CompiledSnapshot, { ok: true }>, source: PolicySource): void {
    const previous = this.#inForce?.version;
    const policy: PolicyInForce = { version: compiled.version, set: compiled.set, identity: compiled.identity, source };
    this.#inForce = policy;
    if (compiled.set === undefined) {
      this.options.log.warn({ version: compiled.version, source }, 'control plane: no DataAccessPolicy selects this pod; refusing new connections');
    } else {
      this.options.log.info(
        { policyVersion: compiled.version, previousVersion: previous, policies: compiled.policies, source, identity: { namespace: compiled.identity.namespace, pod: compiled.identity.pod, serviceAccount: compiled.identity.serviceAccount } },
        'policy loaded',
      );
    }
    for (const listener of this.#listeners) listener(policy);
  }

  /** Puts the cached snapshot in force if nothing from the control plane is (once per process). */
  async #useCache(why: string): Promise<void> {
    if (this.#cacheTried || this.#everConnected || this.#inForce !== undefined || this.options.cacheDir === undefined) return;
    this.#cacheTried = true;
    try {
      const cached = await readCachedSnapshot(this.options.cacheDir);
      if (cached === undefined) {
        this.options.log.warn({ cacheDir: this.options.cacheDir, why }, 'control plane: no last-known-good policy cached; refusing connections until a snapshot arrives');
        return;
      }
      if (this.#everConnected || this.#inForce !== undefined) return;
      const compiled = compileSnapshot(cached.snapshot);
      if (!compiled.ok) {
        this.options.log.error({ version: compiled.version, error: compiled.error }, 'control plane: the cached policy does not compile; ignoring it');
        return;
      }
      this.options.log.warn({ version: compiled.version, savedAt: cached.savedAt, why }, 'control plane: using the last-known-good policy from the cache');
      this.#install(compiled, 'cache');
    } catch (error) {
      this.options.log.error({ err: (error as Error).message }, 'control plane: cannot read the last-known-good policy');
    }
  }

  #failed(): void {
    if (this.#closed) return;
    if (!this.#everConnected) void this.#useCache('the control plane is unreachable or refused the stream');
    const delay = this.#backoff.next();
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#connect(), delay);
    this.#retry.unref();
  }

  #logEnd(status: Partial<StatusObject>): void {
    const code = status.code ?? Status.UNKNOWN;
    const fields = { code: Status[code], details: status.details, target: this.options.target, policyVersion: this.#inForce?.version, failingClosed: this.#inForce?.set === undefined };
    if (code === Status.UNAUTHENTICATED || code === Status.PERMISSION_DENIED) {
      this.options.log.error(fields, 'control plane refused this sidecar (check the projected token and its audience dbward-controlplane)');
    } else {
      this.options.log.warn(fields, 'control plane stream ended; reconnecting');
    }
  }

  #send(message: SidecarMessage): boolean {
    if (this.#stream === undefined || !this.#streamLive) return false;
    this.#stream.write(message);
    return true;
  }
}
