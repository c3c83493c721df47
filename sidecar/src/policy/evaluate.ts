import { EMPTY_COLUMN, EMPTY_IDENTITY, EMPTY_QUERY, toCelColumn, toCelIdentity, toCelQuery, type Activation, type CelColumn, type CelIdentity, type CelProgram, type CelQuery } from './cel-env.js';
import type { CompiledGuardrail, CompiledPolicySet } from './compile.js';
import { MAX_KEYED_MEMO, type PolicyRuntime } from './runtime.js';
import type { ColumnDecision, ColumnInput, Decision, StatementInput } from './types.js';

/**
 * Evaluation: data in, decision out. The hot path looks up the memo (runtime.ts), converts the
 * identity through a cache and the statement / column facts on a miss, fills the set's one reusable
 * activation, walks the precompiled chain (skipping rules whose command or environment guard cannot
 * hold) and returns a precomputed, frozen decision unless an evaluation error or audit interplay
 * needs a new one.
 *
 * Evaluation errors (a missing map key, a non-bool `dyn` result, ...) fail closed: a deny or
 * requireApproval guardrail, or a mask rule, is treated as matched; an allow guardrail or a reveal
 * rule as not matched. The error is always reported in the reasons.
 */

const NO_MATCH = 0;
const MATCH = 1;
const ERROR = 2;

function runRule(program: CelProgram, activation: Activation, runtime: PolicyRuntime): number {
  try {
    const value: unknown = program(activation);
    if (value === true) return MATCH;
    if (value === false) return NO_MATCH;
    runtime.lastError = new Error(`expression returned ${typeof value}, not bool`);
  } catch (error) {
    runtime.lastError = error;
  }
  return ERROR;
}

function errorSummary(error: unknown): string {
  if (error instanceof Error) {
    const summary = (error as Error & { summary?: unknown }).summary;
    return typeof summary === 'string' ? summary : (error.message.split('\n', 1)[0] ?? error.message);
  }
  return String(error);
}

function release(activation: Activation): void {
  activation.identity = EMPTY_IDENTITY;
  activation.query = EMPTY_QUERY;
  activation.column = EMPTY_COLUMN;
}

/** Judges one statement: the first matching guardrail decides (SPEC §3), audit documents only report. */
export function decideStatement(set: CompiledPolicySet, input: StatementInput): Decision {
  const runtime = set.runtime;
  const identity = toCelIdentity(input.identity);
  const environment = input.environment;
  const key = input.cacheKey !== undefined && !set.guardrailsReadText ? input.cacheKey : undefined;
  const memo = key === undefined ? runtime.statements.get(input.facts) : runtime.keyed.get(key);
  if (memo !== undefined && memo.identity === identity && memo.environment === environment) return memo.decision;

  const decision = evaluateGuardrails(set, identity, environment, toCelQuery(input.facts));
  if (memo !== undefined) {
    memo.identity = identity;
    memo.environment = environment;
    memo.decision = decision;
  } else if (key === undefined) {
    runtime.statements.set(input.facts, { identity, environment, decision });
  } else {
    if (runtime.keyed.size >= MAX_KEYED_MEMO) runtime.keyed.clear();
    runtime.keyed.set(key, { identity, environment, decision });
  }
  return decision;
}

function evaluateGuardrails(set: CompiledPolicySet, identity: CelIdentity, environment: string, query: CelQuery): Decision {
  const runtime = set.runtime;
  const activation = runtime.activation;
  activation.identity = identity;
  activation.environment = environment;
  activation.query = query;
  activation.column = EMPTY_COLUMN;

  let decided: CompiledGuardrail | undefined;
  let audited: CompiledGuardrail | undefined;
  let errors: string[] | undefined;
  const chain = set.guardrails;
  for (let i = 0; i < chain.length; i++) {
    const rule = chain[i] as CompiledGuardrail;
    // Once an audit rule has matched first, later audit rules cannot change the audit view.
    if (audited !== undefined && !rule.enforced) continue;
    // A false `query.command == ...` / `environment == ...` conjunct makes the rule false: skip it.
    if (rule.commands !== undefined && !rule.commands.has(query.command)) continue;
    if (rule.environments !== undefined && !rule.environments.has(environment)) continue;
    const result = runRule(rule.program, activation, runtime);
    let matched = result === MATCH;
    if (result === ERROR) {
      matched = rule.action !== 'allow';
      (errors ??= []).push(
        `guardrail ${rule.name} (${rule.policy}): evaluation error: ${errorSummary(runtime.lastError)}; treated as ${matched ? 'matched' : 'not matched'} (fail closed)`,
      );
      runtime.lastError = undefined;
    }
    if (!matched) continue;
    if (rule.enforced) {
      decided = rule;
      break;
    }
    audited = rule;
  }
  release(activation);
  return combine(set, decided, audited, errors);
}

