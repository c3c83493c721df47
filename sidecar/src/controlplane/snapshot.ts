import type { DataAccessPolicy } from '../api/v1alpha1/index.js';
import { compilePolicies, isPolicyErrors, type CompiledPolicySet } from '../policy/compile.js';
import { loadPolicies, locatePolicyPath } from '../policy/load.js';
import type { Snapshot, WorkloadIdentity } from './proto.js';

/**
 * A snapshot from the control plane → a compiled policy set, with the sidecar's own loader and
 * compiler (the same code as `--policy` files), or the reasons it cannot be used. Pure.
 *
 * A snapshot with no policies is valid: no DataAccessPolicy selects this pod (any more), so the
 * sidecar has no policy and refuses new connections (fail closed) until one does.
 */
export type CompiledSnapshot =
  | { ok: true; version: string; set: CompiledPolicySet | undefined; identity: WorkloadIdentity; policies: readonly string[] }
  | { ok: false; version: string; error: string };

export function compileSnapshot(snapshot: Snapshot): CompiledSnapshot {
  const version = snapshot.version;
  if (version === '') return { ok: false, version, error: 'the snapshot has no version' };
  if (snapshot.identity === null || snapshot.identity.namespace === '') return { ok: false, version, error: 'the snapshot carries no workload identity' };
  const identity = snapshot.identity;
  if (snapshot.policies.length === 0) return { ok: true, version, set: undefined, identity, policies: [] };
  const docs: DataAccessPolicy[] = [];
  const errors: string[] = [];
  for (const doc of snapshot.policies) {
    const loaded = loadPolicies(doc.json, `${identity.namespace}/${doc.name}`);
    if (!loaded.ok) errors.push(...loaded.errors.map((e) => e.message));
    else docs.push(...loaded.policies);
  }
  if (errors.length === 0) {
    const compiled = compilePolicies(docs, { locate: locatePolicyPath, version });
    if (!isPolicyErrors(compiled)) return { ok: true, version, set: compiled, identity, policies: compiled.policies };
    errors.push(...compiled.errors.map((e) => e.message));
  }
  return { ok: false, version, error: errors.slice(0, 20).join('\n') };
}
