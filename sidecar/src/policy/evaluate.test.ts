import { describe, expect, it } from 'vitest';
import type { StatementFacts } from '../sql/facts.js';
import { decideColumn, decideStatement, decideUnparseable } from './evaluate.js';
import { column, compiled, facts, identity, policy } from './fixtures.js';
import type { ColumnFacts, PolicyIdentity } from './types.js';

const GUARDRAILS = [
  { name: 'allow-migrations', when: 'identity.serviceAccount == "migrator" && query.kind == "ddl"', action: 'allow' },
  {
    name: 'ai-no-pii',
    when: 'identity.labels[?"dbward.io/kind"].orValue("") == "ai-agent" && query.tables.exists(t, t.startsWith("pii."))',
    action: 'deny',
    message: 'AI agents may not read pii tables',
  },
  { name: 'approve-order-deletes', when: 'environment == "production" && query.command == "DELETE" && "public.orders" in query.writeTables', action: 'requireApproval' },
  { name: 'no-copy-outside-ops', when: 'query.command == "COPY" && identity.namespace != "ops"', action: 'deny' },
  { name: 'analytics-read-only', when: 'identity.serviceAccount == "analytics" && query.kind != "read"', action: 'deny', message: 'analytics is read-only' },
  { name: 'no-file-functions', when: 'query.functions.exists(f, f in ["pg_read_file", "pg_catalog.pg_read_file", "lo_export"])', action: 'deny' },
  { name: 'hold-grants-in-prod', when: 'environment == "production" && query.kind == "dcl"', action: 'requireApproval' },
  { name: 'app-user-only', when: 'identity.user == "postgres" && environment == "production"', action: 'deny', message: 'superuser sessions are not allowed in production' },
];

const set = compiled(policy({ guardrails: GUARDRAILS }));
const AI = { labels: { app: 'agent', 'dbward.io/kind': 'ai-agent' } };

type Case = [string, Partial<PolicyIdentity>, string, StatementFacts, 'allow' | 'deny' | 'requireApproval', string | undefined];

