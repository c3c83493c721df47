import { ParseError, TypeError as CelTypeError, type ASTNode } from '@marcbachmann/cel-js';
import { MAX_EXPRESSION_BYTES } from '../api/v1alpha1/index.js';
import { celEnvironment, type CelProgram, type RuleKind } from './cel-env.js';
import { screenPattern } from './regex-screen.js';

/**
 * Compiles one `when` expression: size bound, parse, type check (result must be bool), then a
 * screen for constructs whose evaluation cost is not bounded by the statement size (cel-js has no
 * runtime cost budget): nested comprehensions and unsafe `matches()` patterns.
 */

/** Comprehension macros: each iterates over a list. */
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** One level of comprehension keeps cost linear in the list sizes; nesting would make it a product. */
export const MAX_COMPREHENSION_DEPTH = 1;

export interface ExpressionProblem {
  readonly code: string;
  readonly summary: string;
  /** Offsets in the expression (UTF-16 code units). */
  readonly start: number;
  readonly end: number;
  readonly cause?: unknown;
}

export type CompiledExpression = { readonly ok: true; readonly program: CelProgram } | { readonly ok: false; readonly problem: ExpressionProblem };

const utf8 = new TextEncoder();

export function compileExpression(source: string, kind: RuleKind): CompiledExpression {
  const bytes = utf8.encode(source).length;
  if (bytes > MAX_EXPRESSION_BYTES) {
    return fail('expression_too_long', `expression is ${bytes} bytes, at most ${MAX_EXPRESSION_BYTES} are allowed`, MAX_EXPRESSION_BYTES, source.length);
  }
  if (!/\S/.test(source)) return fail('blank_expression', 'expression is empty', 0, 0);

  let program: CelProgram;
  try {
    program = celEnvironment(kind).parse(source);
  } catch (error) {
    return fromCelError(error, source, kind);
  }
  const checked = program.check();
  if (!checked.valid) return fromCelError(checked.error, source, kind);
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return fail('not_bool', `expression must be bool, it is ${checked.type ?? 'unknown'}`, program.ast.range.start, program.ast.range.end);
  }
  const problem = screen(program.ast, 0);
  if (problem) return { ok: false, problem };
  return { ok: true, program };
}

function fail(code: string, summary: string, start: number, end: number, cause?: unknown): CompiledExpression {
  return { ok: false, problem: { code, summary, start, end, cause } };
}

function fromCelError(error: unknown, source: string, kind: RuleKind): CompiledExpression {
  if (error instanceof ParseError || error instanceof CelTypeError) {
    const start = error.range?.start ?? 0;
    const end = error.range?.end ?? start + 1;
    let summary = error.summary;
    if (error.code === 'unknown_variable' && kind === 'guardrail' && /\bcolumn\b/.test(summary)) {
      summary = `${summary} (column is only available in masking rules)`;
    } else if (error.code === 'unknown_variable') {
      summary = `${summary} (variables: identity, environment, query${kind === 'masking' ? ', column' : ''})`;
    }
    return fail(error.code, summary, start, Math.max(end, start + 1), error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return fail('invalid_expression', message, 0, source.length, error);
}

function isNode(value: unknown): value is ASTNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value && 'range' in value;
}

/** Visits every direct child node of an argument payload (nodes, arrays of nodes, map entries). */
function forEachChild(args: unknown, visit: (node: ASTNode) => ExpressionProblem | undefined): ExpressionProblem | undefined {
  if (isNode(args)) return visit(args);
  if (Array.isArray(args)) {
    for (const item of args as unknown[]) {
      const problem = forEachChild(item, visit);
      if (problem) return problem;
    }
  }
  return undefined;
}

function screen(node: ASTNode, depth: number): ExpressionProblem | undefined {
  if (node.op === 'rcall') {
    const [name, receiver, args] = node.args;
    if (COMPREHENSIONS.has(name)) {
      if (depth >= MAX_COMPREHENSION_DEPTH) {
        return {
          code: 'nested_comprehension',
          summary: `${name}() inside another comprehension: nested comprehensions are not allowed (their cost multiplies); use "in" on a list literal instead`,
          start: node.range.start,
          end: node.range.end,
        };
      }
      return screen(receiver, depth) ?? forEachChild(args, (child) => screen(child, depth + 1));
    }
    if (name === 'matches') {
      const pattern = args[0];
      if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
        const at = pattern?.range ?? node.range;
        return { code: 'regex_not_literal', summary: 'matches() needs a string literal pattern, so that it can be checked when the policy is loaded', start: at.start, end: at.end };
      }
      const why = screenPattern(pattern.args);
      if (why) return { code: 'unsafe_regex', summary: `matches(): ${why}`, start: pattern.range.start, end: pattern.range.end };
    }
  }
  return forEachChild(node.args, (child) => screen(child, depth));
}

