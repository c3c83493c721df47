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

  constructor(private readonly out: Writable) {}

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
    this.out.write(this.start === 0 && this.end === buf.length ? buf : buf.subarray(this.start, this.end));
  }

  /** True when the socket's buffer is above its high-water mark: the producer should pause. */
  get congested(): boolean {
    return this.out.writableNeedDrain;
  }
}
