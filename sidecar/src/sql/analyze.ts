/**
 * Entry point of SQL analysis: a query string in, one StatementFacts per statement out (or why
 * the parser rejected it). Parsing is libpg_query, PostgreSQL 18's own grammar compiled to WASM;
 * call initSqlAnalysis() once at startup before analyzing anything.
 */
import { loadModule, parseSync } from 'libpg-query';
import type { AnalysisContext } from './analyzer.js';
import { isObject, list } from './ast.js';
import type { QueryAnalysis, UnparseableQuery } from './facts.js';
import { toStandardStrings, trimSqlEnd } from './normalize.js';
import { statementFacts } from './statement.js';

export type { AnalysisContext } from './analyzer.js';

let loading: Promise<void> | undefined;
let ready = false;

/** Load libpg_query's WASM module (idempotent). */
export function initSqlAnalysis(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true;
  });
  return loading;
}

/** Thrown when analyzeQuery is called before initSqlAnalysis() has resolved. */
export class SqlAnalysisNotReadyError extends Error {
  constructor() {
    super('SQL analysis used before initSqlAnalysis() resolved');
    this.name = 'SqlAnalysisNotReadyError';
  }
}

export function isUnparseable(r: QueryAnalysis | UnparseableQuery): r is UnparseableQuery {
  return 'error' in r;
}

interface RawStmt {
  stmt?: unknown;
  stmt_location?: number;
  stmt_len?: number;
}

/** Maps libpg_query's UTF-8 byte offsets to string indexes (identity for ASCII text). */
function offsetMapper(text: string): (byteOffset: number) => number {
  if (Buffer.byteLength(text, 'utf8') === text.length) return (b) => b;
  const bytes = Buffer.from(text, 'utf8');
  return (b) => bytes.toString('utf8', 0, b).length;
}

function unparseable(err: unknown): UnparseableQuery {
  const details = isObject(err) && isObject(err.sqlDetails) ? err.sqlDetails : undefined;
  const message = typeof details?.message === 'string' ? details.message : err instanceof Error ? err.message : String(err);
  const cursor = details?.cursorPosition;
  // libpg_query reports PostgreSQL's 1-based character position minus one.
  return typeof cursor === 'number' && cursor >= 0 ? { error: message, position: cursor + 1 } : { error: message };
}

/**
 * Analyze a query string (one or more statements). Each statement's `text` is its slice of
 * `text`, from its first token to before its `;`, trailing whitespace trimmed.
 */
export function analyzeQuery(text: string, ctx: AnalysisContext): QueryAnalysis | UnparseableQuery {
  if (!ready) throw new SqlAnalysisNotReadyError();
  let parserText = text;
  if (ctx.standardConformingStrings === false && text.includes('\\')) {
    // libpg_query always lexes with standard_conforming_strings on; make its tokens ours.
    const rewritten = toStandardStrings(text);
    if (rewritten === null) {
      return { error: 'cannot follow string literals with standard_conforming_strings off (unterminated or unusual quoting)' };
    }
    parserText = rewritten;
  }
  if (trimSqlEnd(text, 0, text.length) === 0) return { statements: [] }; // libpg_query rejects ''
  let tree: { stmts?: unknown };
  try {
    tree = parseSync(parserText) as { stmts?: unknown };
  } catch (err) {
    return unparseable(err);
  }
  const toIndex = offsetMapper(text);
  const statements = [];
  for (const raw of list(tree.stmts)) {
    const r = (isObject(raw) ? raw : {}) as RawStmt;
    const startByte = r.stmt_location ?? 0;
    const start = toIndex(startByte);
    const end = r.stmt_len === undefined || r.stmt_len === 0 ? text.length : toIndex(startByte + r.stmt_len);
    try {
      statements.push(statementFacts(r.stmt, ctx, text.slice(start, trimSqlEnd(text, start, end))));
    } catch (err) {
      // A parse tree the walk cannot handle (a bug, or nesting deep enough to exhaust the stack):
      // fail closed, as for a statement the parser rejects.
      return { error: `statement analysis failed: ${err instanceof Error ? err.message : String(err)}`, position: start + 1 };
    }
  }
  return { statements };
}
