import { randomBytes } from 'node:crypto';
import { DataAccessPolicySchema, type AccessRequestSpec, type AccessRequestStatus, type DataAccessPolicy, type DataAccessPolicyInput } from '@dbward/sidecar/api';
import {
  ControlPlaneAuthError,
  type AccessRequestStore,
  type PodLookup,
  type PolicySource,
  type ReadyPolicy,
  type RejectionSink,
  type SidecarIdentity,
  type TokenVerifier,
} from './ports.js';

/**
 * In-memory implementations of the control-plane ports: for tests, the scale benchmark, and a
 * control plane run without Kubernetes. Each behaves as its Kubernetes counterpart promises
 * (see ports.ts); mutators (`set`, `apply`, `approve`, ...) stand in for the API server.
 */

export class MemoryTokenVerifier implements TokenVerifier {
  readonly #tokens = new Map<string, SidecarIdentity>();
  /** Tokens verified so far (successes and failures), newest last. */
  readonly calls: string[] = [];

  /** Registers a token for a sidecar; returns the token. */
  issue(identity: SidecarIdentity, token = `tok-${randomBytes(12).toString('hex')}`): string {
    this.#tokens.set(token, identity);
    return token;
  }

  revoke(token: string): void {
    this.#tokens.delete(token);
  }

  verify(token: string): Promise<SidecarIdentity> {
    this.calls.push(token);
    const identity = this.#tokens.get(token);
    return identity === undefined
      ? Promise.reject(new ControlPlaneAuthError('the token is not valid (unknown, expired or revoked)'))
      : Promise.resolve(identity);
  }
}

export class MemoryPodLookup implements PodLookup {
  readonly #pods = new Map<string, Readonly<Record<string, string>>>();
  readonly #listeners = new Set<(namespace: string, pod: string) => void>();

