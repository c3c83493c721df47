import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { DataAccessPolicySchema, formatPath, type DataAccessPolicy } from '../api/v1alpha1/index.js';
import type { PolicyLocator, SourcePosition } from './types.js';

/**
 * Policy files: YAML text (one or more `---`-separated documents, JSON works too) → validated
 * DataAccessPolicy documents with every default applied. Pure: text in, documents or errors out.
 * Errors point at the file line of the offending node:
 * `policy.yaml:14: spec.guardrails[2].action: expected one of deny|requireApproval|allow`.
 */

/** A problem in a policy file, with its position. */
export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError';
  constructor(
    readonly file: string,
    /** 1-based; 0 when unknown. */
    readonly line: number,
    readonly column: number,
    /** `spec.guardrails[2].action`; empty for problems of the document as a whole. */
    readonly path: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`${line > 0 ? `${file}:${line}` : file}: ${path === '' ? '' : `${path}: `}${detail}`, options);
  }
}

export type LoadResult =
  | { readonly ok: true; readonly policies: readonly DataAccessPolicy[]; readonly locate: PolicyLocator }
  | { readonly ok: false; readonly errors: readonly PolicyLoadError[] };

interface SourceDoc {
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;
}

/** Where each loaded document came from; shared by every locator, weak so documents can go. */
const sources = new WeakMap<object, SourceDoc>();

/** Finds the position of `path` in the file a document was loaded from (compile.ts uses it for CEL errors). */
export const locatePolicyPath: PolicyLocator = (policy, path) => {
  const source = sources.get(policy);
  if (source === undefined) return undefined;
  const node = deepestNode(source.doc, path);
  return node ? position(source, node.range?.[0] ?? 0) : undefined;
};

export function loadPolicies(text: string, file = '<policy>'): LoadResult {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const docs = Array.isArray(parsed) ? parsed : [];
  const errors: PolicyLoadError[] = [];
  const policies: DataAccessPolicy[] = [];

  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const at = lines.linePos(error.pos[0]);
        errors.push(new PolicyLoadError(file, at.line, at.col, '', `invalid YAML: ${error.message.split('\n', 1)[0] ?? error.message}`, { cause: error }));
      }
      continue;
    }
    // Empty documents (`---` with nothing after it) are skipped.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    const source: SourceDoc = { file, doc, lines };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      const at = position(source, doc.contents.range[0]);
      errors.push(new PolicyLoadError(file, at.line, at.column, '', `invalid YAML: ${(error as Error).message}`, { cause: error }));
      continue;
    }
    const result = DataAccessPolicySchema.safeParse(value, { reportInput: true });
    if (result.success) {
      sources.set(result.data, source);
      policies.push(result.data);
    } else {
      for (const issue of result.error.issues) errors.push(...issueErrors(source, issue));
    }
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  if (errors.length === 0 && policies.length === 0) {
    errors.push(new PolicyLoadError(file, 1, 1, '', 'no DataAccessPolicy documents'));
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, policies, locate: locatePolicyPath };
}

function position(source: SourceDoc, offset: number): SourcePosition {
  const at = source.lines.linePos(offset);
  return { file: source.file, line: Math.max(at.line, 1), column: Math.max(at.col, 1) };
}

/** The node at `path`, or the deepest node on the way there when the path does not exist. */
function deepestNode(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) next = node.items.find((pair) => isScalar(pair.key) && pair.key.value === key)?.value;
    else if (isSeq(node) && typeof key === 'number') next = node.items[key];
    if (!isNode(next)) break;
    node = next;
  }
  return isNode(node) ? node : undefined;
}

/** The key node of `key` inside the map at `path` (for unknown fields). */
function keyNode(doc: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  const map = deepestNode(doc, path);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key);
  return isNode(pair?.key) ? pair.key : undefined;
}

function issueErrors(source: SourceDoc, issue: z.core.$ZodIssue): PolicyLoadError[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const node = keyNode(source.doc, issue.path, key) ?? deepestNode(source.doc, issue.path);
      const at = position(source, node?.range?.[0] ?? 0);
      const suggestion = closest(key, knownFields(issue.path));
      return new PolicyLoadError(source.file, at.line, at.column, formatPath([...issue.path, key]), suggestion ? `unknown field (did you mean ${suggestion}?)` : 'unknown field');
    });
  }
  const node = deepestNode(source.doc, issue.path);
  const at = position(source, node?.range?.[0] ?? 0);
  return [new PolicyLoadError(source.file, at.line, at.column, formatPath(issue.path), describeIssue(issue))];
}

const TYPE_NAMES: Readonly<Record<string, string>> = { int: 'integer', number: 'number', object: 'mapping', array: 'list', record: 'mapping' };

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

/** One line per zod issue, in the words of the YAML the user wrote. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return issue.values.length === 1 ? `expected ${String(issue.values[0])}` : `expected one of ${issue.values.map(String).join('|')}`;
    case 'invalid_type': {
      if (issue.input === undefined) return 'required';
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return `expected ${expected}, got ${typeOf(issue.input)}`;
    }
    case 'too_small':
      if (issue.origin === 'string' && issue.minimum === 1) return 'must not be empty';
      if (issue.origin === 'array') return `must have at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === 'string') return `must be at least ${String(issue.minimum)} characters`;
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} items`;
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} characters`;
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_format':
      return issue.format === 'regex' && issue.message.startsWith('Invalid string') ? `must match ${issue.pattern ?? 'its pattern'}` : issue.message;
    default:
      return issue.message;
  }
}

/** Field names the schema allows at `path` (for "did you mean"). */
function knownFields(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = DataAccessPolicySchema;
  const unwrap = (s: z.ZodType): z.ZodType => (s instanceof z.ZodDefault || s instanceof z.ZodOptional ? unwrap(s.unwrap() as z.ZodType) : s);
  for (const key of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject && typeof key === 'string') schema = (schema.shape as Record<string, z.ZodType>)[key] ?? z.never();
    else if (schema instanceof z.ZodArray && typeof key === 'number') schema = schema.element as z.ZodType;
    else return [];
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as object) : [];
}

/** The known name within edit distance 2 of `name` (typos such as enforcment, guardrail). */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
