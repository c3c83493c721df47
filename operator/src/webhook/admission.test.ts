import { describe, expect, it } from 'vitest';
import { DataAccessPolicySchema } from '@dbward/sidecar/api';
import { admit, AdmissionError, type AdmissionContext } from './admission.js';

const policy = DataAccessPolicySchema.parse({
  apiVersion: 'dbward.io/v1alpha1',
  kind: 'DataAccessPolicy',
  metadata: { name: 'p', namespace: 'shop' },
  spec: { workloadSelector: {}, upstream: { host: 'db' }, listen: { envVar: 'DATABASE_URL' } },
});
const ctx: AdmissionContext = {
  namespace: (name) => (name === 'shop' ? { name, labels: { 'dbward.io/injection': 'enabled' } } : { name }),
  policies: (ns) => (ns === 'shop' ? [policy] : []),
  settings: { image: 'i', operatorNamespace: 'dbward-system', controlPlane: 'cp:9444' },
};
const review = (request: Record<string, unknown>): unknown => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', ...request } });
const pod = (env: unknown[]): unknown => ({ metadata: { name: 'a', labels: {} }, spec: { containers: [{ name: 'app', env }] } });

describe('admit', () => {
  it('answers with a base64 JSON patch and the same uid', () => {
    const { review: out, injected } = admit(review({ namespace: 'shop', object: pod([{ name: 'DATABASE_URL', value: 'postgres://u@db/x' }]) }), ctx);
    expect(injected).toBe(true);
    expect(out.response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const patch = JSON.parse(Buffer.from(out.response?.patch ?? '', 'base64').toString()) as { path: string }[];
    expect(patch.map((p) => p.path)).toContain('/spec/initContainers');
  });

  it('passes warnings through (a URL from valueFrom cannot be rewritten)', () => {
    const { review: out } = admit(review({ namespace: 'shop', object: pod([{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }]) }), ctx);
    expect(out.response?.warnings?.[0]).toMatch(/^dbward: app: DATABASE_URL comes from valueFrom/);
  });

  it('allows without a patch what it does not inject', () => {
    const { review: out, injected } = admit(review({ namespace: 'plain', object: pod([]) }), ctx);
    expect(injected).toBe(false);
    expect(out.response).toEqual({ uid: 'u-1', allowed: true });
    expect(admit(review({ operation: 'UPDATE', namespace: 'shop', object: pod([]) }), ctx).review.response).toEqual({ uid: 'u-1', allowed: true });
  });

  const bad: { name: string; body: unknown }[] = [
    { name: 'not a review', body: { kind: 'Pod' } },
    { name: 'v1beta1', body: { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } } },
    { name: 'pod without object', body: review({ namespace: 'shop' }) },
  ];
  it.each(bad)('rejects $name', ({ body }) => {
    expect(() => admit(body, ctx)).toThrow(AdmissionError);
  });
});
