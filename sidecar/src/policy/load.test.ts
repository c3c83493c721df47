import { describe, expect, it } from 'vitest';
import { compilePolicies, isPolicyErrors } from './compile.js';
import { loadPolicies, PolicyLoadError } from './load.js';

function errors(text: string): string[] {
  const result = loadPolicies(text, 'policy.yaml');
  if (result.ok) return [];
  return result.errors.map((e) => e.message);
}

const HEADER = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata:
  name: orders
  namespace: shop
`;

describe('loadPolicies', () => {
  it('loads several documents with defaults applied', () => {
    const result = loadPolicies(`${HEADER}spec: {}\n---\n${HEADER.replace('orders', 'billing')}spec:\n  enforcement: audit\n`, 'p.yaml');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.policies.map((p) => `${p.metadata.name}:${p.spec.enforcement}:${p.spec.masking.default}`)).toEqual(['orders:enforce:mask', 'billing:audit:mask']);
  });

  it('accepts JSON and skips empty documents', () => {
    const json = JSON.stringify({ apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name: 'j' } });
    const result = loadPolicies(`---\n---\n${json}\n---\n`, 'p.json');
    expect(result.ok && result.policies.map((p) => p.metadata.name)).toEqual(['j']);
  });

  it('points at the line of the bad value', () => {
    const text = `${HEADER}spec:
  guardrails:
    - name: a
      when: 'true'
      action: deny
    - name: b
      when: 'true'
      action: allow
    - name: c
      when: 'true'
      action: block
`;
    expect(errors(text)).toEqual(['policy.yaml:16: spec.guardrails[2].action: expected one of deny|requireApproval|allow']);
  });

  it('reports every problem, in line order, in the words of YAML', () => {
    const text = `${HEADER}spec:
  enforcment: audit
  unparseable: maybe
  listen: { port: 70000 }
  masking:
    rules:
      - name: Reveal All
        when: ""
        action: reveal
      - name: hash
        action: mask
        mask: blur
  approvals: { timeout: 10 }
  audit:
    queryText: [full]
`;
    expect(errors(text)).toEqual([
      'policy.yaml:7: spec.enforcment: unknown field (did you mean enforcement?)',
      'policy.yaml:8: spec.unparseable: expected one of deny|allow',
      'policy.yaml:9: spec.listen.port: must be at most 65535',
      'policy.yaml:12: spec.masking.rules[0].name: must be lower-case letters, digits, "-", "." or "_", starting and ending with a letter or digit',
      'policy.yaml:13: spec.masking.rules[0].when: must not be empty',
      'policy.yaml:15: spec.masking.rules[1].when: required',
      'policy.yaml:17: spec.masking.rules[1].mask: expected one of redact|partial|email|hash|null',
      'policy.yaml:18: spec.approvals.timeout: expected string, got integer',
      'policy.yaml:20: spec.audit.queryText: expected one of normalized|full|none',
    ]);
  });

  it('reports duplicate rule names at the duplicate', () => {
    const text = `${HEADER}spec:
  guardrails:
    - { name: same, when: 'true', action: deny }
    - { name: other, when: 'true', action: deny }
    - { name: same, when: 'false', action: allow }
`;
    expect(errors(text)).toEqual(['policy.yaml:10: spec.guardrails[2].name: duplicate rule name "same" (also at [0])']);
  });

  it('checks apiVersion, kind and metadata', () => {
    const text = `apiVersion: dbward.io/v1
kind: DataAccessPolicy
metadata: { name: Orders_1 }
---
apiVersion: dbward.io/v1alpha1
kind: AccessRequest
metadata: { name: x }
---
apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
`;
    expect(errors(text)).toEqual([
      'policy.yaml:1: apiVersion: expected dbward.io/v1alpha1',
      'policy.yaml:3: metadata.name: must be a lower-case RFC 1123 subdomain (a-z, 0-9, "-", ".")',
      'policy.yaml:6: kind: expected DataAccessPolicy',
      'policy.yaml:9: metadata: required',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(errors(`${HEADER}spec:\n  guardrails: [\n`)[0]).toMatch(/^policy\.yaml:8: invalid YAML: Flow sequence/);
    expect(errors(`${HEADER}spec: {}\nspec: {}\n`)[0]).toMatch(/^policy\.yaml:7: invalid YAML: Map keys must be unique/);
  });

  it('reports a document that is not a mapping', () => {
    expect(errors(`- a\n- b\n`)).toEqual(['policy.yaml:1: expected mapping, got list']);
  });

  it('refuses a file without documents', () => {
    expect(errors('# nothing here\n')).toEqual(['policy.yaml:1: no DataAccessPolicy documents']);
  });

  it('limits alias expansion (billion laughs)', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    const result = loadPolicies(bomb, 'bomb.yaml');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors[0]).toBeInstanceOf(PolicyLoadError);
  });
});

describe('CEL errors of a loaded policy carry the file position', () => {
  it('names file, line, policy, rule and position in the expression', () => {
    const text = `${HEADER}spec:
  guardrails:
    - name: no-drop-in-prod
      when: |
        environment == "production" &&
          query.command == 3
      action: deny
`;
    const loaded = loadPolicies(text, 'policy.yaml');
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const result = compilePolicies(loaded.policies, { locate: loaded.locate });
    expect(isPolicyErrors(result)).toBe(true);
    if (!isPolicyErrors(result)) return;
    expect(result.errors[0]?.message).toBe(
      [
        'policy.yaml:9:13: DataAccessPolicy shop/orders: guardrail "no-drop-in-prod" (spec.guardrails[0].when) at 2:3: no such overload: string == int',
        '    2 |   query.command == 3',
        '      |   ^~~~~~~~~~~~~~~~~~',
      ].join('\n'),
    );
    expect(result.errors[0]?.source).toEqual({ file: 'policy.yaml', line: 9, column: 13 });
  });
});
