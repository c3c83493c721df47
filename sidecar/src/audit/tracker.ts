import type { ColumnPlan } from '../masking/plan.js';
import { ExpectedReplies } from '../session/expected-replies.js';
import type { StatementDecision, Verdict } from '../session/policy-gate.js';
import type { StatementFacts } from '../sql/index.js';
import { Backend, Frontend } from '../wire/codes.js';
import { findTraceParent, type StatementShape, type TraceParent } from './statement-shape.js';
import type { EnforcerAudit, SessionAudit } from './types.js';

/**
 * One session's statements as the client sees them: which statement each reply belongs to (its
 * own queue of expected replies, fed with exactly the messages the client sends and receives),
 * what the enforcer decided for it, and when it ended. Each ended statement is handed to the
 * emitter as a {@link StatementRun}. No I/O.
 */

/** A statement execution, from its client message to its CommandComplete / ErrorResponse. */
export interface StatementRun {
  shape: StatementShape;
  facts: StatementFacts | undefined;
  decision: string;
  rule: string | undefined;
  /** performance.now() (ms) when the statement started. */
  start: number;
  trace: TraceParent | undefined;
  maskedPlan: readonly ColumnPlan[] | undefined;
  maskedValues: number;
}

/** What the tracker needs from the process-wide side. */
export interface TrackerHost {
  /** Shape of a statement (cached per shape). */
  shape(facts: StatementFacts | undefined, text: string | undefined): StatementShape;
  /** Pass-through mode: the facts of a query string (analysis cached), or [] when unknown. */
  analyze(text: string): StatementFacts[];
  /** A statement ended: rows from CommandComplete, or the SQLSTATE of its error. */
  emit(run: StatementRun, end: number, rows: number | undefined, sqlstate: string | undefined): void;
  /** The session ended. */
  closed(): void;
}

/** A Query, Parse or FunctionCall: decided as a whole, one run per statement. */
interface Pending {
  kind: 'query' | 'parse' | 'function-call';
  start: number;
  trace: TraceParent | undefined;
  /** Pass-through mode only: the SQL text. */
  text: string | undefined;
  /** Parse: the prepared statement's name. */
  name: string;
  runs: StatementRun[] | null;
  index: number;
  /** The whole message was refused (all its statements get the refusal's status). */
  refused: boolean;
  sqlstate: string | undefined;
}

/**
 * An Execute of a portal. Its statement's Parse may still wait for the enforcer's decision (the
 * enforcer queues client messages behind a held statement or its own queries), so the run is
 * built when first needed: by then the server has answered, so the Parse was decided.
 */
interface Execution {
  source: Pending | undefined;
  start: number;
  run: StatementRun | undefined;
}

type Tag = Pending | Execution;

/** Backend messages that can complete an expected reply; the rest (DataRow, CopyData, ...) are skipped cheaply. */
const RELEVANT = new Uint8Array(256);
for (const code of [
  Backend.ParseComplete,
  Backend.BindComplete,
  Backend.CloseComplete,
  Backend.RowDescription,
  Backend.NoData,
  Backend.CommandComplete,
  Backend.EmptyQueryResponse,
  Backend.PortalSuspended,
  Backend.ErrorResponse,
  Backend.ReadyForQuery,
]) {
  RELEVANT[code] = 1;
}

const MAX_NAMED = 10_000;

export class SessionTracker implements SessionAudit, EnforcerAudit {
  readonly decisions: EnforcerAudit = this;
  private readonly expected = new ExpectedReplies<Tag>();
  /** Statement messages seen but not yet decided by the enforcer, oldest first. */
  private readonly awaiting: Pending[] = [];
  private held: Pending | null = null;
  /** Prepared statements by name: their Parse (decided, or still waiting for the enforcer). */
  private readonly prepared = new Map<string, Pending>();
  private readonly portals = new Map<string, Pending | undefined>();
  private lastPlan: readonly ColumnPlan[] | undefined;
  private lastPlanMasks = 0;
  private closed = false;

  constructor(
    private readonly host: TrackerHost,
    /** True when an enforcer decides statements; false: pass-through, every statement is allowed. */
    private readonly policyMode: boolean,
  ) {}

