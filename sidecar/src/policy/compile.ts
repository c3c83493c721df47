import { createHash } from 'node:crypto';
import {
  formatDurationMs,
  parseDurationMs,
  policyRef,
  type ClassifiedColumn,
  type DataAccessPolicy,
  type Guardrail,
  type GuardrailAction,
  type MaskName,
  type MaskingRule,
  type QueryTextMode,
} from '../api/v1alpha1/index.js';
import { BUILTIN_GUARDRAILS, BUILTIN_NAMES, BUILTIN_POLICY, BUILTIN_PREFIX } from './builtins.js';
import type { CelProgram, RuleKind } from './cel-env.js';
import { caretExcerpt, lineColumn, PolicyError, PolicyErrors } from './errors.js';
import { compileExpression, readsQueryText, referencesVariable, ruleGuards } from './expression.js';
import { PolicyRuntime } from './runtime.js';
import type { ColumnDecision, Decision, PolicyLocator } from './types.js';

/**
 * Compiles DataAccessPolicy documents into one CompiledPolicySet: every `when` expression is
 * parsed, type-checked and screened once, here. How several documents combine (docs/policy-authoring.md):
 *
 * - Guardrails form one chain: each document's guardrails in document order, then the built-ins.
 *   The first matching rule of an enforcing document decides. Rules of `enforcement: audit`
 *   documents never decide: the first match overall, when it is an audit rule, is reported as
 *   audit-only (action allow) unless an enforcing rule later denies or holds the statement. An
 *   audit document therefore never changes what is enforced.
 * - Built-ins are enforced when at least one document enforces. A guardrail with a built-in's name
 *   replaces it when that guardrail's document is as enforcing as the built-in (an audit document
 *   cannot switch off an enforced built-in).
 * - Masking rules form one chain in document order, whatever the enforcement; the first reveal or
 *   mask match decides. The strictest setting wins for `masking.default` (mask), `unparseable`
 *   (deny, per enforcement), `classification.automatic` (true), `audit.queryText` (the least text:
 *   none, then normalized, then full) and `approvals.timeout` (the shortest). Classified columns
 *   are the union of every document's.
 */

export interface CompiledGuardrail {
  readonly name: string;
  readonly action: GuardrailAction;
  /** `namespace/name` of the document, or `builtin`. */
  readonly policy: string;
  readonly when: string;
  readonly message: string;
  /** False for rules of `enforcement: audit` documents (and built-ins when no document enforces). */
  readonly enforced: boolean;
  readonly builtin: boolean;
  /** @internal the compiled expression. */
  readonly program: CelProgram;
  /** @internal the rule can only match these commands / environments (skip it otherwise). */
  readonly commands: ReadonlySet<string> | undefined;
  readonly environments: ReadonlySet<string> | undefined;
  /** @internal the decision when this rule decides alone (enforced), precomputed. */
  readonly decision: Decision;
  /** @internal the audit-only decision when this audit rule would decide, precomputed. */
  readonly auditDecision: Decision;
}

export interface CompiledMaskingRule {
  readonly name: string;
  readonly action: 'reveal' | 'mask';
  readonly mask: MaskName;
  readonly policy: string;
  readonly when: string;
  /** @internal */
  readonly program: CelProgram;
  readonly commands: ReadonlySet<string> | undefined;
  readonly environments: ReadonlySet<string> | undefined;
  /** @internal the column decision when this rule matches, precomputed. */
  readonly decision: ColumnDecision;
}