const STATEMENT_CASES: Case[] = [
  // built-in: destructive DDL, in and out of production
  ['DROP TABLE in production', {}, 'production', facts('DROP TABLE'), 'deny', 'builtin.no-destructive-ddl-in-production'],
  ['DROP SCHEMA in production', {}, 'production', facts('DROP SCHEMA'), 'deny', 'builtin.no-destructive-ddl-in-production'],
  ['DROP DATABASE in production', {}, 'production', facts('DROP DATABASE', { tables: [] }), 'deny', 'builtin.no-destructive-ddl-in-production'],
  ['TRUNCATE in production', {}, 'production', facts('TRUNCATE TABLE'), 'deny', 'builtin.no-destructive-ddl-in-production'],
  ['DROP TABLE in staging', {}, 'staging', facts('DROP TABLE'), 'allow', undefined],
  ['TRUNCATE in development', {}, 'development', facts('TRUNCATE TABLE'), 'allow', undefined],
  ['DROP TABLE with empty environment', {}, '', facts('DROP TABLE'), 'allow', undefined],
  ['ALTER TABLE in production', {}, 'production', facts('ALTER TABLE'), 'allow', undefined],
  ['DROP INDEX in production', {}, 'production', facts('DROP INDEX', { kind: 'ddl' }), 'allow', undefined],
  ['environment is case-sensitive', {}, 'Production', facts('DROP TABLE'), 'allow', undefined],
  ['migrator may DROP TABLE in production', { serviceAccount: 'migrator' }, 'production', facts('DROP TABLE'), 'allow', 'allow-migrations'],
  ['migrator may TRUNCATE in production', { serviceAccount: 'migrator' }, 'production', facts('TRUNCATE TABLE'), 'allow', 'allow-migrations'],
  // built-in: unbounded writes
  ['DELETE without WHERE in production', {}, 'production', facts('DELETE', { tables: ['public.carts'], hasWhere: false }), 'deny', 'builtin.no-unbounded-write-in-production'],
  ['UPDATE without WHERE in production', {}, 'production', facts('UPDATE', { hasWhere: false }), 'deny', 'builtin.no-unbounded-write-in-production'],
  ['UPDATE with WHERE in production', {}, 'production', facts('UPDATE'), 'allow', undefined],
  ['UPDATE without WHERE in staging', {}, 'staging', facts('UPDATE', { hasWhere: false }), 'allow', undefined],
  ['CTE DELETE without WHERE in production', {}, 'production', facts('SELECT', { kind: 'write', hasWhere: false }), 'deny', 'builtin.no-unbounded-write-in-production'],
  ['SELECT in production', {}, 'production', facts('SELECT'), 'allow', undefined],
  ['INSERT in production', {}, 'production', facts('INSERT'), 'allow', undefined],
  // requireApproval
  ['DELETE from orders in production', {}, 'production', facts('DELETE'), 'requireApproval', 'approve-order-deletes'],
  ['DELETE from orders in staging', {}, 'staging', facts('DELETE'), 'allow', undefined],
  ['DELETE from carts in production', {}, 'production', facts('DELETE', { tables: ['public.carts'] }), 'allow', undefined],
  ['unbounded DELETE from orders in production: user rule first', {}, 'production', facts('DELETE', { hasWhere: false }), 'requireApproval', 'approve-order-deletes'],
  ['GRANT in production', {}, 'production', facts('GRANT', { tables: [] }), 'requireApproval', 'hold-grants-in-prod'],
  ['GRANT in staging', {}, 'staging', facts('GRANT', { tables: [] }), 'allow', undefined],
  // identity labels
  ['AI agent reads pii', AI, 'staging', facts('SELECT', { tables: ['pii.people'] }), 'deny', 'ai-no-pii'],
  ['AI agent joins pii', AI, 'production', facts('SELECT', { tables: ['pii.people', 'public.orders'] }), 'deny', 'ai-no-pii'],
  ['AI agent reads orders', AI, 'production', facts('SELECT'), 'allow', undefined],
  ['human reads pii', {}, 'production', facts('SELECT', { tables: ['pii.people'] }), 'allow', undefined],
  ['pod without labels reads pii', { labels: {} }, 'production', facts('SELECT', { tables: ['pii.people'] }), 'allow', undefined],
  ['kind label other than ai-agent', { labels: { 'dbward.io/kind': 'batch' } }, 'production', facts('SELECT', { tables: ['pii.people'] }), 'allow', undefined],
  ['AI agent with no tables', AI, 'production', facts('SELECT', { tables: [] }), 'allow', undefined],
  // namespace / service account / user
  ['COPY outside ops', {}, 'staging', facts('COPY'), 'deny', 'no-copy-outside-ops'],
  ['COPY from ops', { namespace: 'ops' }, 'staging', facts('COPY'), 'allow', undefined],
  ['COPY with missing namespace', { namespace: undefined }, 'staging', facts('COPY'), 'deny', 'no-copy-outside-ops'],
  ['analytics SELECT', { serviceAccount: 'analytics' }, 'production', facts('SELECT'), 'allow', undefined],
  ['analytics INSERT', { serviceAccount: 'analytics' }, 'production', facts('INSERT'), 'deny', 'analytics-read-only'],
  ['analytics SET', { serviceAccount: 'analytics' }, 'staging', facts('SET', { tables: [] }), 'deny', 'analytics-read-only'],
  ['analytics DO block', { serviceAccount: 'analytics' }, 'staging', facts('DO', { tables: [] }), 'deny', 'analytics-read-only'],
  ['pg_read_file called', {}, 'staging', facts('SELECT', { functions: ['pg_read_file'] }), 'deny', 'no-file-functions'],
  ['qualified pg_read_file called', {}, 'staging', facts('SELECT', { functions: ['now', 'pg_catalog.pg_read_file'] }), 'deny', 'no-file-functions'],
  ['harmless functions', {}, 'staging', facts('SELECT', { functions: ['now', 'lower'] }), 'allow', undefined],
  ['postgres user in production', { user: 'postgres' }, 'production', facts('SELECT'), 'deny', 'app-user-only'],
  ['postgres user in staging', { user: 'postgres' }, 'staging', facts('SELECT'), 'allow', undefined],
  ['postgres user DROP in production: first match wins', { user: 'postgres' }, 'production', facts('DROP TABLE'), 'deny', 'app-user-only'],
  ['BEGIN', {}, 'production', facts('BEGIN', { tables: [] }), 'allow', undefined],
];

