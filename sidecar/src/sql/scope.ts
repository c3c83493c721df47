/**
 * Name resolution for column references: what a query level can see (its FROM items, the merged
 * columns of JOIN USING, its CTEs), and how a column name or a relation name resolves to source
 * columns. Pure data structures; the walk that fills them is in analyzer.ts.
 */
import type { ColumnRef } from './facts.js';

/** Where a value comes from. */
export interface Lineage {
  sources: ColumnRef[];
  derived: boolean;
  opaque: boolean;
}

/** A column of a relation or of a query's result. */
export interface Col extends Lineage {
  name: string;
  /** A pseudo column standing for an unexpanded `*` (its sources are `table.*`). */
  star?: boolean;
}

/**
 * Something that supplies columns not listed by name: a table the catalog does not describe
 * (`table`: a reference to column `x` is `table.x`), or the output of a function of unknown shape
 * (`lineage`: every column carries it, opaque).
 */
export interface OpenSource {
  table?: string;
  lineage?: Lineage;
}

/** The columns of a relation or a query result. */
export interface Shape {
  cols: Col[];
  open: OpenSource[];
}

/** A FROM item as a query level sees it. */
export interface Relation {
  /** The name it is referenced by: its alias, or its relation name. Undefined: not nameable. */
  name?: string;
  /** `schema.table` of an unaliased base relation (so `schema.table.col` resolves too). */
  table?: string;
  shape: Shape;
  /** Visible only through its name (`excluded`, `old`, `new`), never to unqualified columns. */
  qualifiedOnly?: boolean;
}

/** One query level. */
export interface Scope {
  parent?: Scope;
  rels: Relation[];
  /** JOIN USING / NATURAL columns: an unqualified reference means both sides. */
  merged: Col[];
  ctes: Map<string, Shape>;
  /** The level's output columns, once known (ORDER BY / GROUP BY / DISTINCT ON may name them). */
  outputs?: Col[];
}

export const EMPTY_SHAPE: Shape = { cols: [], open: [] };

/** A constant, a parameter, or anything computed from no column. */
export const CONSTANT: Lineage = { sources: [], derived: true, opaque: false };

export function newScope(parent: Scope | undefined): Scope {
  return parent === undefined ? { rels: [], merged: [], ctes: new Map() } : { parent, rels: [], merged: [], ctes: new Map() };
}

export function sourceKey(ref: ColumnRef): string {
  return `${ref.table}.${ref.column}`;
}

/** Sources of several lineages, without duplicates, in order of appearance. */
export function mergeSources(parts: readonly Lineage[]): ColumnRef[] {
  if (parts.length === 1) return parts[0]?.sources ?? [];
  const seen = new Set<string>();
  const out: ColumnRef[] = [];
  for (const p of parts) {
    for (const s of p.sources) {
      const k = sourceKey(s);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(s);
      }
    }
  }
  return out;
}

/** An expression over several lineages. */
export function combine(parts: readonly Lineage[], derived = true): Lineage {
  let opaque = false;
  for (const p of parts) if (p.opaque) opaque = true;
  return { sources: mergeSources(parts), derived, opaque };
}

/** A column `name` with lineage `l` (never copies another column's name or star mark). */
export function named(name: string, l: Lineage): Col {
  return { name, sources: l.sources, derived: l.derived, opaque: l.opaque };
}

/** The pseudo column for an unexpanded `table.*`. */
export function starOf(table: string): Col {
  return { name: '*', star: true, sources: [{ table, column: '*' }], derived: false, opaque: true };
}

/** The shape of a table nothing is known about: any column name resolves to `table.name`. */
export function openTable(table: string): Shape {
  return { cols: [starOf(table)], open: [{ table }] };
}

/** A column `name` of a relation: listed, or supplied by its open sources. */
export function columnOf(rel: Relation, name: string): Lineage | undefined {
  for (const c of rel.shape.cols) if (!c.star && c.name === name) return c;
  return fromOpen(rel.shape.open, name);
}

function fromOpen(open: readonly OpenSource[], name: string): Lineage | undefined {
  if (open.length === 0) return undefined;
  const parts: Lineage[] = [];
  let derived = false;
  for (const o of open) {
    if (o.table !== undefined) parts.push({ sources: [{ table: o.table, column: name }], derived: false, opaque: false });
    else if (o.lineage !== undefined) {
      parts.push({ ...o.lineage, opaque: true });
      derived = true;
    }
  }
  return combine(parts, derived);
}

