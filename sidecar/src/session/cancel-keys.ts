import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** What a CancelRequest carrying one of our keys should cancel. */
export interface CancelTarget {
  cancel(): void;
}

/**
 * The sidecar gives each client its own BackendKeyData secret, so a client never learns the
 * upstream's secret, and a cancel is mapped to the right upstream backend here.
 *
 * The process id stays the upstream backend's whenever it is free here: it is no secret (the
 * client can ask `pg_backend_pid()`), and clients compare it with the process id of a
 * NotificationResponse (to skip their own notifications), with `pg_stat_activity.pid`, or pass it
 * to `pg_cancel_backend()`. A random id would break all three.
 */
export class CancelKeys {
  private readonly byPid = new Map<number, { secret: Buffer; target: CancelTarget }>();

  /**
   * Issues a fresh key: the process id `preferredPid` (the upstream backend's) unless it is still
   * held by a session that has not finished yet, then a random one; a fresh secret of
   * `secretLength` bytes, following the upstream's (4 bytes in protocol 3.0).
   */
  issue(target: CancelTarget, secretLength: number, preferredPid?: number): { processId: number; secretKey: Buffer } {
    let processId = preferredPid !== undefined && preferredPid > 0 ? preferredPid : 0;
    while (processId === 0 || this.byPid.has(processId)) processId = randomInt(1, 0x7fffffff);
    const secretKey = randomBytes(secretLength);
    this.byPid.set(processId, { secret: secretKey, target });
    return { processId, secretKey };
  }

  /** The target of a key, or undefined when the key is unknown or the secret does not match. */
  lookup(processId: number, secretKey: Buffer): CancelTarget | undefined {
    const entry = this.byPid.get(processId);
    if (entry === undefined || entry.secret.length !== secretKey.length) return undefined;
    return timingSafeEqual(entry.secret, secretKey) ? entry.target : undefined;
  }

  release(processId: number): void {
    this.byPid.delete(processId);
  }

  get size(): number {
    return this.byPid.size;
  }
}