describe('decideStatement: guardrails in order, built-ins last', () => {
  it.each(STATEMENT_CASES)('%s', (_name, who, environment, statement, action, rule) => {
    const decision = decideStatement(set, { identity: identity(who), environment, facts: statement });
    expect({ action: decision.action, rule: decision.rule, auditOnly: decision.auditOnly }).toEqual({ action, rule, auditOnly: false });
    expect(decision.reasons.length).toBeGreaterThan(0);
  });

  it('carries the message and the policy of the deciding rule', () => {
    const ai = decideStatement(set, { identity: identity(AI), environment: 'dev', facts: facts('SELECT', { tables: ['pii.people'] }) });
    expect(ai).toMatchObject({ message: 'AI agents may not read pii tables', policy: 'shop/orders', reasons: ['guardrail ai-no-pii (shop/orders) matched: deny'] });
    const builtin = decideStatement(set, { identity: identity(), environment: 'production', facts: facts('TRUNCATE TABLE') });
    expect(builtin).toMatchObject({ policy: 'builtin', message: 'DROP DATABASE, DROP SCHEMA, DROP TABLE and TRUNCATE are blocked in production' });
    const noMessage = decideStatement(set, { identity: identity(), environment: 'dev', facts: facts('COPY') });
    expect(noMessage.message).toBe('blocked by DataAccessPolicy shop/orders');
  });

  it('applies the built-ins with an empty spec', () => {
    const empty = compiled(policy({}));
    expect(decideStatement(empty, { identity: {}, environment: 'production', facts: facts('DROP TABLE') }).action).toBe('deny');
    expect(decideStatement(empty, { identity: {}, environment: 'production', facts: facts('DELETE', { hasWhere: false }) }).action).toBe('deny');
    expect(decideStatement(empty, { identity: {}, environment: 'production', facts: facts('DELETE') })).toMatchObject({ action: 'allow', reasons: ['no guardrail matched'] });
  });
});

describe('built-in overrides', () => {
  it('a rule with the built-in name replaces it', () => {
    const relaxed = compiled(policy({ guardrails: [{ name: 'builtin.no-unbounded-write-in-production', when: 'false', action: 'deny' }] }));
    expect(decideStatement(relaxed, { identity: {}, environment: 'production', facts: facts('UPDATE', { hasWhere: false }) }).action).toBe('allow');
    expect(decideStatement(relaxed, { identity: {}, environment: 'production', facts: facts('DROP TABLE') }).rule).toBe('builtin.no-destructive-ddl-in-production');
  });

  it('the override keeps its own position and action', () => {
    const held = compiled(
      policy({
        guardrails: [
          { name: 'builtin.no-destructive-ddl-in-production', when: 'environment == "production" && query.command == "DROP TABLE"', action: 'requireApproval' },
        ],
      }),
    );
    expect(decideStatement(held, { identity: {}, environment: 'production', facts: facts('DROP TABLE') })).toMatchObject({
      action: 'requireApproval',
      rule: 'builtin.no-destructive-ddl-in-production',
      policy: 'shop/orders',
    });
    expect(decideStatement(held, { identity: {}, environment: 'production', facts: facts('TRUNCATE TABLE') }).action).toBe('allow');
  });

  it('an unknown builtin.* name is an error (a typo would silently keep the built-in)', () => {
    const result = compiled.bind(null, policy({ guardrails: [{ name: 'builtin.no-ddl', when: 'false', action: 'deny' }] }));
    expect(result).toThrow(/"builtin.no-ddl" is not a built-in guardrail/);
  });
});

