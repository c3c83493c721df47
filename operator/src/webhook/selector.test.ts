import { describe, expect, it } from 'vitest';
import type { LabelSelector } from '@dbward/sidecar/api';
import { selects as matchesSelector } from '../selector.js';

const labels = { app: 'api', tier: 'backend' };
const cases: { name: string; selector: LabelSelector | undefined; expected: boolean }[] = [
  { name: 'absent selects nothing', selector: undefined, expected: false },
  { name: 'empty selects everything', selector: {}, expected: true },
  { name: 'matchLabels all present', selector: { matchLabels: { app: 'api' } }, expected: true },
  { name: 'matchLabels wrong value', selector: { matchLabels: { app: 'web' } }, expected: false },
  { name: 'In', selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'db'] }] }, expected: true },
  { name: 'In missing key', selector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, expected: false },
  { name: 'NotIn missing key matches', selector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, expected: true },
  { name: 'NotIn present value', selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['api'] }] }, expected: false },
  { name: 'Exists', selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, expected: true },
  { name: 'DoesNotExist', selector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, expected: false },
  { name: 'labels AND expressions', selector: { matchLabels: { app: 'api' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['db'] }] }, expected: false },
];

describe('matchesSelector', () => {
  it.each(cases)('$name', ({ selector, expected }) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});
