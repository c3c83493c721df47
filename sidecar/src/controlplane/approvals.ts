import { newApprovalId, pendingRequest, type ApprovalHold, type ApprovalInput, type ApprovalOutcome, type ApprovalRequest, type Approvals, type ApprovalState } from '../approvals/registry.js';
import type { ApprovalCreated, ApprovalDecision, SidecarMessage } from './proto.js';

/** How approvals reach the control plane: the current stream, when there is one. */
export interface ApprovalLink {
  /** Sends on the live stream; false when there is none (the message is not sent). */
  send(message: SidecarMessage): boolean;
}

interface Entry {
  readonly requestId: string;
  name: string | undefined;
  readonly request: ApprovalRequest;
  settled: boolean;
  resolveId: (name: string) => void;
  rejectId: (error: Error) => void;
  resolveOutcome: (outcome: ApprovalOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * `requireApproval` in Kubernetes (SPEC §7): each held statement becomes an AccessRequest created
 * by the control plane; its name is the approval id the client sees; the decision comes back on
 * the stream. The sidecar keeps its own clock: at `approvals.timeout` it gives up and tells the
 * control plane to mark the request Expired (so does a client that leaves).
 *
 * Failing closed: with no stream, or a stream lost before the AccessRequest exists, the statement
 * is denied at once with the reason. A stream lost after it exists is not a refusal: the sidecar
 * re-subscribes to the decision when it reconnects (withdrawals made meanwhile are sent then).
 */
export class ControlPlaneApprovals implements Approvals {
  readonly #creating = new Map<string, Entry>();
  readonly #waiting = new Map<string, Entry>();
  readonly #withdrawals: Array<{ name: string; reason: string }> = [];

  constructor(
    private readonly link: ApprovalLink,
    private readonly now: () => Date = () => new Date(),
  ) {}

  request(input: ApprovalInput): ApprovalHold {
    const requestId = newApprovalId();
    const request: ApprovalRequest = pendingRequest(requestId, input, this.now());
    const entry: Entry = { requestId, name: undefined, request, settled: false, resolveId: () => undefined, rejectId: () => undefined, resolveOutcome: () => undefined, timer: undefined };
    const id = new Promise<string>((resolve, reject) => {
      entry.resolveId = resolve;
      entry.rejectId = reject;
    });
    id.catch(() => undefined);
    const outcome = new Promise<ApprovalOutcome>((resolve) => (entry.resolveOutcome = resolve));
    entry.timer = setTimeout(() => this.#settle(entry, 'expired', 'dbward', 'approval timeout reached'), input.timeoutMs);
    entry.timer.unref();
    const sent = this.link.send({
      approvalRequest: {
        requestId,
        rule: input.rule,
        statement: input.statement,
        identity: { user: input.identity.user ?? '', database: input.identity.database ?? '', application: input.identity.application ?? '' },
        timeoutMs: Math.min(input.timeoutMs, 0xffffffff),
      },
    });
    if (sent) this.#creating.set(requestId, entry);
    else this.#settle(entry, 'denied', 'dbward', 'the control plane is unreachable: no AccessRequest could be created');
    return { id, outcome, cancel: () => this.#settle(entry, 'cancelled', 'dbward', 'the client disconnected') };
  }

  hint(id: string): string {
    return `kubectl dbward approve ${id}   (or deny ${id})`;
  }

  /** The control plane created (or could not create) the AccessRequest. */
  onCreated(message: ApprovalCreated): void {
    const entry = this.#creating.get(message.requestId);
    if (entry === undefined) return;
    this.#creating.delete(message.requestId);
    if (message.error !== '' || message.name === '') {
      this.#settle(entry, 'denied', 'dbward', `the AccessRequest could not be created: ${message.error || 'no name returned'}`);
      return;
    }
    entry.name = message.name;
    entry.request.id = message.name;
    if (entry.settled) {
      // Timed out or cancelled while the request was being created.
      this.#withdraw(message.name, entry.request.reason ?? 'the sidecar stopped waiting');
      return;
    }
    this.#waiting.set(message.name, entry);
    entry.resolveId(message.name);
  }

  onDecision(message: ApprovalDecision): void {
    const entry = this.#waiting.get(message.name);
    if (entry === undefined) return;
    const state: ApprovalState | undefined = message.phase === 'Approved' ? 'approved' : message.phase === 'Denied' ? 'denied' : message.phase === 'Expired' ? 'expired' : undefined;
    if (state === undefined) return;
    this.#settle(entry, state, message.decidedBy || 'unknown', message.reason === '' ? undefined : message.reason, true);
  }

  /** A new stream is subscribed: watch the decisions still awaited, send the withdrawals made meanwhile. */
  onConnected(): void {
    for (const name of this.#waiting.keys()) this.link.send({ approvalWatch: { name } });
    for (const withdrawal of this.#withdrawals.splice(0)) {
      if (!this.link.send({ approvalWithdraw: withdrawal })) {
        this.#withdrawals.push(withdrawal);
        break;
      }
    }
  }

  /** The stream is gone: requests whose AccessRequest may not exist are denied. */
  onDisconnected(): void {
    for (const entry of [...this.#creating.values()]) {
      this.#creating.delete(entry.requestId);
      this.#settle(entry, 'denied', 'dbward', 'the control-plane connection was lost before the AccessRequest was created');
    }
  }

  /** Statements held now (for readiness and tests). */
  get pending(): number {
    return this.#creating.size + this.#waiting.size;
  }

  #settle(entry: Entry, state: Exclude<ApprovalState, 'pending'>, by: string, reason: string | undefined, fromControlPlane = false): void {
    if (entry.settled) return;
    entry.settled = true;
    clearTimeout(entry.timer);
    const request = entry.request;
    request.state = state;
    request.decidedBy = by;
    request.decidedAt = this.now().toISOString();
    request.reason = reason;
    if (entry.name !== undefined) {
      this.#waiting.delete(entry.name);
      if (!fromControlPlane && (state === 'expired' || state === 'cancelled')) this.#withdraw(entry.name, reason ?? state);
    } else {
      entry.rejectId(new Error(`approval ${state} before the AccessRequest was named`));
    }
    entry.resolveOutcome({ state, request } as ApprovalOutcome);
  }

  #withdraw(name: string, reason: string): void {
    const withdrawal = { name, reason };
    if (!this.link.send({ approvalWithdraw: withdrawal })) this.#withdrawals.push(withdrawal);
  }
}
