import { describe, expect, it } from 'vitest';
import type { Snapshot } from './proto.js';
import { compileSnapshot } from './snapshot.js';

const IDENTITY = { namespace: 'shop', serviceAccount: 'checkout', pod: 'checkout-1', podUid: 'u', labels: { app: 'checkout' } };

function doc(name: string, spec: Record<string, unknown>): Snapshot['policies'][number] {
  return { name, generation: 1, resourceVersion: '1', json: JSON.stringify({ apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name, namespace: 'shop' }, spec }) };
}

describe('compileSnapshot', () => {
  it('compiles the documents with the control plane version', () => {
    const result = compileSnapshot({ version: 'abc123', identity: IDENTITY, policies: [doc('a', { guardrails: [{ name: 'g', when: 'query.command == "DELETE"', action: 'deny' }] }), doc('b', {})] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.set?.version).toBe('abc123');
    expect(result.policies).toEqual(['shop/a', 'shop/b']);
    expect(result.set?.guardrails.some((g) => g.name === 'g' && g.policy === 'shop/a')).toBe(true);
    expect(result.identity).toBe(IDENTITY);
  });

  it('no policies: valid, and nothing in force', () => {
    expect(compileSnapshot({ version: 'empty', identity: IDENTITY, policies: [] })).toEqual({ ok: true, version: 'empty', set: undefined, identity: IDENTITY, policies: [] });
  });

  it.each<[string, Snapshot, RegExp]>([
    ['a CEL type error names the rule', { version: 'v', identity: IDENTITY, policies: [doc('a', { guardrails: [{ name: 'broken', when: 'query.tables + 1 == 2', action: 'deny' }] })] }, /broken/],
    ['a schema error names the field', { version: 'v', identity: IDENTITY, policies: [doc('a', { enforcement: 'sometimes' })] }, /shop\/a.*spec\.enforcement/],
    ['not JSON', { version: 'v', identity: IDENTITY, policies: [{ name: 'a', generation: 1, resourceVersion: '1', json: '{"apiVersion": ' }] }, /invalid YAML/],
    ['no version', { version: '', identity: IDENTITY, policies: [doc('a', {})] }, /no version/],
    ['no identity', { version: 'v', identity: null, policies: [doc('a', {})] }, /no workload identity/],
  ])('rejects: %s', (_name, snapshot, error) => {
    const result = compileSnapshot(snapshot);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.version).toBe(snapshot.version);
    expect(result.error).toMatch(error);
  });
});
