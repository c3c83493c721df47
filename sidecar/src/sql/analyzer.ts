/**
 * The walk over one statement's parse tree: queries (SELECT, VALUES, set operations, CTEs,
 * INSERT/UPDATE/DELETE/MERGE with RETURNING) and expressions. It accumulates what the statement
 * touches (tables read and written, columns, functions, predicate columns, UPDATE/DELETE without
 * WHERE, unknown effects) and returns each query's output lineage.
 *
 * Facts never depend on literal values (the cache in cache.ts relies on it): where PostgreSQL
 * gives a literal meaning (`ORDER BY 2` names the second output column), the analyzer assumes
 * every possible value.
 */
import { parseSync } from 'libpg-query';
import {
  type A_Expr, type A_Indirection, type Alias, type ColumnDef, type CommonTableExpr, type DeleteStmt, type Fields,
  type FuncCall, type InsertStmt, type JoinExpr, type MergeStmt, type MergeWhenClause, type RangeFunction,
  type RangeSubselect, type RangeVar, type ResTarget, type ReturningClause, type SelectStmt, type SortBy,
  type SubLink, type TypeCast, type UpdateStmt, type WindowDef, type WithClause,
  isObject, isWrappedNode, list, listItems, names, nodeOf, stringValue, unwrap,
} from './ast.js';
import { bareName, figureColname } from './colname.js';
import { BUILTIN_OPERATORS, SET_RETURNING_COLUMNS } from './builtins.js';
import { type CatalogSnapshot, catalogRelation } from './catalog.js';
import type { ColumnRef } from './facts.js';
import { type AnalysisContext, functionSchema, isReadOnlyFunction, qualifyRelation } from './names.js';
import {
  type Col, type Lineage, type Relation, type Scope, type Shape, CONSTANT, EMPTY_SHAPE, columnOf, combine,
  expandStar, findRelation, named, newScope, openTable, renameShape, resolve, resolveName, sourceKey, wholeRow,
} from './scope.js';

export type { AnalysisContext } from './names.js';

/** A view's definition, analyzed once per catalog snapshot. */
interface ViewLineage {
  shape: Shape;
  reads: string[];
  functions: string[];
  effectUnknown: boolean;
  /** SQL function bodies: columns their predicates use (a function can probe a masked column). */
  predicates?: ColumnRef[];
}

const viewCache = new WeakMap<CatalogSnapshot, Map<string, ViewLineage | null>>();
/** SQL function bodies, analyzed once per catalog snapshot (same shape as a view's lineage). */
const functionCache = new WeakMap<CatalogSnapshot, Map<string, ViewLineage | null>>();

/** Sources without repeats, in first-seen order. */
function uniqueSources(sources: readonly ColumnRef[]): ColumnRef[] {
  const seen = new Map<string, ColumnRef>();
  for (const s of sources) if (!seen.has(sourceKey(s))) seen.set(sourceKey(s), s);
  return [...seen.values()];
}

/** Lower-cased, dot-joined function name (PostgreSQL folds unquoted names already). */
function functionName(parts: readonly string[]): string {
  return parts.map((p) => p.toLowerCase()).join('.');
}

/** Accumulates the facts of one statement while walking it. */
export class Analyzer {
  readonly tables = new Set<string>();
  readonly reads = new Set<string>();
  readonly writes = new Set<string>();
  readonly columns = new Set<string>();
  readonly functions = new Set<string>();
  readonly predicate = new Map<string, ColumnRef>();
  /** False once an UPDATE or DELETE without WHERE (or an unbounded MERGE action) is seen. */
  hasWhere = true;
  /** A function or operator of unknown effect will run. */
  effectUnknown = false;
  /** Rows will be inserted, updated or deleted (DML, data-modifying CTE, SELECT INTO). */
  modifies = false;
  /** > 0 inside a definition (view, rule, function body): referenced, not executed. */
  private definition = 0;
  private readonly viewsInProgress: Set<string>;

  constructor(
    private readonly ctx: AnalysisContext,
    viewsInProgress?: Set<string>,
  ) {
    this.viewsInProgress = viewsInProgress ?? new Set();
  }

  /** The context this analyzer resolves names with. */
  get context(): AnalysisContext {
    return this.ctx;
  }

  /** Walk `fn` as a definition: tables count as referenced only, nothing counts as executed. */
  inDefinition<T>(fn: () => T): T {
    this.definition++;
    try {
      return fn();
    } finally {
      this.definition--;
    }
  }

  // ---- names ----

  /** `schema.name` of a relation, resolving an unqualified name with the search_path. */
  qualify(rv: RangeVar): string {
    return qualifyRelation(rv, this.ctx);
  }

  // ---- recording ----

  /** Record a relation the statement reads (or only references, inside a definition). */
  read(table: string): void {
    this.tables.add(table);
    if (this.definition === 0) this.reads.add(table);
  }

