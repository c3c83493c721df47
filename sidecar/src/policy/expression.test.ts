import { describe, expect, it } from 'vitest';
import { compileExpression, readsQueryText, referencesVariable, ruleGuards } from './expression.js';
import { compileErrors, policy } from './fixtures.js';

type Kind = 'guardrail' | 'masking';

/** [expression, kind, code, line:column, summary fragment] */
const TYPE_ERRORS: [string, Kind, string, string, string][] = [
  ['query.hasWhere == "yes"', 'guardrail', 'no_such_overload', '1:1', 'bool == string'],
  ['identity.labels["x"] > 3', 'guardrail', 'no_such_overload', '1:1', 'string > int'],
  ['query.tabels == []', 'guardrail', 'no_such_key', '1:7', 'No such key: tabels'],
  ['identity.team == "ai"', 'guardrail', 'no_such_key', '1:10', 'No such key: team'],
  ['column.name == "email"', 'guardrail', 'unknown_variable', '1:1', 'column is only available in masking rules'],
  ['env == "production"', 'guardrail', 'unknown_variable', '1:1', 'variables: identity, environment, query)'],
  ['environment == "production" &&\n  query.command == 3', 'guardrail', 'no_such_overload', '2:3', 'string == int'],
  ['query.command', 'guardrail', 'not_bool', '1:1', 'must be bool, it is string'],
  ['size(query.tables)', 'guardrail', 'not_bool', '1:1', 'it is int'],
  ['query.tables.exists(t, t > 1)', 'guardrail', 'no_such_overload', '1:24', 'string > int'],
  ['query.hasWhere && ', 'guardrail', 'unexpected_token', '1:19', 'Unexpected token'],
  ['environment == "production" && (query.kind == "write"', 'guardrail', 'expected_token', '1:54', 'Expected'],
  ['"email" in column.classes && column.derived == "no"', 'masking', 'no_such_overload', '1:30', 'bool == string'],
  ['column.clases.size() > 0', 'masking', 'no_such_key', '1:8', 'No such key: clases'],
  ['identity.labels.size() == "1"', 'guardrail', 'no_such_overload', '1:1', 'int == string'],
  ['query.command.startsWith(1)', 'guardrail', 'no_matching_overload', '1:1', 'startsWith'],
  ['query.tables[0] == 1', 'guardrail', 'no_such_overload', '1:1', 'string == int'],
  ['query.tables == "public.orders"', 'guardrail', 'no_such_overload', '1:1', 'list<string> == string'],
  ['!query.command', 'guardrail', '', '1:1', ''],
  ['query.tables.exists(t, query.columns.exists(c, c.startsWith(t)))', 'guardrail', 'nested_comprehension', '1:24', 'nested comprehensions'],
  ['query.text.matches(".*DROP")', 'guardrail', 'unsafe_regex', '1:20', 'anchored'],
  ['query.text.matches(identity.user)', 'guardrail', 'regex_not_literal', '1:20', 'string literal'],
  ['query.text.matches("^(a+)+$")', 'guardrail', 'unsafe_regex', '1:20', 'repeated group'],
  ['identity.user.matches("(?i)^admin")', 'guardrail', 'unsafe_regex', '1:23', 'inline flags'],
];

describe('CEL type errors are reported at load with their position', () => {
  it.each(TYPE_ERRORS)('%j (%s) → %s at %s', (source, kind, code, at, fragment) => {
    const result = compileExpression(source, kind);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    if (code !== '') expect(result.problem.code).toBe(code);
    const before = source.slice(0, result.problem.start);
    const line = before.split('\n').length;
    const column = result.problem.start - before.lastIndexOf('\n');
    expect(`${line}:${column}`).toBe(at);
    expect(result.problem.summary).toContain(fragment);
  });

  it.each([
    'environment == "production" && query.command in ["DROP TABLE", "TRUNCATE TABLE"]',
    '"email" in column.classes && identity.serviceAccount == "support"',
    'identity.labels[?"dbward.io/kind"].orValue("") == "ai-agent"',
    '"team" in identity.labels && identity.labels["team"] == "ai"',
    'query.tables.exists(t, t.startsWith("pii."))',
    'query.kind == "write" && !query.hasWhere',
    'query.text.matches("^\\\\s*(?i:drop)")',
    'identity.user.matches("^[a-z]+-admin$")',
    'size(query.writeTables) > 3 || "pg_catalog.pg_read_file" in query.functions',
    'cel.bind(w, query.writeTables, w.exists(t, t == "public.orders"))',
    'query.tables.filter(t, t.startsWith("pii.")).size() > 0',
    'has(identity.labels.team)',
  ])('accepts %s', (source) => {
    const kind = source.includes('column') ? 'masking' : 'guardrail';
    const result = compileExpression(source, kind);
    expect(result.ok ? 'ok' : result.problem.summary).toBe('ok');
  });

  it('rejects more than 4 KiB', () => {
    const result = compileExpression(`true${' || true'.repeat(600)}`, 'guardrail');
    expect(!result.ok && result.problem.code).toBe('expression_too_long');
  });

  it('rejects expressions beyond the parser limits', () => {
    const result = compileExpression(`${'('.repeat(60)}true${')'.repeat(60)}`, 'guardrail');
    expect(!result.ok && result.problem.code).toBe('limit_exceeded');
  });

  it('finds variable references', () => {
    const result = compileExpression('column.name == "x" && query.kind == "read"', 'masking');
    if (!result.ok) throw new Error(result.problem.summary);
    expect(referencesVariable(result.program, 'query')).toBe(true);
    expect(referencesVariable(result.program, 'identity')).toBe(false);
  });
});

