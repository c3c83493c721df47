/**
 * A plain-TCP connection whose I/O is done by the fdio addon, with the subset of `net.Socket`
 * that the session and its relays use: write (with backpressure), pause/resume, end, destroy,
 * `destroyed`, `writableLength`, `writableNeedDrain`, and the events 'data', 'drain', 'error'
 * and 'close'.
 *
 * Differences from a Node socket, on purpose:
 * - write() never keeps a reference to the caller's buffer: what the kernel does not take at once
 *   is copied into the addon's queue. A callback given to write() therefore runs (as a microtask)
 *   as soon as write() returns.
 * - Reads either go to a `reader` (a view of the addon's one reused read buffer, valid only during
 *   the call, like the `onread` option of net.connect), or are emitted as 'data' with a copy.
 * - The end of the peer's stream ends this side too once its queue is written (Node's default,
 *   allowHalfOpen false); 'end' is not emitted.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { FAST_STAT_PARTIAL, FAST_STAT_READY_STATUS, FAST_STATS_LENGTH, type Fdio, type FdioHandle } from './fdio.js';

/** Like a Node socket: write() asks the producer to wait above this many queued bytes. */
const HIGH_WATER_MARK = 16 * 1024;

/** The file descriptor under a connected `net.Socket`, or undefined (not TCP, already closed, not on a Unix). */
export function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

export class NativeSocket extends EventEmitter {
  destroyed = false;
  writableNeedDrain = false;
  /** True while the addon splits and forwards this socket's messages itself (see {@link goFast}). */
  fast = false;
  /** Times fast mode handed a message back (to the reader, or as 'data'). */
  fastHandovers = 0;
  private fastTaken = 0;
  private readonly handle: FdioHandle;
  private readonly stats = new Uint32Array(FAST_STATS_LENGTH);

  /**
   * Moves a connected TCP socket onto the addon: the addon duplicates its descriptor, then the
   * Node socket is destroyed (closing its descriptor only; the connection stays open). Returns
   * undefined, leaving `socket` untouched, when it has no descriptor.
   */
  static adopt(fdio: Fdio, socket: Socket, reader?: (chunk: Buffer) => void): NativeSocket | undefined {
    const fd = socketFd(socket);
    if (fd === undefined || socket.destroyed) return undefined;
    const adopted = new NativeSocket(fdio, fd, reader);
    socket.destroy();
    return adopted;
  }

  /** Where reads go instead of 'data' events: views of the addon's read buffer (see {@link readWith}). */
  private reader: ((chunk: Buffer) => void) | undefined;

  private constructor(
    private readonly fdio: Fdio,
    fd: number,
    reader: ((chunk: Buffer) => void) | undefined,
  ) {
    super();
    this.reader = reader;
    const onData = (buffer: Buffer, length: number, start: number): void => {
      // The addon calls onData only outside fast mode: a read in fast mode that reaches here is a hand-over.
      if (this.fast) {
        this.fast = false;
        this.fastHandovers++;
      }
      const reader = this.reader;
      if (reader !== undefined) reader(buffer.subarray(start, start + length));
      else this.emit('data', Buffer.from(buffer.subarray(start, start + length)));
    };
    this.handle = fdio.open(fd, onData, (errno) => this.onClose(errno), () => this.onDrain(), this.stats);
  }

  /** Pairs two sockets for fast mode: each forwards its messages to the other. False when one has closed. */
  static link(a: NativeSocket, b: NativeSocket): boolean {
    return !a.destroyed && !b.destroyed && a.fdio.link(a.handle, b.handle);
  }

  /**
   * Fast mode: from the next read on, the addon forwards messages whose type `table` allows to the
   * linked socket itself, until one it does not allow arrives; that message and everything after
   * it reach the reader again, and {@link fast} turns false. Call only at a message boundary.
   */
  goFast(table: Uint8Array, maxLength: number): void {
    if (!this.destroyed && this.fdio.fast(this.handle, table, maxLength)) this.fast = true;
  }

  /**
   * Ends fast mode at the next message boundary. True when it ended now; false when a message is
   * still being forwarded: a (possibly empty) read marks the hand-over.
   */
  leaveFast(): boolean {
    if (!this.fast || this.destroyed) return true;
    if (!this.fdio.fast(this.handle, null)) return false;
    this.fast = false;
    return true;
  }

  /** Bytes received from the peer that were not read yet (in the kernel, or a header held back). */
  get unread(): number {
    return this.destroyed ? 0 : this.fdio.unread(this.handle);
  }

  /** Messages of type `code` the addon forwarded in fast mode since the last call. */
  takeFastCount(code: number): number {
    this.settle();
    const n = this.stats[code]!;
    if (n !== 0) {
      this.stats[code] = 0;
      this.fastTaken += n;
    }
    return n;
  }

  /** Messages the addon forwarded in fast mode so far. */
  get fastMessages(): number {
    this.settle();
    let n = this.fastTaken;
    for (let code = 0; code < 256; code++) n += this.stats[code]!;
    return n;
  }

  /** True while fast mode has forwarded part of a message and the rest is still to come. */
  get fastPartial(): boolean {
    this.settle();
    return this.stats[FAST_STAT_PARTIAL] !== 0;
  }

  /** The transaction status byte of the last ReadyForQuery forwarded in fast mode. */
  get fastReadyStatus(): number {
    this.settle();
    return this.stats[FAST_STAT_READY_STATUS]!;
  }

  /** The addon's relay thread writes the stats while it relays the pair: take the pair back first. */
  private settle(): void {
    if (this.fast && !this.destroyed) this.fdio.hold(this.handle);
  }

  /**
   * From now on, hands each read to `reader` as a view of the addon's one read buffer, valid only
   * during the call (no copy, no 'data' event). Only for a consumer that copies what it keeps and
   * writes only to sockets that copy what they cannot send at once.
   */
  readWith(reader: (chunk: Buffer) => void): void {
    this.reader = reader;
  }

  get writableLength(): number {
    return this.destroyed ? 0 : this.fdio.queued(this.handle);
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.destroyed) {
      if (callback !== undefined) queueMicrotask(() => callback(new Error('write after the socket was closed')));
      return false;
    }
    // write() is true when nothing is queued: only then is the queue's length not needed.
    if (!this.fdio.write(this.handle, chunk) && this.fdio.queued(this.handle) >= HIGH_WATER_MARK) this.writableNeedDrain = true;
    if (callback !== undefined) queueMicrotask(() => callback(null));
    return !this.writableNeedDrain;
  }

  /** Half-closes once the queue is written (no data argument: the session never passes one). */
  end(): this {
    if (!this.destroyed) this.fdio.end(this.handle);
    return this;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.fdio.close(this.handle);
    }
    return this;
  }

  pause(): this {
    if (!this.destroyed) this.fdio.pause(this.handle);
    return this;
  }

  resume(): this {
    if (!this.destroyed) this.fdio.resume(this.handle);
    return this;
  }

  /** TCP_NODELAY is set by the addon on every descriptor it adopts. */
  setNoDelay(): this {
    return this;
  }

  private onDrain(): void {
    if (!this.writableNeedDrain) return;
    this.writableNeedDrain = false;
    this.emit('drain');
  }

  private onClose(errno: number): void {
    this.destroyed = true;
    if (errno !== 0) {
      const code = getSystemErrorName(-errno);
      const error: NodeJS.ErrnoException = new Error(`${code}: socket error`);
      error.code = code;
      error.errno = -errno;
      this.emit('error', error);
    }
    this.emit('close', errno !== 0);
  }
}