describe('enforcement: audit', () => {
  const audit = compiled(policy({ enforcement: 'audit', guardrails: GUARDRAILS }));

  it.each([
    ['deny becomes audit-only allow', {}, 'dev', facts('COPY'), 'no-copy-outside-ops', 'deny'],
    ['requireApproval becomes audit-only allow', {}, 'production', facts('DELETE'), 'approve-order-deletes', 'requireApproval'],
    ['built-ins are audit-only too', {}, 'production', facts('DROP TABLE'), 'builtin.no-destructive-ddl-in-production', 'deny'],
  ] as const)('%s', (_name, who, environment, statement, rule, audited) => {
    const decision = decideStatement(audit, { identity: identity(who), environment, facts: statement });
    expect(decision).toMatchObject({ action: 'allow', auditOnly: true, rule, auditedAction: audited });
    expect(decision.reasons[0]).toContain(`would ${audited}`);
  });

  it('nothing matched: plain allow, not audit-only', () => {
    expect(decideStatement(audit, { identity: identity(), environment: 'dev', facts: facts('SELECT') })).toMatchObject({ action: 'allow', auditOnly: false });
  });

  it('an audit allow rule matching first reports allow', () => {
    expect(decideStatement(audit, { identity: identity({ serviceAccount: 'migrator' }), environment: 'production', facts: facts('DROP TABLE') })).toMatchObject({
      action: 'allow',
      auditOnly: false,
      rule: 'allow-migrations',
    });
  });

  it('unparseable statements are audit-only too', () => {
    expect(decideUnparseable(audit)).toMatchObject({ action: 'allow', auditOnly: true, auditedAction: 'deny' });
    expect(decideUnparseable(set)).toMatchObject({ action: 'deny', auditOnly: false, message: 'statement not understood' });
    expect(decideUnparseable(compiled(policy({ unparseable: 'allow' })))).toMatchObject({ action: 'allow', auditOnly: false });
  });
});

describe('evaluation errors fail closed', () => {
  const strict = compiled(
    policy({
      guardrails: [
        { name: 'trusted-team-may-write', when: 'identity.labels["team"] == "platform"', action: 'allow' },
        { name: 'ai-no-writes', when: 'identity.labels["team"] == "ai" && query.kind == "write"', action: 'deny' },
        { name: 'hold-big-reads', when: 'identity.labels["tier"] == "batch" && query.command == "SELECT"', action: 'requireApproval' },
      ],
    }),
  );

  it('a deny rule whose expression errors is treated as matched', () => {
    const decision = decideStatement(strict, { identity: identity({ labels: {} }), environment: 'dev', facts: facts('INSERT') });
    expect(decision).toMatchObject({ action: 'deny', rule: 'ai-no-writes' });
    expect(decision.reasons.join('\n')).toContain('guardrail ai-no-writes (shop/orders): evaluation error: No such key: team; treated as matched (fail closed)');
  });

  it('an allow rule whose expression errors is treated as not matched', () => {
    const decision = decideStatement(strict, { identity: identity({ labels: {} }), environment: 'dev', facts: facts('INSERT') });
    expect(decision.reasons[0]).toContain('trusted-team-may-write (shop/orders): evaluation error: No such key: team; treated as not matched');
  });

  it('a requireApproval rule whose expression errors holds the statement', () => {
    const decision = decideStatement(strict, { identity: identity({ labels: { team: 'web' } }), environment: 'dev', facts: facts('SELECT') });
    expect(decision).toMatchObject({ action: 'requireApproval', rule: 'hold-big-reads' });
  });

  it('CEL absorbs the error when the other side of && is false', () => {
    expect(decideStatement(strict, { identity: identity({ labels: { team: 'web', tier: 'web' } }), environment: 'dev', facts: facts('UPDATE') }).action).toBe('allow');
  });

  it('a rule skipped by its command guard decides like CEL would (false && error is false)', () => {
    const guarded = compiled(policy({ guardrails: [{ name: 'deletes-by-team', when: 'query.command == "DELETE" && identity.labels["team"] == "ai"', action: 'deny' }] }));
    expect(decideStatement(guarded, { identity: identity({ labels: {} }), environment: 'dev', facts: facts('SELECT') }).action).toBe('allow');
    expect(decideStatement(guarded, { identity: identity({ labels: {} }), environment: 'dev', facts: facts('DELETE') }).action).toBe('deny');
  });

  it('a dyn expression that is not bool at run time is an error', () => {
    const dyn = compiled(policy({ guardrails: [{ name: 'dyn', when: 'dyn(identity.labels["flag"]) == true || dyn(identity.user)', action: 'deny' }] }));
    const decision = decideStatement(dyn, { identity: identity({ user: 'x', labels: { flag: 'no' } }), environment: 'dev', facts: facts('SELECT') });
    expect(decision.action).toBe('deny');
    expect(decision.reasons[0]).toContain('evaluation error');
  });
});

