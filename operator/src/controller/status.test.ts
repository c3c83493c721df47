import { describe, expect, it } from 'vitest';
import type { DataAccessPolicyStatus } from '@dbward/sidecar/api';
import type { Observation } from './observe.js';
import { desiredStatus, microTime, rfc3339, sameStatus } from './status.js';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T01:00:00Z');
const ready = (generation: number): Observation => ({ ready: true, generation, rules: 2, policy: {} as never });
const invalid = (generation: number): Observation => ({ ready: false, reason: 'Invalid', message: 'bad', generation });

describe('desiredStatus', () => {
  const cases: { name: string; current: DataAccessPolicyStatus | undefined; obs: Observation; ready: string; time: string; applied: boolean }[] = [
    { name: 'first Ready', current: undefined, obs: ready(1), ready: 'True', time: rfc3339(t1), applied: false },
    {
      name: 'still Ready keeps the transition time',
      current: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Compiled', lastTransitionTime: rfc3339(t0), observedGeneration: 1 }] },
      obs: ready(2),
      ready: 'True',
      time: rfc3339(t0),
      applied: false,
    },
    {
      name: 'Ready to Invalid moves the transition time',
      current: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Compiled', lastTransitionTime: rfc3339(t0), observedGeneration: 1 }] },
      obs: invalid(2),
      ready: 'False',
      time: rfc3339(t1),
      applied: false,
    },
    {
      name: 'Applied=False of the same generation stays',
      current: { observedGeneration: 2, conditions: [{ type: 'Applied', status: 'False', reason: 'Rejected', observedGeneration: 2, lastTransitionTime: rfc3339(t0) }] },
      obs: ready(2),
      ready: 'True',
      time: rfc3339(t1),
      applied: true,
    },
    {
      name: 'Applied=False of an older generation is dropped',
      current: { observedGeneration: 1, conditions: [{ type: 'Applied', status: 'False', reason: 'Rejected', observedGeneration: 1, lastTransitionTime: rfc3339(t0) }] },
      obs: ready(2),
      ready: 'True',
      time: rfc3339(t1),
      applied: false,
    },
  ];
  it.each(cases)('$name', ({ current, obs, ready: status, time, applied }) => {
    const next = desiredStatus(current, obs, t1);
    const cond = next.conditions?.find((c) => c.type === 'Ready');
    expect(cond?.status).toBe(status);
    expect(cond?.lastTransitionTime).toBe(time);
    expect(cond?.observedGeneration).toBe(obs.generation);
    expect(next.observedGeneration).toBe(obs.generation);
    expect(next.conditions?.some((c) => c.type === 'Applied')).toBe(applied);
  });

  it('is idempotent: the status it computes needs no second write', () => {
    const first = desiredStatus(undefined, invalid(3), t0);
    expect(sameStatus(first, desiredStatus(first, invalid(3), t1))).toBe(true);
    expect(sameStatus(first, desiredStatus(first, ready(3), t1))).toBe(false);
  });

  it('formats metav1.Time and MicroTime', () => {
    expect(rfc3339(t0)).toBe('2026-01-01T00:00:00Z');
    expect(microTime(t0)).toBe('2026-01-01T00:00:00.123000Z');
  });
});
