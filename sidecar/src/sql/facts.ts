/**
 * What the sidecar knows about one SQL statement: the contract between SQL analysis (which
 * produces it from libpg_query's AST), the policy engine (which exposes it to CEL as `query.*`,
 * SPEC §4) and masking (which uses the output-column lineage). Pure data.
 */

/** SPEC §4 `query.kind`. */
export type StatementKind = 'read' | 'write' | 'ddl' | 'dcl' | 'transaction' | 'session' | 'utility' | 'unknown';

/** A column of a table: schema-qualified table plus column name. */
export interface ColumnRef {
  /** `schema.table`, e.g. `public.customers`. Unqualified names are resolved with the search_path. */
  table: string;
  column: string;
}

/** Where one output column of a statement's result comes from. */
export interface OutputColumn {
  /** The name the client sees (alias, or the column/function name PostgreSQL would choose). */
  name: string;
  /** Every source column the value is computed from (empty for constants and parameters). */
  sources: ColumnRef[];
  /** True when the value is an expression over its sources rather than one source column as is. */
  derived: boolean;
  /**
   * True when the sources could not be fully determined (a function whose body is unknown, a
   * whole-row reference to something unresolved, a set-returning function of unknown shape...).
   * Masking must treat such a column as possibly carrying any column of `query.readTables`.
   */
  opaque: boolean;
}

export interface StatementFacts {
  /** PostgreSQL command tag: `SELECT`, `INSERT`, `DROP TABLE`, `TRUNCATE TABLE`, `COPY`, `DO`, ... */
  command: string;
  kind: StatementKind;
  /** Every table referenced, schema-qualified, sorted, unique. */
  tables: string[];
  readTables: string[];
  writeTables: string[];
  /** `schema.table.column` referenced anywhere (select list, WHERE, JOIN, GROUP BY, ...). */
  columns: string[];
  /** True when every UPDATE and DELETE anywhere in the statement (CTEs, nested) has a WHERE. */
  hasWhere: boolean;
  /** Functions called, schema-qualified when written so (`pg_catalog.now` / `now`), lower-case. */
  functions: string[];
  /** The statement text as sent (one statement of a multi-statement string). */
  text: string;
  /**
   * True when the statement's effect cannot be known from its text: DO, CALL, EXECUTE of a prepared
   * statement, functions not known to be read-only, EXPLAIN ANALYZE of a write... Such a statement
   * is never a harmless read (its kind is not `read`).
   */
  effectUnknown: boolean;
  /** Output columns in result order, for statements that return rows (SELECT, RETURNING, ...). */
  output: OutputColumn[];
  /**
   * Columns used in predicates or ordering (WHERE, JOIN ON, GROUP BY, ORDER BY, HAVING, DISTINCT ON,
   * window PARTITION/ORDER): predicate probing on masked columns is decided from these.
   */
  predicateColumns: ColumnRef[];
  /**
   * DECLARE, FETCH, MOVE, CLOSE: the cursor's name, so the session can mask FETCH results with the
   * DECLARE's output lineage (absent for CLOSE ALL).
   */
  cursorName?: string;
  /**
   * PREPARE, EXECUTE, DEALLOCATE: the prepared statement's name, so the session can judge and mask
   * EXECUTE with the PREPARE's facts (absent for DEALLOCATE ALL).
   */
  preparedName?: string;
}

/** The analysis of a whole query string: one entry per statement, in order. */
export interface QueryAnalysis {
  statements: StatementFacts[];
}

/** The statement could not be parsed: SPEC §6 `dbward: statement not understood` (42601). */
export interface UnparseableQuery {
  error: string;
  /** 1-based character position of the error in the query string, when the parser gave one. */
  position?: number;
}
