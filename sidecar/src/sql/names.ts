/**
 * Name resolution against the session's search_path and the catalog snapshot: which schema an
 * unqualified relation lives in, and whether a function is known not to modify anything.
 */
import { isReadOnlyBuiltin, PG_CATALOG_RELATIONS } from './builtins.js';
import { type CatalogSnapshot, catalogRelation } from './catalog.js';
import type { RangeVar } from './ast.js';

/** What the analysis of a statement needs to know about the session and the database. */
export interface AnalysisContext {
  /** The session's search_path with `"$user"` resolved, e.g. `['public']`. */
  searchPath: string[];
  catalog?: CatalogSnapshot;
  /** The session's standard_conforming_strings; on when absent (the default since 9.1). */
  standardConformingStrings?: boolean;
}

/** The search path PostgreSQL uses: pg_catalog first unless the setting places it. */
function effectiveSearchPath(ctx: AnalysisContext): readonly string[] {
  const path = ctx.searchPath;
  return path.includes('pg_catalog') ? path : ['pg_catalog', ...path];
}

/**
 * `schema.name` of a relation. Unqualified: the first schema of the search path whose catalog
 * entry has it; without a catalog, pg_catalog for well-known system relations (when pg_catalog is
 * searched first), else the first schema of the search_path.
 */
export function qualifyRelation(rv: RangeVar, ctx: AnalysisContext): string {
  const name = rv.relname ?? '';
  if (rv.schemaname !== undefined && rv.schemaname !== '') return `${rv.schemaname}.${name}`;
  const catalog = ctx.catalog;
  const path = effectiveSearchPath(ctx);
  if (catalog !== undefined) {
    for (const schema of path) if (catalogRelation(catalog, schema, name) !== undefined) return `${schema}.${name}`;
  } else if (PG_CATALOG_RELATIONS.has(name) && path[0] === 'pg_catalog') {
    return `pg_catalog.${name}`;
  }
  return `${ctx.searchPath.find((s) => s !== 'pg_catalog') ?? ctx.searchPath[0] ?? 'public'}.${name}`;
}

/**
 * Is the function `parts` (its possibly qualified name) known not to modify anything? Built-ins
 * from the static list, or what the catalog snapshot says (catalogReadOnly). Unqualified names
 * resolve like PostgreSQL's: the first schema of the path that has the name decides; without a
 * catalog a schema searched before pg_catalog might shadow a built-in, so only pg_catalog-first
 * paths trust built-in names.
 */
export function isReadOnlyFunction(parts: readonly string[], ctx: AnalysisContext): boolean {
  const lower = parts.map((p) => p.toLowerCase());
  const name = lower[lower.length - 1] ?? '';
  const catalog = ctx.catalog;
  if (lower.length >= 2) {
    const schema = lower[lower.length - 2] ?? '';
    if (schema === 'pg_catalog' && isReadOnlyBuiltin(name)) return true;
    return catalogReadOnly(catalog, schema, name);
  }
  for (const schema of effectiveSearchPath(ctx)) {
    if (schema === 'pg_catalog') {
      if (isReadOnlyBuiltin(name)) return true;
      if (catalog === undefined) return false;
    } else if (catalog === undefined) return false;
    if (Object.hasOwn(catalog.functions, `${schema}.${name}`)) return catalogReadOnly(catalog, schema, name);
  }
  return false;
}

/**
 * The catalog's word on a function: stable or immutable (across all its overloads), and either
 * built in (pg_catalog) or written in SQL or PL/pgSQL, whose executors refuse data changes in
 * non-volatile functions. C functions of extensions are not trusted whatever they declare.
 */
function catalogReadOnly(catalog: CatalogSnapshot | undefined, schema: string, name: string): boolean {
  const f = catalog?.functions[`${schema}.${name}`];
  if (f === undefined || f.volatility === 'v') return false;
  if (schema === 'pg_catalog') return true;
  return f.languages.length > 0 && f.languages.every((l) => l === 'sql' || l === 'plpgsql');
}

/**
 * The schema a called function resolves to, as `functions` in StatementFacts spells it (`name` or
 * `schema.name`): the first schema of the path whose catalog entry has the name. Without a
 * catalog (or for names it lacks), `pg_catalog` when the name is a known built-in, else undefined.
 */
export function functionSchema(display: string, searchPath: readonly string[], catalog: CatalogSnapshot | undefined): string | undefined {
  const dot = display.lastIndexOf('.');
  if (dot > 0) return display.slice(0, dot);
  const name = display;
  const path = searchPath.includes('pg_catalog') ? searchPath : ['pg_catalog', ...searchPath];
  if (catalog !== undefined) {
    for (const schema of path) if (Object.hasOwn(catalog.functions, `${schema}.${name}`)) return schema;
  }
  return isReadOnlyBuiltin(name) ? 'pg_catalog' : undefined;
}
