import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeQuery, initSqlAnalysis, isUnparseable } from './analyze.js';
import type { StatementFacts } from './facts.js';

/**
 * corpus/selects.sql: PostgreSQL's system view definitions plus generated application SELECTs.
 * Every one is a plain read, so built-in guardrails (destructive DDL, unbounded writes) deny none.
 */
let statements: StatementFacts[] = [];

beforeAll(async () => {
  await initSqlAnalysis();
  const text = readFileSync(new URL('./corpus/selects.sql', import.meta.url), 'utf8');
  const r = analyzeQuery(text, { searchPath: ['public'] });
  if (isUnparseable(r)) throw new Error(`corpus does not parse: ${r.error} at ${String(r.position)}`);
  statements = r.statements;
});

describe('SELECT corpus', () => {
  it('has at least 300 statements', () => {
    expect(statements.length).toBeGreaterThanOrEqual(300);
  });

  it('is all SELECTs that write nothing and have no unbounded UPDATE/DELETE', () => {
    for (const s of statements) {
      expect(s.command, s.text).toBe('SELECT');
      expect(s.hasWhere, s.text).toBe(true);
      expect(s.writeTables, s.text).toEqual([]);
      expect(['read', 'unknown'], s.text).toContain(s.kind);
    }
  });

  it('is mostly known to be read-only without a catalog', () => {
    const reads = statements.filter((s) => s.kind === 'read').length;
    // The rest call information_schema's helper functions, which only a catalog snapshot vouches for.
    expect(reads / statements.length).toBeGreaterThan(0.95);
  });
});