export interface CompiledPolicySet {
  readonly kind: 'CompiledPolicySet';
  /** Content hash of the documents (or the version given to compilePolicies): `dbward.policy.version`. */
  readonly version: string;
  /** `namespace/name` of every document, in order. */
  readonly policies: readonly string[];
  /** `spec.environment` when a document sets it (callers decide whether `--environment` wins). */
  readonly environment: string | undefined;
  /** `mixed` when some documents enforce and others audit. */
  readonly enforcement: 'enforce' | 'audit' | 'mixed';
  /** The decision for a statement the SQL parser rejects. */
  readonly unparseable: Decision;
  readonly classification: { readonly automatic: boolean; readonly columns: readonly ClassifiedColumn[] };
  readonly masking: { readonly default: 'mask' | 'reveal'; readonly predicates: 'deny' | 'allow' };
  readonly approvals: { readonly timeout: string; readonly timeoutMs: number };
  readonly audit: { readonly queryText: QueryTextMode };
  /** The guardrail chain in evaluation order, built-ins last. */
  readonly guardrails: readonly CompiledGuardrail[];
  /** The masking chain in evaluation order. */
  readonly maskingRules: readonly CompiledMaskingRule[];
  /** @internal */
  readonly hasAuditGuardrails: boolean;
  /** @internal some guardrail may read `query.text` (then only facts-object memoisation is safe). */
  readonly guardrailsReadText: boolean;
  /** @internal some masking rule reads `query` (column decisions then depend on the statement). */
  readonly maskingUsesQuery: boolean;
  /** @internal decisions without a matching rule, precomputed. */
  readonly allowDecision: Decision;
  readonly maskDefaultDecision: ColumnDecision;
  readonly notClassifiedDecision: ColumnDecision;
  /** @internal */
  readonly runtime: PolicyRuntime;
}

export interface CompileOptions {
  /** Maps a document path to its position in the file the document was loaded from. */
  readonly locate?: PolicyLocator;
  /** Overrides the content hash, e.g. with the control plane's snapshot version. */
  readonly version?: string;
}

const QUERY_TEXT_PRIVACY: readonly QueryTextMode[] = ['none', 'normalized', 'full'];

export function compilePolicies(docs: readonly DataAccessPolicy[], options: CompileOptions = {}): CompiledPolicySet | PolicyErrors {
  const errors: PolicyError[] = [];
  if (docs.length === 0) {
    return new PolicyErrors([new PolicyError({ policy: '-', path: '-', code: 'no_policies', summary: 'no DataAccessPolicy documents' })]);
  }
  const anyEnforced = docs.some((doc) => doc.spec.enforcement === 'enforce');
  const guardrails: CompiledGuardrail[] = [];
  const maskingRules: CompiledMaskingRule[] = [];
  const overridden = new Set<string>();

  for (const doc of docs) {
    const ref = policyRef(doc);
    const enforced = doc.spec.enforcement === 'enforce';
    doc.spec.guardrails.forEach((rule, index) => {
      const path = ['spec', 'guardrails', index];
      if (rule.name.startsWith(BUILTIN_PREFIX)) {
        if (!BUILTIN_NAMES.has(rule.name)) {
          errors.push(
            problem(doc, options, [...path, 'name'], {
              code: 'unknown_builtin',
              summary: `"${rule.name}" is not a built-in guardrail (built-ins: ${[...BUILTIN_NAMES].join(', ')})`,
              list: 'guardrails',
              index,
              rule: rule.name,
            }),
          );
          return;
        }
        if (enforced || !anyEnforced) overridden.add(rule.name);
      }
      const program = compileRule(doc, options, 'guardrail', rule, index, errors);
      if (program) guardrails.push(guardrail(rule, ref, enforced, false, program));
    });
    doc.spec.masking.rules.forEach((rule, index) => {
      const program = compileRule(doc, options, 'masking', rule, index, errors);
      if (program) maskingRules.push(maskingRule(rule, ref, program));
    });
  }
  for (const rule of BUILTIN_GUARDRAILS) {
    if (overridden.has(rule.name)) continue;
    const compiled = compileBuiltin(rule);
    guardrails.push(guardrail(rule, BUILTIN_POLICY, anyEnforced, true, compiled));
  }

  const environment = resolveEnvironment(docs, options, errors);
  if (errors.length > 0) return new PolicyErrors(errors);

  const refs = docs.map(policyRef);
  const timeoutMs = Math.min(...docs.map((doc) => parseDurationMs(doc.spec.approvals.timeout) ?? 600_000));
  const maskDefault = docs.some((doc) => doc.spec.masking.default === 'mask') ? 'mask' : 'reveal';
  const enforcement = anyEnforced ? (docs.every((doc) => doc.spec.enforcement === 'enforce') ? 'enforce' : 'mixed') : 'audit';
  return {
    kind: 'CompiledPolicySet',
    version: options.version ?? contentVersion(docs),
    policies: refs,
    environment,
    enforcement,
    unparseable: unparseableDecision(docs),
    classification: {
      automatic: docs.some((doc) => doc.spec.classification.automatic),
      columns: mergeClassified(docs.flatMap((doc) => doc.spec.classification.columns)),
    },
    // Predicate probing: deny wins when any document denies it.
    masking: { default: maskDefault, predicates: docs.some((doc) => doc.spec.masking.predicates === 'deny') ? 'deny' : 'allow' },
    approvals: { timeout: formatDurationMs(timeoutMs), timeoutMs },
    audit: {
      queryText: QUERY_TEXT_PRIVACY.find((mode) => docs.some((doc) => doc.spec.audit.queryText === mode)) ?? 'normalized',
    },
    guardrails,
    maskingRules,
    hasAuditGuardrails: guardrails.some((rule) => !rule.enforced),
    guardrailsReadText: guardrails.some((rule) => readsQueryText(rule.program)),
    maskingUsesQuery: maskingRules.some((rule) => referencesVariable(rule.program, 'query')),
    allowDecision: freezeDecision({ action: 'allow', reasons: ['no guardrail matched'], auditOnly: false }),
    maskDefaultDecision:
      maskDefault === 'mask'
        ? Object.freeze({ action: 'mask', mask: 'redact', reason: 'classified column, no masking rule matched: masking.default mask' })
        : Object.freeze({ action: 'reveal', mask: 'redact', reason: 'classified column, no masking rule matched: masking.default reveal' }),
    notClassifiedDecision: Object.freeze({ action: 'reveal', mask: 'redact', reason: 'column not classified and no masking rule matched' }),
    runtime: new PolicyRuntime(),
  };
}

