/**
 * The audit hooks a session calls (SPEC §8). The session and the enforcer see only these
 * interfaces; `createAudit` (audit.ts) implements them, and main.ts passes none at all when
 * neither spans nor metrics are wanted, so the statement path then costs nothing.
 */
import type { ColumnPlan } from '../masking/plan.js';
import type { Identity, Verdict } from '../session/policy-gate.js';

/** Process-wide: opens one tracker per client connection. */
export interface AuditSink {
  /** A session is ready (authenticated): its identity, and the database it runs on. */
  openSession(identity: Identity, sessionId: number, policyMode: boolean): SessionAudit;
  /** The upstream could not be reached, closed unexpectedly, or sent something invalid. */
  upstreamError(reason: 'connect_failed' | 'closed' | 'invalid_message'): void;
}

/** One session's view: every frontend message the client sends and every backend message it receives. */
export interface SessionAudit {
  /** A frontend message after authentication, before the enforcer sees it. */
  clientMessage(code: number, buf: Buffer, start: number, end: number): void;
  /** A backend message exactly as the client receives it (after refusals and masking). */
  serverMessage(code: number, buf: Buffer, start: number, end: number): void;
  /** What the enforcer decided, in the order the statements arrived. */
  readonly decisions: EnforcerAudit;
  close(): void;
}

/** Called by the enforcer. */
export interface EnforcerAudit {
  /** The verdict on the oldest statement-carrying message (Query, Parse, FunctionCall) not yet decided. */
  decided(verdict: Verdict): void;
  /** The held statement was approved or not. */
  settled(approved: boolean): void;
  /** A row of the current result was masked with this plan. */
  masked(plan: readonly ColumnPlan[]): void;
}