  /** Creates or relabels a pod. */
  set(namespace: string, pod: string, labels: Readonly<Record<string, string>>): void {
    const key = `${namespace}/${pod}`;
    const existed = this.#pods.has(key);
    this.#pods.set(key, { ...labels });
    if (existed) for (const listener of this.#listeners) listener(namespace, pod);
  }

  delete(namespace: string, pod: string): void {
    if (this.#pods.delete(`${namespace}/${pod}`)) for (const listener of this.#listeners) listener(namespace, pod);
  }

  onChange(listener: (namespace: string, pod: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  labels(namespace: string, pod: string): Promise<Readonly<Record<string, string>> | undefined> {
    return Promise.resolve(this.#pods.get(`${namespace}/${pod}`));
  }
}

/** Ready policies per namespace; `apply` validates (defaults applied) and bumps the generation like the API server. */
export class MemoryPolicySource implements PolicySource {
  readonly #namespaces = new Map<string, Map<string, ReadyPolicy>>();
  readonly #listeners = new Set<(namespace: string) => void>();
  #resourceVersion = 0;

  /** Creates or replaces a policy (as if it became Ready); throws a ZodError for an invalid document. */
  apply(input: DataAccessPolicyInput | DataAccessPolicy): ReadyPolicy {
    const policy = DataAccessPolicySchema.parse(input);
    const namespace = policy.metadata.namespace;
    if (namespace === undefined) throw new Error(`policy ${policy.metadata.name} has no metadata.namespace`);
    const policies = this.#namespaces.get(namespace) ?? new Map<string, ReadyPolicy>();
    this.#namespaces.set(namespace, policies);
    const previous = policies.get(policy.metadata.name);
    const samespec = previous !== undefined && JSON.stringify(previous.policy.spec) === JSON.stringify(policy.spec);
    const generation = previous === undefined ? 1 : samespec ? previous.generation : previous.generation + 1;
    const ready: ReadyPolicy = {
      policy: { ...policy, metadata: { ...policy.metadata, generation } },
      generation,
      resourceVersion: String(++this.#resourceVersion),
    };
    policies.set(policy.metadata.name, ready);
    this.#emit(namespace);
    return ready;
  }

  /** Removes a policy (deleted, or no longer Ready). */
  delete(namespace: string, name: string): boolean {
    const removed = this.#namespaces.get(namespace)?.delete(name) ?? false;
    if (removed) this.#emit(namespace);
    return removed;
  }

  list(namespace: string): readonly ReadyPolicy[] {
    const policies = this.#namespaces.get(namespace);
    if (policies === undefined) return [];
    return [...policies.values()].sort((a, b) => a.policy.metadata.name.localeCompare(b.policy.metadata.name));
  }

  onChange(listener: (namespace: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(namespace: string): void {
    for (const listener of this.#listeners) listener(namespace);
  }
}

export interface RejectionRecord {
  namespace: string;
  policies: readonly string[];
  version: string;
  error: string;
  sidecar: SidecarIdentity;
}

export class MemoryRejectionSink implements RejectionSink {
  readonly records: RejectionRecord[] = [];
  readonly #listeners = new Set<(record: RejectionRecord) => void>();

  rejected(namespace: string, policies: readonly string[], version: string, error: string, sidecar: SidecarIdentity): void {
    const record = { namespace, policies: [...policies], version, error, sidecar };
    this.records.push(record);
    for (const listener of this.#listeners) listener(record);
  }

  onRecord(listener: (record: RejectionRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface MemoryAccessRequest {
  namespace: string;
  name: string;
  spec: AccessRequestSpec;
  status: AccessRequestStatus;
}

export class AccessRequestNotFound extends Error {
  override readonly name = 'AccessRequestNotFound';
}

/** AccessRequests in memory; `approve` / `deny` play `kubectl dbward approve|deny`. */
export class MemoryAccessRequestStore implements AccessRequestStore {
  readonly #requests = new Map<string, MemoryAccessRequest>();
  readonly #listeners = new Map<string, Set<(status: AccessRequestStatus) => void>>();
  readonly #created = new Set<(request: MemoryAccessRequest) => void>();
  #serial = 0;

  create(namespace: string, spec: AccessRequestSpec): Promise<string> {
    const suffix = `${(++this.#serial).toString(36)}${randomBytes(3).toString('hex')}`.slice(0, 8);
    const name = `${spec.rule.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'request'}-${suffix}`;
    const request: MemoryAccessRequest = { namespace, name, spec, status: { phase: 'Pending' } };
    this.#requests.set(key(namespace, name), request);
    for (const listener of this.#created) listener(request);
    return Promise.resolve(name);
  }

  onDecision(namespace: string, name: string, listener: (status: AccessRequestStatus) => void): () => void {
    const request = this.#requests.get(key(namespace, name));
    if (request !== undefined && request.status.phase !== 'Pending') {
      queueMicrotask(() => listener(request.status));
      return () => undefined;
    }
    const k = key(namespace, name);
    const listeners = this.#listeners.get(k) ?? new Set();
    this.#listeners.set(k, listeners);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  expire(namespace: string, name: string, reason: string): Promise<void> {
    const request = this.#requests.get(key(namespace, name));
    if (request?.status.phase === 'Pending') this.#decide(request, { phase: 'Expired', decidedBy: 'dbward', reason });
    return Promise.resolve();
  }

  approve(namespace: string, name: string, by: string, reason?: string): MemoryAccessRequest {
    return this.#decideByUser(namespace, name, 'Approved', by, reason);
  }

  deny(namespace: string, name: string, by: string, reason?: string): MemoryAccessRequest {
    return this.#decideByUser(namespace, name, 'Denied', by, reason);
  }

  get(namespace: string, name: string): MemoryAccessRequest | undefined {
    return this.#requests.get(key(namespace, name));
  }

  list(namespace?: string): MemoryAccessRequest[] {
    return [...this.#requests.values()].filter((r) => namespace === undefined || r.namespace === namespace);
  }

  /** Called for every AccessRequest created. */
  onCreate(listener: (request: MemoryAccessRequest) => void): () => void {
    this.#created.add(listener);
    return () => this.#created.delete(listener);
  }

  #decideByUser(namespace: string, name: string, phase: 'Approved' | 'Denied', by: string, reason: string | undefined): MemoryAccessRequest {
    const request = this.#requests.get(key(namespace, name));
    if (request === undefined) throw new AccessRequestNotFound(`no AccessRequest ${namespace}/${name}`);
    if (request.status.phase !== 'Pending') throw new Error(`AccessRequest ${namespace}/${name} is already ${request.status.phase}`);
    this.#decide(request, { phase, decidedBy: by, ...(reason !== undefined ? { reason } : {}) });
    return request;
  }

  #decide(request: MemoryAccessRequest, status: Omit<AccessRequestStatus, 'decidedAt'>): void {
    request.status = { ...status, decidedAt: new Date().toISOString() };
    const k = key(request.namespace, request.name);
    const listeners = this.#listeners.get(k);
    this.#listeners.delete(k);
    for (const listener of listeners ?? []) listener(request.status);
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Every port, in memory. */
export function memoryPorts(): {
  tokens: MemoryTokenVerifier;
  pods: MemoryPodLookup;
  policies: MemoryPolicySource;
  rejections: MemoryRejectionSink;
  accessRequests: MemoryAccessRequestStore;
} {
  return {
    tokens: new MemoryTokenVerifier(),
    pods: new MemoryPodLookup(),
    policies: new MemoryPolicySource(),
    rejections: new MemoryRejectionSink(),
    accessRequests: new MemoryAccessRequestStore(),
  };
}
