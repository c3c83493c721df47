/** RFC 6902 JSON Patch: the operations the webhook emits (add, replace, remove), and an applier for tests and for computing the injected pod. */

export type JsonPatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** Escapes one path segment (RFC 6901). */
export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

export class JsonPatchError extends Error {
  override readonly name = 'JsonPatchError';
}

/** Applies `patch` to a deep copy of `doc`. */
export function applyPatch<T>(doc: T, patch: readonly JsonPatchOp[]): T {
  const root = { doc: structuredClone(doc) as unknown };
  for (const op of patch) {
    const parts = op.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let parent: unknown = root;
    let key: string = 'doc';
    for (const part of parts) {
      parent = (parent as Record<string, unknown>)[key];
      key = part;
      if (parent === null || typeof parent !== 'object') throw new JsonPatchError(`${op.op} ${op.path}: parent missing`);
    }
    if (Array.isArray(parent)) {
      const index = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new JsonPatchError(`${op.op} ${op.path}: bad index`);
      if (op.op === 'add') parent.splice(index, 0, op.value);
      else if (op.op === 'replace') parent[index] = op.value;
      else parent.splice(index, 1);
    } else {
      const obj = parent as Record<string, unknown>;
      if (op.op !== 'add' && !(key in obj)) throw new JsonPatchError(`${op.op} ${op.path}: no such member`);
      if (op.op === 'remove') delete obj[key];
      else obj[key] = op.value;
    }
  }
  return root.doc as T;
}
