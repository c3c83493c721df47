/** What a relay writes to: a Node socket (a Writable) or a {@link NativeSocket}. */
export interface RelayOutput {
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
}

/** Size of the chunks rewritten frames are collected in. */
const BUILT_CHUNK = 64 * 1024;

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

  /**
   * Frames the proxy rewrote (masked DataRows) are written into this chunk back to back, so a run
   * of them costs one socket write, not one per row. Only the region after `builtEnd` is ever
   * written to; what was handed to the socket is never touched again.
   */
  private built: Buffer | null = null;
  private builtStart = 0;
  private builtEnd = 0;

  constructor(private readonly out: RelayOutput) {}

  /**
   * Room for a frame of `size` bytes that the caller writes at the returned offset of
   * {@link chunk}, in order after anything pending. The caller must write exactly `size` bytes
   * before the next call on this relay.
   */
  reserve(size: number): number {
    if (this.buf !== null) this.flush();
    let chunk = this.built;
    if (chunk === null || chunk.length - this.builtEnd < size) {
      this.flushBuilt();
      chunk = Buffer.allocUnsafe(Math.max(BUILT_CHUNK, size));
      this.built = chunk;
      this.builtStart = 0;
      this.builtEnd = 0;
    }
    const at = this.builtEnd;
    this.builtEnd += size;
    return at;
  }

  /** The chunk {@link reserve} returned an offset into. */
  get chunk(): Buffer {
    return this.built as Buffer;
  }

  private flushBuilt(): void {
    if (this.built === null || this.builtEnd === this.builtStart) return;
    const slice = this.built.subarray(this.builtStart, this.builtEnd);
    this.builtStart = this.builtEnd;
    if (!this.out.destroyed) this.out.write(slice);
  }

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
    else if (this.builtEnd !== this.builtStart) this.flushBuilt();
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
    if (buf === null) {
      if (this.builtEnd !== this.builtStart) this.flushBuilt();
      return;
    }
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
