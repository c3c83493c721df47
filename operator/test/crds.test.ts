import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKube, type KubeCluster } from '../../e2e/harness/index.js';

// The generated CRDs against a real kube-apiserver: accepted as structural, defaults applied,
// invalid objects rejected by the OpenAPI schema and the x-kubernetes-validations rules.
let kube: KubeCluster;
beforeAll(async () => {
  kube = await startKube({ name: 'crds' });
  await kube.kubectlOk(['apply', '-f', 'crds/']);
  await kube.kubectlOk(['wait', '--for=condition=Established', 'crd/dataaccesspolicies.dbward.io', 'crd/accessrequests.dbward.io', '--timeout=30s']);
});
afterAll(() => kube?.stop());

const dap = (name: string, spec: string): string => `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: {name: ${name}, namespace: default}
spec: ${spec}
`;

describe('DataAccessPolicy CRD', () => {
  it('applies the zod defaults to an empty spec', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: dap('empty', '{}') });
    const obj = JSON.parse(await kube.kubectlOk(['get', 'dap', 'empty', '-n', 'default', '-o', 'json'])) as { spec: Record<string, unknown> };
    expect(obj.spec).toMatchObject({
      enforcement: 'enforce',
      unparseable: 'deny',
      listen: { port: 6432 },
      masking: { default: 'mask', rules: [], predicates: 'deny' },
      approvals: { timeout: '10m' },
      audit: { queryText: 'normalized' },
    });
  });

  it('has the short name, category and printer columns', async () => {
    const out = await kube.kubectlOk(['get', 'dbward', '-n', 'default']);
    expect(out).toMatch(/NAME\s+READY\s+ENFORCEMENT\s+AGE/);
    expect(out).toMatch(/dataaccesspolicy.dbward.io\/empty\s+enforce/);
  });

  const invalid: { name: string; spec: string; error: RegExp }[] = [
    { name: 'bad-enum', spec: '{enforcement: block}', error: /spec.enforcement: Unsupported value: "block"/ },
    { name: 'dup-rules', spec: "{guardrails: [{name: a, when: 'true', action: deny}, {name: a, when: 'false', action: deny}]}", error: /spec.guardrails\[1\]: Duplicate value/ },
    { name: 'mask-on-reveal', spec: "{masking: {rules: [{name: r, when: 'true', action: reveal, mask: hash}]}}", error: /mask is only allowed with action: mask/ },
    { name: 'timeout', spec: '{approvals: {timeout: 25h}}', error: /must be between 1s and 24h/ },
    { name: 'rule-name', spec: "{guardrails: [{name: Bad_Name, when: 'true', action: deny}]}", error: /spec.guardrails\[0\].name: Invalid value/ },
    { name: 'blank-when', spec: "{guardrails: [{name: a, when: '  ', action: deny}]}", error: /spec.guardrails\[0\].when: Invalid value/ },
  ];
  it.each(invalid)('rejects $name', async ({ name, spec, error }) => {
    const r = await kube.kubectl(['apply', '-f', '-'], { input: dap(name, spec) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(error);
  });
});

describe('AccessRequest CRD', () => {
  const areq = `apiVersion: dbward.io/v1alpha1
kind: AccessRequest
metadata: {name: req-1, namespace: default}
spec:
  policy: p
  rule: hold-deletes
  statement: DELETE FROM t WHERE id = $1
  identity: {user: app, namespace: default}
  requestedAt: "2026-01-01T00:00:00Z"
`;
  it('is created with defaults, spec is immutable, a decision is final', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: areq });
    const obj = JSON.parse(await kube.kubectlOk(['get', 'areq', 'req-1', '-n', 'default', '-o', 'json'])) as { spec: { identity: Record<string, unknown> } };
    expect(obj.spec.identity).toMatchObject({ user: 'app', database: '', labels: {} });

    const edit = await kube.kubectl(['patch', 'areq', 'req-1', '-n', 'default', '--type=merge', '-p', '{"spec":{"rule":"other"}}']);
    expect(edit.stderr).toMatch(/spec is immutable/);

    const noTime = await kube.kubectl(['patch', 'areq', 'req-1', '-n', 'default', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved"}}']);
    expect(noTime.stderr).toMatch(/a decision needs decidedAt/);
    await kube.kubectlOk(['patch', 'areq', 'req-1', '-n', 'default', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved","decidedAt":"2026-01-01T00:01:00Z","decidedBy":"alice"}}']);
    const undo = await kube.kubectl(['patch', 'areq', 'req-1', '-n', 'default', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Denied"}}']);
    expect(undo.stderr).toMatch(/a decided AccessRequest is final/);
    const out = await kube.kubectlOk(['get', 'areq', '-n', 'default']);
    expect(out).toMatch(/req-1\s+Approved\s+p\s+hold-deletes/);
  });
});