const MASKING_RULES = [
  { name: 'support-reads-emails', when: '"email" in column.classes && identity.serviceAccount == "support"', action: 'reveal' },
  { name: 'hash-customer-ids', when: 'column.name == "customer_id" && identity.labels[?"dbward.io/kind"].orValue("") == "ai-agent"', action: 'mask', mask: 'hash' },
  { name: 'partial-cards', when: '"credit_card" in column.classes', action: 'mask', mask: 'partial' },
  { name: 'email-domain-for-analytics', when: '"email" in column.classes && identity.serviceAccount == "analytics"', action: 'mask', mask: 'email' },
  { name: 'reveal-counts', when: 'column.derived && column.type == "int8"', action: 'reveal' },
  { name: 'ops-sees-all-outside-prod', when: 'environment != "production" && identity.namespace == "ops"', action: 'reveal' },
  { name: 'null-ssn', when: '"ssn" in column.classes', action: 'mask', mask: 'null' },
  { name: 'mask-in-copy', when: 'query.command == "COPY" && size(column.classes) > 0', action: 'mask' },
];

const maskingSet = compiled(policy({ masking: { rules: MASKING_RULES } }));

type ColumnCase = [string, Partial<PolicyIdentity>, string, Partial<ColumnFacts>, 'mask' | 'reveal', string, string | undefined];

const COLUMN_CASES: ColumnCase[] = [
  ['email for support', { serviceAccount: 'support' }, 'production', {}, 'reveal', 'redact', 'support-reads-emails'],
  ['email for checkout: default mask', {}, 'production', {}, 'mask', 'redact', undefined],
  ['email for analytics', { serviceAccount: 'analytics' }, 'production', {}, 'mask', 'email', 'email-domain-for-analytics'],
  ['customer_id for an AI agent', AI, 'production', { name: 'customer_id', classes: [] }, 'mask', 'hash', 'hash-customer-ids'],
  ['customer_id for a human: not classified', {}, 'production', { name: 'customer_id', classes: [] }, 'reveal', 'redact', undefined],
  ['card number', {}, 'production', { name: 'card', classes: ['credit_card'] }, 'mask', 'partial', 'partial-cards'],
  ['card number for support: first match wins', { serviceAccount: 'support' }, 'production', { name: 'card', classes: ['credit_card', 'email'] }, 'reveal', 'redact', 'support-reads-emails'],
  ['count(email) derived int8', {}, 'production', { derived: true, type: 'int8' }, 'reveal', 'redact', 'reveal-counts'],
  ['lower(email) derived text', {}, 'production', { derived: true, type: 'text' }, 'mask', 'redact', undefined],
  ['ops in staging', { namespace: 'ops' }, 'staging', { name: 'ssn', classes: ['ssn'] }, 'reveal', 'redact', 'ops-sees-all-outside-prod'],
  ['ops in production', { namespace: 'ops' }, 'production', { name: 'ssn', classes: ['ssn'] }, 'mask', 'null', 'null-ssn'],
  ['ssn', {}, 'staging', { name: 'ssn', classes: ['ssn'] }, 'mask', 'null', 'null-ssn'],
  ['phone: default', {}, 'staging', { name: 'phone', classes: ['phone'] }, 'mask', 'redact', undefined],
  ['unclassified column', {}, 'production', { name: 'total', type: 'numeric', classes: [] }, 'reveal', 'redact', undefined],
];

