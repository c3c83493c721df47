import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import type { StatementFacts } from '../sql/facts.js';
import type { ColumnFacts, PolicyIdentity } from './types.js';

/**
 * The CEL environment of SPEC §4. `identity`, `query` and `column` are declared object types with
 * typed fields, so the type checker rejects `query.hasWhere == "yes"`, `identity.labels["x"] > 3`
 * and `query.tabels` when the policy is loaded, not when a statement arrives.
 *
 * Values reach CEL as instances of the classes below (cel-js recognises a declared type by its
 * constructor). They are built once per identity / statement and cached (see `toCel*`), so the hot
 * path allocates nothing of ours but the activation.
 */

/** CEL `identity`: the workload and the startup message. */
export class CelIdentity {
  constructor(
    readonly user: string,
    readonly database: string,
    readonly application: string,
    readonly namespace: string,
    readonly serviceAccount: string,
    readonly pod: string,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    Object.freeze(this);
  }
}

/** CEL `query`: one statement's facts (SPEC §4). */
export class CelQuery {
  constructor(
    readonly command: string,
    readonly kind: string,
    readonly text: string,
    readonly tables: readonly string[],
    readonly readTables: readonly string[],
    readonly writeTables: readonly string[],
    readonly columns: readonly string[],
    readonly functions: readonly string[],
    readonly hasWhere: boolean,
  ) {
    Object.freeze(this);
  }
}

/** CEL `column`: the source column of a result column (masking rules only). */
export class CelColumn {
  constructor(
    readonly table: string,
    readonly name: string,
    readonly type: string,
    readonly classes: readonly string[],
    readonly derived: boolean,
  ) {
    Object.freeze(this);
  }
}

/** Structural limits applied while parsing (the expression text itself is bounded to 4 KiB). */
export const CEL_LIMITS = {
  maxAstNodes: 2048,
  maxDepth: 48,
  maxListElements: 512,
  maxMapEntries: 128,
  maxCallArguments: 16,
} as const;

const IDENTITY_FIELDS = {
  user: 'string',
  database: 'string',
  application: 'string',
  namespace: 'string',
  serviceAccount: 'string',
  pod: 'string',
  labels: 'map<string, string>',
} as const;

const QUERY_FIELDS = {
  command: 'string',
  kind: 'string',
  text: 'string',
  tables: 'list<string>',
  readTables: 'list<string>',
  writeTables: 'list<string>',
  columns: 'list<string>',
  functions: 'list<string>',
  hasWhere: 'bool',
} as const;

const COLUMN_FIELDS = {
  table: 'string',
  name: 'string',
  type: 'string',
  classes: 'list<string>',
  derived: 'bool',
} as const;

/** The declared variables, for documentation and for error hints. */
export const CEL_VARIABLES = {
  identity: IDENTITY_FIELDS,
  environment: 'string',
  query: QUERY_FIELDS,
  column: COLUMN_FIELDS,
} as const;

export type RuleKind = 'guardrail' | 'masking';

function createEnvironments(): Record<RuleKind, Environment> {
  const base = new Environment({ enableOptionalTypes: true, limits: CEL_LIMITS })
    .registerType('dbward.Identity', { ctor: CelIdentity, fields: IDENTITY_FIELDS })
    .registerType('dbward.Query', { ctor: CelQuery, fields: QUERY_FIELDS })
    .registerType('dbward.Column', { ctor: CelColumn, fields: COLUMN_FIELDS })
    .registerVariable('identity', 'dbward.Identity', { description: 'The workload and the startup message.' })
    .registerVariable('environment', 'string', { description: 'The environment, e.g. production.' })
    .registerVariable('query', 'dbward.Query', { description: 'The statement being judged.' });
  const masking = base.clone().registerVariable('column', 'dbward.Column', { description: 'The source column of a result column.' });
  const guardrail = base.clone();
  return { guardrail, masking };
}

let environments: Record<RuleKind, Environment> | undefined;

/** The environment for one kind of rule; guardrails do not see `column`. Built once. */
export function celEnvironment(kind: RuleKind): Environment {
  environments ??= createEnvironments();
  return environments[kind];
}

/** A compiled, type-checked expression: call it with an activation. */
export type CelProgram = ParseResult;

/** The variables an expression is evaluated against. One instance is reused per policy set. */
export class Activation {
  identity: CelIdentity = EMPTY_IDENTITY;
  environment = '';
  query: CelQuery = EMPTY_QUERY;
  column: CelColumn = EMPTY_COLUMN;
}

const EMPTY_LABELS: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);
export const EMPTY_IDENTITY = new CelIdentity('', '', '', '', '', '', EMPTY_LABELS);
export const EMPTY_QUERY = new CelQuery('', 'unknown', '', [], [], [], [], [], true);
export const EMPTY_COLUMN = new CelColumn('', '', '', [], false);

// Identities are converted once per input object (one per session; inputs are immutable values).
// Statements and columns are converted on a memo miss only (evaluate.ts), without a cache.
const identities = new WeakMap<PolicyIdentity, CelIdentity>();

export function toCelIdentity(identity: PolicyIdentity): CelIdentity {
  let cel = identities.get(identity);
  if (cel === undefined) {
    const labels = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, identity.labels));
    cel = new CelIdentity(
      identity.user ?? '',
      identity.database ?? '',
      identity.application ?? '',
      identity.namespace ?? '',
      identity.serviceAccount ?? '',
      identity.pod ?? '',
      labels,
    );
    identities.set(identity, cel);
  }
  return cel;
}

export function toCelQuery(facts: StatementFacts): CelQuery {
  return new CelQuery(facts.command, facts.kind, facts.text, facts.tables, facts.readTables, facts.writeTables, facts.columns, facts.functions, facts.hasWhere);
}

export function toCelColumn(column: ColumnFacts): CelColumn {
  return new CelColumn(column.table, column.name, column.type, column.classes, column.derived);
}
