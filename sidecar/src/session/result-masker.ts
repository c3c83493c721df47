import { classifyByName } from '../masking/detect-name.js';
import { TypeOid, typeCategory, typeNameOf } from '../masking/pg-types.js';
import { planColumns, type ColumnPlan, type ContentWatch, type PlanDecision } from '../masking/plan.js';
import { classesOf } from '../masking/classes.js';
import { decideColumn, type CompiledPolicySet } from '../policy/index.js';
import type { MaskName } from '../policy/types.js';
import { catalogRelation, columnByOid, type CatalogSnapshot, type ColumnRef, type StatementFacts } from '../sql/index.js';
import type { FieldDescription } from '../wire/messages.js';
import type { Identity } from './policy-gate.js';

/**
 * Decides, once per result (per RowDescription), which result columns are masked for this
 * identity, and how. A result column's sources come from the RowDescription's table OID and
 * attribute number when it is a plain table column (this undoes any alias), else from the
 * statement's lineage (expressions, subqueries, CTEs, UNION...). Each source column is classified
 * (the policy's `classification.columns`, plus the built-in name detectors when
 * `classification.automatic`), and the policy decides per column (SPEC §3 masking rules).
 *
 * A derived column is masked when any of its sources is; if its sources disagree on the mask, it
 * is redacted. A column whose lineage is opaque (it could carry anything the statement reads) is
 * redacted when any table the statement reads has a column masked for this identity.
 */

interface Source {
  table: string;
  name: string;
  type: string;
}

/**
 * Error and notice fields that can echo row values: `Key (email)=(ada@...) already exists`,
 * `Failing row contains (...)`, `invalid input syntax for type integer: "<value>"`. Under masking
 * they are removed or redacted, so a failing statement cannot be used to read a masked value.
 */
