import type { Condition, DataAccessPolicyStatus } from '@dbward/sidecar/api';
import type { Observation } from './observe.js';

/**
 * Phase 2, status (pure): the status an observation calls for. Conditions keep their
 * lastTransitionTime while their status does not change; `Applied` (a sidecar rejected the policy,
 * see RejectionSink) is dropped once a newer generation is observed.
 */

export const READY = 'Ready';
export const APPLIED = 'Applied';

export function setCondition(conditions: readonly Condition[], next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const old = conditions.find((c) => c.type === next.type);
  const lastTransitionTime = old !== undefined && old.status === next.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : rfc3339(now);
  const merged: Condition = { ...next, lastTransitionTime };
  return [...conditions.filter((c) => c.type !== next.type), merged].sort((a, b) => a.type.localeCompare(b.type));
}

export function desiredStatus(current: DataAccessPolicyStatus | undefined, obs: Observation, now: Date): DataAccessPolicyStatus {
  let conditions = [...(current?.conditions ?? [])];
  conditions = conditions.filter((c) => !(c.type === APPLIED && (c.observedGeneration ?? 0) < obs.generation));
  conditions = setCondition(
    conditions,
    obs.ready
      ? { type: READY, status: 'True', reason: 'Compiled', message: `${obs.rules} rule(s) compiled`, observedGeneration: obs.generation }
      : { type: READY, status: 'False', reason: obs.reason, message: obs.message, observedGeneration: obs.generation },
    now,
  );
  const status: DataAccessPolicyStatus = { observedGeneration: obs.generation, conditions };
  if (current?.policyVersion !== undefined) status.policyVersion = current.policyVersion;
  return status;
}

/** True when writing `next` would change nothing. */
export function sameStatus(a: DataAccessPolicyStatus | undefined, b: DataAccessPolicyStatus): boolean {
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

function normalize(s: DataAccessPolicyStatus | undefined): unknown {
  if (s === undefined) return {};
  const conditions = [...(s.conditions ?? [])].sort((x, y) => x.type.localeCompare(y.type)).map((c) => ({ ...c }));
  return { observedGeneration: s.observedGeneration, policyVersion: s.policyVersion, conditions };
}

/** The Ready condition of a status, if any. */
export function readyCondition(status: DataAccessPolicyStatus | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === READY);
}

/** RFC 3339 with second precision, as metav1.Time. */
export function rfc3339(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** RFC 3339 with microseconds, as metav1.MicroTime (Events, Leases). */
export function microTime(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}
