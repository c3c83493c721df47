/**
 * Reconnect delays: exponential from `initialMs` to `maxMs`, with "equal jitter" (half the delay
 * fixed, half random) so that a thousand sidecars cut off together do not come back together, yet
 * none retries sooner than half its step. Pure: the random source is injected.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, factor: 2 };

export class Backoff {
  #attempt = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call is one more failure. */
  next(): number {
    const step = Math.min(this.options.maxMs, this.options.initialMs * this.options.factor ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 64);
    return Math.round(step / 2 + this.random() * (step / 2));
  }

  /** A stream that delivered a snapshot: the next failure starts from the initial delay again. */
  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
