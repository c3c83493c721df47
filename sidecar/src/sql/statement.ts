/**
 * One statement's facts: the command tag and kind, and the walk (analyzer.ts) chosen by the
 * statement's type. Wrappers (EXPLAIN, COPY (query), DECLARE, PREPARE, CREATE TABLE AS) describe
 * their inner statement first.
 */
import {
  type DefElem, type Fields, type RangeVar, isObject, list, listItems, names, nodeOf, unwrap,
} from './ast.js';
import { Analyzer, type AnalysisContext } from './analyzer.js';
import { commandTag, utilityKind } from './command.js';
import type { ColumnRef, OutputColumn, StatementFacts, StatementKind } from './facts.js';
import { type Col, type Relation, columnOf, named, newScope, sourceKey } from './scope.js';

/** What describing a statement yields besides the analyzer's accumulated facts. */
interface Description {
  command: string;
  kind: StatementKind;
  output: Col[];
  cursorName?: string;
  preparedName?: string;
}

const QUERY_PLAN: Col[] = [{ name: 'QUERY PLAN', sources: [], derived: true, opaque: false }];

/** Facts of one raw statement node; `text` is the statement's own text. */
export function statementFacts(stmt: unknown, ctx: AnalysisContext, text: string): StatementFacts {
  const a = new Analyzer(ctx);
  const d = describe(stmt, a);
  let kind = d.kind;
  if (a.effectUnknown && kind === 'read') kind = 'unknown';
  const facts: StatementFacts = {
    command: d.command,
    kind,
    tables: sorted(new Set([...a.tables, ...a.reads, ...a.writes])),
    readTables: sorted(a.reads),
    writeTables: sorted(a.writes),
    columns: sorted(a.columns),
    hasWhere: a.hasWhere,
    functions: sorted(a.functions),
    text,
    effectUnknown: a.effectUnknown,
    output: d.output.map(outputColumn),
    predicateColumns: [...a.predicate.values()].sort(byRef),
  };
  if (d.cursorName !== undefined) facts.cursorName = d.cursorName;
  if (d.preparedName !== undefined) facts.preparedName = d.preparedName;
  return facts;
}

function sorted(s: Iterable<string>): string[] {
  return [...s].sort();
}

function byRef(x: ColumnRef, y: ColumnRef): number {
  const a = sourceKey(x);
  const b = sourceKey(y);
  return a < b ? -1 : a > b ? 1 : 0;
}

function outputColumn(c: Col): OutputColumn {
  return { name: c.name, sources: c.sources.map((s) => ({ table: s.table, column: s.column })), derived: c.derived, opaque: c.opaque };
}

/** Walk a statement with `a` and say what it is. */
function describe(stmt: unknown, a: Analyzer): Description {
  const u = unwrap(stmt);
  if (u === undefined) return { command: 'EMPTY', kind: 'unknown', output: [] };
  const f = u.fields;
  const command = commandTag(u.tag, f);
  switch (u.tag) {
    case 'SelectStmt': {
      const shape = a.query(stmt, undefined, false);
      const into = isObject(f.intoClause);
      return { command, kind: a.modifies ? 'write' : 'read', output: into ? [] : shape.cols };
    }
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      return { command, kind: 'write', output: a.query(stmt, undefined, false).cols };
    case 'ExplainStmt':
      return explain(f, a);
    case 'CopyStmt':
      return copy(f, a);
    case 'DeclareCursorStmt': {
      const inner = describe(f.query, a);
      return { command, kind: inner.kind, output: inner.output, cursorName: String(f.portalname ?? '') };
    }
    case 'PrepareStmt': {
      // A prepared statement is judged by what it will run; EXECUTE itself is opaque.
      const inner = describe(f.query, a);
      return { command, kind: inner.kind, output: inner.output, preparedName: String(f.name ?? '') };
    }
    case 'ExecuteStmt':
      for (const p of list(f.params)) a.expr(p, newScope(undefined), false);
      a.effectUnknown = true;
      return { command, kind: 'unknown', output: [], preparedName: String(f.name ?? '') };
    case 'DoStmt':
      a.effectUnknown = true;
      return { command, kind: 'unknown', output: [] };
    case 'CallStmt':
      a.expr({ FuncCall: f.funccall }, newScope(undefined), false);
      a.effectUnknown = true;
      return { command, kind: 'unknown', output: [] };
    case 'CreateTableAsStmt':
      return createTableAs(f, a);
    case 'FetchStmt':
      return { command, kind: 'read', output: [], cursorName: String(f.portalname ?? '') };
    case 'ClosePortalStmt':
      return f.portalname === undefined ? { command, kind: 'session', output: [] } : { command, kind: 'session', output: [], cursorName: String(f.portalname) };
    case 'DeallocateStmt':
      return f.name === undefined ? { command, kind: 'session', output: [] } : { command, kind: 'session', output: [], preparedName: String(f.name) };
    case 'VariableShowStmt': {
      const name = String(f.name ?? '');
      const output = name === 'all' ? ['name', 'setting', 'description'] : [name];
      return { command, kind: 'session', output: output.map((n) => ({ name: n, sources: [], derived: true, opaque: false })) };
    }
    case 'DropStmt':
      drop(f, a);
      return { command, kind: 'ddl', output: [] };
    case 'TruncateStmt':
      for (const r of list(f.relations)) {
        const rv = nodeOf<RangeVar>(r, 'RangeVar');
        if (rv !== undefined) a.write(a.qualify(rv));
      }
      return { command, kind: 'write', output: [] };
    case 'LoadStmt':
      a.effectUnknown = true; // loads a shared library into the server
      return { command, kind: 'utility', output: [] };
    default:
      utility(u.tag, f, a);
      return { command, kind: utilityKind(u.tag), output: [] };
  }
}