  clientMessage(code: number, buf: Buffer, start: number, end: number): void {
    switch (code) {
      case Frontend.Query:
        return this.onStatementMessage('query', '', buf, start, end, start + 5);
      case Frontend.Parse: {
        const nameEnd = buf.indexOf(0, start + 5);
        return this.onStatementMessage('parse', cstring(buf, start + 5, nameEnd), buf, start, end, nameEnd + 1);
      }
      case Frontend.FunctionCall:
        return this.onStatementMessage('function-call', '', buf, start, end, -1);
      case Frontend.Bind: {
        const portalEnd = buf.indexOf(0, start + 5);
        const statementEnd = buf.indexOf(0, portalEnd + 1);
        if (this.portals.size >= MAX_NAMED) this.portals.clear();
        this.portals.set(cstring(buf, start + 5, portalEnd), this.prepared.get(cstring(buf, portalEnd + 1, statementEnd)));
        this.expected.push('bind');
        return;
      }
      case Frontend.Execute: {
        const source = this.portals.get(buf[start + 5] === 0 ? '' : buf.toString('utf8', start + 5, buf.indexOf(0, start + 5)));
        this.expected.push('execute', { source, start: performance.now(), run: undefined });
        return;
      }
      default: {
        const kind = ExpectedReplies.kindOf(code);
        if (kind !== undefined) this.expected.push(kind);
      }
    }
  }

  private onStatementMessage(kind: Pending['kind'], name: string, buf: Buffer, start: number, end: number, textStart: number): void {
    const pending: Pending = {
      kind,
      start: performance.now(),
      trace: kind === 'function-call' ? undefined : findTraceParent(buf, start, end),
      text: undefined,
      name,
      runs: null,
      index: 0,
      refused: false,
      sqlstate: undefined,
    };
    this.expected.push(kind, pending);
    if (kind === 'parse') this.remember(pending);
    if (this.policyMode) {
      this.awaiting.push(pending);
      return;
    }
    // Pass-through: nobody decides; the statement is allowed, and analysed here for its shape.
    if (textStart >= 0) pending.text = buf.toString('utf8', textStart, buf.indexOf(0, textStart));
    const facts = pending.text === undefined ? [] : this.host.analyze(pending.text);
    pending.runs = facts.length === 0 ? [this.run(pending, undefined, 'allow', undefined)] : facts.map((f) => this.run(pending, f, 'allow', undefined));
  }

  decided(verdict: Verdict): void {
    const pending = this.awaiting.shift();
    if (pending === undefined) return;
    const facts = verdict.facts;
    if (verdict.kind === 'refuse') {
      pending.refused = true;
      const rule = firstRule(verdict.decisions, 'deny') ?? ruleOfRefusal(verdict.refusal.message, verdict.refusal.reason);
      pending.runs = facts.length === 0 ? [this.run(pending, undefined, 'deny', rule)] : facts.map((f) => this.run(pending, f, 'deny', rule));
    } else if (verdict.kind === 'hold') {
      pending.runs = facts.length === 0 ? [this.run(pending, undefined, 'pending', verdict.rule)] : facts.map((f) => this.run(pending, f, 'pending', verdict.rule));
      this.held = pending;
    } else if (facts.length === 0) {
      pending.runs = [this.run(pending, undefined, 'allow', undefined)];
    } else {
      const runs: StatementRun[] = [];
      for (let i = 0; i < facts.length; i++) {
        const d = verdict.decisions[i];
        runs.push(this.run(pending, facts[i], d !== undefined && d.auditOnly && d.action !== 'allow' ? 'audit-only' : 'allow', d?.rule));
      }
      pending.runs = runs;
    }
  }

  settled(approved: boolean): void {
    const pending = this.held;
    this.held = null;
    if (pending === null || pending.runs === null) return;
    for (const run of pending.runs) run.decision = approved ? 'approved' : 'rejected';
    pending.refused = !approved;
  }

  masked(plan: readonly ColumnPlan[]): void {
    const run = this.currentRun();
    if (run === undefined) return;
    if (plan !== this.lastPlan) {
      this.lastPlan = plan;
      this.lastPlanMasks = 0;
      for (const c of plan) if (c.action === 'mask') this.lastPlanMasks++;
    }
    run.maskedPlan ??= plan;
    run.maskedValues += this.lastPlanMasks;
  }

  serverMessage(code: number, buf: Buffer, start: number, end: number): void {
    if (RELEVANT[code] === 0) return;
    const match = this.expected.onBackend(code);
    const request = match.request;
    if (request === undefined || request.tag === undefined) return;
    const tag = request.tag;
    if ('source' in tag) {
      if (!match.completes) return;
      const now = performance.now();
      const run = this.runOf(tag);
      if (code === Backend.ErrorResponse) this.host.emit(run, now, undefined, sqlstateOf(buf, start, end));
      else this.host.emit(run, now, code === Backend.CommandComplete ? rowsOf(buf, start, end) : undefined, undefined);
      return;
    }
    if (tag.kind === 'parse') {
      // A Parse ends in ParseComplete (the statement runs at each Execute) or in its error.
      if (code === Backend.ErrorResponse && tag.runs !== null && tag.runs[0] !== undefined) {
        this.host.emit(tag.runs[0], performance.now(), undefined, sqlstateOf(buf, start, end));
        if (this.prepared.get(tag.name) === tag) this.prepared.delete(tag.name);
      }
      return;
    }
    this.onQueryReply(tag, code, buf, start, end);
  }

