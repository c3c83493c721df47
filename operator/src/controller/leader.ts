import { isConflict, isNotFound, type KubeClient } from '../kube/rest.js';
import { microTime } from './status.js';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the holder
 * renews `renewTime` every `renewMs`; a candidate takes the Lease over once `renewTime +
 * leaseDurationSeconds` has passed (optimistic concurrency on resourceVersion, so two candidates
 * cannot both win); a leader that cannot renew within the lease duration steps down; stop()
 * releases the Lease (holder cleared) so another replica takes over at once.
 */

export interface LeaderOptions {
  namespace: string;
  /** Lease name: the leader-election id. */
  name: string;
  /** This replica (pod name + random suffix). */
  identity: string;
  leaseDurationSeconds?: number;
  renewMs?: number;
  retryMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onError?: (error: unknown) => void;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number; acquireTime?: string | null; renewTime?: string | null; leaseTransitions?: number };
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private readonly duration: number;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderOptions,
  ) {
    this.duration = options.leaseDurationSeconds ?? 15;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`;
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.loop = this.tick().finally(() => {
        this.schedule(this.leading ? (this.options.renewMs ?? 5_000) : (this.options.retryMs ?? 2_000));
      });
    }, ms);
  }

  private async tick(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) {
        this.lastRenew = Date.now();
        this.setLeading(true);
      } else this.setLeading(false);
    } catch (error) {
      this.options.onError?.(error);
      if (this.leading && Date.now() - this.lastRenew > this.duration * 1000) this.setLeading(false);
    }
  }

  private setLeading(value: boolean): void {
    if (value === this.leading) return;
    this.leading = value;
    if (value) this.options.onStartedLeading?.();
    else this.options.onStoppedLeading?.();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(`${this.path}/${this.options.name}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const fresh: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.options.name, namespace: this.options.namespace },
        spec: { holderIdentity: this.options.identity, leaseDurationSeconds: this.duration, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      };
      try {
        await this.client.create(this.path, fresh);
        return true;
      } catch (createError) {
        if (isConflict(createError)) return false;
        throw createError;
      }
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = renewed + (lease.spec.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
    if (holder !== this.options.identity && holder !== '' && !expired) return false;
    const takingOver = holder !== this.options.identity;
    const next: Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: this.options.identity,
        leaseDurationSeconds: this.duration,
        renewTime: microTime(now),
        ...(takingOver ? { acquireTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      await this.client.replace(`${this.path}/${this.options.name}`, next);
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  /** Stops campaigning; a leader releases the Lease so another replica takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop;
    if (!this.leading) return;
    try {
      const lease = await this.client.get<Lease>(`${this.path}/${this.options.name}`);
      if (lease.spec.holderIdentity === this.options.identity) {
        await this.client.replace(`${this.path}/${this.options.name}`, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        });
      }
    } catch (error) {
      this.options.onError?.(error);
    }
    this.setLeading(false);
  }
}
