import type { Writable } from 'node:stream';

/**
 * Forwards frames to one socket with as few writes as possible. Consecutive frames of one input
 * chunk are sent as a single slice of that chunk; bytes are never copied or re-encoded. Injected
 * messages flush what is pending first, so order is kept.
 */
export class Relay {
  private buf: Buffer | null = null;
  private start = 0;
  private end = 0;
  /** The memory of a read buffer that its owner reuses for the next read (see {@link lend}). */
  private lent: ArrayBufferLike | null = null;
  /** Writes of lent memory whose completion callback has not run yet. */
  private lentInFlight = 0;
  private onLentSettled: (() => void) | null = null;
  private readonly settle = (): void => {
    if (--this.lentInFlight === 0 && this.onLentSettled !== null) this.onLentSettled();
  };

  constructor(private readonly out: Writable) {}

  /**
   * Declares a read buffer that is refilled by every read. Slices of it are still forwarded
   * without copying; while such a slice sits queued in the socket ({@link holdsLent}), the owner
   * must not read again. `onSettled` runs when every such write has completed.
   */
  lend(buffer: Buffer, onSettled: () => void): void {
    this.lent = buffer.buffer;
    this.onLentSettled = onSettled;
  }

  /** True when a slice of the lent buffer is queued in the socket: the next read would overwrite it. */
  get holdsLent(): boolean {
    return this.lentInFlight > 0 && this.out.writableLength > 0;
  }

  /** Forwards `buf[start, end)` unchanged (after anything pending). */
  pass(buf: Buffer, start: number, end: number): void {
    if (buf === this.buf && start === this.end) {
      this.end = end;
      return;
    }
    if (this.buf !== null) this.flush();
    this.buf = buf;
    this.start = start;
    this.end = end;
  }

  /** Sends bytes the proxy built itself, after anything pending. */
  send(bytes: Buffer): void {
    this.flush();
    if (!this.out.destroyed) this.out.write(bytes);
  }

  /** Writes what is pending. Call at the end of every input chunk. */
  flush(): void {
    const buf = this.buf;
    if (buf === null) return;
    this.buf = null;
    if (this.out.destroyed) return;
    const slice = this.start === 0 && this.end === buf.length ? buf : buf.subarray(this.start, this.end);
    if (buf.buffer === this.lent) {
      this.lentInFlight++;
      this.out.write(slice, this.settle);
    } else {
      this.out.write(slice);
    }
  }

  /** True when the socket's buffer is above its high-water mark: the producer should pause. */
  get congested(): boolean {
    return this.out.writableNeedDrain;
  }
}