export function isPolicyErrors(result: CompiledPolicySet | PolicyErrors): result is PolicyErrors {
  return result instanceof PolicyErrors;
}

interface ProblemDetails {
  code: string;
  summary: string;
  list?: 'guardrails' | 'masking.rules';
  index?: number;
  rule?: string;
  expression?: { line: number; column: number; excerpt: string };
}

function problem(doc: DataAccessPolicy, options: CompileOptions, path: readonly (string | number)[], details: ProblemDetails, cause?: unknown): PolicyError {
  return new PolicyError(
    {
      policy: policyRef(doc),
      path: path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join(''),
      source: options.locate?.(doc, path),
      ...details,
    },
    cause === undefined ? undefined : { cause },
  );
}

function compileRule(
  doc: DataAccessPolicy,
  options: CompileOptions,
  kind: RuleKind,
  rule: Guardrail | MaskingRule,
  index: number,
  errors: PolicyError[],
): CelProgram | undefined {
  const compiled = compileExpression(rule.when, kind);
  if (compiled.ok) return compiled.program;
  const { code, summary, start, end, cause } = compiled.problem;
  const list = kind === 'guardrail' ? 'guardrails' : 'masking.rules';
  const path = kind === 'guardrail' ? ['spec', 'guardrails', index, 'when'] : ['spec', 'masking', 'rules', index, 'when'];
  const at = lineColumn(rule.when, start);
  errors.push(
    problem(
      doc,
      options,
      path,
      { code, summary, list, index, rule: rule.name, expression: { ...at, excerpt: caretExcerpt(rule.when, start, end) } },
      cause,
    ),
  );
  return undefined;
}

function compileBuiltin(rule: Guardrail): CelProgram {
  const compiled = compileExpression(rule.when, 'guardrail');
  if (!compiled.ok) throw new Error(`built-in guardrail ${rule.name} does not compile: ${compiled.problem.summary}`, { cause: compiled.problem.cause });
  return compiled.program;
}

function freezeDecision(decision: Decision): Decision {
  Object.freeze(decision.reasons);
  return Object.freeze(decision);
}

