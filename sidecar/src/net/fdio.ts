/**
 * The optional C addon `sidecar/native/fdio.c` (`make native`): socket I/O on Node's own libuv
 * loop without Node's stream machinery. See docs/adr/0010-node-data-plane-floor.md.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

declare const fdioHandleBrand: unique symbol;
/** An open transport (an external owned by the addon). */
export interface FdioHandle {
  readonly [fdioHandleBrand]: true;
}

/** The addon's interface (sidecar/native/fdio.c documents each function). */
export interface Fdio {
  /**
   * onData gets `length` bytes of `buffer` from `start` (0 except where fast mode hands over).
   * `stats` (a Uint32Array of {@link FAST_STATS_LENGTH}) is needed for {@link fast}.
   */
  open(
    fd: number,
    onData: (buffer: Buffer, length: number, start: number) => void,
    onClose: (errno: number) => void,
    onDrain?: () => void,
    stats?: Uint32Array,
  ): FdioHandle;
  /** True when every byte went to the kernel; false when a tail is queued (or the handle is closed). */
  write(handle: FdioHandle, buffer: Uint8Array, length?: number): boolean;
  end(handle: FdioHandle): void;
  pause(handle: FdioHandle): void;
  resume(handle: FdioHandle): void;
  close(handle: FdioHandle): void;
  queued(handle: FdioHandle): number;
  /** Bytes the kernel has received for the handle that were not read yet (0 once closed). */
  unread(handle: FdioHandle): number;
  splice(fdA: number, fdB: number, onClose: (errno: number) => void): void;
  setCallMode(mode: 0 | 1 | 2): void;
  /** Pairs two transports: in fast mode each forwards to the other. False when one has already closed. */
  link(a: FdioHandle, b: FdioHandle): boolean;
  /**
   * Fast mode on: reads are split into messages in C, and those whose type has a non-zero entry
   * in `table` (256 entries) and whose length field is in [4, maxLength] go to the linked
   * transport without JavaScript. Any other message ends fast mode and reaches onData.
   * Returns false when the handle is closed.
   */
  fast(handle: FdioHandle, table: Uint8Array, maxLength: number): boolean;
  /** Fast mode off at the next message boundary: true when off now; false when an onData (maybe empty) will mark it. */
  fast(handle: FdioHandle, table: null): boolean;
  /** io_uring batching (docs/adr/0023): whether the kernel gave a working ring, whether it is on, and its counters. */
  ring(): RingState;
  /** Turns io_uring batching on or off; returns whether it is on (never without a working ring). */
  setRing(on: boolean): boolean;
  /** The relay thread (docs/adr/0024): whether pass-through pairs go to it, and its counters. */
  relayThread(): RelayThreadState;
  /**
   * Starts the relay thread on first use (waits for its ring); returns whether pairs now go to it.
   * `buffers` (tests): how many provided buffers a thread this call starts gets (a power of two up to 128; default 128).
   */
  setRelayThread(on: boolean, buffers?: number): boolean;
  /** Takes the handle's pair back from the relay thread (so its stats are settled); a no-op otherwise. */
  hold(handle: FdioHandle): void;
  /** The buffer every onData view points into; valid only during the callback. */
  readonly readBuffer: Buffer;
  readonly readSize: number;
}

/** What {@link Fdio.ring} reports. */
export interface RingState {
  /** The kernel set up a ring and passed the start-up check. */
  readonly available: boolean;
  /** Fast-mode reads and the sends they cause are batched into io_uring. */
  readonly on: boolean;
  /** Why the ring is not available or was turned off after a failure (errno), else 0. */
  readonly error: number;
  /** io_uring_enter calls and operations submitted so far. */
  readonly enters: number;
  readonly operations: number;
  /** Times a fast-mode leg streaming a long result waited for the coalescing timer (ADR 0023, "Large results"). */
  readonly coalescingWaits: number;
}

/** What {@link Fdio.relayThread} reports. */
export interface RelayThreadState {
  /** Pass-through pairs are handed to the thread. */
  readonly on: boolean;
  /** The thread runs (started by setRelayThread(true)). */
  readonly running: boolean;
  /** Why it could not start (errno), else 0. */
  readonly error: number;
  /** Pairs handed to the thread, given back to the loop, and taken back by a call from JavaScript. */
  readonly offloads: number;
  readonly returns: number;
  readonly recalls: number;
  /** The thread's waits for completions (its wake-ups), all its io_uring_enter calls, and the sends it made. */
  readonly waits: number;
  readonly enters: number;
  readonly sends: number;
  /** Receives that ended because every provided buffer was taken (the leg is re-armed once they are back). */
  readonly starvations: number;
}

/** Length of a transport's stats array: counts per message type, then {@link FAST_STAT_PARTIAL} and {@link FAST_STAT_READY_STATUS}. */
export const FAST_STATS_LENGTH = 258;
/** stats[256]: 1 while fast mode has forwarded part of a message and the rest is still to come. */
export const FAST_STAT_PARTIAL = 256;
/** stats[257]: the transaction status byte of the last ReadyForQuery forwarded in fast mode. */
export const FAST_STAT_READY_STATUS = 257;

/** Where `make native` puts the addon (the same relative path from src/ and dist/). */
export const FDIO_PATH = fileURLToPath(new URL('../../native/build/fdio.node', import.meta.url));

/** The addon could not be loaded (not built, or built for another platform). */
export class FdioUnavailable extends Error {
  override readonly name = 'FdioUnavailable';
}

/** Loads the addon; throws {@link FdioUnavailable} (with the loader's error as cause) when it cannot. */
export function loadFdio(path: string = FDIO_PATH): Fdio {
  try {
    return createRequire(import.meta.url)(path) as Fdio;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'not built (run `make native`)' : cause instanceof Error ? cause.message : String(cause);
    throw new FdioUnavailable(`the native I/O addon ${path} cannot be loaded: ${why}`, { cause });
  }
}
