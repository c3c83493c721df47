import type { GuardrailAction, MaskName, QueryTextMode } from '../api/v1alpha1/index.js';
import type { StatementFacts } from '../sql/facts.js';

export type { GuardrailAction, MaskName } from '../api/v1alpha1/index.js';

/**
 * CEL `identity` (SPEC §4). Missing fields are the empty string in CEL. Treated as an immutable
 * value: conversions and decisions are cached by object, so build a new object when anything
 * changes rather than mutating this one.
 */
export interface PolicyIdentity {
  readonly user?: string;
  readonly database?: string;
  readonly application?: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly pod?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** CEL `column` (SPEC §4): the source column of a result column. Immutable, like PolicyIdentity. */
export interface ColumnFacts {
  /** `schema.table` of the source column. */
  readonly table: string;
  readonly name: string;
  /** PostgreSQL type name, e.g. `text`, `int4`. */
  readonly type: string;
  /** Data classes from classification, e.g. `email`. Empty: not classified. */
  readonly classes: readonly string[];
  /** The result column is an expression over source columns. */
  readonly derived: boolean;
}

export interface StatementInput {
  readonly identity: PolicyIdentity;
  readonly environment: string;
  /** One statement's facts (a multi-statement string is judged statement by statement). */
  readonly facts: StatementFacts;
  /**
   * Optional: a key that identifies every field of `facts` except `text` — the SQL facts cache's
   * key of the query plus the statement's index in it. When given and no guardrail reads
   * `query.text`, decisions are memoised by this key (and identity, environment) as well, so a
   * repeated simple-protocol statement, which gets a new facts object each time, still hits.
   */
  readonly cacheKey?: string;
}

export interface ColumnInput {
  readonly identity: PolicyIdentity;
  readonly environment: string;
  readonly column: ColumnFacts;
  /** The statement the column belongs to (`query` in masking rules). */
  readonly query: StatementFacts;
}

/** What to do with one statement. Decisions may be shared between calls: never mutate them. */
export interface Decision {
  /** What the session must do. Under `enforcement: audit` this is always `allow`. */
  readonly action: GuardrailAction;
  /** The rule that decided (for audit-only decisions: the rule that would have decided). */
  readonly rule?: string;
  /** The DataAccessPolicy of that rule, `namespace/name`; `builtin` for built-in guardrails. */
  readonly policy?: string;
  /** For deny: the text after `dbward: denied by <rule>: `. */
  readonly message?: string;
  /** Human-readable trail: which rule matched, evaluation errors and how they were treated. */
  readonly reasons: readonly string[];
  /** True when an audit-mode rule would have denied or held the statement; `action` is then allow. */
  readonly auditOnly: boolean;
  /** With auditOnly: what the rule would have done. */
  readonly auditedAction?: Exclude<GuardrailAction, 'allow'>;
}

/** What to do with one result column. */
export interface ColumnDecision {
  readonly action: 'mask' | 'reveal';
  /** The mask to apply when action is mask (`redact` otherwise, meaningless for reveal). */
  readonly mask: MaskName;
  /** The masking rule that decided; absent when the default (or "not classified") decided. */
  readonly rule?: string;
  readonly policy?: string;
  readonly reason: string;
}

/** Where a policy document came from, for error messages (`policy.yaml:12:9`). */
export interface SourcePosition {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** Finds the source position of a path inside a loaded document (see load.ts). */
export type PolicyLocator = (policy: object, path: readonly (string | number)[]) => SourcePosition | undefined;

export type { QueryTextMode };
