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
  open(fd: number, onData: (buffer: Buffer, length: number) => void, onClose: (errno: number) => void, onDrain?: () => void): FdioHandle;
  /** True when every byte went to the kernel; false when a tail is queued (or the handle is closed). */
  write(handle: FdioHandle, buffer: Uint8Array, length?: number): boolean;
  end(handle: FdioHandle): void;
  pause(handle: FdioHandle): void;
  resume(handle: FdioHandle): void;
  close(handle: FdioHandle): void;
  queued(handle: FdioHandle): number;
  splice(fdA: number, fdB: number, onClose: (errno: number) => void): void;
  setCallMode(mode: 0 | 1 | 2): void;
  /** The buffer every onData view points into; valid only during the callback. */
  readonly readBuffer: Buffer;
  readonly readSize: number;
}

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
