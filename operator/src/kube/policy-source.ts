import type { DataAccessPolicy } from '@dbward/sidecar/api';
import type { PolicySource, ReadyPolicy } from '../controlplane/ports.js';
import { observePolicy } from '../controller/observe.js';
import type { Informer } from './informer.js';
import type { KubeObject } from './rest.js';

/**
 * PolicySource over the DataAccessPolicy informer. Every replica compiles what it sees with the
 * sidecar's compiler (the same check that sets the Ready condition, so it agrees with the leader's
 * status without waiting for it), and keeps the last generation that compiled: a policy edited into
 * an invalid state keeps being served at its last Ready generation (last-known-good, ADR 0016) until
 * it is fixed or deleted.
 */
export class KubePolicySource implements PolicySource {
  private readonly ready = new Map<string, Map<string, ReadyPolicy>>();
  private readonly listeners = new Set<(namespace: string) => void>();
  private readonly compiled = new Map<string, { uid: string | undefined; generation: number | undefined }>();

  constructor(informer: Informer<KubeObject>, private readonly onError: (error: unknown) => void = () => undefined) {
    for (const obj of informer.list()) this.update(obj);
    informer.onEvent((event, obj) => {
      const changed = event === 'delete' ? this.remove(obj) : this.update(obj);
      if (changed) this.notify(obj.metadata.namespace ?? '');
    });
  }

  list(namespace: string): readonly ReadyPolicy[] {
    const byName = this.ready.get(namespace);
    if (byName === undefined) return [];
    return [...byName.values()].sort((a, b) => a.policy.metadata.name.localeCompare(b.policy.metadata.name));
  }

  onChange(listener: (namespace: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** True when the served set changed. */
  private update(obj: KubeObject): boolean {
    const namespace = obj.metadata.namespace ?? '';
    // The spec only changes with the generation: status writes (every reconcile) need no compile.
    const key = `${namespace}/${obj.metadata.name}`;
    const seen = this.compiled.get(key);
    if (seen !== undefined && seen.uid === obj.metadata.uid && seen.generation === obj.metadata.generation) return false;
    const obs = observePolicy(obj);
    this.compiled.set(key, { uid: obj.metadata.uid, generation: obj.metadata.generation });
    if (!obs.ready) return false; // last-known-good stays
    const byName = this.ready.get(namespace) ?? new Map<string, ReadyPolicy>();
    this.ready.set(namespace, byName);
    const old = byName.get(obj.metadata.name);
    if (old !== undefined && old.generation === obs.generation && sameSpec(old.policy, obs.policy)) return false;
    byName.set(obj.metadata.name, { policy: obs.policy, generation: obs.generation, resourceVersion: obj.metadata.resourceVersion ?? '' });
    return true;
  }

  private remove(obj: KubeObject): boolean {
    this.compiled.delete(`${obj.metadata.namespace ?? ''}/${obj.metadata.name}`);
    const byName = this.ready.get(obj.metadata.namespace ?? '');
    const had = byName?.delete(obj.metadata.name) ?? false;
    if (byName?.size === 0) this.ready.delete(obj.metadata.namespace ?? '');
    return had;
  }

  private notify(namespace: string): void {
    for (const l of [...this.listeners]) {
      try {
        l(namespace);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}

function sameSpec(a: DataAccessPolicy, b: DataAccessPolicy): boolean {
  return JSON.stringify(a.spec) === JSON.stringify(b.spec);
}