/**
 * EXPLAIN runs nothing and is a read; EXPLAIN ANALYZE runs its statement and takes its kind. Any
 * `analyze` option counts, whatever its value (`ANALYZE false` too): facts must not depend on
 * literals.
 */
function explain(f: Fields, a: Analyzer): Description {
  const analyze = list(f.options).some((o) => nodeOf<DefElem>(o, 'DefElem')?.defname === 'analyze');
  if (analyze) {
    const inner = describe(f.query, a);
    return { command: 'EXPLAIN', kind: inner.kind, output: QUERY_PLAN };
  }
  // Plan only: what the statement would touch is referenced, nothing runs.
  const plan = new Analyzer(a.context);
  describe(f.query, plan);
  for (const t of plan.reads) a.read(t);
  for (const t of [...plan.tables, ...plan.writes]) a.tables.add(t);
  for (const c of plan.columns) a.columns.add(c);
  for (const fn of plan.functions) a.functions.add(fn);
  for (const [k, v] of plan.predicate) a.predicate.set(k, v);
  return { command: 'EXPLAIN', kind: 'read', output: QUERY_PLAN };
}

/**
 * COPY table/query TO STDOUT is a read whose rows reach the client (output lineage for masking);
 * COPY ... FROM is a write. A server-side file or PROGRAM makes the effect unknown.
 */
function copy(f: Fields, a: Analyzer): Description {
  const isFrom = f.is_from === true;
  const external = f.filename !== undefined || f.is_program === true;
  if (external) a.effectUnknown = true;
  let output: Col[] = [];
  let kind: StatementKind = isFrom ? 'write' : 'read';
  const rv = isObject(f.relation) ? (f.relation as RangeVar) : undefined;
  if (rv !== undefined) {
    const table = a.qualify(rv);
    if (isFrom) a.write(table);
    else a.read(table);
    const rel: Relation = { name: rv.relname ?? '', table, shape: a.relationShape(table) };
    const attlist = names(f.attlist);
    if (attlist.length > 0) {
      output = attlist.map((name) => named(name, columnOf(rel, name) ?? { sources: [{ table, column: name }], derived: false, opaque: false }));
    } else output = rel.shape.cols;
    for (const c of output) for (const s of c.sources) a.columns.add(sourceKey(s));
    if (f.whereClause !== undefined) {
      const scope = newScope(undefined);
      scope.rels.push(rel);
      a.expr(f.whereClause, scope, true);
    }
  } else if (f.query !== undefined) {
    const inner = describe(f.query, a);
    output = inner.output;
    if (inner.kind !== 'read') kind = inner.kind;
  }
  return { command: 'COPY', kind, output: isFrom || f.filename !== undefined || f.is_program === true ? [] : output };
}

/**
 * CREATE TABLE AS, SELECT INTO (as CREATE TABLE AS) and CREATE MATERIALIZED VIEW: with data they
 * run the query and report `SELECT n`; WITH NO DATA only defines the relation.
 */