/** True when the expression mentions the variable `name` anywhere (over-approximates shadowing). */
export function referencesVariable(program: CelProgram, name: string): boolean {
  const visit = (node: ASTNode): ExpressionProblem | undefined =>
    node.op === 'id' && node.args === name ? { code: 'found', summary: '', start: 0, end: 0 } : forEachChild(node.args, visit);
  return visit(program.ast) !== undefined;
}

/**
 * Values a rule can only match with, read from its top-level `&&` conjuncts:
 * `query.command == "DELETE"`, `query.command in ["DROP TABLE", ...]`, `environment == "production"`.
 * When such a conjunct is false the whole conjunction is false (CEL's `&&` absorbs errors of the
 * other side), so skipping the rule without evaluating it decides exactly the same.
 */
export interface RuleGuards {
  readonly commands?: ReadonlySet<string>;
  readonly environments?: ReadonlySet<string>;
}

function stringLiteral(node: ASTNode): string | undefined {
  return node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
}

function isQueryCommand(node: ASTNode): boolean {
  return node.op === '.' && node.args[1] === 'command' && node.args[0].op === 'id' && node.args[0].args === 'query';
}

function isEnvironment(node: ASTNode): boolean {
  return node.op === 'id' && node.args === 'environment';
}

function conjuncts(node: ASTNode, out: ASTNode[]): ASTNode[] {
  if (node.op === '&&') {
    conjuncts(node.args[0], out);
    conjuncts(node.args[1], out);
  } else {
    out.push(node);
  }
  return out;
}

function intersect(current: Set<string> | undefined, values: readonly string[]): Set<string> {
  return new Set(current === undefined ? values : values.filter((v) => current.has(v)));
}

export function ruleGuards(program: CelProgram): RuleGuards {
  let commands: Set<string> | undefined;
  let environments: Set<string> | undefined;
  for (const node of conjuncts(program.ast, [])) {
    if (node.op === '==') {
      const [left, right] = node.args;
      const literal = stringLiteral(right) ?? stringLiteral(left);
      if (literal === undefined) continue;
      if (isQueryCommand(left) || isQueryCommand(right)) commands = intersect(commands, [literal]);
      else if (isEnvironment(left) || isEnvironment(right)) environments = intersect(environments, [literal]);
    } else if (node.op === 'in') {
      const [left, right] = node.args;
      if (right.op !== 'list') continue;
      const values = right.args.map(stringLiteral);
      if (values.some((v) => v === undefined)) continue;
      const literals = values as string[];
      if (isQueryCommand(left)) commands = intersect(commands, literals);
      else if (isEnvironment(left)) environments = intersect(environments, literals);
    }
  }
  return { ...(commands ? { commands } : {}), ...(environments ? { environments } : {}) };
}

/**
 * True when the expression may read `query.text`: a `query.text` select, or `query` used as a
 * whole (passed to a function, indexed), which is treated as reading everything.
 */
export function readsQueryText(program: CelProgram): boolean {
  const visit = (node: ASTNode): ExpressionProblem | undefined => {
    if ((node.op === '.' || node.op === '.?') && node.args[0].op === 'id' && node.args[0].args === 'query') {
      return node.args[1] === 'text' ? FOUND : undefined;
    }
    if (node.op === 'id') return node.args === 'query' ? FOUND : undefined;
    return forEachChild(node.args, visit);
  };
  return visit(program.ast) !== undefined;
}

const FOUND: ExpressionProblem = { code: 'found', summary: '', start: 0, end: 0 };