  /** Record a relation the statement writes (or only references, inside a definition). */
  write(table: string, modifiesRows = true): void {
    this.tables.add(table);
    if (this.definition === 0) {
      this.writes.add(table);
      if (modifiesRows) this.modifies = true;
    }
  }

  /** Record a function call; unknown functions make the effect unknown. */
  callFunction(parts: readonly string[], display: string): void {
    this.functions.add(display);
    if (this.definition === 0 && !isReadOnlyFunction(parts, this.ctx)) this.effectUnknown = true;
  }

  /** An UPDATE or DELETE without WHERE ran (not inside a definition). */
  unbounded(): void {
    if (this.definition === 0) this.hasWhere = false;
  }

  private record(l: Lineage, pred: boolean): void {
    for (const s of l.sources) {
      this.columns.add(sourceKey(s));
      if (pred) this.predicate.set(sourceKey(s), s);
    }
  }

  /** Record a column named directly (INSERT column lists, UPDATE SET targets, VACUUM columns...). */
  column(table: string, column: string): void {
    this.columns.add(`${table}.${column}`);
  }

  // ---- queries ----

  /** Walk any plannable statement; returns its output (RETURNING for DML). */
  query(node: unknown, parent: Scope | undefined, pred: boolean): Shape {
    const u = unwrap(node);
    if (u === undefined) return EMPTY_SHAPE;
    switch (u.tag) {
      case 'SelectStmt':
        return this.select(u.fields as SelectStmt, parent, pred);
      case 'InsertStmt':
        return this.insert(u.fields as InsertStmt, parent, pred);
      case 'UpdateStmt':
        return this.update(u.fields as UpdateStmt, parent, pred);
      case 'DeleteStmt':
        return this.delete(u.fields as DeleteStmt, parent, pred);
      case 'MergeStmt':
        return this.merge(u.fields as MergeStmt, parent, pred);
      default:
        this.generic(u.fields, parent ?? newScope(undefined), pred);
        return EMPTY_SHAPE;
    }
  }

  private withClause(w: WithClause | undefined, scope: Scope, pred: boolean): void {
    if (w === undefined) return;
    for (const item of list(w.ctes)) {
      const cte = nodeOf<CommonTableExpr>(item, 'CommonTableExpr');
      if (cte === undefined) continue;
      const name = cte.ctename ?? '';
      const colnames = names(cte.aliascolnames);
      const body = nodeOf<SelectStmt>(cte.ctequery, 'SelectStmt');
      if (w.recursive === true && body !== undefined && body.op !== undefined && body.op !== 'SETOP_NONE' && body.larg !== undefined) {
        // Seed with the non-recursive term, then widen until the sources stop growing.
        let shape = renameShape(this.select(body.larg, scope, pred), colnames);
        for (let round = 0; round < 4; round++) {
          scope.ctes.set(name, shape);
          const next = renameShape(this.select(body, scope, pred), colnames);
          const size = (s: Shape): number => s.cols.reduce((n, c) => n + c.sources.length, 0);
          const stable = size(next) === size(shape);
          shape = next;
          if (stable) break;
        }
        scope.ctes.set(name, shape);
      } else {
        scope.ctes.set(name, renameShape(this.query(cte.ctequery, scope, pred), colnames));
      }
    }
  }

