import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AccessRequestSchema } from './access-request.js';
import { DataAccessPolicySchema, DataAccessPolicySpecSchema, policyRef } from './data-access-policy.js';
import { formatDurationMs, parseDurationMs } from './duration.js';
import { formatPath } from './meta.js';

const header = { apiVersion: 'dbward.io/v1alpha1', kind: 'DataAccessPolicy', metadata: { name: 'orders', namespace: 'shop' } };

function issues(input: unknown): string[] {
  const result = DataAccessPolicySchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.code}`);
}

describe('DataAccessPolicy defaults (SPEC §3: an empty spec protects)', () => {
  const expected = {
    listen: { port: 6432 },
    enforcement: 'enforce',
    unparseable: 'deny',
    classification: { automatic: true, columns: [] },
    masking: { default: 'mask', rules: [], predicates: 'deny' },
    guardrails: [],
    approvals: { timeout: '10m' },
    audit: { queryText: 'normalized' },
  };

  it('fills every default into an empty spec', () => {
    expect(DataAccessPolicySchema.parse({ ...header, spec: {} }).spec).toEqual(expected);
  });

  it('fills every default when spec is absent', () => {
    expect(DataAccessPolicySchema.parse(header).spec).toEqual(expected);
  });

  it('fills nested defaults inside partially given objects', () => {
    const spec = DataAccessPolicySpecSchema.parse({
      masking: { rules: [{ name: 'r', when: 'true', action: 'mask' }] },
      classification: { columns: [{ table: 'public.customers', column: 'notes', classes: ['free_text_pii'] }] },
      upstream: { host: 'orders-db.shop.svc' },
      approvals: {},
    });
    expect(spec.masking.default).toBe('mask');
    expect(spec.masking.rules[0]?.mask).toBeUndefined();
    expect(spec.classification.automatic).toBe(true);
    expect(spec.upstream).toEqual({ host: 'orders-db.shop.svc', port: 5432, sslmode: 'prefer' });
    expect(spec.approvals.timeout).toBe('10m');
  });

  it('accepts the SPEC §3 example as written', () => {
    const doc = DataAccessPolicySchema.parse({
      ...header,
      spec: {
        workloadSelector: { matchLabels: { app: 'checkout' } },
        upstream: { host: 'orders-db.shop.svc', port: 5432, sslmode: 'require', credentialsSecretRef: { name: 'orders-db' } },
        listen: { port: 6432, envVar: 'DATABASE_URL' },
        environment: 'production',
        enforcement: 'enforce',
        unparseable: 'deny',
        classification: { automatic: true, columns: [{ table: 'public.customers', column: 'notes', classes: ['free_text_pii'] }] },
        masking: {
          default: 'mask',
          rules: [
            { name: 'support-reads-emails', when: '"email" in column.classes && identity.serviceAccount == "support"', action: 'reveal' },
            { name: 'hash-customer-ids', when: 'column.name == "customer_id"', action: 'mask', mask: 'hash' },
          ],
        },
        guardrails: [{ name: 'no-drop-in-prod', when: 'environment == "production"', action: 'deny', message: 'DROP and TRUNCATE are blocked in production' }],
        approvals: { timeout: '10m' },
        audit: { queryText: 'normalized' },
      },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Compiled', observedGeneration: 3 }] },
    });
    expect(doc.spec.masking.rules).toHaveLength(2);
    expect(policyRef(doc)).toBe('shop/orders');
  });

  it('keeps metadata the API server adds', () => {
    const doc = DataAccessPolicySchema.parse({ ...header, metadata: { ...header.metadata, uid: 'abc', resourceVersion: '7', generation: 3 } });
    expect(doc.metadata).toMatchObject({ uid: 'abc', resourceVersion: '7', generation: 3 });
  });
});

describe('DataAccessPolicy validation', () => {
  it.each([
    ['wrong apiVersion', { ...header, apiVersion: 'dbward.io/v1' }, ['apiVersion: invalid_value']],
    ['wrong kind', { ...header, kind: 'AccessRequest' }, ['kind: invalid_value']],
    ['bad name', { ...header, metadata: { name: 'Orders' } }, ['metadata.name: invalid_format']],
    ['unknown spec field', { ...header, spec: { enforcment: 'audit' } }, ['spec: unrecognized_keys']],
    ['bad enforcement', { ...header, spec: { enforcement: 'block' } }, ['spec.enforcement: invalid_value']],
    ['bad unparseable', { ...header, spec: { unparseable: 'maybe' } }, ['spec.unparseable: invalid_value']],
    ['bad guardrail action', { ...header, spec: { guardrails: [{ name: 'a', when: 'true', action: 'block' }] } }, ['spec.guardrails[0].action: invalid_value']],
    ['missing when', { ...header, spec: { guardrails: [{ name: 'a', action: 'deny' }] } }, ['spec.guardrails[0].when: invalid_type']],
    ['blank when', { ...header, spec: { guardrails: [{ name: 'a', when: '  ', action: 'deny' }] } }, ['spec.guardrails[0].when: invalid_format']],
    ['when over 4 KiB', { ...header, spec: { guardrails: [{ name: 'a', when: `true${' '.repeat(4093)}`, action: 'deny' }] } }, ['spec.guardrails[0].when: too_big']],
    ['when over 4 KiB of UTF-8', { ...header, spec: { guardrails: [{ name: 'a', when: `"${'é'.repeat(2047)}" == ""`, action: 'deny' }] } }, ['spec.guardrails[0].when: custom']],
    ['bad rule name', { ...header, spec: { guardrails: [{ name: 'No Drop', when: 'true', action: 'deny' }] } }, ['spec.guardrails[0].name: invalid_format']],
    [
      'duplicate guardrail names',
      { ...header, spec: { guardrails: [{ name: 'a', when: 'true', action: 'deny' }, { name: 'b', when: 'true', action: 'deny' }, { name: 'a', when: 'false', action: 'allow' }] } },
      ['spec.guardrails[2].name: custom'],
    ],
    [
      'duplicate masking rule names',
      { ...header, spec: { masking: { rules: [{ name: 'm', when: 'true', action: 'mask' }, { name: 'm', when: 'true', action: 'reveal' }] } } },
      ['spec.masking.rules[1].name: custom'],
    ],
    ['mask with reveal', { ...header, spec: { masking: { rules: [{ name: 'm', when: 'true', action: 'reveal', mask: 'hash' }] } } }, ['spec.masking.rules[0].mask: custom']],
    ['bad mask', { ...header, spec: { masking: { rules: [{ name: 'm', when: 'true', action: 'mask', mask: 'blur' }] } } }, ['spec.masking.rules[0].mask: invalid_value']],
    ['bad masking default', { ...header, spec: { masking: { default: 'hide' } } }, ['spec.masking.default: invalid_value']],
    ['bad sslmode', { ...header, spec: { upstream: { host: 'db', sslmode: 'verify-ca' } } }, ['spec.upstream.sslmode: invalid_value']],
    ['port out of range', { ...header, spec: { upstream: { host: 'db', port: 70000 } } }, ['spec.upstream.port: too_big']],
    ['unqualified table', { ...header, spec: { classification: { columns: [{ table: 'customers', column: 'notes', classes: ['pii'] }] } } }, ['spec.classification.columns[0].table: invalid_format']],
    ['no classes', { ...header, spec: { classification: { columns: [{ table: 'public.customers', column: 'notes', classes: [] }] } } }, ['spec.classification.columns[0].classes: too_small']],
    ['bad duration', { ...header, spec: { approvals: { timeout: '10 minutes' } } }, ['spec.approvals.timeout: invalid_format']],
    ['duration too long', { ...header, spec: { approvals: { timeout: '25h' } } }, ['spec.approvals.timeout: custom']],
    ['bad queryText', { ...header, spec: { audit: { queryText: 'redacted' } } }, ['spec.audit.queryText: invalid_value']],
    ['bad envVar', { ...header, spec: { listen: { envVar: 'DATABASE-URL' } } }, ['spec.listen.envVar: invalid_format']],
    ['bad selector operator', { ...header, spec: { workloadSelector: { matchExpressions: [{ key: 'app', operator: 'Equals' }] } } }, ['spec.workloadSelector.matchExpressions[0].operator: invalid_value']],
  ])('%s', (_name, input, expected) => {
    expect(issues(input)).toEqual(expected);
  });
});

describe('durations', () => {
  it.each([
    ['10m', 600_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1h0m5s', 3_605_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', '10', 'm', '1.5h', '-1m', '10 m', '1d'])('rejects %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it('formats the shortest form', () => {
    expect(formatDurationMs(600_000)).toBe('10m');
    expect(formatDurationMs(5_400_000)).toBe('1h30m');
    expect(formatDurationMs(1_500)).toBe('1s500ms');
  });
});

describe('AccessRequest', () => {
  const request = {
    apiVersion: 'dbward.io/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name: 'areq-7f3a', namespace: 'shop' },
    spec: {
      policy: 'orders',
      rule: 'approve-bulk-deletes',
      statement: 'DELETE FROM public.orders WHERE created_at < $1',
      identity: { serviceAccount: 'checkout', labels: { app: 'checkout' } },
      requestedAt: '2025-01-02T03:04:05Z',
    },
  };

  it('fills identity defaults and accepts a status', () => {
    const parsed = AccessRequestSchema.parse({ ...request, status: { phase: 'Approved', decidedBy: 'alice', decidedAt: '2025-01-02T03:05:00Z' } });
    expect(parsed.spec.identity).toEqual({ user: '', database: '', application: '', namespace: '', serviceAccount: 'checkout', pod: '', labels: { app: 'checkout' } });
    expect(parsed.status?.phase).toBe('Approved');
  });

  it('defaults the phase to Pending', () => {
    expect(AccessRequestSchema.parse({ ...request, status: {} }).status?.phase).toBe('Pending');
  });

  it('rejects an unknown phase and a bad timestamp', () => {
    const result = AccessRequestSchema.safeParse({ ...request, spec: { ...request.spec, requestedAt: 'yesterday' }, status: { phase: 'Rejected' } });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => formatPath(issue.path))).toEqual(['spec.requestedAt', 'status.phase']);
  });
});

describe('OpenAPI for the CRD (generated by the operator)', () => {
  const schema = z.toJSONSchema(DataAccessPolicySchema, { io: 'input' }) as Record<string, unknown>;

  /** Every node must carry a type (structural schema) and every property a description. */
  function walk(node: Record<string, unknown>, path: string, problems: string[]): void {
    if (!('type' in node) && !('const' in node) && !('anyOf' in node)) problems.push(`${path}: no type`);
    const properties = (node.properties ?? {}) as Record<string, Record<string, unknown>>;
    for (const [key, child] of Object.entries(properties)) {
      if (typeof child.description !== 'string') problems.push(`${path}.${key}: no description`);
      walk(child, `${path}.${key}`, problems);
    }
    if (node.items && typeof node.items === 'object') walk(node.items as Record<string, unknown>, `${path}[]`, problems);
    // metadata keeps unknown fields (uid, resourceVersion, ...): its open additionalProperties is
    // expected; the CRD generator reduces metadata to `type: object` anyway.
    if (node.additionalProperties && typeof node.additionalProperties === 'object' && path !== '.metadata') walk(node.additionalProperties as Record<string, unknown>, `${path}{}`, problems);
  }

  it('is structural and describes every field', () => {
    const problems: string[] = [];
    walk(schema, '', problems);
    expect(problems).toEqual([]);
  });

  it('carries the defaults and list-map keys', () => {
    const spec = (schema.properties as Record<string, Record<string, unknown>>).spec as Record<string, unknown>;
    const props = spec.properties as Record<string, Record<string, unknown>>;
    expect(props.enforcement?.default).toBe('enforce');
    expect(props.masking?.default).toEqual({ default: 'mask', rules: [], predicates: 'deny' });
    expect(props.guardrails?.['x-kubernetes-list-map-keys']).toEqual(['name']);
  });
});
