import { status as Status, type Metadata, type ServerDuplexStream } from '@grpc/grpc-js';
import { AccessRequestSpecSchema, type AccessRequestSpec, type AccessRequestStatus } from '@dbward/sidecar/api';
import type { ApprovalRequestMessage, ControlPlaneMessage, DecodedSidecarMessage, Hello, WorkloadIdentity } from '@dbward/sidecar/controlplane';
import type { ControlPlaneMetrics } from './metrics.js';
import { ControlPlaneAuthError, type AccessRequestStore, type ControlPlaneLogger, type PodLookup, type RejectionSink, type SidecarIdentity, type TokenVerifier } from './ports.js';
import { labelsKey, type SnapshotContent } from './snapshot.js';

export type SubscribeCall = ServerDuplexStream<DecodedSidecarMessage, ControlPlaneMessage>;

/** What one stream needs from the server. */
export interface StreamDeps {
  tokens: TokenVerifier;
  pods: PodLookup;
  rejections: RejectionSink;
  accessRequests: AccessRequestStore;
  metrics: ControlPlaneMetrics;
  log: ControlPlaneLogger;
  helloTimeoutMs: number;
  /** Registers the subscribed stream; the hub then offers it snapshots. */
  subscribe(stream: SidecarStream): void;
  /** The stream closed (subscribed or not): forget it. */
  unsubscribe(stream: SidecarStream): void;
}

/** Versions remembered per stream, to name the policies of a NACKed version. */
const KEPT_VERSIONS = 4;
/** AccessRequests one sidecar may wait on at once. */
const MAX_PENDING_APPROVALS = 256;
/** AccessRequestSpec.statement is at most this long. */
const MAX_STATEMENT = 65_536;

/**
 * One sidecar's stream: authenticate (token in metadata), wait for Hello, look up the pod's labels,
 * subscribe to snapshots, then relay ACK/NACK and approvals. Snapshots are written only when their
 * content or the identity changed, and never pile up behind a slow reader: while the transport is
 * full, a newer snapshot replaces the one waiting.
 */