describe('readsQueryText', () => {
  it.each([
    ['query.text.contains("x")', true],
    ['query.text.matches("^x")', true],
    ['dyn(query).command == "x"', true],
    ['query.command == "x" && query.tables.exists(t, t == "a")', false],
    ['identity.user == "text"', false],
  ])('%s → %s', (source, expected) => {
    const result = compileExpression(source, 'guardrail');
    if (!result.ok) throw new Error(result.problem.summary);
    expect(readsQueryText(result.program)).toBe(expected);
  });
});

describe('rule guards (rules skipped without evaluation)', () => {
  function guards(source: string) {
    const result = compileExpression(source, 'guardrail');
    if (!result.ok) throw new Error(result.problem.summary);
    const { commands, environments } = ruleGuards(result.program);
    return { commands: commands && [...commands], environments: environments && [...environments] };
  }

  it.each([
    ['query.command == "DELETE"', ['DELETE'], undefined],
    ['"DELETE" == query.command && identity.user == "x"', ['DELETE'], undefined],
    ['environment == "production" && query.command in ["DROP TABLE", "TRUNCATE TABLE"]', ['DROP TABLE', 'TRUNCATE TABLE'], ['production']],
    ['query.command in ["A", "B"] && query.command == "B"', ['B'], undefined],
    ['environment in ["production", "staging"] && !query.hasWhere', undefined, ['production', 'staging']],
    ['query.command == "DELETE" || environment == "production"', undefined, undefined],
    ['!(query.command == "DELETE")', undefined, undefined],
    ['query.command != "DELETE"', undefined, undefined],
    ['query.command in ["A", identity.user]', undefined, undefined],
    ['query.tables.exists(t, query.command == "X")', undefined, undefined],
  ])('%s', (source, commands, environments) => {
    expect(guards(source)).toEqual({ commands, environments });
  });
});

describe('compile errors name the policy, the list, the rule and the position', () => {
  it('formats a guardrail error with a caret excerpt', () => {
    const errors = compileErrors(
      policy({ guardrails: [{ name: 'ok', when: 'true', action: 'allow' }, { name: 'no-drop-in-prod', when: 'environment == "production" &&\n  query.command == 3', action: 'deny' }] }),
    );
    expect(errors.errors).toHaveLength(1);
    const [error] = errors.errors;
    expect(error?.message).toBe(
      [
        'DataAccessPolicy shop/orders: guardrail "no-drop-in-prod" (spec.guardrails[1].when) at 2:3: no such overload: string == int',
        '    2 |   query.command == 3',
        '      |   ^~~~~~~~~~~~~~~~~~',
      ].join('\n'),
    );
    expect(error).toMatchObject({ policy: 'shop/orders', list: 'guardrails', index: 1, rule: 'no-drop-in-prod', code: 'no_such_overload', expression: { line: 2, column: 3 } });
  });

  it('formats a masking rule error', () => {
    const errors = compileErrors(policy({ masking: { rules: [{ name: 'hash-ids', when: 'column.nam == "id"', action: 'mask', mask: 'hash' }] } }, { name: 'p', namespace: 'ns' }));
    expect(errors.errors[0]?.headline).toBe('DataAccessPolicy ns/p: masking rule "hash-ids" (spec.masking.rules[0].when) at 1:8: No such key: nam');
  });

  it('reports every error of every document', () => {
    const errors = compileErrors(
      policy({ guardrails: [{ name: 'a', when: 'query.x', action: 'deny' }] }, { name: 'one' }),
      policy({ guardrails: [{ name: 'b', when: 'query.y', action: 'deny' }], masking: { rules: [{ name: 'c', when: '1', action: 'mask' }] } }, { name: 'two' }),
    );
    expect(errors.errors.map((e) => `${e.policy} ${e.list} ${e.rule} ${e.code}`)).toEqual([
      'shop/one guardrails a no_such_key',
      'shop/two guardrails b no_such_key',
      'shop/two masking.rules c not_bool',
    ]);
    expect(errors.message).toMatch(/^3 policy errors:\n/);
  });
});
