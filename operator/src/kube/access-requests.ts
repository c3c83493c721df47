import { ACCESS_REQUEST_KIND, AccessRequestSpecSchema, AccessRequestStatusSchema, GROUP_VERSION, type AccessRequestSpec, type AccessRequestStatus } from '@dbward/sidecar/api';
import { API_GROUP, API_VERSION, KINDS } from '../api.js';
import type { AccessRequestStore } from '../controlplane/ports.js';
import { Informer } from './informer.js';
import { isConflict, isNotFound, resourcePath, type KubeClient, type KubeObject } from './rest.js';

/**
 * AccessRequestStore on the AccessRequest API (SPEC §7): one object per held statement, created by
 * the operator for the sidecar; decided by `kubectl dbward approve|deny` (status subresource);
 * expired by the operator when the sidecar stops waiting. Decisions arrive through one informer.
 */

export const AREQ_RESOURCE = { group: API_GROUP, version: API_VERSION, plural: KINDS.AccessRequest.plural };
export const EXPIRED_BY = 'dbward-operator';

interface AccessRequestObject extends KubeObject {
  spec?: unknown;
  status?: Partial<AccessRequestStatus>;
}

export class KubeAccessRequestStore implements AccessRequestStore {
  private informer: Informer<AccessRequestObject> | undefined;
  private starting: Promise<void> | undefined;
  private readonly listeners = new Map<string, Set<(status: AccessRequestStatus) => void>>();

  constructor(private readonly client: KubeClient, private readonly onError: (error: unknown) => void = () => undefined) {}

  async create(namespace: string, spec: AccessRequestSpec): Promise<string> {
    const valid = AccessRequestSpecSchema.parse(spec);
    await this.watching();
    const base = `${valid.rule}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'request';
    const created = await this.client.create<AccessRequestObject>(resourcePath(AREQ_RESOURCE, namespace), {
      apiVersion: GROUP_VERSION,
      kind: ACCESS_REQUEST_KIND,
      metadata: { generateName: `${base}-`, namespace, labels: { 'dbward.io/policy': valid.policy.slice(0, 63), 'dbward.io/rule': base } },
      spec: valid,
    });
    return created.metadata.name;
  }

  onDecision(namespace: string, name: string, listener: (status: AccessRequestStatus) => void): () => void {
    const key = `${namespace}/${name}`;
    const set = this.listeners.get(key) ?? new Set();
    this.listeners.set(key, set);
    set.add(listener);
    void this.watching()
      .then(() => {
        const obj = this.informer?.get(namespace, name);
        if (obj !== undefined) this.check(obj);
      })
      .catch(this.onError);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(key);
    };
  }

  async expire(namespace: string, name: string, reason: string): Promise<void> {
    const path = resourcePath(AREQ_RESOURCE, namespace, name);
    for (let attempt = 0; attempt < 5; attempt++) {
      let obj: AccessRequestObject;
      try {
        obj = await this.client.get<AccessRequestObject>(path);
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      if ((obj.status?.phase ?? 'Pending') !== 'Pending') return;
      try {
        await this.client.patch(`${path}/status`, {
          metadata: { resourceVersion: obj.metadata.resourceVersion },
          status: { phase: 'Expired', decidedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), decidedBy: EXPIRED_BY, reason: reason.slice(0, 1024) },
        }, 'merge');
        return;
      } catch (error) {
        if (isNotFound(error)) return;
        if (isConflict(error)) continue;
        throw error;
      }
    }
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }

  private watching(): Promise<void> {
    this.starting ??= (async () => {
      const informer = new Informer<AccessRequestObject>(this.client, resourcePath(AREQ_RESOURCE), { onError: this.onError });
      informer.onEvent((event, obj) => {
        if (event !== 'delete') this.check(obj);
      });
      this.informer = informer;
      await informer.start();
    })();
    return this.starting;
  }

  private check(obj: AccessRequestObject): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const set = this.listeners.get(key);
    if (set === undefined || (obj.status?.phase ?? 'Pending') === 'Pending') return;
    const parsed = AccessRequestStatusSchema.safeParse(obj.status);
    if (!parsed.success) {
      this.onError(new Error(`AccessRequest ${key}: unreadable status: ${parsed.error.message}`));
      return;
    }
    this.listeners.delete(key);
    for (const l of set) l(parsed.data);
  }
}