export class SidecarStream {
  identity: SidecarIdentity | undefined;
  labels: Readonly<Record<string, string>> = {};
  labelsKey = '';
  hello: Hello | undefined;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  nackedVersion: string | undefined;
  #identityKey = '';
  #state: 'authenticating' | 'hello' | 'subscribed' | 'closed' = 'authenticating';
  readonly #queue: DecodedSidecarMessage[] = [];
  readonly #versions = new Map<string, SnapshotContent>();
  readonly #approvals = new Map<string, () => void>();
  #blocked = false;
  #waiting: ControlPlaneMessage | undefined;
  #helloTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: SubscribeCall,
    private readonly deps: StreamDeps,
  ) {}

  get namespace(): string {
    return this.identity?.namespace ?? '';
  }

  get subscribed(): boolean {
    return this.#state === 'subscribed';
  }

  start(): void {
    this.deps.metrics.streamsOpened++;
    this.deps.metrics.open++;
    this.call.on('data', (message: DecodedSidecarMessage) => this.#onMessage(message));
    this.call.on('end', () => this.#finish(Status.OK, 'the sidecar closed the stream'));
    this.call.on('cancelled', () => this.#closed());
    this.call.on('close', () => this.#closed());
    this.call.on('error', () => this.#closed());
    this.#helloTimer = setTimeout(() => this.#finish(Status.INVALID_ARGUMENT, `no Hello within ${this.deps.helloTimeoutMs} ms`), this.deps.helloTimeoutMs);
    this.#helloTimer.unref();
    void this.#authenticate();
  }

  /** Offers the snapshot for this stream's namespace and labels; written only when something changed. */
  offer(content: SnapshotContent): void {
    if (this.#state !== 'subscribed' || this.identity === undefined) return;
    if (content.version === this.sentVersion && this.#identityKey === this.labelsKey) return;
    this.sentVersion = content.version;
    this.#identityKey = this.labelsKey;
    this.#versions.set(content.version, content);
    if (this.#versions.size > KEPT_VERSIONS) this.#versions.delete(this.#versions.keys().next().value!);
    const identity: WorkloadIdentity = {
      namespace: this.identity.namespace,
      serviceAccount: this.identity.serviceAccount,
      pod: this.identity.pod,
      podUid: this.identity.podUid,
      labels: { ...this.labels },
    };
    this.#writeSnapshot({ snapshot: { version: content.version, policies: [...content.policies], identity } });
  }

  /** The pod's labels may have changed: read them again. True when they did (the caller offers a new snapshot). */
  async relabel(): Promise<boolean> {
    if (this.#state !== 'subscribed' || this.identity === undefined || this.labelsKey === '') return false;
    let labels: Readonly<Record<string, string>> | undefined;
    try {
      labels = await this.deps.pods.labels(this.identity.namespace, this.identity.pod);
    } catch (error) {
      this.deps.log.warn({ err: error, pod: this.identity.pod }, 'pod lookup failed; keeping the labels known');
      return false;
    }
    // A deleted pod is going away with its sidecar: keep serving what it has until then.
    if (labels === undefined || this.#isClosed()) return false;
    const key = labelsKey(labels);
    if (key === this.labelsKey) return false;
    this.labels = labels;
    this.labelsKey = key;
    return true;
  }

  /** Server shutdown: end the stream with UNAVAILABLE so the sidecar reconnects elsewhere. */
  shutdown(): void {
    this.#finish(Status.UNAVAILABLE, 'the control plane is shutting down');
  }

  async #authenticate(): Promise<void> {
    const token = bearerToken(this.call.metadata);
    if (token === undefined) return this.#refuse(Status.UNAUTHENTICATED, 'missing "authorization: Bearer <token>" metadata');
    try {
      this.identity = await this.deps.tokens.verify(token);
    } catch (error) {
      if (error instanceof ControlPlaneAuthError) return this.#refuse(Status.UNAUTHENTICATED, `token rejected: ${error.message}`);
      this.deps.log.error({ err: error }, 'token verification failed');
      return this.#refuse(Status.UNAVAILABLE, 'token verification failed; retry later');
    }
    if (this.#isClosed()) return;
    this.#state = 'hello';
    for (const message of this.#queue.splice(0)) this.#onMessage(message);
  }

  #onMessage(message: DecodedSidecarMessage): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'authenticating') {
      if (this.#queue.length < 16) this.#queue.push(message);
      else this.#refuse(Status.RESOURCE_EXHAUSTED, 'too many messages before authentication');
      return;
    }
    if (this.#state === 'hello') {
      if (message.message !== 'hello' || message.hello === undefined) return this.#refuse(Status.INVALID_ARGUMENT, 'the first message must be Hello');
      this.#state = 'subscribed';
      this.hello = message.hello as Hello;
      clearTimeout(this.#helloTimer);
      void this.#lookupPod();
      return;
    }
    switch (message.message) {
      case 'ack':
        this.ackedVersion = message.ack?.version;
        this.deps.metrics.acks++;
        return;
      case 'nack':
        return this.#onNack(message.nack?.version ?? '', message.nack?.error ?? '');
      case 'approvalRequest':
        return void this.#onApprovalRequest(message.approvalRequest as ApprovalRequestMessage);
      case 'approvalWithdraw':
        return void this.#onWithdraw(message.approvalWithdraw?.name ?? '', message.approvalWithdraw?.reason ?? '');
      case 'approvalWatch':
        return this.#watch(message.approvalWatch?.name ?? '');
      case 'hello':
        return this.#refuse(Status.INVALID_ARGUMENT, 'Hello was already sent');
      default:
        return this.#refuse(Status.INVALID_ARGUMENT, 'empty or unknown message');
    }
  }

  async #lookupPod(): Promise<void> {
    const identity = this.identity!;
    let labels: Readonly<Record<string, string>> | undefined;
    try {
      labels = await this.deps.pods.labels(identity.namespace, identity.pod);
    } catch (error) {
      this.deps.log.error({ err: error, namespace: identity.namespace, pod: identity.pod }, 'pod lookup failed');
      return this.#refuse(Status.UNAVAILABLE, 'pod lookup failed; retry later');
    }
    if (labels === undefined) return this.#refuse(Status.PERMISSION_DENIED, `pod ${identity.namespace}/${identity.pod} not found`);
    if (this.#isClosed()) return;
    this.labels = labels;
    this.labelsKey = labelsKey(labels);
    this.deps.metrics.connected++;
    this.deps.log.info(
      { namespace: identity.namespace, pod: identity.pod, serviceAccount: identity.serviceAccount, sidecarVersion: this.hello?.sidecarVersion, currentVersion: this.hello?.currentVersion },
      'sidecar subscribed',
    );
    this.deps.subscribe(this);
  }

  #onNack(version: string, error: string): void {
    const identity = this.identity!;
    this.nackedVersion = version;
    this.deps.metrics.nacks++;
    const names = this.#versions.get(version)?.names ?? [];
    this.deps.log.warn({ namespace: identity.namespace, pod: identity.pod, version, policies: names, error }, 'sidecar rejected a snapshot');
    try {
      this.deps.rejections.rejected(identity.namespace, names, version, error.slice(0, 4096), identity);
    } catch (cause) {
      this.deps.log.error({ err: cause }, 'recording a rejection failed');
    }
  }

  async #onApprovalRequest(request: ApprovalRequestMessage): Promise<void> {
    const identity = this.identity!;
    const reply = (name: string, error: string) => this.#write({ approvalCreated: { requestId: request.requestId, name, error } });
    if (this.#approvals.size >= MAX_PENDING_APPROVALS) return reply('', `too many pending approvals (${MAX_PENDING_APPROVALS}) for this sidecar`);
    const policy = this.#policyOfRule(request.rule);
    if (policy === undefined) return reply('', `rule "${request.rule}" is not a guardrail of a policy delivered to this sidecar`);
    const now = new Date();
    const candidate: AccessRequestSpec = {
      policy,
      rule: request.rule,
      statement: request.statement.slice(0, MAX_STATEMENT),
      identity: {
        user: request.identity?.user ?? '',
        database: request.identity?.database ?? '',
        application: request.identity?.application ?? '',
        // The workload fields are the verified ones, whatever the sidecar believes.
        namespace: identity.namespace,
        serviceAccount: identity.serviceAccount,
        pod: identity.pod,
        labels: { ...this.labels },
      },
      requestedAt: now.toISOString(),
      ...(request.timeoutMs > 0 ? { expiresAt: new Date(now.getTime() + request.timeoutMs).toISOString() } : {}),
    };
    const spec = AccessRequestSpecSchema.safeParse(candidate);
    if (!spec.success) return reply('', `invalid approval request: ${spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    let name: string;
    try {
      name = await this.deps.accessRequests.create(identity.namespace, spec.data);
    } catch (error) {
      this.deps.log.error({ err: error, namespace: identity.namespace, rule: request.rule }, 'creating an AccessRequest failed');
      return reply('', `the AccessRequest could not be created: ${(error as Error).message}`);
    }
    this.deps.metrics.approvalsCreated++;
    this.deps.log.info({ namespace: identity.namespace, pod: identity.pod, accessRequest: name, rule: request.rule }, 'AccessRequest created');
    if (this.#isClosed()) return;
    reply(name, '');
    this.#watch(name);
  }

  #watch(name: string): void {
    if (name === '' || this.#approvals.has(name) || this.#state === 'closed') return;
    const namespace = this.namespace;
    let decided = false;
    const unsubscribe = this.deps.accessRequests.onDecision(namespace, name, (status: AccessRequestStatus) => {
      decided = true;
      this.#approvals.get(name)?.();
      this.#approvals.delete(name);
      this.deps.metrics.approvalsDecided++;
      this.#write({
        approvalDecision: { name, phase: status.phase, decidedBy: status.decidedBy ?? '', reason: status.reason ?? '', decidedAt: status.decidedAt ?? '' },
      });
    });
    // onDecision may call back at once (already decided): only keep a live subscription.
    if (decided || this.#isClosed()) unsubscribe();
    else this.#approvals.set(name, unsubscribe);
  }

  async #onWithdraw(name: string, reason: string): Promise<void> {
    this.#approvals.get(name)?.();
    this.#approvals.delete(name);
    if (name === '') return;
    this.deps.metrics.approvalsWithdrawn++;
    try {
      await this.deps.accessRequests.expire(this.namespace, name, reason === '' ? 'the sidecar stopped waiting' : reason);
    } catch (error) {
      this.deps.log.error({ err: error, accessRequest: name }, 'expiring an AccessRequest failed');
    }
  }

  /** The policy (of the snapshots sent) with a guardrail named `rule`. */
  #policyOfRule(rule: string): string | undefined {
    const versions = [...this.#versions.values()].reverse();
    for (const content of versions) {
      for (const doc of content.policies) {
        const parsed = JSON.parse(doc.json) as { spec?: { guardrails?: Array<{ name?: string }> } };
        if (parsed.spec?.guardrails?.some((g) => g.name === rule) === true) return doc.name;
      }
    }
    return undefined;
  }

  #writeSnapshot(message: ControlPlaneMessage): void {
    if (this.#blocked) {
      this.#waiting = message;
      return;
    }
    this.deps.metrics.snapshotsSent++;
    this.#write(message);
  }

  #write(message: ControlPlaneMessage): void {
    if (this.#state === 'closed' || this.call.writableEnded) return;
    if (!this.call.write(message) && !this.#blocked) {
      this.#blocked = true;
      this.call.once('drain', () => {
        this.#blocked = false;
        const waiting = this.#waiting;
        this.#waiting = undefined;
        if (waiting !== undefined) this.#writeSnapshot(waiting);
      });
    }
  }

  #refuse(code: Status, details: string): void {
    if (this.#state === 'closed') return;
    this.deps.metrics.refused++;
    this.deps.log.warn({ namespace: this.identity?.namespace, pod: this.identity?.pod, peer: this.call.getPeer(), code: Status[code], details }, 'sidecar stream refused');
    this.#finish(code, details);
  }

  #finish(code: Status, details: string): void {
    if (this.#state === 'closed') return;
    this.#closed();
    if (!this.call.writableEnded) {
      if (code === Status.OK) this.call.end();
      else this.call.emit('error', { code, details });
    }
  }

  /** A method, not a field comparison: the state changes across awaits. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    const wasSubscribed = this.#state === 'subscribed' && this.labelsKey !== '';
    this.#state = 'closed';
    clearTimeout(this.#helloTimer);
    for (const unsubscribe of this.#approvals.values()) unsubscribe();
    this.#approvals.clear();
    this.deps.metrics.open--;
    if (wasSubscribed) this.deps.metrics.connected--;
    this.deps.unsubscribe(this);
  }
}

function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}