function createTableAs(f: Fields, a: Analyzer): Description {
  const into = isObject(f.into) ? (f.into as { rel?: RangeVar; skipData?: boolean }) : {};
  const matview = f.objtype === 'OBJECT_MATVIEW';
  const table = a.qualify(into.rel ?? {});
  if (into.skipData === true) {
    a.inDefinition(() => describe(f.query, a));
    a.write(table, false);
    return { command: matview ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS', kind: 'ddl', output: [] };
  }
  describe(f.query, a);
  a.write(table);
  return { command: 'SELECT', kind: matview ? 'ddl' : 'write', output: [] };
}

/** Object types whose DROP removes a relation (recorded as a table). */
const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);

function drop(f: Fields, a: Analyzer): void {
  if (!DROPPED_RELATIONS.has(String(f.removeType))) return;
  for (const obj of list(f.objects)) {
    const parts = names(listItems(obj));
    const relname = parts[parts.length - 1];
    if (relname === undefined) continue;
    const rv: RangeVar = parts.length >= 2 ? { schemaname: parts[parts.length - 2] ?? '', relname } : { relname };
    a.write(a.qualify(rv), false);
  }
}

/** Statements whose target relation's definition changes (recorded as written). */
const ALTERS_RELATION = new Set([
  'AlterTableStmt', 'IndexStmt', 'CreateTrigStmt', 'RuleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt', 'RenameStmt',
  'AlterObjectSchemaStmt', 'AlterOwnerStmt', 'RefreshMatViewStmt', 'CreateStmt', 'ViewStmt',
]);

/** Statements whose expressions run now, over the relation's rows (index builds, ALTER TABLE). */
const EVALUATES_NOW = new Set(['AlterTableStmt', 'IndexStmt']);

/**
 * Any other utility statement: its target relation, and everything it references (tables in
 * LIKE, REFERENCES, GRANT ... ON, LOCK, VACUUM...; view and function bodies) as references only.
 */
function utility(tag: string, f: Fields, a: Analyzer): void {
  const scope = newScope(undefined);
  const targetField = tag === 'ViewStmt' ? 'view' : tag === 'CreatePolicyStmt' || tag === 'AlterPolicyStmt' ? 'table' : 'relation';
  const rv = ALTERS_RELATION.has(tag) && isObject(f[targetField]) ? (f[targetField] as RangeVar) : undefined;
  const rest: Fields = {};
  for (const k in f) if (rv === undefined || k !== targetField) rest[k] = f[k];
  if (rv !== undefined) {
    const table = a.qualify(rv);
    a.write(table, false);
    scope.rels.push({ name: rv.alias?.aliasname ?? rv.relname ?? '', table, shape: a.relationShape(table) });
    if (tag === 'AlterTableStmt') alteredColumns(f, table, a);
    if (tag === 'RenameStmt' && typeof f.subname === 'string' && f.renameType === 'OBJECT_COLUMN') a.column(table, f.subname);
  }
  if (tag === 'VacuumStmt') {
    for (const r of list(f.rels)) {
      const vr = nodeOf<{ relation?: RangeVar; va_cols?: unknown[] }>(r, 'VacuumRelation');
      if (vr?.relation === undefined) continue;
      const table = a.qualify(vr.relation);
      for (const c of names(vr.va_cols)) a.column(table, c);
    }
  }
  if (EVALUATES_NOW.has(tag)) a.generic(rest, scope, false);
  else a.inDefinition(() => a.generic(rest, scope, false));
}

/** Columns an ALTER TABLE names (ADD/DROP/ALTER COLUMN ...). */
function alteredColumns(f: Fields, table: string, a: Analyzer): void {
  for (const c of list(f.cmds)) {
    const cmd = nodeOf<{ subtype?: string; name?: string; def?: unknown }>(c, 'AlterTableCmd');
    if (cmd === undefined) continue;
    const def = nodeOf<{ colname?: string }>(cmd.def, 'ColumnDef');
    if (def?.colname !== undefined) a.column(table, def.colname);
    else if (cmd.name !== undefined && cmd.subtype !== undefined && /COLUMN|DEFAULT|NOTNULL|STATISTICS|STORAGE|COMPRESSION|IDENTITY|EXPRESSION|OPTIONS/i.test(cmd.subtype)) {
      a.column(table, cmd.name);
    }
  }
}