function combine(set: CompiledPolicySet, decided: CompiledGuardrail | undefined, audited: CompiledGuardrail | undefined, errors: string[] | undefined): Decision {
  // An enforced deny/requireApproval decides; else an audit rule that would deny/hold reports
  // audit-only; else an enforced allow rule, an audit allow rule, or nothing matched.
  let base: Decision;
  let other: Decision | undefined;
  if (decided !== undefined && (decided.action !== 'allow' || audited === undefined || audited.action === 'allow')) {
    base = decided.decision;
    other = audited?.auditDecision;
  } else if (audited !== undefined) {
    base = audited.auditDecision;
    other = decided?.decision;
  } else {
    base = set.allowDecision;
  }
  if (errors === undefined && other === undefined) return base;
  const reasons = [...(errors ?? []), ...base.reasons, ...(other?.reasons ?? [])];
  return Object.freeze({ ...base, reasons: Object.freeze(reasons) });
}

/**
 * Decides one result column (SPEC §3): the first masking rule that matches (reveal or mask) decides;
 * otherwise a classified column gets `masking.default` and an unclassified one is revealed.
 * Masking applies whatever the enforcement mode: it never blocks, and a guess would leak data.
 */
export function decideColumn(set: CompiledPolicySet, input: ColumnInput): ColumnDecision {
  const rules = set.maskingRules;
  if (rules.length === 0) return input.column.classes.length > 0 ? set.maskDefaultDecision : set.notClassifiedDecision;

  const runtime = set.runtime;
  const identity = toCelIdentity(input.identity);
  const query = set.maskingUsesQuery ? input.query : undefined;
  const environment = input.environment;
  const memo = runtime.columns.get(input.column);
  if (memo !== undefined && memo.identity === identity && memo.environment === environment && memo.query === query) return memo.decision;

  const decision = evaluateMasking(set, identity, environment, query === undefined ? undefined : toCelQuery(query), toCelColumn(input.column));
  if (memo !== undefined) {
    memo.identity = identity;
    memo.environment = environment;
    memo.query = query;
    memo.decision = decision;
  } else {
    runtime.columns.set(input.column, { identity, environment, query, decision });
  }
  return decision;
}

function evaluateMasking(set: CompiledPolicySet, identity: CelIdentity, environment: string, query: CelQuery | undefined, column: CelColumn): ColumnDecision {
  const runtime = set.runtime;
  const activation = runtime.activation;
  activation.identity = identity;
  activation.environment = environment;
  activation.query = query ?? EMPTY_QUERY;
  activation.column = column;

  let decision: ColumnDecision | undefined;
  let errors: string | undefined;
  const rules = set.maskingRules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as (typeof rules)[number];
    if (rule.commands !== undefined && !rule.commands.has(activation.query.command)) continue;
    if (rule.environments !== undefined && !rule.environments.has(environment)) continue;
    const result = runRule(rule.program, activation, runtime);
    if (result === NO_MATCH) continue;
    if (result === ERROR) {
      const failClosed = rule.action === 'mask';
      const note = `masking rule ${rule.name} (${rule.policy}): evaluation error: ${errorSummary(runtime.lastError)}; treated as ${failClosed ? 'matched' : 'not matched'} (fail closed)`;
      runtime.lastError = undefined;
      errors = errors === undefined ? note : `${errors}; ${note}`;
      if (!failClosed) continue;
    }
    decision = rule.decision;
    break;
  }
  release(activation);
  decision ??= column.classes.length > 0 ? set.maskDefaultDecision : set.notClassifiedDecision;
  return errors === undefined ? decision : Object.freeze({ ...decision, reason: `${errors}; ${decision.reason}` });
}

/** The decision for a statement the SQL parser rejects (SPEC §6: 42601 `dbward: statement not understood`). */
export function decideUnparseable(set: CompiledPolicySet): Decision {
  return set.unparseable;
}
