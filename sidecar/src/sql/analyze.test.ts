import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeQuery, initSqlAnalysis, isUnparseable, SqlAnalysisNotReadyError } from './analyze.js';
import type { AnalysisContext } from './analyzer.js';
import { APPLICATION, CASES, CATALOG, PGBENCH } from './fixtures.js';
import type { QueryAnalysis, StatementFacts } from './facts.js';

const ctx: AnalysisContext = { searchPath: ['public'] };

function analyze(sql: string, context: AnalysisContext = ctx): StatementFacts[] {
  const r = analyzeQuery(sql, context);
  if (isUnparseable(r)) throw new Error(`unparseable: ${r.error} at ${String(r.position)}: ${sql}`);
  return r.statements;
}

function one(sql: string, context: AnalysisContext = ctx): StatementFacts {
  const s = analyze(sql, context);
  expect(s).toHaveLength(1);
  return s[0] as StatementFacts;
}

beforeAll(async () => {
  await initSqlAnalysis();
});

describe('analyzeQuery: table of statements', () => {
  it('has at least 200 statements', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(200);
  });

  it.each(CASES.map((c, i) => [i, c.sql, c] as const))('#%i %s', (_i, sql, c) => {
    const context: AnalysisContext = { searchPath: ['public'] };
    if (c.catalog === true) context.catalog = CATALOG;
    if (c.scsOff === true) context.standardConformingStrings = false;
    const statements = analyze(sql, context);
    const expected = Array.isArray(c.expect) ? c.expect : [c.expect];
    expect(statements).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(statements[i]).toMatchObject(e));
    for (const s of statements) {
      // Invariants every statement satisfies.
      expect(s.effectUnknown && s.kind === 'read').toBe(false);
      for (const t of [...s.readTables, ...s.writeTables]) expect(s.tables).toContain(t);
      expect([...s.tables].sort()).toEqual(s.tables);
      expect(new Set(s.tables).size).toBe(s.tables.length);
      expect(sql).toContain(s.text);
    }
  });
});

