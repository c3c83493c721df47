/**
 * Narrow views of libpg_query's JSON parse tree (PostgreSQL 18 grammar): only the node shapes and
 * fields this module reads. The tree is untyped JSON; a node is an object with one key, its type
 * (`{ "SelectStmt": { ... } }`), while some fields hold a struct directly (`relation` is a bare
 * RangeVar, `larg` a bare SelectStmt). Field names follow PostgreSQL's parsenodes.h.
 */

/** An object from the JSON tree. */
export type Fields = Record<string, unknown>;

export function isObject(x: unknown): x is Fields {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A wrapped node's type and fields, or undefined when `x` is not a wrapped node. */
export function unwrap(x: unknown): { tag: string; fields: Fields } | undefined {
  if (!isObject(x)) return undefined;
  for (const tag in x) {
    const fields = x[tag];
    return isObject(fields) ? { tag, fields } : undefined;
  }
  return undefined;
}

/** True for `{ "TypeName": {...} }`-shaped objects (one key, starting with an upper-case letter). */
export function isWrappedNode(x: Fields): boolean {
  let count = 0;
  let first = '';
  for (const k in x) {
    if (count++ === 0) first = k;
    else return false;
  }
  const c = first.charCodeAt(0);
  return count === 1 && c >= 65 && c <= 90;
}

/** The fields of `x` when it is a node of type `tag`; the cast trusts libpg_query's output. */
export function nodeOf<T>(x: unknown, tag: string): T | undefined {
  if (!isObject(x)) return undefined;
  const fields = x[tag];
  return isObject(fields) ? (fields as T) : undefined;
}

/** A list field (absent means empty). */
export function list(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}

/** The value of a String node (`{ String: { sval } }`). */
export function stringValue(x: unknown): string | undefined {
  const s = nodeOf<{ sval?: string }>(x, 'String');
  return s === undefined ? undefined : (s.sval ?? '');
}

/** The strings of a list of String nodes (a qualified name), skipping anything else. */
export function names(x: unknown): string[] {
  const out: string[] = [];
  for (const item of list(x)) {
    const s = stringValue(item);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** The items of a `{ List: { items } }` node. */
export function listItems(x: unknown): unknown[] {
  return list(nodeOf<{ items?: unknown[] }>(x, 'List')?.items);
}

// ---- Node shapes (fields read by the analyzer) ----

export interface Alias {
  aliasname?: string;
  colnames?: unknown[];
}

export interface RangeVar {
  catalogname?: string;
  schemaname?: string;
  relname?: string;
  inh?: boolean;
  alias?: Alias;
}

export interface ResTarget {
  name?: string;
  indirection?: unknown[];
  val?: unknown;
}

export interface WithClause {
  ctes?: unknown[];
  recursive?: boolean;
}

export interface CommonTableExpr {
  ctename?: string;
  aliascolnames?: unknown[];
  ctequery?: unknown;
}

export interface IntoClause {
  rel?: RangeVar;
  colNames?: unknown[];
  skipData?: boolean;
}

export interface SelectStmt {
  distinctClause?: unknown[];
  intoClause?: IntoClause;
  targetList?: unknown[];
  fromClause?: unknown[];
  whereClause?: unknown;
  groupClause?: unknown[];
  havingClause?: unknown;
  windowClause?: unknown[];
  valuesLists?: unknown[];
  sortClause?: unknown[];
  limitOffset?: unknown;
  limitCount?: unknown;
  lockingClause?: unknown[];
  withClause?: WithClause;
  op?: string;
  larg?: SelectStmt;
  rarg?: SelectStmt;
}

export interface ReturningClause {
  options?: unknown[];
  exprs?: unknown[];
}

export interface OnConflictClause {
  action?: string;
  infer?: { indexElems?: unknown[]; whereClause?: unknown };
  targetList?: unknown[];
  whereClause?: unknown;
}

export interface InsertStmt {
  relation?: RangeVar;
  cols?: unknown[];
  selectStmt?: unknown;
  onConflictClause?: OnConflictClause;
  returningClause?: ReturningClause;
  withClause?: WithClause;
}

export interface UpdateStmt {
  relation?: RangeVar;
  targetList?: unknown[];
  whereClause?: unknown;
  fromClause?: unknown[];
  returningClause?: ReturningClause;
  withClause?: WithClause;
}

export interface DeleteStmt {
  relation?: RangeVar;
  usingClause?: unknown[];
  whereClause?: unknown;
  returningClause?: ReturningClause;
  withClause?: WithClause;
}

export interface MergeStmt {
  relation?: RangeVar;
  sourceRelation?: unknown;
  joinCondition?: unknown;
  mergeWhenClauses?: unknown[];
  returningClause?: ReturningClause;
  withClause?: WithClause;
}

export interface MergeWhenClause {
  matchKind?: string;
  commandType?: string;
  condition?: unknown;
  targetList?: unknown[];
  values?: unknown[];
}

export interface JoinExpr {
  jointype?: string;
  isNatural?: boolean;
  larg?: unknown;
  rarg?: unknown;
  usingClause?: unknown[];
  join_using_alias?: Alias;
  quals?: unknown;
  alias?: Alias;
}

export interface RangeSubselect {
  lateral?: boolean;
  subquery?: unknown;
  alias?: Alias;
}

export interface RangeFunction {
  lateral?: boolean;
  ordinality?: boolean;
  is_rowsfrom?: boolean;
  functions?: unknown[];
  alias?: Alias;
  coldeflist?: unknown[];
}

export interface ColumnDef {
  colname?: string;
}

export interface FuncCall {
  funcname?: unknown[];
  args?: unknown[];
  agg_order?: unknown[];
  agg_filter?: unknown;
  over?: WindowDef;
  agg_star?: boolean;
  funcformat?: string;
}

export interface WindowDef {
  name?: string;
  refname?: string;
  partitionClause?: unknown[];
  orderClause?: unknown[];
}

export interface SortBy {
  node?: unknown;
}

export interface SubLink {
  subLinkType?: string;
  testexpr?: unknown;
  subselect?: unknown;
}

export interface TypeCast {
  arg?: unknown;
  typeName?: { names?: unknown[] };
}

export interface A_Indirection {
  arg?: unknown;
  indirection?: unknown[];
}

export interface A_Expr {
  kind?: string;
  name?: unknown[];
  lexpr?: unknown;
  rexpr?: unknown;
}

export interface DefElem {
  defname?: string;
  arg?: unknown;
}
