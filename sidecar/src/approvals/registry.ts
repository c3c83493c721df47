import { randomBytes } from 'node:crypto';

/**
 * Statements held for a human decision (`action: requireApproval`, SPEC §7). The session asks,
 * waits on the returned promise, and carries out the outcome; an operator decides through the
 * admin endpoint (`dbward approvals approve|deny`) or, in Kubernetes, an AccessRequest.
 */

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';

export interface ApprovalRequest {
  id: string;
  state: ApprovalState;
  /** The rule that asked for approval. */
  rule: string;
  message: string | undefined;
  /** The statement as the audit settings allow it to be shown (normalized by default). */
  statement: string;
  /** Who is asking: identity fields as the policy saw them. */
  identity: Record<string, string>;
  sessionId: number;
  createdAt: string;
  expiresAt: string;
  decidedBy: string | undefined;
  decidedAt: string | undefined;
  reason: string | undefined;
}

export type ApprovalOutcome =
  | { state: 'approved'; request: ApprovalRequest }
  | { state: 'denied'; request: ApprovalRequest }
  | { state: 'expired'; request: ApprovalRequest }
  | { state: 'cancelled'; request: ApprovalRequest };

export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
  constructor(
    readonly code: 'not-found' | 'already-decided',
    message: string,
  ) {
    super(message);
  }
}

export interface ApprovalInput {
  rule: string;
  message?: string;
  statement: string;
  identity: Record<string, string>;
  sessionId: number;
  timeoutMs: number;
}

/** One held statement, as the session sees it, whatever decides it. */
export interface ApprovalHold {
  /** The approval id the client is shown: at once (local registry) or once a remote store named it (AccessRequest). */
  readonly id: string | Promise<string>;
  /** Settles exactly once: approved, denied, expired or cancelled. */
  readonly outcome: Promise<ApprovalOutcome>;
  /** The client went away or cancelled: withdraw the request. */
  cancel(): void;
}

/**
 * Where held statements go: the local {@link ApprovalRegistry} (standalone, decided through the
 * admin endpoint) or the control plane (an AccessRequest per statement, see controlplane/approvals.ts).
 */
export interface Approvals {
  request(input: ApprovalInput): ApprovalHold;
  /** How a human decides request `id` (the NOTICE's HINT); default: the `dbward approvals` CLI. */
  hint?(id: string): string;
}

/** Decided requests are kept this long for `list`, then forgotten. */
const KEEP_DECIDED_MS = 60 * 60 * 1000;
/** Crockford base32, without letters that read like digits. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A new pending request for `input`, created at `created`. */
export function pendingRequest(id: string, input: ApprovalInput, created: Date): ApprovalRequest {
  return {
    id,
    state: 'pending',
    rule: input.rule,
    message: input.message,
    statement: input.statement,
    identity: input.identity,
    sessionId: input.sessionId,
    createdAt: created.toISOString(),
    expiresAt: new Date(created.getTime() + input.timeoutMs).toISOString(),
    decidedBy: undefined,
    decidedAt: undefined,
    reason: undefined,
  };
}

export function newApprovalId(): string {
  const bytes = randomBytes(8);
  let id = '';
  for (const b of bytes) id += ALPHABET[b & 31];
  return `apr-${id}`;
}

interface Entry {
  request: ApprovalRequest;
  resolve: (outcome: ApprovalOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

export class ApprovalRegistry implements Approvals {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(request: ApprovalRequest) => void>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  /** Holds a statement: returns its id at once and the outcome when it is decided or expires. */
  request(input: ApprovalInput): { id: string; outcome: Promise<ApprovalOutcome>; cancel(): void } {
    this.prune();
    const request = pendingRequest(newApprovalId(), input, this.now());
    let resolve!: (outcome: ApprovalOutcome) => void;
    const outcome = new Promise<ApprovalOutcome>((r) => (resolve = r));
    const entry: Entry = { request, resolve, timer: undefined };
    entry.timer = setTimeout(() => this.settle(request.id, 'expired', 'dbward', 'approval timeout reached'), input.timeoutMs);
    entry.timer.unref();
    this.entries.set(request.id, entry);
    this.emit(request);
    return { id: request.id, outcome, cancel: () => this.cancel(request.id) };
  }

  approve(id: string, by: string, reason?: string): ApprovalRequest {
    return this.decide(id, 'approved', by, reason);
  }

  deny(id: string, by: string, reason?: string): ApprovalRequest {
    return this.decide(id, 'denied', by, reason);
  }

  /** The client went away or the session closed: the request can no longer be acted on. */
  cancel(id: string): void {
    const entry = this.entries.get(id);
    if (entry?.request.state === 'pending') this.settle(id, 'cancelled', 'dbward', 'the client disconnected');
  }

  get(id: string): ApprovalRequest | undefined {
    return this.entries.get(id)?.request;
  }

  /** Pending requests first (oldest first), then decided ones (newest first). */
  list(): ApprovalRequest[] {
    this.prune();
    const all = [...this.entries.values()].map((e) => e.request);
    const pending = all.filter((r) => r.state === 'pending').sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const done = all.filter((r) => r.state !== 'pending').sort((a, b) => (b.decidedAt ?? '').localeCompare(a.decidedAt ?? ''));
    return [...pending, ...done];
  }

  /** Called on every new request and every decision (for logs, events, AccessRequest sync). */
  onChange(listener: (request: ApprovalRequest) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private decide(id: string, state: 'approved' | 'denied', by: string, reason: string | undefined): ApprovalRequest {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new ApprovalError('not-found', `no approval request ${id}`);
    if (entry.request.state !== 'pending') {
      throw new ApprovalError('already-decided', `approval request ${id} is already ${entry.request.state}`);
    }
    return this.settle(id, state, by, reason);
  }

  private settle(id: string, state: Exclude<ApprovalState, 'pending'>, by: string, reason: string | undefined): ApprovalRequest {
    const entry = this.entries.get(id)!;
    if (entry.request.state !== 'pending') return entry.request;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.request.state = state;
    entry.request.decidedBy = by;
    entry.request.decidedAt = this.now().toISOString();
    entry.request.reason = reason;
    entry.resolve({ state, request: entry.request });
    this.emit(entry.request);
    return entry.request;
  }

  private emit(request: ApprovalRequest): void {
    for (const listener of this.listeners) listener(request);
  }

  private prune(): void {
    const cutoff = this.now().getTime() - KEEP_DECIDED_MS;
    for (const [id, entry] of this.entries) {
      if (entry.request.state !== 'pending' && Date.parse(entry.request.decidedAt ?? '') < cutoff) this.entries.delete(id);
    }
  }
}