  select(s: SelectStmt, parent: Scope | undefined, pred: boolean): Shape {
    const scope = newScope(parent);
    this.withClause(s.withClause, scope, pred);
    let shape: Shape;
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      shape = setOperation(this.select(s.larg ?? {}, scope, pred), this.select(s.rarg ?? {}, scope, pred));
    } else if (s.valuesLists !== undefined) {
      shape = this.values(s.valuesLists, scope, pred);
    } else {
      for (const item of list(s.fromClause)) this.fromItem(item, scope, pred);
      if (s.whereClause !== undefined) this.expr(s.whereClause, scope, true);
      shape = this.targets(list(s.targetList), scope, pred);
      scope.outputs = shape.cols;
      for (const g of list(s.groupClause)) this.groupItem(g, scope, shape.cols);
      if (s.havingClause !== undefined) this.expr(s.havingClause, scope, true);
      for (const w of list(s.windowClause)) this.windowDef(nodeOf<WindowDef>(w, 'WindowDef'), scope);
      for (const d of list(s.distinctClause)) this.sortKey(d, scope, shape.cols);
    }
    scope.outputs = shape.cols;
    for (const item of list(s.sortClause)) this.sortKey(nodeOf<SortBy>(item, 'SortBy')?.node, scope, shape.cols);
    if (s.limitCount !== undefined) this.expr(s.limitCount, scope, pred);
    if (s.limitOffset !== undefined) this.expr(s.limitOffset, scope, pred);
    const into = s.intoClause?.rel;
    if (into !== undefined) this.write(this.qualify(into));
    return shape;
  }

  private values(rows: unknown[], scope: Scope, pred: boolean): Shape {
    const columns: Lineage[][] = [];
    for (const row of rows) {
      listItems(row).forEach((e, i) => {
        (columns[i] ??= []).push(this.expr(e, scope, pred));
      });
    }
    return { cols: columns.map((parts, i) => named(`column${i + 1}`, combine(parts))), open: [] };
  }

  /** The select list (or RETURNING list): output columns, `*` expanded where the shape is known. */
  private targets(items: unknown[], scope: Scope, pred: boolean, starScope: Scope = scope): Shape {
    const cols: Col[] = [];
    const open: Shape['open'] = [];
    for (const item of items) {
      const rt = nodeOf<ResTarget>(item, 'ResTarget');
      if (rt === undefined) continue;
      const star = this.starTarget(rt.val, scope, starScope);
      if (star !== undefined) {
        for (const c of star.cols) {
          this.record(c, pred);
          cols.push(c);
        }
        open.push(...star.open);
        continue;
      }
      const l = this.expr(rt.val, scope, pred);
      cols.push(named(rt.name ?? figureColname(rt.val), l));
    }
    return { cols, open };
  }

  /** `*` or `t.*` in a select list: the columns it stands for. */
  private starTarget(val: unknown, scope: Scope, starScope: Scope): Shape | undefined {
    const cr = nodeOf<{ fields?: unknown[] }>(val, 'ColumnRef');
    if (cr === undefined) return undefined;
    const fields = list(cr.fields);
    if (nodeOf(fields[fields.length - 1], 'A_Star') === undefined) return undefined;
    if (fields.length === 1) {
      const cols = expandStar(starScope);
      return { cols, open: starScope.rels.flatMap((r) => (r.qualifiedOnly ? [] : r.shape.open)) };
    }
    const rel = findRelation(scope, names(fields.slice(0, -1)));
    return rel === undefined ? { cols: [], open: [] } : { cols: rel.shape.cols, open: rel.shape.open };
  }

  /** A GROUP BY item: input columns first, then output names; `GROUP BY 2` may be any output. */
  private groupItem(node: unknown, scope: Scope, outputs: readonly Col[]): void {
    const gs = nodeOf<{ content?: unknown[] }>(node, 'GroupingSet');
    if (gs !== undefined) {
      for (const c of list(gs.content)) this.groupItem(c, scope, outputs);
      return;
    }
    if (this.positional(node, outputs)) return;
    const name = bareName(node);
    if (name !== undefined) {
      const out = outputs.find((o) => o.name === name);
      const input = resolve(scope, name);
      if (out !== undefined && (input === undefined || input.guessed === true)) {
        // An output name, unless a known input column has it (PostgreSQL prefers the input).
        this.record(out, true);
        return;
      }
    }
    this.expr(node, scope, true);
  }

  /** An ORDER BY / DISTINCT ON item: output names first, then input expressions. */
  private sortKey(node: unknown, scope: Scope, outputs: readonly Col[]): void {
    if (node === undefined || this.positional(node, outputs)) return;
    const name = bareName(node);
    if (name !== undefined) {
      const out = outputs.find((o) => o.name === name);
      if (out !== undefined) {
        this.record(out, true);
        return;
      }
    }
    this.expr(node, scope, true);
  }

  /**
   * `ORDER BY 2`: the number picks an output column. Facts must not depend on literal values, so
   * every output column counts as used.
   */
  private positional(node: unknown, outputs: readonly Col[]): boolean {
    if (nodeOf(node, 'A_Const') === undefined) return false;
    for (const o of outputs) this.record(o, true);
    return true;
  }

  private windowDef(w: WindowDef | undefined, scope: Scope): void {
    if (w === undefined) return;
    for (const p of list(w.partitionClause)) this.expr(p, scope, true);
    for (const o of list(w.orderClause)) this.expr(nodeOf<SortBy>(o, 'SortBy')?.node, scope, true);
  }

  // ---- FROM ----

  /** Add a FROM item's relations to the scope (earlier items are visible to LATERAL ones). */
  fromItem(node: unknown, scope: Scope, pred: boolean): void {
    const u = unwrap(node);
    if (u === undefined) return;
    switch (u.tag) {
      case 'RangeVar':
        scope.rels.push(this.rangeVar(u.fields as RangeVar, scope));
        return;
      case 'JoinExpr':
        this.join(u.fields as JoinExpr, scope, pred);
        return;
      case 'RangeSubselect': {
        const rs = u.fields as RangeSubselect;
        const shape = this.query(rs.subquery, scope, pred);
        scope.rels.push(aliased(shape, rs.alias, undefined));
        return;
      }
      case 'RangeFunction':
        scope.rels.push(this.rangeFunction(u.fields as RangeFunction, scope, pred));
        return;
      case 'RangeTableSample': {
        const ts = u.fields as { relation?: unknown; args?: unknown[]; repeatable?: unknown };
        this.fromItem(ts.relation, scope, pred);
        for (const a of list(ts.args)) this.expr(a, scope, pred);
        return;
      }
      default: {
        // XMLTABLE, JSON_TABLE and anything newer: columns named by their definitions, computed
        // from the document expression.
        const l = this.generic(u.fields, scope, pred);
        const cols: Col[] = [];
        for (const c of list((u.fields as { columns?: unknown[] }).columns)) {
          const def = unwrap(c)?.fields as { colname?: string; name?: string } | undefined;
          const name = def?.colname ?? def?.name;
          if (name !== undefined) cols.push(named(name, { ...l, derived: true }));
        }
        const alias = (u.fields as { alias?: Alias }).alias;
        scope.rels.push(aliased({ cols, open: cols.length === 0 ? [{ lineage: l }] : [] }, alias, undefined));
      }
    }
  }

  /** A named relation: a CTE, or a table or view (read). */
  private rangeVar(rv: RangeVar, scope: Scope): Relation {
    const name = rv.relname ?? '';
    if (rv.schemaname === undefined) {
      for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
        const cte = s.ctes.get(name);
        if (cte !== undefined) return aliased(cte, rv.alias, name);
      }
    }
    const table = this.qualify(rv);
    this.read(table);
    const rel = aliased(this.relationShape(table), rv.alias, name);
    if (rv.alias === undefined) rel.table = table;
    return rel;
  }

  /** Columns of a table or view: from the catalog (views traced to their base columns) or open. */
  relationShape(table: string): Shape {
    const dot = table.indexOf('.');
    const rel = catalogRelation(this.ctx.catalog, table.slice(0, dot), table.slice(dot + 1));
    if (rel === undefined) return openTable(table);
    const isView = rel.kind === 'view' || rel.kind === 'materialized view';
    if (isView) {
      const view = this.viewLineage(table, rel.definition);
      if (view !== undefined && view.shape.cols.length === rel.columns.length) {
        for (const t of view.reads) this.read(t);
        for (const f of view.functions) this.functions.add(f);
        if (rel.kind === 'view' && view.effectUnknown && this.definition === 0) this.effectUnknown = true;
        return { cols: rel.columns.map((c, i) => named(c.name, view.shape.cols[i] ?? CONSTANT)), open: view.shape.open };
      }
    }
    return {
      cols: rel.columns.map((c) => ({ name: c.name, sources: [{ table, column: c.name }], derived: false, opaque: isView })),
      open: [],
    };
  }

  /**
   * The analysis of a user-defined SQL function's body (the last statement: its result), merged
   * into this statement's facts: the tables it reads and the functions it calls. Undefined for
   * built-ins, other languages, or bodies that do not parse.
   */
  sqlFunctionBody(display: string): ViewLineage | undefined {
    const catalog = this.ctx.catalog;
    if (catalog === undefined) return undefined;
    const schema = functionSchema(display, this.ctx.searchPath, catalog);
    const name = display.slice(display.lastIndexOf('.') + 1);
    const key = `${schema ?? ''}.${name}`;
    const body = schema === undefined ? undefined : catalog.functions[key]?.body;
    if (body === undefined || this.viewsInProgress.has(`fn:${key}`)) return undefined;
    let cache = functionCache.get(catalog);
    if (cache === undefined) functionCache.set(catalog, (cache = new Map()));
    let result = cache.get(key);
    if (result === undefined) {
      this.viewsInProgress.add(`fn:${key}`);
      try {
        const stmts = list((parseSync(body) as { stmts?: unknown }).stmts);
        const raw = stmts[stmts.length - 1];
        const stmt = isObject(raw) ? raw.stmt : undefined;
        const searchPath = catalog.searchPath.length > 0 ? catalog.searchPath : this.ctx.searchPath;
        const inner = new Analyzer({ searchPath, catalog }, this.viewsInProgress);
        const shape = inner.query(stmt, undefined, false);
        for (const other of stmts.slice(0, -1)) inner.query(isObject(other) ? other.stmt : undefined, undefined, false);
        result = { shape, reads: [...inner.reads, ...inner.writes], functions: [...inner.functions], effectUnknown: inner.effectUnknown, predicates: [...inner.predicate.values()] };
      } catch {
        result = null;
      } finally {
        this.viewsInProgress.delete(`fn:${key}`);
      }
      cache.set(key, result);
    }
    if (result === null) return undefined;
    for (const t of result.reads) this.read(t);
    for (const fn of result.functions) this.functions.add(fn);
    for (const p of result.predicates ?? []) this.predicate.set(sourceKey(p), p);
    return result;
  }

  /** Analyze a view's definition once per catalog snapshot; undefined when unavailable. */
  private viewLineage(table: string, definition: string | undefined): ViewLineage | undefined {
    const catalog = this.ctx.catalog;
    if (catalog === undefined || definition === undefined || this.viewsInProgress.has(table)) return undefined;
    let cache = viewCache.get(catalog);
    if (cache === undefined) viewCache.set(catalog, (cache = new Map()));
    const cached = cache.get(table);
    if (cached !== undefined) return cached ?? undefined;
    this.viewsInProgress.add(table);
    let result: ViewLineage | null;
    try {
      const raw = list((parseSync(definition) as { stmts?: unknown }).stmts)[0];
      const stmt = isObject(raw) ? raw.stmt : undefined;
      const searchPath = catalog.searchPath.length > 0 ? catalog.searchPath : this.ctx.searchPath;
      const inner = new Analyzer({ searchPath, catalog }, this.viewsInProgress);
      const shape = inner.query(stmt, undefined, false);
      result = { shape, reads: [...inner.reads], functions: [...inner.functions], effectUnknown: inner.effectUnknown };
    } catch {
      result = null; // a definition the parser rejects: fall back to the view's own columns
    } finally {
      this.viewsInProgress.delete(table);
    }
    cache.set(table, result);
    return result ?? undefined;
  }

  private join(j: JoinExpr, scope: Scope, pred: boolean): void {
    const start = scope.rels.length;
    const mergedStart = scope.merged.length;
    this.fromItem(j.larg, scope, pred);
    const mid = scope.rels.length;
    this.fromItem(j.rarg, scope, pred);
    const left = scope.rels.slice(start, mid);
    const right = scope.rels.slice(mid);
    let using = names(j.usingClause);
    if (j.isNatural === true) {
      const rightNames = new Set(right.flatMap((r) => r.shape.cols.filter((c) => !c.star).map((c) => c.name)));
      using = [...new Set(left.flatMap((r) => r.shape.cols.filter((c) => !c.star && rightNames.has(c.name)).map((c) => c.name)))];
    }
    for (const name of using) {
      const parts: Lineage[] = [];
      for (const r of [...left, ...right]) {
        const c = columnOf(r, name);
        if (c !== undefined) parts.push(c);
      }
      const merged: Col = named(name, combine(parts, parts.some((p) => p.derived)));
      this.record(merged, true);
      scope.merged.push(merged);
    }
    if (j.quals !== undefined) this.expr(j.quals, scope, true);
    if (j.alias !== undefined) {
      // A join alias hides the joined relations behind one name.
      const inner = newScope(undefined);
      inner.rels = scope.rels.slice(start);
      inner.merged = scope.merged.slice(mergedStart);
      const shape: Shape = { cols: expandStar(inner), open: inner.rels.flatMap((r) => r.shape.open) };
      scope.rels.splice(start);
      scope.merged.splice(mergedStart);
      scope.rels.push(aliased(shape, j.alias, undefined));
    }
  }

  private rangeFunction(rf: RangeFunction, scope: Scope, pred: boolean): Relation {
    const cols: Col[] = [];
    const open: Shape['open'] = [];
    const alias = rf.alias?.aliasname;
    let coldefs = list(rf.coldeflist);
    for (const item of list(rf.functions)) {
      const [call, defs] = listItems(item);
      const fc = nodeOf<FuncCall>(call, 'FuncCall');
      const l = this.expr(call, scope, pred);
      if (list(defs).length > 0) coldefs = list(defs);
      const fname = names(fc?.funcname);
      const base = (fname[fname.length - 1] ?? '').toLowerCase();
      const builtin = fc !== undefined && (fname.length === 1 || fname[0] === 'pg_catalog') && SET_RETURNING_COLUMNS.has(base);
      const body = fc === undefined || builtin ? undefined : this.sqlFunctionBody(functionName(fname));
      const lineage: Lineage = { sources: l.sources, derived: true, opaque: l.opaque || (!builtin && body === undefined) };
      if (body !== undefined && coldefs.length === 0 && body.shape.open.length === 0) {
        // A SQL function in FROM: its body's columns (one column: named after the alias or the function).
        const bodyCols = body.shape.cols.map((c) => ({ ...c, derived: true, sources: uniqueSources([...c.sources, ...l.sources]), opaque: c.opaque || l.opaque }));
        if (bodyCols.length === 1) cols.push(named(alias ?? base, bodyCols[0]!));
        // Several columns: their names (OUT parameters) are not in the catalog snapshot, so any
        // column of the function carries any of the body's sources.
        else open.push({ lineage: { ...combine(bodyCols), derived: true, opaque: true } });
        continue;
      }
      if (coldefs.length > 0) {
        for (const d of coldefs) cols.push(named(nodeOf<ColumnDef>(d, 'ColumnDef')?.colname ?? '?column?', lineage));
        coldefs = [];
      } else if (builtin) {
        const known = SET_RETURNING_COLUMNS.get(base);
        if (known === null || known === undefined) cols.push(named(alias ?? base, lineage));
        else for (const n of known) cols.push(named(n, lineage));
      } else if (fc === undefined) {
        open.push({ lineage });
      } else {
        // A function of unknown shape: one column named after it, or a composite of unknown columns.
        cols.push({ ...named('*', lineage), star: true, opaque: true });
        open.push({ lineage });
      }
    }
    if (rf.ordinality === true) cols.push(named('ordinality', CONSTANT));
    const shape = renameShape({ cols, open }, names(rf.alias?.colnames));
    return alias === undefined ? { shape } : { name: alias, shape };
  }

  // ---- data-modifying statements ----

  /** The target of INSERT/UPDATE/DELETE/MERGE: written, visible by its alias or name. */
  private target(rv: RangeVar | undefined): Relation & { table: string } {
    const table = this.qualify(rv ?? {});
    this.write(table);
    const rel = aliased(this.relationShape(table), rv?.alias, rv?.relname);
    // `table` also serves RETURNING; schema.table.col references need an unaliased target.
    return { ...rel, table };
  }

  private insert(s: InsertStmt, parent: Scope | undefined, pred: boolean): Shape {
    const scope = newScope(parent);
    this.withClause(s.withClause, scope, pred);
    const target = this.target(s.relation);
    const table = this.qualify(s.relation ?? {});
    for (const c of list(s.cols)) {
      const rt = nodeOf<ResTarget>(c, 'ResTarget');
      if (rt?.name !== undefined) this.column(table, rt.name);
    }
    if (s.selectStmt !== undefined) this.query(s.selectStmt, scope, pred);
    const oc = s.onConflictClause;
    if (oc !== undefined) {
      const inner = newScope(scope);
      inner.rels.push(target, { name: 'excluded', shape: target.shape, qualifiedOnly: true });
      for (const e of list(oc.infer?.indexElems)) {
        const ie = nodeOf<{ name?: string; expr?: unknown }>(e, 'IndexElem');
        if (ie?.name !== undefined) this.column(table, ie.name);
        if (ie?.expr !== undefined) this.expr(ie.expr, inner, pred);
      }
      if (oc.infer?.whereClause !== undefined) this.expr(oc.infer.whereClause, inner, true);
      this.assignments(list(oc.targetList), table, inner, pred);
      if (oc.whereClause !== undefined) this.expr(oc.whereClause, inner, true);
    }
    scope.rels.push(target);
    return this.returning(s.returningClause, target, scope, pred);
  }

  private update(s: UpdateStmt, parent: Scope | undefined, pred: boolean): Shape {
    const scope = newScope(parent);
    this.withClause(s.withClause, scope, pred);
    const target = this.target(s.relation);
    scope.rels.push(target);
    for (const item of list(s.fromClause)) this.fromItem(item, scope, pred);
    this.assignments(list(s.targetList), this.qualify(s.relation ?? {}), scope, pred);
    if (s.whereClause === undefined) this.unbounded();
    else this.expr(s.whereClause, scope, true);
    return this.returning(s.returningClause, target, scope, pred);
  }

  private delete(s: DeleteStmt, parent: Scope | undefined, pred: boolean): Shape {
    const scope = newScope(parent);
    this.withClause(s.withClause, scope, pred);
    const target = this.target(s.relation);
    scope.rels.push(target);
    for (const item of list(s.usingClause)) this.fromItem(item, scope, pred);
    if (s.whereClause === undefined) this.unbounded();
    else this.expr(s.whereClause, scope, true);
    return this.returning(s.returningClause, target, scope, pred);
  }

  /**
   * MERGE has no WHERE; it is unbounded when an UPDATE/DELETE action can reach rows the join
   * condition does not restrict: `ON` over constants only, or WHEN NOT MATCHED BY SOURCE without
   * an AND condition (every target row without a partner).
   */
  private merge(s: MergeStmt, parent: Scope | undefined, pred: boolean): Shape {
    const scope = newScope(parent);
    this.withClause(s.withClause, scope, pred);
    const target = this.target(s.relation);
    const table = this.qualify(s.relation ?? {});
    scope.rels.push(target);
    this.fromItem(s.sourceRelation, scope, pred);
    const on = this.expr(s.joinCondition, scope, true);
    for (const item of list(s.mergeWhenClauses)) {
      const w = nodeOf<MergeWhenClause>(item, 'MergeWhenClause');
      if (w === undefined) continue;
      if (w.condition !== undefined) this.expr(w.condition, scope, true);
      const changesTarget = w.commandType === 'CMD_UPDATE' || w.commandType === 'CMD_DELETE';
      if (changesTarget && w.condition === undefined && (on.sources.length === 0 || w.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE')) {
        this.unbounded();
      }
      if (w.commandType === 'CMD_INSERT') {
        for (const t of list(w.targetList)) {
          const rt = nodeOf<ResTarget>(t, 'ResTarget');
          if (rt?.name !== undefined) this.column(table, rt.name);
        }
        for (const v of list(w.values)) this.expr(v, scope, pred);
      } else this.assignments(list(w.targetList), table, scope, pred);
    }
    return this.returning(s.returningClause, target, scope, pred);
  }

  /** `SET col = expr` lists (UPDATE, ON CONFLICT DO UPDATE, MERGE ... UPDATE). */
  private assignments(items: unknown[], table: string, scope: Scope, pred: boolean): void {
    for (const item of items) {
      const rt = nodeOf<ResTarget>(item, 'ResTarget');
      if (rt === undefined) continue;
      if (rt.name !== undefined) this.column(table, rt.name);
      for (const ind of list(rt.indirection)) this.expr(ind, scope, pred);
      this.expr(rt.val, scope, pred);
    }
  }

  /** RETURNING: output columns over the target (also as `old`/`new`) and the FROM items. */
  private returning(rc: ReturningClause | undefined, target: Relation & { table: string }, scope: Scope, pred: boolean): Shape {
    const exprs = list(rc?.exprs);
    if (exprs.length === 0) return EMPTY_SHAPE;
    this.read(target.table); // RETURNING sends the target's rows to the client
    const inner = newScope(scope);
    const aliases = new Map([['old', 'old'], ['new', 'new']]);
    for (const o of list(rc?.options)) {
      const opt = nodeOf<{ option?: string; value?: string }>(o, 'ReturningOption');
      if (opt?.value !== undefined) aliases.set(opt.option === 'RETURNING_OPTION_OLD' ? 'old' : 'new', opt.value);
    }
    for (const name of aliases.values()) inner.rels.push({ name, shape: target.shape, qualifiedOnly: true });
    // `RETURNING *` covers the target and the FROM items, which live in the parent level.
    return this.targets(exprs, inner, pred, scope);
  }

  // ---- expressions ----

  /** Walk an expression: record its columns (as predicates when `pred`) and return its lineage. */
  expr(node: unknown, scope: Scope, pred: boolean): Lineage {
    if (Array.isArray(node)) return combine(node.map((n) => this.expr(n, scope, pred)));
    const u = unwrap(node);
    if (u === undefined) return CONSTANT;
    const f = u.fields;
    switch (u.tag) {
      case 'ColumnRef':
        return this.columnRef(list(f.fields), scope, pred);
      case 'A_Const':
      case 'ParamRef':
      case 'SetToDefault':
      case 'SQLValueFunction':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'A_Star':
      case 'TypeName':
        return CONSTANT;
      case 'TypeCast':
      case 'CollateClause':
        // Value-preserving: a cast or collation keeps its operand's lineage.
        return this.expr((f as TypeCast).arg, scope, pred);
      case 'FuncCall':
        return this.funcCall(f as FuncCall, scope, pred);
      case 'SubLink':
        return this.subLink(f as SubLink, scope, pred);
      case 'A_Expr':
        return this.aExpr(f as A_Expr, scope, pred);
      case 'A_Indirection':
        return this.indirection(f as A_Indirection, scope, pred);
      case 'ResTarget':
        return this.expr((f as ResTarget).val, scope, pred);
      case 'MultiAssignRef':
        return this.expr(f.source, scope, pred);
      case 'IndexElem': {
        // CREATE INDEX / ON CONFLICT / EXCLUDE items: a column name or an expression.
        const ie = f as { name?: string; expr?: unknown };
        return ie.name !== undefined ? this.columnRef([{ String: { sval: ie.name } }], scope, pred) : this.expr(ie.expr, scope, pred);
      }
      case 'RangeVar':
        this.read(this.qualify(f as RangeVar));
        return CONSTANT;
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return combine(this.query(node, scope, pred).cols);
      default:
        return this.generic(f, scope, pred);
    }
  }

  /** Any other node: the union of everything under it. */
  generic(fields: Fields, scope: Scope, pred: boolean): Lineage {
    const parts: Lineage[] = [];
    const visit = (v: unknown): void => {
      if (Array.isArray(v)) {
        for (const x of v) visit(x);
      } else if (isObject(v)) {
        if (isWrappedNode(v)) parts.push(this.expr(v, scope, pred));
        else if (isBareRangeVar(v)) this.read(this.qualify(v));
        else for (const k in v) visit(v[k]);
      }
    };
    for (const k in fields) visit(fields[k]);
    return combine(parts);
  }

  private columnRef(fields: unknown[], scope: Scope, pred: boolean): Lineage {
    const last = fields[fields.length - 1];
    const parts = names(fields);
    let l: Lineage | undefined;
    if (nodeOf(last, 'A_Star') !== undefined) {
      // `t.*` or `*` as a value (row_to_json(t.*), count(t.*)): the whole row.
      if (parts.length === 0) l = combine(expandStar(scope));
      else {
        const rel = findRelation(scope, parts);
        l = rel === undefined ? undefined : wholeRow(rel);
      }
    } else if (parts.length === 1) {
      l = resolveName(scope, parts[0] ?? '');
    } else {
      const column = parts[parts.length - 1] ?? '';
      const rel = findRelation(scope, parts.slice(0, -1));
      if (rel !== undefined) l = columnOf(rel, column) ?? (rel.table !== undefined ? { sources: [{ table: rel.table, column }], derived: false, opaque: false } : undefined);
    }
    if (l === undefined) return CONSTANT;
    this.record(l, pred);
    return l;
  }

  private funcCall(f: FuncCall, scope: Scope, pred: boolean): Lineage {
    const parts = names(f.funcname);
    const display = f.funcformat === 'COERCE_SQL_SYNTAX' && parts[0] === 'pg_catalog' ? parts.slice(1) : parts;
    this.callFunction(parts, functionName(display));
    const inputs: Lineage[] = [];
    const body = this.sqlFunctionBody(functionName(display));
    if (body !== undefined) {
      // A SQL function's result is its body's first column, computed from its arguments too.
      const first = body.shape.cols[0];
      inputs.push({ ...(first === undefined ? CONSTANT : first.star ? combine(body.shape.cols) : first), derived: true });
    }
    for (const a of list(f.args)) inputs.push(this.expr(a, scope, pred));
    for (const o of list(f.agg_order)) inputs.push(this.expr(nodeOf<SortBy>(o, 'SortBy')?.node, scope, pred));
    if (f.agg_filter !== undefined) inputs.push(this.expr(f.agg_filter, scope, true));
    if (f.over !== undefined) this.windowDef(f.over, scope);
    return combine(inputs);
  }

  private subLink(s: SubLink, scope: Scope, pred: boolean): Lineage {
    const test = s.testexpr === undefined ? undefined : this.expr(s.testexpr, scope, pred);
    const shape = this.query(s.subselect, scope, pred);
    const first = shape.cols[0];
    const firstLineage: Lineage = first === undefined ? CONSTANT : first.star ? combine(shape.cols) : first;
    switch (s.subLinkType) {
      case 'EXISTS_SUBLINK':
        return CONSTANT;
      case 'EXPR_SUBLINK':
        return firstLineage;
      case 'ARRAY_SUBLINK':
        return { ...firstLineage, derived: true };
      default:
        return combine(test === undefined ? [firstLineage] : [test, firstLineage]);
    }
  }

  private aExpr(e: A_Expr, scope: Scope, pred: boolean): Lineage {
    const op = names(e.name);
    const symbol = op[op.length - 1] ?? '';
    const qualified = op.length > 1 && op[0] !== 'pg_catalog';
    // BETWEEN's name is a keyword, not an operator (it becomes >= and <=).
    const between = e.kind !== undefined && e.kind.includes('BETWEEN');
    if (this.definition === 0 && !between && (qualified || !BUILTIN_OPERATORS.has(symbol))) this.effectUnknown = true;
    return combine([this.expr(e.lexpr, scope, pred), this.expr(e.rexpr, scope, pred)]);
  }

  /** `(t).col`, `(expr).field`, `arr[1]`: a whole-row field resolves to that column. */
  private indirection(ind: A_Indirection, scope: Scope, pred: boolean): Lineage {
    const steps = list(ind.indirection);
    const field = stringValue(steps[0]);
    const relName = bareName(ind.arg);
    if (field !== undefined && relName !== undefined) {
      const rel = resolve(scope, relName)?.rel;
      const direct = rel === undefined ? undefined : columnOf(rel, field);
      if (direct !== undefined) {
        this.record(direct, pred);
        return steps.length === 1 ? direct : { ...direct, derived: true };
      }
    }
    const parts = [this.expr(ind.arg, scope, pred)];
    for (const s of steps) if (stringValue(s) === undefined) parts.push(this.generic(unwrap(s)?.fields ?? {}, scope, pred));
    return combine(parts);
  }
}

