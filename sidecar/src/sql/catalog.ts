/**
 * What the analyzer may know about the database: relations with their ordered columns, view
 * definitions, and function volatility. The session builds a snapshot by running CATALOG_QUERY
 * upstream and handing its single JSON value to parseCatalogSnapshot; this module does no I/O.
 * Without a snapshot the analyzer still works: `*` stays unexpanded and is marked opaque.
 */

/** One column of a relation. */
export interface CatalogColumn {
  name: string;
  /** format_type() of the column, e.g. `text`, `character varying(80)`, `integer[]`. */
  type: string;
  /** pg_attribute.attnum: what RowDescription reports as the column attribute number. */
  attnum?: number;
}

/** pg_class.relkind, spelled out. */
export type RelationKind = 'table' | 'partitioned table' | 'view' | 'materialized view' | 'foreign table';

export interface CatalogRelation {
  kind: RelationKind;
  /** pg_class.oid: what RowDescription reports as the table OID of a result column. */
  oid?: number;
  /** Ordered as `SELECT *` returns them. */
  columns: CatalogColumn[];
  /**
   * For views and materialized views: pg_get_viewdef(), whose unqualified names resolve with the
   * snapshot's searchPath. The analyzer parses it to trace view columns to base columns; without
   * it a view's columns are their own (opaque) sources.
   */
  definition?: string;
}

/** Volatility across every overload of one function name (the most volatile wins). */
export interface CatalogFunction {
  /** pg_proc.provolatile: `i` immutable, `s` stable, `v` volatile. */
  volatility: 'i' | 's' | 'v';
  /** pg_language.lanname of the overloads: `internal`, `sql`, `plpgsql`, `c`, ... */
  languages: string[];
  /**
   * The body (prosrc) of a user-defined `LANGUAGE sql` function with a single overload: the
   * analyzer traces its result to the columns it reads. Absent for everything else.
   */
  body?: string;
}

export interface CatalogSnapshot {
  /** current_schemas(false) when the snapshot was taken: resolves names in view definitions. */
  searchPath: string[];
  /** schema -> relation name -> relation. */
  relations: Record<string, Record<string, CatalogRelation>>;
  /** `schema.name` -> function. */
  functions: Record<string, CatalogFunction>;
}

/**
 * One round trip, one row, one json column. Relations of every kind `SELECT` can name (tables,
 * partitioned tables, views, materialized views, foreign tables) outside pg_toast and temporary
 * schemas; functions grouped by schema and name. The JSON is a few hundred kilobytes on a fresh
 * database (pg_catalog is most of it).
 */
export const CATALOG_QUERY = `SELECT json_build_object(
  'searchPath', to_json(current_schemas(false)),
  'relations', (
    SELECT coalesce(json_object_agg(s.nspname, s.rels), '{}'::json)
    FROM (
      SELECT n.nspname, json_object_agg(c.relname, json_build_object(
        'kind', c.relkind,
        'oid', c.oid::bigint,
        'columns', (
          SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'attnum', a.attnum) ORDER BY a.attnum), '[]'::json)
          FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
        'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END)) AS rels
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
      GROUP BY n.nspname) s),
  'functions', (
    SELECT coalesce(json_object_agg(f.name, json_build_object('volatility', f.volatility, 'languages', f.languages, 'body', f.body)), '{}'::json)
    FROM (
      SELECT n.nspname || '.' || p.proname AS name,
             max(p.provolatile::text) AS volatility,
             json_agg(DISTINCT l.lanname) AS languages,
             CASE WHEN count(*) = 1 AND min(l.lanname) = 'sql' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  THEN nullif(min(p.prosrc), '') END AS body
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      GROUP BY n.nspname, p.proname) f)
)::text AS catalog`;

const RELKINDS: Record<string, RelationKind> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
};