export function scrubEchoedValues(fields: Map<string, string>): boolean {
  let changed = false;
  const detail = fields.get('D');
  if (detail !== undefined && /=\(|contains \(|\bvalue\b|\(.*\)/i.test(detail)) {
    fields.set('D', 'dbward: detail removed: it may contain values of masked columns');
    changed = true;
  }
  for (const key of ['M', 'W', 'q']) {
    const text = fields.get(key);
    if (text === undefined) continue;
    // Quoted literals after a colon (invalid input ...: "value") or in parentheses (Key (x)=(value)).
    const scrubbed = text.replace(/: "[^"]*"/g, ': "[redacted]"').replace(/=\([^)]*\)/g, '=([redacted])');
    if (scrubbed !== text) {
      fields.set(key, scrubbed);
      changed = true;
    }
  }
  return changed;
}

export interface MaskerContext {
  set: CompiledPolicySet;
  catalog: CatalogSnapshot | undefined;
  identity: Identity;
  environment: string;
}

/** The plan for a result, or null when nothing in it is masked (rows are then forwarded as they are). */
export function planResult(
  ctx: MaskerContext,
  fields: readonly FieldDescription[],
  facts: StatementFacts | undefined,
  resultFormats?: readonly number[],
): ColumnPlan[] | null {
  const decisions = decideResult(ctx, fields, facts);
  return decisions === null ? null : planColumns(fields, decisions, resultFormats);
}

/**
 * The per-column decisions of a result, or null when nothing is masked. They depend on the
 * statement, the identity and the policy, not on formats or values: compute once per statement.
 */
export function decideResult(ctx: MaskerContext, fields: readonly FieldDescription[], facts: StatementFacts | undefined): (PlanDecision | undefined)[] | null {
  const decisions: (PlanDecision | undefined)[] = [];
  let any = false;
  fields.forEach((field, i) => {
    const decision = decideField(ctx, field, i, fields.length, facts);
    if (decision !== undefined) any = true;
    decisions.push(decision);
  });
  return any ? decisions : null;
}

function decideField(ctx: MaskerContext, field: FieldDescription, index: number, count: number, facts: StatementFacts | undefined): PlanDecision | undefined {
  const typeName = typeNameOf(field.typeOid) ?? '';
  let sources: Source[] = [];
  let derived = false;
  let opaque = false;
  let viewColumn = false;
  if (field.tableOid !== 0 && ctx.catalog !== undefined) {
    const hit = columnByOid(ctx.catalog, field.tableOid, field.columnAttr);
    // A view's (or materialized view's) column is not a source: its definition's lineage says
    // which base columns it carries, so `create view v as select ssn as x` cannot rename a secret.
    if (hit !== undefined && (hit.relation.kind === 'view' || hit.relation.kind === 'materialized view')) viewColumn = true;
    else if (hit !== undefined) sources = [{ table: hit.table, name: hit.column.name, type: typeName }];
  }
  if (sources.length === 0 && facts !== undefined && facts.output.length === count) {
    const out = facts.output[index]!;
    derived = out.derived;
    opaque = out.opaque;
    sources = out.sources.map((s) => ({ table: s.table, name: s.column, type: sourceType(ctx.catalog, s) ?? typeName }));
  } else if (viewColumn || (sources.length === 0 && field.tableOid === 0 && facts !== undefined && facts.output.length !== count)) {
    // A view column without lineage, or a result whose shape the analysis got wrong: it could
    // carry anything the statement reads.
    opaque = true;
  }
  const masks: MaskName[] = [];
  for (const source of sources) {
    const mask = maskFor(ctx, source, derived, facts);
    if (mask !== undefined) masks.push(mask);
  }
  if (opaque && masks.length === 0 && facts !== undefined && readsMaskedColumn(ctx, facts)) return { action: 'mask', mask: 'redact' };
  if (masks.length === 0) return contentDecision(ctx, field, sources, derived, opaque || (sources.length === 0 && facts === undefined), facts);
  const first = masks[0]!;
  return { action: 'mask', mask: masks.every((m) => m === first) ? first : 'redact' };
}

// ---- content detection in the session (issue 4) --------------------------------------------

/** Values of one source column the content detectors looked at, and the classes they found. */
interface ColumnSample {
  scanned: number;
  bits: number;
}

/** Values scanned per (table, column) before a column in which nothing was found counts as clean. */
export const CONTENT_SAMPLE_VALUES = 1000;

/** Per policy set (classification is part of the policy): `schema.table.column` -> sample. */
const samples = new WeakMap<CompiledPolicySet, Map<string, ColumnSample>>();

function sampleOf(set: CompiledPolicySet, key: string): ColumnSample {
  let bySet = samples.get(set);
  if (bySet === undefined) samples.set(set, (bySet = new Map()));
  let sample = bySet.get(key);
  if (sample === undefined) {
    if (bySet.size > 100_000) bySet.clear();
    sample = { scanned: 0, bits: 0 };
    bySet.set(key, sample);
  }
  return sample;
}

/**
 * What content detection does for a text column that nothing classified (SPEC §4 automatic
 * classification): a plain source column is sampled — its first CONTENT_SAMPLE_VALUES values are
 * scanned, a value in which the detectors find a class this identity may not see is masked, and
 * what was found is remembered for the column, so later results mask the whole column — and a
 * column whose source cannot be known (opaque) has every value scanned. Derived columns of
 * unclassified sources take what their sources' samples found.
 */
function contentDecision(ctx: MaskerContext, field: FieldDescription, sources: readonly Source[], derived: boolean, unresolved: boolean, facts: StatementFacts | undefined): PlanDecision | undefined {
  if (!ctx.set.classification.automatic || typeCategory(field.typeOid) !== 'text') return undefined;
  if (sources.length === 0) return unresolved ? { action: 'watch', watch: new ValueWatch(ctx, undefined, undefined, derived, facts) } : undefined;
  // Only sources that nothing classified: a classified source that is not masked is revealed.
  if (sources.some((source) => classify(ctx, source).length > 0)) return undefined;
  let learned = 0;
  for (const source of sources) learned |= sampleOf(ctx.set, `${source.table}.${source.name}`).bits;
  if (learned !== 0) {
    const mask = maskForClasses(ctx, sources[0]!, classesOf(learned), derived, facts);
    return mask === undefined ? undefined : { action: 'mask', mask };
  }
  if (derived || sources.length !== 1) return undefined;
  const source = sources[0]!;
  const sample = sampleOf(ctx.set, `${source.table}.${source.name}`);
  return sample.scanned < CONTENT_SAMPLE_VALUES ? { action: 'watch', watch: new ValueWatch(ctx, source, sample, derived, facts) } : undefined;
}

class ValueWatch implements ContentWatch {
  private readonly decided = new Map<number, MaskName | undefined>();

  constructor(
    private readonly ctx: MaskerContext,
    private readonly source: Source | undefined,
    private readonly sample: ColumnSample | undefined,
    private readonly derived: boolean,
    private readonly facts: StatementFacts | undefined,
  ) {}

  active(): boolean {
    const sample = this.sample;
    if (sample === undefined || sample.bits !== 0) return true;
    return sample.scanned++ < CONTENT_SAMPLE_VALUES;
  }

  settled(): boolean {
    const sample = this.sample;
    return sample !== undefined && (sample.bits !== 0 || sample.scanned >= CONTENT_SAMPLE_VALUES);
  }

  maskFor(found: number): MaskName | undefined {
    if (this.sample !== undefined) this.sample.bits |= found;
    const bits = found | (this.sample?.bits ?? 0);
    if (bits === 0) return undefined;
    if (this.decided.has(bits)) return this.decided.get(bits);
    const source = this.source ?? { table: '', name: '', type: '' };
    const mask = maskForClasses(this.ctx, source, classesOf(bits), this.derived || this.source === undefined, this.facts);
    this.decided.set(bits, mask);
    return mask;
  }
}

/** The policy's mask for a column with these classes, for this identity, or undefined when revealed. */
function maskForClasses(ctx: MaskerContext, source: Source, classes: string[], derived: boolean, facts: StatementFacts | undefined): MaskName | undefined {
  const decision = decideColumn(ctx.set, {
    identity: ctx.identity,
    environment: ctx.environment,
    column: { table: source.table, name: source.name, type: source.type, classes, derived },
    query: facts ?? EMPTY_FACTS,
  });
  return decision.action === 'mask' ? decision.mask : undefined;
}

/** The mask of one source column for this identity, or undefined when it is revealed or not classified. */
function maskFor(ctx: MaskerContext, source: Source, derived: boolean, facts: StatementFacts | undefined): MaskName | undefined {
  const classes = classify(ctx, source);
  return classes.length === 0 ? undefined : maskForClasses(ctx, source, classes, derived, facts);
}

/** Classes per column, per compiled policy set (classification depends only on the set and the column). */
const classified = new WeakMap<CompiledPolicySet, Map<string, string[]>>();

function classify(ctx: MaskerContext, source: Source): string[] {
  let bySet = classified.get(ctx.set);
  if (bySet === undefined) {
    bySet = new Map();
    classified.set(ctx.set, bySet);
  }
  const key = `${source.table}\u0000${source.name}\u0000${source.type}`;
  let classes = bySet.get(key);
  if (classes === undefined) {
    classes = classifyUncached(ctx, source);
    if (bySet.size > 50_000) bySet.clear();
    bySet.set(key, classes);
  }
  return classes;
}

function classifyUncached(ctx: MaskerContext, source: Source): string[] {
  const classes = new Set<string>();
  for (const c of ctx.set.classification.columns) {
    if (c.table === source.table && c.column === source.name) for (const cls of c.classes) classes.add(cls);
  }
  if (ctx.set.classification.automatic) {
    for (const cls of classifyByName({ table: source.table, name: source.name, type: source.type }).classes) classes.add(cls);
  }
  return [...classes];
}

/**
 * The first column the statement filters, joins, groups or sorts on that is masked for this
 * identity (predicate probing: WHERE ssn = '...' confirms a value without returning it).
 */
export function maskedPredicateColumn(ctx: MaskerContext, facts: StatementFacts): string | undefined {
  for (const column of facts.predicateColumns) {
    const type = sourceType(ctx.catalog, column) ?? '';
    if (maskFor(ctx, { table: column.table, name: column.column, type }, false, facts) !== undefined) return `${column.table}.${column.column}`;
  }
  return undefined;
}

/**
 * Columns the statement references (anywhere) in tables it reads but does not write, that are
 * masked for this identity, as `schema.table.column` (`schema.table.*` for a whole row or `*`).
 * Used to refuse statements that would copy masked values somewhere the client can read them.
 */
export function maskedColumnsMovedOut(ctx: MaskerContext, facts: StatementFacts): string[] {
  const moved: string[] = [];
  for (const table of facts.readTables) {
    if (facts.writeTables.includes(table)) continue;
    for (const column of facts.columns) {
      if (!column.startsWith(`${table}.`)) continue;
      const name = column.slice(table.length + 1);
      if (name === '*') {
        if (readsMaskedColumn(ctx, { ...facts, readTables: [table] })) moved.push(column);
      } else if (maskFor(ctx, { table, name, type: sourceType(ctx.catalog, { table, column: name }) ?? '' }, true, facts) !== undefined) {
        moved.push(column);
      }
    }
  }
  return moved;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);
const masksSomeColumnCache = new WeakMap<CompiledPolicySet, WeakMap<object, WeakMap<Identity, boolean>>>();
const NO_CATALOG = {};

/**
 * True when some column of the database is masked for this identity (or, without a catalog
 * snapshot, when the policy classifies anything). Statements whose data flow cannot be analysed
 * (DO, functions whose bodies are not read, SQL run from text) are refused only then.
 */
export function masksSomeColumn(ctx: MaskerContext): boolean {
  let byCatalog = masksSomeColumnCache.get(ctx.set);
  if (byCatalog === undefined) masksSomeColumnCache.set(ctx.set, (byCatalog = new WeakMap()));
  const catalogKey = ctx.catalog ?? NO_CATALOG;
  let byIdentity = byCatalog.get(catalogKey);
  if (byIdentity === undefined) byCatalog.set(catalogKey, (byIdentity = new WeakMap()));
  let answer = byIdentity.get(ctx.identity);
  if (answer === undefined) {
    answer = computeMasksSomeColumn(ctx);
    byIdentity.set(ctx.identity, answer);
  }
  return answer;
}

function computeMasksSomeColumn(ctx: MaskerContext): boolean {
  if (ctx.catalog === undefined) return ctx.set.classification.automatic || ctx.set.classification.columns.length > 0;
  for (const [schema, byName] of Object.entries(ctx.catalog.relations)) {
    if (SYSTEM_SCHEMAS.has(schema)) continue;
    for (const [name, relation] of Object.entries(byName)) {
      const table = `${schema}.${name}`;
      for (const column of relation.columns) if (maskFor(ctx, { table, name: column.name, type: column.type }, false, undefined) !== undefined) return true;
    }
  }
  return false;
}

/** True when some table the statement reads or writes has a column masked for this identity. */
export function touchesMaskedColumn(ctx: MaskerContext, facts: StatementFacts): boolean {
  return readsMaskedColumn(ctx, facts.tables === facts.readTables ? facts : { ...facts, readTables: facts.tables });
}

/** True when some column of a table the statement reads is masked for this identity. */
export function readsMaskedColumn(ctx: MaskerContext, facts: StatementFacts): boolean {
  for (const table of facts.readTables) {
    const dot = table.indexOf('.');
    const relation = catalogRelation(ctx.catalog, table.slice(0, dot), table.slice(dot + 1));
    if (relation === undefined) {
      // Unknown shape: judge the columns the statement names in that table.
      for (const column of facts.columns) {
        if (column.startsWith(`${table}.`) && maskFor(ctx, { table, name: column.slice(table.length + 1), type: '' }, true, facts) !== undefined) return true;
      }
      continue;
    }
    for (const column of relation.columns) {
      if (maskFor(ctx, { table, name: column.name, type: column.type }, true, facts) !== undefined) return true;
    }
  }
  return false;
}

function sourceType(catalog: CatalogSnapshot | undefined, source: ColumnRef): string | undefined {
  const dot = source.table.indexOf('.');
  return catalogRelation(catalog, source.table.slice(0, dot), source.table.slice(dot + 1))?.columns.find((c) => c.name === source.column)?.type;
}

const EMPTY_FACTS: StatementFacts = {
  command: 'SELECT',
  kind: 'read',
  tables: [],
  readTables: [],
  writeTables: [],
  columns: [],
  hasWhere: true,
  functions: [],
  text: '',
  effectUnknown: false,
  output: [],
  predicateColumns: [],
};

/** format_type() spellings of the types a mask treats specially, to their OIDs (COPY has no RowDescription). */
const CATALOG_TYPES: ReadonlyArray<[RegExp, number]> = [
  [/^text$/, TypeOid.text],
  [/^character varying(\(\d+\))?$/, TypeOid.varchar],
  [/^character(\(\d+\))?$/, TypeOid.bpchar],
  [/^name$/, TypeOid.name],
  [/^json$/, TypeOid.json],
  [/^jsonb$/, TypeOid.jsonb],
  [/^uuid$/, TypeOid.uuid],
  [/^integer$/, TypeOid.int4],
  [/^bigint$/, TypeOid.int8],
  [/^bytea$/, TypeOid.bytea],
];

/** The RowDescription fields a COPY's output would have, from the lineage and the catalog's column types. */
export function copyFields(ctx: MaskerContext, facts: StatementFacts, binary: boolean): FieldDescription[] {
  return facts.output.map((out): FieldDescription => {
    // A derived column's type is not its source's (length(email) is an integer): unknown, so a
    // masked value becomes NULL, valid for any type.
    const source = !out.derived && out.sources.length === 1 ? out.sources[0] : undefined;
    const type = source === undefined ? undefined : sourceType(ctx.catalog, source);
    let typeOid = 0;
    let typeModifier = -1;
    for (const [pattern, oid] of CATALOG_TYPES) {
      const m = type === undefined ? null : pattern.exec(type);
      if (m === null) continue;
      typeOid = oid;
      if (m[1] !== undefined) typeModifier = Number(m[1].slice(1, -1)) + 4;
      break;
    }
    return { name: out.name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier, format: binary ? 1 : 0 };
  });
}
