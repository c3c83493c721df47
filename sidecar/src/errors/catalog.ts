/**
 * The one catalog of what dbward tells a client when it refuses something (SPEC §6). The same
 * reason code feeds the ErrorResponse, the log line and (later) the audit span.
 */
export type Severity = 'ERROR' | 'FATAL';

export interface CatalogEntry {
  sqlstate: string;
  severity: Severity;
  /** Start of the message; details follow after ": ". */
  message: string;
}

export const CATALOG = {
  'guardrail-denied': { sqlstate: '42501', severity: 'ERROR', message: 'dbward: denied by' },
  'statement-not-understood': { sqlstate: '42601', severity: 'ERROR', message: 'dbward: statement not understood' },
  'approval-denied': { sqlstate: '42501', severity: 'ERROR', message: 'dbward: approval' },
  'approval-timed-out': { sqlstate: '57014', severity: 'ERROR', message: 'dbward: approval' },
  'no-policy': { sqlstate: '57P03', severity: 'FATAL', message: 'dbward: no policy loaded' },
  'upstream-unavailable': { sqlstate: '08006', severity: 'FATAL', message: 'dbward: upstream unavailable' },
  'protocol-violation': { sqlstate: '08P01', severity: 'FATAL', message: 'dbward: protocol violation' },
  'unsupported-protocol': { sqlstate: '0A000', severity: 'FATAL', message: 'dbward: unsupported frontend protocol' },
  'unsupported-auth': { sqlstate: '28000', severity: 'FATAL', message: 'dbward: unsupported authentication' },
  'channel-binding': { sqlstate: '28000', severity: 'FATAL', message: 'dbward: SCRAM channel binding cannot pass through the sidecar' },
  'upstream-auth-failed': { sqlstate: '28000', severity: 'FATAL', message: 'dbward: upstream authentication failed' },
  'shutting-down': { sqlstate: '57P01', severity: 'FATAL', message: 'dbward: the sidecar is shutting down' },
  'too-many-connections': { sqlstate: '53300', severity: 'FATAL', message: 'dbward: too many connections' },
} as const satisfies Record<string, CatalogEntry>;

export type ReasonCode = keyof typeof CATALOG;

/** A refusal ready to become an ErrorResponse. */
export interface Refusal {
  reason: ReasonCode;
  sqlstate: string;
  severity: Severity;
  message: string;
  detail?: string;
  hint?: string;
}

/** Builds a refusal; `suffix` is appended to the catalog message after ": " (or a space for "denied by"). */
export function refusal(reason: ReasonCode, suffix?: string, extra?: { detail?: string; hint?: string }): Refusal {
  const entry: CatalogEntry = CATALOG[reason];
  const joiner = entry.message.endsWith(' by') || entry.message.endsWith(' approval') ? ' ' : ': ';
  const message = suffix === undefined || suffix === '' ? entry.message : `${entry.message}${joiner}${suffix}`;
  const out: Refusal = { reason, sqlstate: entry.sqlstate, severity: entry.severity, message };
  if (extra?.detail !== undefined) out.detail = extra.detail;
  if (extra?.hint !== undefined) out.hint = extra.hint;
  return out;
}