/** Thrown by parseCatalogSnapshot when the JSON does not have the shape CATALOG_QUERY produces. */
export class CatalogFormatError extends Error {
  constructor(message: string) {
    super(`catalog snapshot: ${message}`);
    this.name = 'CatalogFormatError';
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function stringArray(x: unknown, what: string): string[] {
  if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw new CatalogFormatError(`${what} is not a list of strings`);
  return x as string[];
}

/** Validate and convert CATALOG_QUERY's JSON (text or already parsed) into a snapshot. */
export function parseCatalogSnapshot(json: string | unknown): CatalogSnapshot {
  const root: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (!isRecord(root)) throw new CatalogFormatError('not an object');
  const searchPath = stringArray(root.searchPath ?? [], 'searchPath');
  const relations: CatalogSnapshot['relations'] = {};
  const rels = root.relations ?? {};
  if (!isRecord(rels)) throw new CatalogFormatError('relations is not an object');
  for (const [schema, byName] of Object.entries(rels)) {
    if (!isRecord(byName)) throw new CatalogFormatError(`relations.${schema} is not an object`);
    const out: Record<string, CatalogRelation> = {};
    for (const [name, rel] of Object.entries(byName)) {
      if (!isRecord(rel)) throw new CatalogFormatError(`relation ${schema}.${name} is not an object`);
      const kind = RELKINDS[String(rel.kind)] ?? (Object.values(RELKINDS).includes(rel.kind as RelationKind) ? (rel.kind as RelationKind) : undefined);
      if (kind === undefined) throw new CatalogFormatError(`relation ${schema}.${name} has kind ${String(rel.kind)}`);
      if (!Array.isArray(rel.columns)) throw new CatalogFormatError(`relation ${schema}.${name} has no columns list`);
      const columns = rel.columns.map((c): CatalogColumn => {
        if (!isRecord(c) || typeof c.name !== 'string') throw new CatalogFormatError(`relation ${schema}.${name} has a malformed column`);
        const column: CatalogColumn = { name: c.name, type: typeof c.type === 'string' ? c.type : 'unknown' };
        if (typeof c.attnum === 'number') column.attnum = c.attnum;
        return column;
      });
      const relation: CatalogRelation = { kind, columns };
      if (typeof rel.oid === 'number' || (typeof rel.oid === 'string' && /^\d+$/.test(rel.oid))) relation.oid = Number(rel.oid);
      if (typeof rel.definition === 'string') relation.definition = rel.definition;
      out[name] = relation;
    }
    relations[schema] = out;
  }
  const functions: CatalogSnapshot['functions'] = {};
  const funcs = root.functions ?? {};
  if (!isRecord(funcs)) throw new CatalogFormatError('functions is not an object');
  for (const [name, f] of Object.entries(funcs)) {
    if (!isRecord(f) || (f.volatility !== 'i' && f.volatility !== 's' && f.volatility !== 'v')) {
      throw new CatalogFormatError(`function ${name} is malformed`);
    }
    functions[name] = { volatility: f.volatility, languages: stringArray(f.languages ?? [], `function ${name} languages`) };
    if (typeof f.body === 'string') functions[name].body = f.body;
  }
  return { searchPath, relations, functions };
}

/** The relation `schema.name`, if the snapshot has it. */
export function catalogRelation(catalog: CatalogSnapshot | undefined, schema: string, name: string): CatalogRelation | undefined {
  if (catalog === undefined) return undefined;
  const bySchema = catalog.relations[schema];
  return bySchema === undefined ? undefined : Object.hasOwn(bySchema, name) ? bySchema[name] : undefined;
}

/**
 * The source column of a RowDescription field (table OID + attribute number, which undo aliases),
 * or undefined when the field is not a plain table column or the snapshot does not know it.
 * Builds an index once per snapshot.
 */
export function columnByOid(
  catalog: CatalogSnapshot,
  tableOid: number,
  attnum: number,
): { table: string; column: CatalogColumn; relation: CatalogRelation } | undefined {
  let index = oidIndexes.get(catalog);
  if (index === undefined) {
    index = new Map();
    for (const [schema, byName] of Object.entries(catalog.relations)) {
      for (const [name, relation] of Object.entries(byName)) if (relation.oid !== undefined) index.set(relation.oid, { table: `${schema}.${name}`, relation });
    }
    oidIndexes.set(catalog, index);
  }
  const hit = index.get(tableOid);
  const column = hit?.relation.columns.find((c) => c.attnum === attnum);
  return hit === undefined || column === undefined ? undefined : { table: hit.table, column, relation: hit.relation };
}

const oidIndexes = new WeakMap<CatalogSnapshot, Map<number, { table: string; relation: CatalogRelation }>>();