/** The whole row of a relation (`SELECT t FROM t`, `row_to_json(t)`): every column, derived. */
export function wholeRow(rel: Relation): Lineage {
  const parts: Lineage[] = [...rel.shape.cols];
  for (const o of rel.shape.open) if (o.lineage !== undefined) parts.push({ ...o.lineage, opaque: true });
  return combine(parts, true);
}

/** Find the relation a qualifier (`t`, `s.t`, `db.s.t`) names, innermost level first. */
export function findRelation(scope: Scope, qualifier: readonly string[]): Relation | undefined {
  const name = qualifier[qualifier.length - 1];
  const schema = qualifier.length >= 2 ? qualifier[qualifier.length - 2] : undefined;
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    for (const rel of s.rels) {
      if (rel.name !== name) continue;
      if (schema === undefined || rel.table === `${schema}.${name}`) return rel;
    }
  }
  return undefined;
}

/** What an unqualified name resolved to: a column, or a whole row of `rel`. */
export interface Resolved {
  lineage: Lineage;
  /** Set when the name is a relation's name used as a value (a whole-row reference). */
  rel?: Relation;
  /** Set when only relations of unknown shape could supply the name (a guess). */
  guessed?: boolean;
}

/**
 * Resolve an unqualified column name, innermost level first. Within a level: a JOIN USING column,
 * then relations whose known columns include it (several: all of them, as PostgreSQL would report
 * an ambiguity), then a relation of that name as a whole row, then relations of unknown shape
 * (without a catalog, `SELECT email FROM a JOIN b ...` may mean either table).
 */
export function resolve(scope: Scope, name: string): Resolved | undefined {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    for (const m of s.merged) if (m.name === name) return { lineage: m };
    const known: Lineage[] = [];
    for (const rel of s.rels) {
      if (rel.qualifiedOnly) continue;
      for (const c of rel.shape.cols) {
        if (!c.star && c.name === name) {
          known.push(c);
          break;
        }
      }
    }
    if (known.length === 1 && known[0] !== undefined) return { lineage: known[0] };
    if (known.length > 1) return { lineage: combine(known, known.some((k) => k.derived)) };
    for (const rel of s.rels) if (rel.name === name) return { lineage: wholeRow(rel), rel };
    const open: Lineage[] = [];
    for (const rel of s.rels) {
      if (rel.qualifiedOnly) continue;
      const l = fromOpen(rel.shape.open, name);
      if (l !== undefined) open.push(l);
    }
    if (open.length > 0) return { lineage: combine(open, open.some((o) => o.derived)), guessed: true };
  }
  return undefined;
}

/** The lineage of an unqualified column name (see resolve). */
export function resolveName(scope: Scope, name: string): Lineage | undefined {
  return resolve(scope, name)?.lineage;
}

/** Rename the first columns of a shape (`AS alias(a, b)`, a CTE's column list). */
export function renameShape(shape: Shape, colnames: readonly string[]): Shape {
  if (colnames.length === 0) return shape;
  const cols = shape.cols;
  const known = cols.findIndex((c) => c.star);
  if (known < 0 || known >= colnames.length) {
    // Every renamed position is a known column.
    return { cols: cols.map((c, i) => (i < colnames.length ? named(colnames[i] ?? c.name, c) : c)), open: shape.open };
  }
  // Positions past the first unexpanded `*` are unknown: the new names may be any column.
  const all = combine(cols);
  const renamed: Col[] = colnames.map((name, i) => {
    const c = i < known ? cols[i] : undefined;
    return c !== undefined ? named(name, c) : { name, sources: all.sources, derived: all.derived, opaque: true };
  });
  return { cols: [...renamed, ...cols.slice(known)], open: shape.open };
}

/** The columns `SELECT *` produces from a level: USING columns first, then each relation's. */
export function expandStar(scope: Scope): Col[] {
  const out: Col[] = [...scope.merged];
  const mergedNames = new Set(scope.merged.map((m) => m.name));
  for (const rel of scope.rels) {
    if (rel.qualifiedOnly) continue;
    for (const c of rel.shape.cols) if (c.star || !mergedNames.has(c.name)) out.push(c);
  }
  return out;
}
