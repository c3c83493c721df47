import type { DataAccessPolicyStatus } from '@dbward/sidecar/api';
import type { PolicySource, RejectionSink, SidecarIdentity } from '../controlplane/ports.js';
import { Informer, objectKey } from '../kube/informer.js';
import { KubePolicySource } from '../kube/policy-source.js';
import { resourcePath, type KubeClient, type KubeObject } from '../kube/rest.js';
import { DAP_RESOURCE, recordTransition, writeStatus } from './act.js';
import { EventRecorder } from './events.js';
import { LeaderElector } from './leader.js';
import { observePolicy, type Observation } from './observe.js';
import { APPLIED, desiredStatus, sameStatus, setCondition } from './status.js';

/**
 * The DataAccessPolicy controller: an informer over every namespace feeds a de-duplicating work
 * queue; while this replica leads (Lease), each key is reconciled: observe → status → act. The
 * informer (and so PolicySource) runs on every replica.
 */

export interface Logger {
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ControllerOptions {
  client: KubeClient;
  /** Namespace of the Lease (the operator's own). */
  namespace: string;
  leaseName: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  renewMs?: number;
  retryMs?: number;
}

interface Rejection {
  generation: number;
  message: string;
}

export class PolicyController implements RejectionSink {
  readonly informer: Informer<KubeObject>;
  readonly leader: LeaderElector;
  readonly events: EventRecorder;
  private source: KubePolicySource | undefined;
  private readonly queue = new Map<string, NodeJS.Timeout | null>();
  private readonly rejections = new Map<string, Rejection>();
  private readonly observations = new Map<string, { uid: string | undefined; obs: Observation }>();
  private readonly recentEvents = new Map<string, number>();
  private working = false;
  private stopped = false;
  /** Keys waiting to be reconciled (for tests and metrics). */
  get pending(): number {
    return this.queue.size;
  }

  /** Status writes done (for tests and metrics). */
  writes = 0;

  constructor(private readonly options: ControllerOptions) {
    const { client, log } = options;
    this.informer = new Informer<KubeObject>(client, resourcePath(DAP_RESOURCE), {
      onError: (error) => log.warn({ err: error }, 'DataAccessPolicy watch failed; retrying'),
    });
    this.events = new EventRecorder(client, options.identity, (error) => log.warn({ err: error }, 'could not write Event'));
    this.leader = new LeaderElector(client, {
      namespace: options.namespace,
      name: options.leaseName,
      identity: options.identity,
      ...(options.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: options.leaseDurationSeconds } : {}),
      ...(options.renewMs !== undefined ? { renewMs: options.renewMs } : {}),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
      onStartedLeading: () => {
        log.info({ identity: options.identity }, 'leading: reconciling DataAccessPolicies');
        for (const obj of this.informer.list()) this.enqueue(objectKey(obj));
      },
      onStoppedLeading: () => log.info({ identity: options.identity }, 'no longer leading'),
      onError: (error) => log.warn({ err: error }, 'leader election'),
    });
    this.informer.onEvent((_event, obj) => this.enqueue(objectKey(obj)));
  }

  get policySource(): PolicySource {
    if (this.source === undefined) throw new Error('PolicyController: start() first');
    return this.source;
  }

  get rejectionSink(): RejectionSink {
    return this;
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.source = new KubePolicySource(this.informer, (error) => this.options.log.error({ err: error }, 'policy change listener failed'));
    this.leader.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.queue.values()) if (t) clearTimeout(t);
    this.queue.clear();
    await this.leader.stop();
    await this.informer.stop();
  }

  /** RejectionSink: a sidecar NACKed a snapshot. Event on each policy (any replica), Applied=False (leader). */
  rejected(namespace: string, policies: readonly string[], version: string, error: string, sidecar: SidecarIdentity): void {
    for (const name of policies) {
      const obj = this.informer.get(namespace, name);
      if (obj === undefined) continue;
      const message = `sidecar ${sidecar.namespace}/${sidecar.pod} rejected policy version ${version}: ${error}`.slice(0, 2048);
      const key = objectKey(obj);
      this.rejections.set(key, { generation: obj.metadata.generation ?? 0, message });
      const dedupe = `${key}|${version}|${error}`;
      const last = this.recentEvents.get(dedupe) ?? 0;
      for (const [k, at] of this.recentEvents) if (Date.now() - at > 60_000) this.recentEvents.delete(k);
      if (Date.now() - last > 60_000) {
        this.recentEvents.set(dedupe, Date.now());
        void this.events.record(obj, { type: 'Warning', reason: 'Rejected', action: 'Apply', note: message });
      }
      this.enqueue(key);
    }
  }

  private enqueue(key: string, delayMs = 0): void {
    if (this.stopped) return;
    const pending = this.queue.get(key);
    if (pending !== undefined) {
      if (delayMs === 0 && pending !== null) {
        clearTimeout(pending);
        this.queue.set(key, null);
      }
      // Already queued: still kick the worker (e.g. after this replica became the leader).
      if (this.queue.get(key) === null) this.drain();
      return;
    }
    if (delayMs > 0) {
      this.queue.set(key, setTimeout(() => {
        this.queue.set(key, null);
        this.drain();
      }, delayMs));
    } else {
      this.queue.set(key, null);
      this.drain();
    }
  }

  private drain(): void {
    if (this.working || this.stopped) return;
    this.working = true;
    void (async () => {
      try {
        for (;;) {
          if (!this.leader.isLeader || this.stopped) return; // onStartedLeading re-enqueues everything
          const next = [...this.queue].find(([, t]) => t === null);
          if (next === undefined) return;
          const key = next[0];
          this.queue.delete(key);
          try {
            const result = await this.reconcile(key);
            if (result === 'requeue') this.enqueue(key, 250);
          } catch (error) {
            this.options.log.warn({ err: error, policy: key }, 'reconcile failed; requeued');
            this.enqueue(key, 1_000);
          }
        }
      } finally {
        this.working = false;
      }
    })();
  }

  /** observePolicy, once per generation of an object (the spec only changes with it). */
  private observe(key: string, obj: KubeObject): Observation {
    const cached = this.observations.get(key);
    if (cached !== undefined && cached.uid === obj.metadata.uid && cached.obs.generation === (obj.metadata.generation ?? 0)) return cached.obs;
    const obs = observePolicy(obj);
    this.observations.set(key, { uid: obj.metadata.uid, obs });
    return obs;
  }

  private async reconcile(key: string): Promise<'done' | 'requeue'> {
    const [namespace, name] = key.split('/') as [string, string];
    const obj = this.informer.get(namespace, name);
    if (obj === undefined) {
      this.rejections.delete(key);
      this.observations.delete(key);
      return 'done';
    }
    const obs = this.observe(key, obj);
    const current = obj['status'] as DataAccessPolicyStatus | undefined;
    const now = new Date();
    let desired = desiredStatus(current, obs, now);
    const rejection = this.rejections.get(key);
    if (rejection !== undefined && rejection.generation === obs.generation) {
      desired = {
        ...desired,
        conditions: setCondition(desired.conditions ?? [], { type: APPLIED, status: 'False', reason: 'Rejected', message: rejection.message, observedGeneration: obs.generation }, now),
      };
    } else if (rejection !== undefined) this.rejections.delete(key);
    if (sameStatus(current, desired)) return 'done';
    const result = await writeStatus(this.options.client, obj, desired);
    if (result === 'done') {
      this.writes++;
      await recordTransition(this.events, obj, current, obs);
      if (rejection !== undefined) this.rejections.delete(key);
    }
    return result;
  }
}
