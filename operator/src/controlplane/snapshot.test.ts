import { DataAccessPolicySchema, type DataAccessPolicyInput } from '@dbward/sidecar/api';
import { describe, expect, it } from 'vitest';
import type { ReadyPolicy } from './ports.js';
import { buildSnapshot, canonicalJson, labelsKey } from './snapshot.js';

function ready(name: string, spec: Record<string, unknown>, generation = 1, resourceVersion = '1'): ReadyPolicy {
  const policy = DataAccessPolicySchema.parse({ apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name, namespace: 'shop', generation }, spec } as DataAccessPolicyInput);
  return { policy, generation, resourceVersion };
}

const CHECKOUT = ready('checkout', { workloadSelector: { matchLabels: { app: 'checkout' } }, guardrails: [{ name: 'no-deletes', when: 'query.command == "DELETE"', action: 'deny' }] });
const EVERYONE = ready('everyone', { workloadSelector: {} });
const NOBODY = ready('nobody', {});
const OTHER = ready('other', { workloadSelector: { matchLabels: { app: 'other' } } });

describe('buildSnapshot', () => {
  it('delivers the policies whose selector selects the pod, in the source order', () => {
    const s = buildSnapshot('shop', [CHECKOUT, EVERYONE, NOBODY, OTHER], { app: 'checkout' });
    expect(s.names).toEqual(['checkout', 'everyone']);
    expect(s.policies.map((p) => [p.name, p.generation, p.resourceVersion])).toEqual([
      ['checkout', 1, '1'],
      ['everyone', 1, '1'],
    ]);
    const doc = JSON.parse(s.policies[0]!.json) as Record<string, unknown>;
    expect(doc).toMatchObject({ apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name: 'checkout', namespace: 'shop' } });
    expect(Object.keys(doc.metadata as object)).toEqual(['name', 'namespace']);
    expect(doc).not.toHaveProperty('status');
  });

  it('the version is a stable hash of the content only', () => {
    const a = buildSnapshot('shop', [CHECKOUT, EVERYONE], { app: 'checkout' });
    // A status update or a re-apply: new resourceVersion and generation, same spec.
    const b = buildSnapshot('shop', [ready('checkout', { ...CHECKOUT.policy.spec }, 7, '99'), EVERYONE], { app: 'checkout', other: 'label' });
    expect(b.version).toBe(a.version);
    expect(a.version).toMatch(/^[0-9a-f]{16}$/);
    const edited = buildSnapshot('shop', [ready('checkout', { ...CHECKOUT.policy.spec, enforcement: 'audit' }), EVERYONE], { app: 'checkout' });
    expect(edited.version).not.toBe(a.version);
    const renamed = buildSnapshot('shop', [ready('checkout-2', { ...CHECKOUT.policy.spec }), EVERYONE], { app: 'checkout' });
    expect(renamed.version).not.toBe(a.version);
    const other = buildSnapshot('shop', [CHECKOUT, EVERYONE], { app: 'other' });
    expect(other.version).not.toBe(a.version);
  });

  it('no selected policy: the "empty" version', () => {
    expect(buildSnapshot('shop', [OTHER, NOBODY], { app: 'checkout' })).toEqual({ version: 'empty', policies: [], names: [] });
  });
});

describe('canonicalJson / labelsKey', () => {
  it.each([
    [{ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }, '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}'],
    [{ x: undefined, y: 'v' }, '{"y":"v"}'],
    [[3, 'a'], '[3,"a"]'],
  ])('%j', (value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it('labelsKey ignores key order', () => {
    expect(labelsKey({ b: '2', a: '1' })).toBe(labelsKey({ a: '1', b: '2' }));
    expect(labelsKey({ a: '1' })).not.toBe(labelsKey({ a: '2' }));
  });
});
