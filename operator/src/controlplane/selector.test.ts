import type { LabelSelector } from '@dbward/sidecar/api';
import { describe, expect, it } from 'vitest';
import { selects } from '../selector.js';

const POD = { app: 'checkout', tier: 'backend', 'dbward.io/kind': 'ai-agent' };

describe('selects (metav1.LabelSelector semantics)', () => {
  it.each<[string, LabelSelector | undefined, Record<string, string>, boolean]>([
    ['absent selector selects nothing', undefined, POD, false],
    ['empty selector selects everything', {}, POD, true],
    ['empty selector, pod without labels', {}, {}, true],
    ['matchLabels, all present', { matchLabels: { app: 'checkout', tier: 'backend' } }, POD, true],
    ['matchLabels, one differs', { matchLabels: { app: 'checkout', tier: 'frontend' } }, POD, false],
    ['matchLabels, one missing', { matchLabels: { app: 'checkout', zone: 'a' } }, POD, false],
    ['matchLabels with an empty value is not Exists', { matchLabels: { app: '' } }, POD, false],
    ['In, value listed', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'batch'] }] }, POD, true],
    ['In, value not listed', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['frontend'] }] }, POD, false],
    ['In, label missing', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, POD, false],
    ['NotIn, value listed', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, POD, false],
    ['NotIn, value not listed', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['frontend'] }] }, POD, true],
    ['NotIn, label missing matches', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, POD, true],
    ['Exists', { matchExpressions: [{ key: 'dbward.io/kind', operator: 'Exists' }] }, POD, true],
    ['Exists, missing', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, POD, false],
    ['Exists with an empty value', { matchExpressions: [{ key: 'flag', operator: 'Exists' }] }, { flag: '' }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, POD, true],
    ['DoesNotExist, present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, POD, false],
    ['labels and expressions are ANDed (both hold)', { matchLabels: { app: 'checkout' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] }, POD, true],
    ['labels and expressions are ANDed (one fails)', { matchLabels: { app: 'checkout' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, POD, false],
    ['inherited object keys are not labels', { matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, POD, false],
  ])('%s', (_name, selector, labels, expected) => {
    expect(selects(selector, labels)).toBe(expected);
  });
});
