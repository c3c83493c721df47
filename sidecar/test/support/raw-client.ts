import { connect, type Socket } from 'node:net';
import { decodeBackend } from '../../src/wire/backend.js';
import type { BackendMessage } from '../../src/wire/messages.js';
import { FrameSplitter } from '../../src/wire/splitter.js';
import { startupMessage } from '../../src/wire/writers.js';

/** A backend frame as received: its type byte and its bytes. */
export interface ReceivedFrame {
  code: number;
  bytes: Buffer;
}

/**
 * A minimal protocol client over a raw socket for tests that must control every byte sent:
 * pipelining, malformed frames, slow reading. It checks that whatever comes back is a valid
 * sequence of backend frames (the splitter throws otherwise).
 */
export class RawClient {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  /** Set when the server side sent bytes that are not valid backend frames. */
  invalid: Error | null = null;
  private readonly splitter = new FrameSplitter({ maxFrameLength: 1024 * 1024 * 1024 + 5 });
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.splitter.push(chunk, {
          onFrame: (code, buf, start, end) => {
            this.frames.push({ code, bytes: Buffer.from(buf.subarray(start, end)) });
          },
        });
      } catch (error) {
        this.invalid = error as Error;
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        socket.setNoDelay(true);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Connects and logs in with a trust startup; resolves after the first ReadyForQuery. */
  static async login(port: number, params: Record<string, string>): Promise<RawClient> {
    const client = await RawClient.connect(port);
    client.send(startupMessage(new Map(Object.entries(params))));
    await client.waitFor((f) => f.code === 0x5a || isFatal(f), 10_000);
    const fatal = client.frames.find(isFatal);
    if (fatal !== undefined) throw new Error(`login failed: ${describeError(fatal)}`);
    client.frames.length = 0;
    return client;
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves when a received frame matches (or the connection closes); rejects on timeout. */
  async waitFor(match: (frame: ReceivedFrame) => boolean, timeoutMs: number): Promise<ReceivedFrame | null> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.frames.length; seen++) if (match(this.frames[seen]!)) return this.frames[seen]!;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms; frames: ${this.frames.map((f) => String.fromCharCode(f.code)).join('')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the connection is closed by the other side; rejects on timeout. */
  async waitClosed(timeoutMs: number): Promise<void> {
    await this.waitFor(() => false, timeoutMs);
  }

  decoded(): BackendMessage[] {
    return this.frames.map((f) => decodeBackend(f.code, f.bytes, 0, f.bytes.length));
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Fields of an ErrorResponse/NoticeResponse frame. */
export function errorFields(frame: ReceivedFrame): Map<string, string> {
  const message = decodeBackend(frame.code, frame.bytes, 0, frame.bytes.length);
  if (message.type !== 'ErrorResponse' && message.type !== 'NoticeResponse') throw new Error(`not an error frame: ${message.type}`);
  return message.fields;
}

export function isFatal(frame: ReceivedFrame): boolean {
  return frame.code === 0x45 && ['FATAL', 'PANIC'].includes(errorFields(frame).get('V') ?? '');
}

export function describeError(frame: ReceivedFrame): string {
  const fields = errorFields(frame);
  return `${fields.get('V')} ${fields.get('C')} ${fields.get('M')}`;
}