function guardrail(rule: Guardrail, policy: string, enforced: boolean, builtin: boolean, program: CelProgram): CompiledGuardrail {
  const message = rule.message ?? `blocked by DataAccessPolicy ${policy}`;
  const origin = builtin ? rule.name : `${rule.name} (${policy})`;
  const decision = freezeDecision({
    action: rule.action,
    rule: rule.name,
    policy,
    ...(rule.action === 'allow' ? {} : { message }),
    reasons: [`guardrail ${origin} matched: ${rule.action}`],
    auditOnly: false,
  });
  const auditDecision =
    rule.action === 'allow'
      ? freezeDecision({ action: 'allow', rule: rule.name, policy, reasons: [`audit-only guardrail ${origin} matched: allow`], auditOnly: false })
      : freezeDecision({
          action: 'allow',
          rule: rule.name,
          policy,
          message,
          reasons: [`audit-only guardrail ${origin} matched: would ${rule.action}`],
          auditOnly: true,
          auditedAction: rule.action,
        });
  const { commands, environments } = ruleGuards(program);
  return Object.freeze({ name: rule.name, action: rule.action, policy, when: rule.when, message, enforced, builtin, program, commands, environments, decision, auditDecision });
}

function maskingRule(rule: MaskingRule, policy: string, program: CelProgram): CompiledMaskingRule {
  const mask: MaskName = rule.mask ?? 'redact';
  const decision: ColumnDecision = Object.freeze({
    action: rule.action,
    mask,
    rule: rule.name,
    policy,
    reason: `masking rule ${rule.name} (${policy}) matched: ${rule.action === 'mask' ? `mask ${mask}` : 'reveal'}`,
  });
  const { commands, environments } = ruleGuards(program);
  return Object.freeze({ name: rule.name, action: rule.action, mask, policy, when: rule.when, program, commands, environments, decision });
}

function resolveEnvironment(docs: readonly DataAccessPolicy[], options: CompileOptions, errors: PolicyError[]): string | undefined {
  let first: DataAccessPolicy | undefined;
  for (const doc of docs) {
    const value = doc.spec.environment;
    if (value === undefined) continue;
    if (first === undefined) first = doc;
    else if (first.spec.environment !== value) {
      errors.push(
        problem(doc, options, ['spec', 'environment'], {
          code: 'conflicting_environment',
          summary: `environment "${value}" conflicts with "${first.spec.environment ?? ''}" of DataAccessPolicy ${policyRef(first)}`,
        }),
      );
    }
  }
  return first?.spec.environment;
}

function unparseableDecision(docs: readonly DataAccessPolicy[]): Decision {
  const enforcedDeny = docs.find((doc) => doc.spec.enforcement === 'enforce' && doc.spec.unparseable === 'deny');
  if (enforcedDeny) {
    return freezeDecision({
      action: 'deny',
      rule: 'unparseable',
      policy: policyRef(enforcedDeny),
      message: 'statement not understood',
      reasons: [`statement not understood: unparseable deny (${policyRef(enforcedDeny)})`],
      auditOnly: false,
    });
  }
  const auditedDeny = docs.find((doc) => doc.spec.unparseable === 'deny');
  if (auditedDeny) {
    return freezeDecision({
      action: 'allow',
      rule: 'unparseable',
      policy: policyRef(auditedDeny),
      message: 'statement not understood',
      reasons: [`statement not understood: unparseable deny (${policyRef(auditedDeny)}), audit only`],
      auditOnly: true,
      auditedAction: 'deny',
    });
  }
  return freezeDecision({ action: 'allow', rule: 'unparseable', reasons: ['statement not understood: unparseable allow'], auditOnly: false });
}

function mergeClassified(columns: readonly ClassifiedColumn[]): readonly ClassifiedColumn[] {
  const merged = new Map<string, ClassifiedColumn>();
  for (const entry of columns) {
    const key = `${entry.table}\u0000${entry.column}`;
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, { table: entry.table, column: entry.column, classes: [...new Set(entry.classes)] });
    else merged.set(key, { ...seen, classes: [...new Set([...seen.classes, ...entry.classes])] });
  }
  return Object.freeze([...merged.values()]);
}

function contentVersion(docs: readonly DataAccessPolicy[]): string {
  const hash = createHash('sha256');
  for (const doc of docs) hash.update(JSON.stringify([policyRef(doc), doc.metadata.generation ?? null, doc.spec])).update('\n');
  return hash.digest('hex').slice(0, 16);
}