describe('decideColumn: first reveal/mask match, else default for classified columns', () => {
  it.each(COLUMN_CASES)('%s', (_name, who, environment, col, action, mask, rule) => {
    const decision = decideColumn(maskingSet, { identity: identity(who), environment, column: column(col), query: facts('SELECT') });
    expect({ action: decision.action, mask: decision.mask, rule: decision.rule }).toEqual({ action, mask, rule });
  });

  it('query facts are visible to masking rules', () => {
    expect(decideColumn(maskingSet, { identity: identity({ serviceAccount: 'support' }), environment: 'dev', column: column({ classes: ['phone'] }), query: facts('COPY') })).toMatchObject({
      action: 'mask',
      rule: 'mask-in-copy',
    });
  });

  it('masking.default reveal reveals classified columns no rule masks', () => {
    const lenient = compiled(policy({ masking: { default: 'reveal', rules: [{ name: 'ssn', when: '"ssn" in column.classes', action: 'mask' }] } }));
    const revealed = decideColumn(lenient, { identity: {}, environment: '', column: column(), query: facts('SELECT') });
    expect(revealed.action).toBe('reveal');
    expect(revealed.rule).toBeUndefined();
    expect(decideColumn(lenient, { identity: {}, environment: '', column: column({ classes: ['ssn'] }), query: facts('SELECT') })).toMatchObject({ action: 'mask', mask: 'redact' });
  });

  it('with no rules at all: classified masked, unclassified revealed', () => {
    const empty = compiled(policy({}));
    expect(decideColumn(empty, { identity: {}, environment: '', column: column(), query: facts('SELECT') }).action).toBe('mask');
    expect(decideColumn(empty, { identity: {}, environment: '', column: column({ classes: [] }), query: facts('SELECT') }).action).toBe('reveal');
  });

  it('errors fail closed: a mask rule matches, a reveal rule does not', () => {
    const strict = compiled(
      policy({
        masking: {
          default: 'reveal',
          rules: [
            { name: 'team-reveal', when: 'identity.labels["team"] == "support"', action: 'reveal' },
            { name: 'tier-mask', when: 'identity.labels["tier"] == "external"', action: 'mask', mask: 'hash' },
          ],
        },
      }),
    );
    const decision = decideColumn(strict, { identity: identity({ labels: {} }), environment: '', column: column(), query: facts('SELECT') });
    expect(decision).toMatchObject({ action: 'mask', mask: 'hash', rule: 'tier-mask' });
    expect(decision.reason).toContain('team-reveal (shop/orders): evaluation error: No such key: team; treated as not matched');
    expect(decision.reason).toContain('tier-mask (shop/orders): evaluation error: No such key: tier; treated as matched');
  });
});

describe('memoisation', () => {
  it('returns the same decision object for the same statement and identity', () => {
    const who = identity();
    const statement = facts('DELETE');
    const first = decideStatement(set, { identity: who, environment: 'production', facts: statement });
    expect(decideStatement(set, { identity: who, environment: 'production', facts: statement })).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(decideStatement(set, { identity: who, environment: 'staging', facts: statement }).action).toBe('allow');
    expect(decideStatement(set, { identity: who, environment: 'production', facts: statement }).action).toBe('requireApproval');
  });

  it('does not confuse identities or statements', () => {
    const statement = facts('SELECT', { tables: ['pii.people'] });
    expect(decideStatement(set, { identity: identity(AI), environment: 'dev', facts: statement }).action).toBe('deny');
    expect(decideStatement(set, { identity: identity(), environment: 'dev', facts: statement }).action).toBe('allow');
    expect(decideStatement(set, { identity: identity(AI), environment: 'dev', facts: facts('SELECT') }).action).toBe('allow');
  });

  it('memoises by cache key when no guardrail reads query.text', () => {
    const who = identity();
    const first = decideStatement(set, { identity: who, environment: 'production', facts: facts('DELETE'), cacheKey: 'k#0' });
    expect(decideStatement(set, { identity: who, environment: 'production', facts: facts('DELETE', { text: 'other' }), cacheKey: 'k#0' })).toBe(first);
  });

  it('ignores the cache key when a guardrail reads query.text', () => {
    const textual = compiled(policy({ guardrails: [{ name: 'no-pg-sleep', when: 'query.text.contains("pg_sleep")', action: 'deny' }] }));
    const who = identity();
    expect(decideStatement(textual, { identity: who, environment: 'dev', facts: facts('SELECT', { text: 'SELECT 1' }), cacheKey: 'k#0' }).action).toBe('allow');
    expect(decideStatement(textual, { identity: who, environment: 'dev', facts: facts('SELECT', { text: 'SELECT pg_sleep(9)' }), cacheKey: 'k#0' }).action).toBe('deny');
  });

  it('column decisions depend on the statement when rules read query', () => {
    const who = identity();
    const col = column({ classes: ['phone'] });
    expect(decideColumn(maskingSet, { identity: who, environment: 'dev', column: col, query: facts('COPY') }).rule).toBe('mask-in-copy');
    expect(decideColumn(maskingSet, { identity: who, environment: 'dev', column: col, query: facts('SELECT') }).rule).toBeUndefined();
  });
});
