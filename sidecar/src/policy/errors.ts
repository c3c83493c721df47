import type { SourcePosition } from './types.js';

/**
 * Errors of policy compilation: every one names the policy, the rule list and rule, and the
 * position inside the `when` expression with a caret excerpt (SPEC §2).
 */

/** 1-based line and column of a character offset within a text. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/**
 * The line of `text` holding `start`, with a caret under `start` and `~` up to `end` (clipped to the
 * line):
 * ```
 *     2 |   query.command == 3
 *       |   ^~~~~~~~~~~~~~~~~~
 * ```
 */
export function caretExcerpt(text: string, start: number, end = start + 1): string {
  const { line, column } = lineColumn(text, start);
  const lineStart = start - (column - 1);
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd < 0) lineEnd = text.length;
  const source = text.slice(lineStart, lineEnd).replace(/\t/g, ' ');
  const width = Math.max(1, Math.min(end, lineEnd) - start);
  const gutter = String(line).padStart(5);
  return `${gutter} | ${source}\n${' '.repeat(gutter.length)} | ${' '.repeat(column - 1)}^${'~'.repeat(width - 1)}`;
}

export type PolicyErrorCode =
  /** cel-js codes (`no_such_overload`, `unknown_variable`, `no_such_key`, `unexpected_token`, ...) pass through. */
  | (string & {})
  | 'blank_expression'
  | 'expression_too_long'
  | 'not_bool'
  | 'nested_comprehension'
  | 'regex_not_literal'
  | 'unsafe_regex'
  | 'unknown_builtin'
  | 'conflicting_environment'
  | 'no_policies';

export interface PolicyErrorDetails {
  /** `namespace/name` of the DataAccessPolicy. */
  readonly policy: string;
  /** Path of the offending field, `spec.guardrails[0].when`. */
  readonly path: string;
  readonly code: PolicyErrorCode;
  /** One line, without positions. */
  readonly summary: string;
  readonly list?: 'guardrails' | 'masking.rules';
  readonly index?: number;
  readonly rule?: string;
  /** Position inside the `when` expression (1-based). */
  readonly expression?: { readonly line: number; readonly column: number; readonly excerpt: string };
  /** Position of the field in the policy file, when the policy was loaded from one. */
  readonly source?: SourcePosition;
}

/** One problem in one policy document. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly policy: string;
  readonly path: string;
  readonly code: PolicyErrorCode;
  readonly summary: string;
  readonly list: 'guardrails' | 'masking.rules' | undefined;
  readonly index: number | undefined;
  readonly rule: string | undefined;
  readonly expression: PolicyErrorDetails['expression'];
  readonly source: SourcePosition | undefined;

  constructor(details: PolicyErrorDetails, options?: ErrorOptions) {
    super(formatPolicyError(details), options);
    this.policy = details.policy;
    this.path = details.path;
    this.code = details.code;
    this.summary = details.summary;
    this.list = details.list;
    this.index = details.index;
    this.rule = details.rule;
    this.expression = details.expression;
    this.source = details.source;
  }

  /** The first line of the message: what a one-line log or `exit 2` error shows. */
  get headline(): string {
    return this.message.split('\n', 1)[0] ?? this.message;
  }
}

function formatPolicyError(d: PolicyErrorDetails): string {
  const where = d.source ? `${d.source.file}:${d.source.line}:${d.source.column}: ` : '';
  const what = d.rule !== undefined && d.list !== undefined ? `${d.list === 'guardrails' ? 'guardrail' : 'masking rule'} "${d.rule}" (${d.path})` : d.path;
  const at = d.expression ? ` at ${d.expression.line}:${d.expression.column}` : '';
  const head = `${where}DataAccessPolicy ${d.policy}: ${what}${at}: ${d.summary}`;
  return d.expression ? `${head}\n${d.expression.excerpt}` : head;
}

/** Every problem found while compiling a set of policies; nothing of the set is usable. */
export class PolicyErrors extends Error {
  override readonly name = 'PolicyErrors';
  constructor(readonly errors: readonly PolicyError[]) {
    super(
      errors.length === 1
        ? (errors[0]?.message ?? 'invalid policy')
        : `${errors.length} policy errors:\n${errors.map((e) => e.message).join('\n')}`,
      { cause: errors[0] },
    );
  }
}