describe('analyzeQuery: details', () => {
  it('returns the parser position of a syntax error, 1-based', () => {
    expect(analyzeQuery('SELEC 1', ctx)).toEqual({ error: 'syntax error at or near "SELEC"', position: 1 });
    expect(analyzeQuery('SELECT * FROM WHERE x = 1', ctx)).toMatchObject({ position: 15 });
    expect(analyzeQuery("SELECT 'é' FROM", ctx)).toMatchObject({ error: 'syntax error at end of input', position: 16 });
  });

  it('rejects the whole string when any statement does not parse', () => {
    expect(isUnparseable(analyzeQuery('SELECT 1; DROP TABLE', ctx))).toBe(true);
  });

  it('gives no statements for empty strings and comments', () => {
    expect(analyzeQuery('', ctx)).toEqual({ statements: [] });
    expect(analyzeQuery('  -- nothing\n /* at all */ ;', ctx)).toEqual({ statements: [] });
  });

  it('resolves unqualified tables with the search_path and the catalog', () => {
    expect(one('SELECT * FROM customers', { searchPath: ['app', 'public'] }).tables).toEqual(['app.customers']);
    expect(one('SELECT * FROM orders', { searchPath: ['app', 'public'], catalog: CATALOG }).tables).toEqual(['public.orders']);
    expect(one('SELECT * FROM customers', { searchPath: ['app', 'public'], catalog: CATALOG }).tables).toEqual(['app.customers']);
    expect(one('SELECT * FROM unknown_table', { searchPath: ['app', 'public'], catalog: CATALOG }).tables).toEqual(['app.unknown_table']);
    expect(one('SELECT * FROM pg_class', { searchPath: ['public', 'pg_catalog'] }).tables).toEqual(['public.pg_class']);
  });

  it('does not trust built-in names when pg_catalog is searched after another schema', () => {
    expect(one('SELECT lower(email) FROM customers', { searchPath: ['public'] }).effectUnknown).toBe(false);
    expect(one('SELECT lower(email) FROM customers', { searchPath: ['public', 'pg_catalog'] }).effectUnknown).toBe(true);
    expect(one('SELECT pg_catalog.lower(email) FROM customers', { searchPath: ['public', 'pg_catalog'] }).effectUnknown).toBe(false);
  });

  it('facts do not depend on literal values', () => {
    const a = one('SELECT a, b, c FROM t ORDER BY 1');
    const b = one('SELECT a, b, c FROM t ORDER BY 3');
    expect({ ...a, text: '' }).toEqual({ ...b, text: '' });
    const x = one('EXPLAIN (ANALYZE 0) DELETE FROM t');
    const y = one('EXPLAIN (ANALYZE 1) DELETE FROM t');
    expect({ ...x, text: '' }).toEqual({ ...y, text: '' });
  });

  it('keeps analyzing after a view definition that does not parse', () => {
    const catalog = { ...CATALOG, relations: { public: { bad: { kind: 'view' as const, columns: [{ name: 'x', type: 'int' }], definition: 'SELEC x' } } } };
    expect(one('SELECT x FROM bad', { searchPath: ['public'], catalog }).output).toEqual([
      { name: 'x', sources: [{ table: 'public.bad', column: 'x' }], derived: false, opaque: true },
    ]);
  });

  it('traces SQL functions through their bodies: result, tables read, predicates, nested calls', () => {
    const catalog = {
      ...CATALOG,
      functions: {
        ...CATALOG.functions,
        'public.ssns': { volatility: 's' as const, languages: ['sql'], body: 'SELECT ssn FROM customers' },
        'public.has_ssn': { volatility: 's' as const, languages: ['sql'], body: 'SELECT EXISTS (SELECT 1 FROM customers WHERE ssn = $1)' },
        'public.wrapped': { volatility: 's' as const, languages: ['sql'], body: 'SELECT lower(ssns())' },
        'public.loop': { volatility: 's' as const, languages: ['sql'], body: 'SELECT loop()' },
      },
    };
    const ctx2 = { searchPath: ['public'], catalog };
    const ssn = { table: 'public.customers', column: 'ssn' };
    expect(one('SELECT ssns()', ctx2)).toMatchObject({ readTables: ['public.customers'], output: [{ name: 'ssns', sources: [ssn], derived: true }] });
    expect(one('SELECT s FROM ssns() AS s', ctx2).output).toEqual([{ name: 's', sources: [ssn], derived: true, opaque: false }]);
    expect(one("SELECT has_ssn('x')", ctx2).predicateColumns).toEqual([ssn]);
    expect(one('SELECT wrapped()', ctx2)).toMatchObject({ functions: ['lower', 'ssns', 'wrapped'], output: [{ sources: [ssn] }] });
    expect(one('SELECT loop()', ctx2).functions).toEqual(['loop']);
  });

  it('survives views that refer to themselves', () => {
    const catalog = { ...CATALOG, relations: { public: { loop: { kind: 'view' as const, columns: [{ name: 'x', type: 'int' }], definition: 'SELECT x FROM loop' } } } };
    expect(one('SELECT x FROM loop', { searchPath: ['public'], catalog }).tables).toEqual(['public.loop']);
  });
});

describe('analyzeQuery: benign corpora', () => {
  const unboundedOk = new Set(['DELETE FROM sessions WHERE expires_at < now()']);

  it.each([...PGBENCH, ...APPLICATION])('%s', (sql) => {
    const r: QueryAnalysis = { statements: analyze(sql) };
    for (const s of r.statements) {
      expect(s.hasWhere || unboundedOk.has(sql)).toBe(true);
      expect(s.command).not.toBe('???');
    }
  });
});

describe('initSqlAnalysis', () => {
  it('is idempotent', async () => {
    await Promise.all([initSqlAnalysis(), initSqlAnalysis()]);
    expect(SqlAnalysisNotReadyError.name).toBe('SqlAnalysisNotReadyError');
  });
});
