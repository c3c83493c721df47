import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeQuery, initSqlAnalysis, isUnparseable } from './analyze.js';
import type { AnalysisContext } from './analyzer.js';
import { FactsCache } from './cache.js';
import { APPLICATION, CATALOG, PGBENCH } from './fixtures.js';
import type { QueryAnalysis, UnparseableQuery } from './facts.js';

const ctx: AnalysisContext = { searchPath: ['public'] };

beforeAll(async () => {
  await initSqlAnalysis();
});

function ok(r: QueryAnalysis | UnparseableQuery): QueryAnalysis {
  if (isUnparseable(r)) throw new Error(r.error);
  return r;
}

describe('FactsCache', () => {
  it('serves a statement with a different literal from the cache, with its own text', () => {
    const cache = new FactsCache();
    const a = ok(cache.analyze('SELECT abalance FROM pgbench_accounts WHERE aid = 1;', ctx));
    const b = ok(cache.analyze('SELECT abalance FROM pgbench_accounts WHERE aid = 98765;', ctx));
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, bypassed: 0, templateHits: 0, entries: 1 });
    expect(b.statements[0]?.text).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 98765');
    expect({ ...b.statements[0], text: '' }).toEqual({ ...a.statements[0], text: '' });
  });

  it('after a hit, serves the same shape through a template: same facts, own texts, literals of other lengths', () => {
    const cache = new FactsCache();
    const sql = (a: number, s: string, b: number): string => `UPDATE pgbench_accounts SET abalance = abalance + ${a} WHERE aid = ${b}; SELECT abalance FROM pgbench_accounts WHERE aid = ${b} AND '${s}' <> ''`;
    const first = ok(cache.analyze(sql(1, 'x', 2), ctx));
    ok(cache.analyze(sql(3, 'y', 4), ctx));
    const third = ok(cache.analyze(sql(-5 + 1000, "it''s", 123456), ctx));
    expect(cache.stats()).toEqual({ hits: 2, misses: 1, bypassed: 0, templateHits: 1, entries: 1 });
    expect(third.statements.map((s) => s.text)).toEqual(['UPDATE pgbench_accounts SET abalance = abalance + 995 WHERE aid = 123456', "SELECT abalance FROM pgbench_accounts WHERE aid = 123456 AND 'it''s' <> ''"]);
    expect(third.statements.map((s) => ({ ...s, text: '' }))).toEqual(first.statements.map((s) => ({ ...s, text: '' })));
    // A statement appended to the same shape is not that shape: analysed for what it is.
    const attack = ok(cache.analyze(`${sql(1, 'x', 2)}; DROP TABLE pgbench_accounts`, ctx));
    expect(attack.statements.map((s) => s.command)).toEqual(['UPDATE', 'SELECT', 'DROP TABLE']);
    expect(cache.stats().templateHits).toBe(1);
  });

  it('cuts each statement of a multi-statement hit out of the new text', () => {
    const cache = new FactsCache();
    cache.analyze("BEGIN; UPDATE t SET a = 1 WHERE id = 2; SELECT 'x'", ctx);
    const r = ok(cache.analyze("BEGIN;  UPDATE t SET a = 10 WHERE id = 20 /* c */; SELECT 'yy'  ", ctx));
    expect(cache.stats().hits).toBe(1);
    expect(r.statements.map((s) => s.text)).toEqual(['BEGIN', 'UPDATE t SET a = 10 WHERE id = 20 /* c */', "SELECT 'yy'"]);
  });

  it('returns exactly what analyzeQuery returns, hit or miss', () => {
    const cache = new FactsCache();
    const vary = (sql: string, n: number): string => sql.replace(/\b\d+\b/g, (d) => String(Number(d) + n)).replace(/'([^']*)'/g, `'$1${n}'`);
    for (let round = 0; round < 3; round++) {
      for (const sql of [...PGBENCH, ...APPLICATION]) {
        const text = vary(sql, round);
        expect(cache.analyze(text, ctx)).toEqual(analyzeQuery(text, ctx));
      }
    }
    expect(cache.stats().hits).toBeGreaterThan(70);
  });

  it('keeps search paths and standard_conforming_strings apart', () => {
    const cache = new FactsCache();
    const a = ok(cache.analyze('SELECT * FROM customers', { searchPath: ['public'] }));
    const b = ok(cache.analyze('SELECT * FROM customers', { searchPath: ['app'] }));
    expect(a.statements[0]?.tables).toEqual(['public.customers']);
    expect(b.statements[0]?.tables).toEqual(['app.customers']);
    cache.analyze("SELECT 'a'", { searchPath: ['public'], standardConformingStrings: false });
    cache.analyze("SELECT 'b'", { searchPath: ['public'] });
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 4, entries: 4 });
  });

  it('empties itself when the catalog snapshot changes', () => {
    const cache = new FactsCache();
    cache.analyze('SELECT * FROM customers', ctx);
    const r = ok(cache.analyze('SELECT * FROM customers', { ...ctx, catalog: CATALOG }));
    expect(r.statements[0]?.output).toHaveLength(5);
    expect(cache.stats()).toMatchObject({ hits: 0, entries: 1 });
  });

  it('never caches failures, and parses what the lexer is unsure of', () => {
    const cache = new FactsCache();
    expect(isUnparseable(cache.analyze('SELECT FROM WHERE 1', ctx))).toBe(true);
    expect(isUnparseable(cache.analyze('SELECT FROM WHERE 2', ctx))).toBe(true);
    cache.analyze("SELECT U&'\\0041'", ctx);
    expect(cache.stats()).toEqual({ hits: 0, misses: 2, bypassed: 1, templateHits: 0, entries: 0 });
  });

  it('drops the least recently used entry', () => {
    const cache = new FactsCache({ maxEntries: 2 });
    cache.analyze('SELECT 1 FROM a', ctx);
    cache.analyze('SELECT 1 FROM b', ctx);
    cache.analyze('SELECT 2 FROM a', ctx); // hit: a is now the most recent
    cache.analyze('SELECT 1 FROM c', ctx); // evicts b
    cache.analyze('SELECT 3 FROM a', ctx); // hit through the template made at the first hit
    cache.analyze('SELECT 3 FROM b', ctx);
    expect(cache.stats()).toEqual({ hits: 2, misses: 4, bypassed: 0, templateHits: 1, entries: 2 });
  });

  it('shares frozen facts between hits', () => {
    const cache = new FactsCache();
    cache.analyze('SELECT email FROM customers WHERE id = 1', ctx);
    const r = ok(cache.analyze('SELECT email FROM customers WHERE id = 2', ctx));
    const s = r.statements[0];
    expect(Object.isFrozen(s?.tables)).toBe(true);
    expect(Object.isFrozen(s?.output[0]?.sources)).toBe(true);
    expect(() => (s?.tables as string[]).push('x')).toThrow();
  });
});
