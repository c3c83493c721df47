import { describe, expect, it } from 'vitest';
import { compilePolicies, isPolicyErrors } from './compile.js';
import { decideColumn, decideStatement, decideUnparseable } from './evaluate.js';
import { column, compiled, compileErrors, facts, identity, policy } from './fixtures.js';

const DROP = facts('DROP TABLE');
const unboundedUpdate = facts('UPDATE', { hasWhere: false });

function decide(set: ReturnType<typeof compiled>, statement = DROP, environment = 'production', who = identity()) {
  return decideStatement(set, { identity: who, environment, facts: statement });
}

describe('a single document', () => {
  it('compiles the built-ins after the document rules', () => {
    const set = compiled(policy({ guardrails: [{ name: 'a', when: 'false', action: 'deny' }] }));
    expect(set.guardrails.map((g) => `${g.name}:${g.policy}:${g.enforced}`)).toEqual([
      'a:shop/orders:true',
      'builtin.no-destructive-ddl-in-production:builtin:true',
      'builtin.no-unbounded-write-in-production:builtin:true',
    ]);
    expect(set).toMatchObject({
      policies: ['shop/orders'],
      enforcement: 'enforce',
      masking: { default: 'mask' },
      classification: { automatic: true, columns: [] },
      approvals: { timeout: '10m', timeoutMs: 600_000 },
      audit: { queryText: 'normalized' },
      environment: undefined,
    });
  });

  it('exposes spec.environment', () => {
    expect(compiled(policy({ environment: 'production' })).environment).toBe('production');
  });

  it('refuses an empty set', () => {
    const result = compilePolicies([]);
    expect(isPolicyErrors(result) && result.errors[0]?.code).toBe('no_policies');
  });
});