  /** Simple Query and FunctionCall: one result per statement, then ReadyForQuery. */
  private onQueryReply(pending: Pending, code: number, buf: Buffer, start: number, end: number): void {
    const runs = pending.runs;
    if (runs === null) return;
    // The clock is read only where a statement ends (not for RowDescription, nor for a
    // ReadyForQuery that ends nothing).
    switch (code) {
      case Backend.CommandComplete:
      case Backend.EmptyQueryResponse:
      case Backend.ErrorResponse: {
        const run = runs[pending.index++];
        if (run === undefined) return;
        const now = performance.now();
        if (code === Backend.ErrorResponse) {
          pending.sqlstate = sqlstateOf(buf, start, end);
          this.host.emit(run, now, undefined, pending.sqlstate);
        } else {
          this.host.emit(run, now, code === Backend.CommandComplete ? rowsOf(buf, start, end) : undefined, undefined);
        }
        const next = runs[pending.index];
        if (next !== undefined) next.start = now;
        return;
      }
      case Backend.ReadyForQuery: {
        // A refused string: none of it ran, every statement carries the refusal. A FunctionCall
        // ends here. Statements after a server error never ran: no span.
        if (pending.index >= runs.length) return;
        const now = performance.now();
        while (pending.index < runs.length) {
          const run = runs[pending.index++]!;
          if (pending.refused) this.host.emit(run, now, undefined, pending.sqlstate);
          else if (pending.kind === 'function-call' && pending.sqlstate === undefined) this.host.emit(run, now, undefined, undefined);
        }
        return;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.closed();
  }

  /** The run whose rows are arriving now. */
  private currentRun(): StatementRun | undefined {
    const head = this.expected.peek()?.tag;
    if (head === undefined) return undefined;
    if ('source' in head) return this.runOf(head);
    return head.runs?.[head.index];
  }

  /** The run of an Execute: its prepared statement's decision and shape, timed from the Execute. */
  private runOf(execution: Execution): StatementRun {
    if (execution.run !== undefined) return execution.run;
    const info = execution.source?.runs?.[0];
    execution.run =
      info === undefined
        ? this.unknownRun(execution.start)
        : { ...info, start: execution.start, trace: info.trace, maskedPlan: undefined, maskedValues: 0 };
    return execution.run;
  }

  private remember(pending: Pending): void {
    if (this.prepared.size >= MAX_NAMED) this.prepared.clear();
    this.prepared.set(pending.name, pending);
  }

  private run(pending: Pending, facts: StatementFacts | undefined, decision: string, rule: string | undefined): StatementRun {
    return {
      shape: this.host.shape(facts, facts === undefined ? pending.text : undefined),
      facts,
      decision,
      rule,
      start: pending.start,
      trace: pending.trace,
      maskedPlan: undefined,
      maskedValues: 0,
    };
  }

  private unknownRun(start: number): StatementRun {
    return { shape: this.host.shape(undefined, undefined), facts: undefined, decision: 'allow', rule: undefined, start, trace: undefined, maskedPlan: undefined, maskedValues: 0 };
  }
}

/** A name of a Parse, Bind or Execute (most are the unnamed '': no string built). */
function cstring(buf: Buffer, start: number, end: number): string {
  return end === start ? '' : buf.toString('utf8', start, end);
}

/** The rule of the first decision with this action that is enforced. */
function firstRule(decisions: readonly StatementDecision[], action: StatementDecision['action']): string | undefined {
  for (const d of decisions) if (d.action === action && !d.auditOnly) return d.rule;
  return undefined;
}

/** `dbward: denied by <rule>: ...` names the rule; other refusals are named after their reason. */
export function ruleOfRefusal(message: string, reason: string): string {
  const match = /denied by ([^:\s]+):/.exec(message);
  return match?.[1] ?? `dbward.${reason}`;
}

/** The row count at the end of a CommandComplete tag (`SELECT 5`, `INSERT 0 5`), if any. */
export function rowsOf(buf: Buffer, start: number, end: number): number | undefined {
  let i = end - 2; // before the terminating NUL
  let value = 0;
  let scale = 1;
  while (i > start + 5 && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
    value += (buf[i]! - 0x30) * scale;
    scale *= 10;
    i--;
  }
  return scale === 1 || buf[i] !== 0x20 ? undefined : value;
}

/** The SQLSTATE ('C' field) of an ErrorResponse. */
export function sqlstateOf(buf: Buffer, start: number, end: number): string | undefined {
  let i = start + 5;
  while (i < end && buf[i] !== 0) {
    const type = buf[i]!;
    const valueEnd = buf.indexOf(0, i + 1);
    if (valueEnd < 0 || valueEnd >= end) return undefined;
    if (type === 0x43 /* C */) return buf.toString('latin1', i + 1, valueEnd);
    i = valueEnd + 1;
  }
  return undefined;
}
