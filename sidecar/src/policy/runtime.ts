import type { StatementFacts } from '../sql/facts.js';
import { Activation, type CelIdentity } from './cel-env.js';
import type { ColumnDecision, ColumnFacts, Decision } from './types.js';

/**
 * Per-policy-set state of the hot path: one reusable activation and the decision memos. Owned by a
 * CompiledPolicySet; a reload builds a new set, so memos never outlive the rules they cache.
 *
 * Memoisation is safe because a decision is a pure function of (rules, identity, environment,
 * statement facts[, column]): the CEL environment has no clock, randomness or I/O, and inputs are
 * immutable values (see PolicyIdentity, ColumnFacts). Keys are input objects: the same
 * StatementFacts object (the extended protocol analyses a statement once at Parse and executes it
 * many times) with the same identity object (one per session) and environment hits. One entry per
 * facts / column object (the latest identity), in WeakMaps: nothing is kept alive by the memo, and
 * a miss costs one WeakMap.set.
 */
export class PolicyRuntime {
  readonly activation = new Activation();
  readonly statements = new WeakMap<StatementFacts, StatementMemo>();
  /** By StatementInput.cacheKey; cleared when it reaches MAX_KEYED_MEMO entries. */
  readonly keyed = new Map<string, StatementMemo>();
  readonly columns = new WeakMap<ColumnFacts, ColumnMemo>();
  /** The last evaluation error, set by `runRule` when it returns ERROR. */
  lastError: unknown = undefined;
}

export const MAX_KEYED_MEMO = 10_000;

export interface StatementMemo {
  identity: CelIdentity;
  environment: string;
  decision: Decision;
}

export interface ColumnMemo {
  identity: CelIdentity;
  environment: string;
  /** The statement the decision was made for; undefined when no masking rule reads `query`. */
  query: StatementFacts | undefined;
  decision: ColumnDecision;
}