describe('several documents', () => {
  const allowMigrations = policy({ guardrails: [{ name: 'migrations', when: 'identity.serviceAccount == "migrator"', action: 'allow' }] }, { name: 'first' });
  const denyDrops = policy({ guardrails: [{ name: 'no-drops', when: 'query.command == "DROP TABLE"', action: 'deny' }] }, { name: 'second' });

  it('evaluates guardrails in document order: the first match decides', () => {
    const set = compiled(allowMigrations, denyDrops);
    expect(decide(set, DROP, 'dev', identity({ serviceAccount: 'migrator' }))).toMatchObject({ action: 'allow', rule: 'migrations', policy: 'shop/first' });
    expect(decide(set, DROP, 'dev')).toMatchObject({ action: 'deny', rule: 'no-drops', policy: 'shop/second' });
    const reversed = compiled(denyDrops, allowMigrations);
    expect(decide(reversed, DROP, 'dev', identity({ serviceAccount: 'migrator' }))).toMatchObject({ action: 'deny', rule: 'no-drops' });
  });

  it('keeps built-ins after every document and lets any enforcing document override them', () => {
    const set = compiled(policy({}, { name: 'a' }), policy({ guardrails: [{ name: 'builtin.no-unbounded-write-in-production', when: 'false', action: 'deny' }] }, { name: 'b' }));
    expect(set.guardrails.map((g) => g.name)).toEqual(['builtin.no-unbounded-write-in-production', 'builtin.no-destructive-ddl-in-production']);
    expect(decide(set, unboundedUpdate).action).toBe('allow');
  });

  it('rule names may repeat across documents', () => {
    const set = compiled(policy({ guardrails: [{ name: 'x', when: 'false', action: 'deny' }] }, { name: 'a' }), policy({ guardrails: [{ name: 'x', when: 'true', action: 'deny' }] }, { name: 'b' }));
    expect(decide(set, facts('SELECT'), 'dev')).toMatchObject({ rule: 'x', policy: 'shop/b' });
  });

  it('chains masking rules in document order', () => {
    const set = compiled(
      policy({ masking: { rules: [{ name: 'support', when: 'identity.serviceAccount == "support"', action: 'reveal' }] } }, { name: 'a' }),
      policy({ masking: { rules: [{ name: 'hash-all', when: 'true', action: 'mask', mask: 'hash' }] } }, { name: 'b' }),
    );
    const input = { environment: 'dev', column: column(), query: facts('SELECT') };
    expect(decideColumn(set, { ...input, identity: identity({ serviceAccount: 'support' }) })).toMatchObject({ action: 'reveal', rule: 'support', policy: 'shop/a' });
    expect(decideColumn(set, { ...input, identity: identity() })).toMatchObject({ action: 'mask', mask: 'hash', policy: 'shop/b' });
  });

  it('the strictest setting wins', () => {
    const set = compiled(
      policy(
        { masking: { default: 'reveal' }, unparseable: 'allow', classification: { automatic: false, columns: [{ table: 'public.c', column: 'notes', classes: ['pii'] }] }, approvals: { timeout: '1h' }, audit: { queryText: 'full' } },
        { name: 'lenient' },
      ),
      policy(
        { masking: { default: 'mask' }, unparseable: 'deny', classification: { automatic: true, columns: [{ table: 'public.c', column: 'notes', classes: ['free_text', 'pii'] }] }, approvals: { timeout: '90s' }, audit: { queryText: 'none' } },
        { name: 'strict' },
      ),
    );
    expect(set).toMatchObject({
      masking: { default: 'mask' },
      classification: { automatic: true, columns: [{ table: 'public.c', column: 'notes', classes: ['pii', 'free_text'] }] },
      approvals: { timeout: '1m30s', timeoutMs: 90_000 },
      audit: { queryText: 'none' },
    });
    expect(decideUnparseable(set)).toMatchObject({ action: 'deny', policy: 'shop/strict' });
  });

  it('normalized query text wins over full', () => {
    expect(compiled(policy({ audit: { queryText: 'full' } }, { name: 'a' }), policy({}, { name: 'b' })).audit.queryText).toBe('normalized');
  });

  it('conflicting environments are an error', () => {
    const errors = compileErrors(policy({ environment: 'production' }, { name: 'a' }), policy({ environment: 'staging' }, { name: 'b' }), policy({ environment: 'production' }, { name: 'c' }));
    expect(errors.errors.map((e) => e.headline)).toEqual(['DataAccessPolicy shop/b: spec.environment: environment "staging" conflicts with "production" of DataAccessPolicy shop/a']);
  });
});

