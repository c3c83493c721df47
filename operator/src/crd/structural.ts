/**
 * JSON Schema (as produced by zod 4's `z.toJSONSchema`, draft 2020-12) → a Kubernetes *structural*
 * OpenAPI v3 schema (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * a type on every node, no `$ref`/`$defs`, no `const`, no `propertyNames`, `additionalProperties`
 * only as a map value schema (never beside `properties`; unknown fields are pruned instead), no
 * patterns Go's RE2 cannot compile (zod's date-time pattern: `format: date-time` checks it).
 */

export type JsonSchema = { [key: string]: unknown };

export class SchemaConversionError extends Error {
  override readonly name = 'SchemaConversionError';
  constructor(path: string, message: string) {
    super(`${path || '<root>'}: ${message}`);
  }
}

const DROPPED = new Set(['$schema', '$id', 'propertyNames', 'examples', 'title', '$comment']);
const PASSED = new Set([
  'type', 'description', 'default', 'enum', 'format', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'required', 'nullable', 'uniqueItems', 'minProperties', 'maxProperties',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-validations', 'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource', 'x-kubernetes-map-type',
]);
/** Constructs that never reach the structural schema. */
const REJECTED = ['$ref', '$defs', 'definitions', 'anyOf', 'oneOf', 'allOf', 'not', 'if', 'then', 'else', 'prefixItems', 'patternProperties'];
/** Go/RE2 has no lookaround and no backreferences. */
const NOT_RE2 = /\(\?[=!<]|\\[1-9]/;
const SAFE_INT = Number.MAX_SAFE_INTEGER;

export function toStructural(schema: JsonSchema, path = ''): JsonSchema {
  for (const key of REJECTED) {
    if (key in schema) throw new SchemaConversionError(path, `"${key}" has no structural equivalent; simplify the zod schema`);
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED.has(key) || key === 'properties' || key === 'items' || key === 'additionalProperties' || key === 'const') continue;
    if (!PASSED.has(key)) throw new SchemaConversionError(path, `unsupported JSON Schema keyword "${key}"`);
    out[key] = value;
  }
  if ('const' in schema) out['enum'] = [schema['const']];
  if (out['type'] === undefined) throw new SchemaConversionError(path, 'every node needs a type');
  if (out['format'] === 'date-time') delete out['pattern'];
  if (typeof out['pattern'] === 'string' && NOT_RE2.test(out['pattern'])) {
    throw new SchemaConversionError(path, `pattern ${out['pattern']} uses lookaround or backreferences (not RE2)`);
  }
  if (out['type'] === 'integer') {
    if (out['maximum'] === SAFE_INT) delete out['maximum'];
    if (out['minimum'] === -SAFE_INT) delete out['minimum'];
    out['format'] ??= 'int64';
  }
  const properties = schema['properties'] as Record<string, JsonSchema> | undefined;
  const additional = schema['additionalProperties'];
  if (properties !== undefined) {
    const converted: Record<string, JsonSchema> = {};
    for (const [name, child] of Object.entries(properties)) converted[name] = toStructural(child, `${path}.${name}`);
    out['properties'] = converted;
    if (Array.isArray(out['required']) && out['required'].length === 0) delete out['required'];
  } else if (additional !== undefined && additional !== false) {
    if (additional === true || Object.keys(additional as object).length === 0) out['x-kubernetes-preserve-unknown-fields'] = true;
    else out['additionalProperties'] = toStructural(additional as JsonSchema, `${path}[*]`);
  }
  if (schema['items'] !== undefined) out['items'] = toStructural(schema['items'] as JsonSchema, `${path}[]`);
  if (out['type'] === 'array' && out['items'] === undefined) throw new SchemaConversionError(path, 'arrays need items');
  return out;
}

/** Adds an `x-kubernetes-validations` rule at a dotted path of properties (`spec.masking.rules[]`). */
export function addValidation(schema: JsonSchema, path: string, rule: { rule: string; message: string; fieldPath?: string; reason?: string }): void {
  let node: JsonSchema = schema;
  for (const part of path.split('.').filter(Boolean)) {
    const isItems = part.endsWith('[]');
    const name = isItems ? part.slice(0, -2) : part;
    const next = (node['properties'] as Record<string, JsonSchema> | undefined)?.[name];
    if (next === undefined) throw new SchemaConversionError(path, `no property ${name}`);
    node = next;
    if (isItems) {
      const items = node['items'] as JsonSchema | undefined;
      if (items === undefined) throw new SchemaConversionError(path, `${name} is not an array`);
      node = items;
    }
  }
  const list = (node['x-kubernetes-validations'] as unknown[] | undefined) ?? [];
  list.push(rule);
  node['x-kubernetes-validations'] = list;
}
