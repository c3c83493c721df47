import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** What a CancelRequest carrying one of our keys should cancel. */
export interface CancelTarget {
  cancel(): void;
}

/**
 * The sidecar gives each client its own BackendKeyData, so a client never learns the upstream's
 * process id or secret, and a cancel is mapped to the right upstream backend here.
 */
export class CancelKeys {
  private readonly byPid = new Map<number, { secret: Buffer; target: CancelTarget }>();

  /** Issues a fresh key; `secretLength` follows the upstream's (4 bytes in protocol 3.0). */
  issue(target: CancelTarget, secretLength: number): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff);
    while (this.byPid.has(processId));
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