describe('audit and enforcing documents together', () => {
  const trial = policy({ enforcement: 'audit', guardrails: [{ name: 'trial-no-selects', when: 'query.command == "SELECT"', action: 'deny' }] }, { name: 'trial' });
  const enforced = policy({ guardrails: [{ name: 'no-copy', when: 'query.command == "COPY"', action: 'deny' }] }, { name: 'enforced' });
  const set = compiled(trial, enforced);

  it('reports the mode', () => {
    expect(set.enforcement).toBe('mixed');
    expect(set.guardrails.map((g) => `${g.name}:${g.enforced}`)).toEqual([
      'trial-no-selects:false',
      'no-copy:true',
      'builtin.no-destructive-ddl-in-production:true',
      'builtin.no-unbounded-write-in-production:true',
    ]);
  });

  it('an audit document only reports', () => {
    expect(decide(set, facts('SELECT'), 'dev')).toMatchObject({ action: 'allow', auditOnly: true, auditedAction: 'deny', rule: 'trial-no-selects', policy: 'shop/trial' });
  });

  it('an enforcing document still blocks', () => {
    expect(decide(set, facts('COPY'), 'dev')).toMatchObject({ action: 'deny', auditOnly: false, rule: 'no-copy' });
  });

  it('an audit rule matching first does not stop an enforced deny later in the chain', () => {
    const both = compiled(
      policy({ enforcement: 'audit', guardrails: [{ name: 'trial-all', when: 'true', action: 'requireApproval' }] }, { name: 'trial' }),
      enforced,
    );
    const decision = decide(both, facts('COPY'), 'dev');
    expect(decision).toMatchObject({ action: 'deny', rule: 'no-copy', auditOnly: false });
    expect(decision.reasons).toEqual(['guardrail no-copy (shop/enforced) matched: deny', 'audit-only guardrail trial-all (shop/trial) matched: would requireApproval']);
    expect(decide(both, DROP)).toMatchObject({ action: 'deny', rule: 'builtin.no-destructive-ddl-in-production' });
  });

  it('an audit allow rule does not let a statement past an enforced rule', () => {
    const both = compiled(policy({ enforcement: 'audit', guardrails: [{ name: 'trial-allow', when: 'true', action: 'allow' }] }, { name: 'trial' }), enforced);
    expect(decide(both, facts('COPY'), 'dev')).toMatchObject({ action: 'deny', rule: 'no-copy' });
  });

  it('an audit deny is reported when an enforced allow rule lets the statement run', () => {
    const both = compiled(trial, policy({ guardrails: [{ name: 'reads-ok', when: 'query.kind == "read"', action: 'allow' }] }, { name: 'enforced' }));
    const decision = decide(both, facts('SELECT'), 'dev');
    expect(decision).toMatchObject({ action: 'allow', auditOnly: true, rule: 'trial-no-selects' });
    expect(decision.reasons).toContain('guardrail reads-ok (shop/enforced) matched: allow');
  });

  it('an audit document cannot switch off an enforced built-in', () => {
    const both = compiled(policy({ enforcement: 'audit', guardrails: [{ name: 'builtin.no-destructive-ddl-in-production', when: 'false', action: 'deny' }] }, { name: 'trial' }), enforced);
    expect(decide(both)).toMatchObject({ action: 'deny', rule: 'builtin.no-destructive-ddl-in-production', policy: 'builtin' });
  });

  it('when every document audits, built-ins are audit-only and audit overrides apply', () => {
    const audits = compiled(trial, policy({ enforcement: 'audit', guardrails: [{ name: 'builtin.no-unbounded-write-in-production', when: 'false', action: 'deny' }] }, { name: 'other' }));
    expect(audits.enforcement).toBe('audit');
    expect(decide(audits)).toMatchObject({ action: 'allow', auditOnly: true, rule: 'builtin.no-destructive-ddl-in-production' });
    expect(decide(audits, unboundedUpdate)).toMatchObject({ action: 'allow', auditOnly: false });
  });

  it('unparseable: deny from an audit document is audit-only, from an enforcing one it denies', () => {
    expect(decideUnparseable(compiled(trial, policy({ unparseable: 'allow' }, { name: 'e' })))).toMatchObject({ action: 'allow', auditOnly: true, auditedAction: 'deny' });
    expect(decideUnparseable(compiled(trial, enforced))).toMatchObject({ action: 'deny', policy: 'shop/enforced' });
  });

  it('masking applies whatever the enforcement', () => {
    expect(decideColumn(compiled(trial), { identity: {}, environment: '', column: column(), query: facts('SELECT') }).action).toBe('mask');
  });
});

describe('version', () => {
  it('is a stable content hash that changes with the spec', () => {
    const a = compiled(policy({ guardrails: [{ name: 'x', when: 'true', action: 'deny' }] }));
    const b = compiled(policy({ guardrails: [{ name: 'x', when: 'true', action: 'deny' }] }));
    const c = compiled(policy({ guardrails: [{ name: 'x', when: 'false', action: 'deny' }] }));
    expect(a.version).toMatch(/^[0-9a-f]{16}$/);
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });

  it('can be given', () => {
    const set = compilePolicies([policy({})], { version: 'snapshot-42' });
    expect(!isPolicyErrors(set) && set.version).toBe('snapshot-42');
  });
});