/** A RangeVar held directly in a field (`relation`, `pktable`, `table`...), not wrapped. */
function isBareRangeVar(v: Fields): v is RangeVar & Fields {
  return typeof v.relname === 'string' && typeof v.relpersistence === 'string';
}

/** A relation from a shape, named by its alias (renaming columns) or by `name`. */
function aliased(shape: Shape, alias: Alias | undefined, name: string | undefined): Relation {
  const renamed = renameShape(shape, names(alias?.colnames));
  const visible = alias?.aliasname ?? name;
  return visible === undefined ? { shape: renamed } : { name: visible, shape: renamed };
}

/** UNION / INTERSECT / EXCEPT: column-wise union of both sides' sources. */
function setOperation(left: Shape, right: Shape): Shape {
  const unknownWidth = left.cols.some((c) => c.star) || right.cols.some((c) => c.star);
  if (unknownWidth) {
    // Columns cannot be aligned: every output may carry anything either side produces.
    const all = combine([...left.cols, ...right.cols]);
    return {
      cols: left.cols.map((c) => ({ name: c.name, star: c.star, sources: all.sources, derived: all.derived, opaque: true })),
      open: [...left.open, ...right.open],
    };
  }
  return {
    cols: left.cols.map((c, i) => {
      const r = right.cols[i];
      return r === undefined ? c : named(c.name, combine([c, r], c.derived || r.derived));
    }),
    open: [],
  };
}

