import { FrameTooLarge, ProtocolViolation } from './errors.js';

/**
 * Receives the frames found by a {@link FrameSplitter}.
 *
 * A frame is reported as the buffer that holds it and the offsets of its first byte (the type
 * byte, or the length for an untyped startup-phase frame) and one past its last byte. When a
 * whole frame lies inside one pushed chunk, `buf` is that very chunk: nothing was copied, and
 * consecutive frames of one chunk can be forwarded as one slice. A frame split across chunks is
 * reported from a buffer of its own (as is every untyped frame). The buffer must not be kept after
 * the call returns unless the receiver copies it or forwards it by reference as a whole.
 */
export interface FrameHandler {
  /** A complete frame. `code` is the type byte, or 0 for an untyped (startup-phase) frame. */
  onFrame(code: number, buf: Buffer, start: number, end: number): void;
  /**
   * Asked once for a typed frame whose length exceeds the splitter's stream threshold and which is
   * not complete in the chunk where its header arrived. Returning true makes the splitter hand the
   * frame over in pieces through {@link onFramePiece} as its bytes arrive, so a huge row is
   * forwarded without being buffered; returning false buffers it and reports it through onFrame.
   * A frame above the threshold that arrives whole is reported through onFrame without asking.
   */
  streamFrame?(code: number, frameLength: number): boolean;
  /**
   * A piece of a streamed frame, never empty; the first piece starts with the frame's header,
   * `last` marks the piece that ends it. The pieces concatenate to the exact frame.
   */
  onFramePiece?(buf: Buffer, start: number, end: number, last: boolean): void;
}

export interface SplitterOptions {
  /** Largest frame accepted, header included. Longer frames raise {@link FrameTooLarge}. */
  maxFrameLength: number;
  /** Frames longer than this are offered to {@link FrameHandler.streamFrame}. */
  streamThreshold?: number;
  /** True when the next frame has no type byte (the first message of a frontend connection). */
  untyped?: boolean;
}

/** Smallest value of a length field: the four bytes of the length itself. */
const MIN_LENGTH = 4;

/**
 * Splits a byte stream into PostgreSQL protocol frames by reading headers only.
 *
 * This is the hot path of the proxy: it never decodes a message body, never copies a frame that
 * arrived whole, and keeps at most one partial frame between chunks. A typed frame is
 * `type(1) length(4, includes itself) body`; an untyped frame (startup, SSLRequest, CancelRequest,
 * GSSENCRequest) is `length(4) body`.
 */
export class FrameSplitter {
  private readonly maxFrameLength: number;
  private readonly streamThreshold: number;
  private untypedNext: boolean;

  /** Bytes of a frame whose header or body is incomplete. */
  private pending: Buffer | null = null;
  private pendingFill = 0;
  /** Header bytes seen so far when fewer than a full header arrived. */
  private readonly header = Buffer.allocUnsafe(5);
  private headerFill = 0;
  /** Remaining bytes of a frame being streamed through onFramePiece. */
  private streamRemaining = 0;
  /** Set by stop(): push() returns after the current frame and keeps the rest in `remainder`. */
  private stopped = false;
  private remainder: Buffer | null = null;

  constructor(options: SplitterOptions) {
    this.maxFrameLength = options.maxFrameLength;
    this.streamThreshold = options.streamThreshold ?? Number.POSITIVE_INFINITY;
    this.untypedNext = options.untyped ?? false;
  }

  /** The next frame has no type byte (after an SSLRequest or GSSENCRequest was answered). */
  expectUntyped(): void {
    if (this.hasPartial()) throw new ProtocolViolation('bytes arrived before the startup packet was answered');
    this.untypedNext = true;
  }

  /**
   * Called from inside a handler: push() returns after the current frame, and the bytes of the
   * chunk that follow it are kept for {@link takeRemainder} instead of being split. Used where the
   * stream changes hands, e.g. to a TLS handshake after an SSLRequest.
   */
  stop(): void {
    this.stopped = true;
  }

  /** The bytes that followed the frame during which stop() was called (empty if none). */
  takeRemainder(): Buffer {
    const rest = this.remainder ?? Buffer.alloc(0);
    this.remainder = null;
    return rest;
  }

  /** True while part of a frame is held, waiting for more bytes. */
  hasPartial(): boolean {
    return this.headerFill > 0 || this.pending !== null || this.streamRemaining > 0;
  }

  /** Number of bytes held in memory for an incomplete frame. */
  bufferedBytes(): number {
    return this.headerFill + this.pendingFill;
  }

  /**
   * Feeds a chunk; calls the handler for every frame completed by it, in order. Throws
   * {@link ProtocolViolation} or {@link FrameTooLarge} on a bad header; the stream is then unusable.
   */
  push(chunk: Buffer, handler: FrameHandler): void {
    if (this.stopped) throw new ProtocolViolation('bytes pushed into a stopped frame splitter');
    let pos = 0;
    const len = chunk.length;
    if (len === 0) return;
    if (this.streamRemaining > 0) {
      pos = this.continueStream(chunk, pos, handler);
      if (this.stopped) return this.keepRemainder(chunk, pos);
    }
    if (this.headerFill > 0 || this.pending !== null) {
      pos = this.continuePartial(chunk, pos, handler);
      if (pos < 0) return;
      if (this.stopped) return this.keepRemainder(chunk, pos);
    }
    while (pos < len) {
      if (this.untypedNext) {
        // Untyped frame: length(4) body. Handled by the slow path; it occurs once or twice per connection.
        pos = this.continuePartial(chunk, pos, handler);
        if (pos < 0) return;
        if (this.stopped) return this.keepRemainder(chunk, pos);
        continue;
      }
      if (len - pos < 5) {
        chunk.copy(this.header, 0, pos, len);
        this.headerFill = len - pos;
        return;
      }
      const code = chunk[pos]!;
      const length = chunk.readUInt32BE(pos + 1);
      const frameLength = length + 1;
      if (length < MIN_LENGTH) throw new ProtocolViolation(`message of type 0x${code.toString(16)} has invalid length ${length}`);
      if (frameLength > this.maxFrameLength) throw new FrameTooLarge(code, frameLength, this.maxFrameLength);
      const end = pos + frameLength;
      if (end <= len) {
        handler.onFrame(code, chunk, pos, end);
        pos = end;
        if (this.stopped) return this.keepRemainder(chunk, pos);
        continue;
      }
      if (frameLength > this.streamThreshold && this.shouldStream(handler, code, frameLength)) {
        this.streamRemaining = frameLength - (len - pos);
        handler.onFramePiece!(chunk, pos, len, false);
        return;
      }
      this.pending = Buffer.allocUnsafe(frameLength);
      chunk.copy(this.pending, 0, pos, len);
      this.pendingFill = len - pos;
      return;
    }
  }

  private shouldStream(handler: FrameHandler, code: number, frameLength: number): boolean {
    return handler.onFramePiece !== undefined && handler.streamFrame?.(code, frameLength) === true;
  }

  private continueStream(chunk: Buffer, pos: number, handler: FrameHandler): number {
    const take = Math.min(this.streamRemaining, chunk.length - pos);
    this.streamRemaining -= take;
    handler.onFramePiece!(chunk, pos, pos + take, this.streamRemaining === 0);
    return pos + take;
  }

  private keepRemainder(chunk: Buffer, pos: number): void {
    if (pos < chunk.length) this.remainder = chunk.subarray(pos);
  }

  /**
   * Completes a frame whose header or body is incomplete. Returns the position after the frame,
   * or -1 when the chunk ended first (the bytes are then held).
   */
  private continuePartial(chunk: Buffer, pos: number, handler: FrameHandler): number {
    const untyped = this.untypedNext;
    const headerLength = untyped ? 4 : 5;
    if (this.pending === null) {
      const need = headerLength - this.headerFill;
      const take = Math.min(need, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      if (this.headerFill < headerLength) return -1;
      const code = untyped ? 0 : this.header[0]!;
      const length = this.header.readUInt32BE(untyped ? 0 : 1);
      const frameLength = untyped ? length : length + 1;
      if (length < MIN_LENGTH) throw new ProtocolViolation(`message of type 0x${code.toString(16)} has invalid length ${length}`);
      if (frameLength > this.maxFrameLength) throw new FrameTooLarge(code, frameLength, this.maxFrameLength);
      this.headerFill = 0;
      if (!untyped && frameLength > this.streamThreshold && this.shouldStream(handler, code, frameLength)) {
        const available = Math.min(frameLength - headerLength, chunk.length - pos);
        this.streamRemaining = frameLength - headerLength - available;
        // A copy: the header scratch buffer is reused, and the receiver may queue the piece by
        // reference. It is last only for a frame without body: no empty piece is ever reported.
        const header = Buffer.from(this.header.subarray(0, headerLength));
        handler.onFramePiece!(header, 0, headerLength, frameLength === headerLength);
        if (available > 0) handler.onFramePiece!(chunk, pos, pos + available, this.streamRemaining === 0);
        pos += available;
        return this.streamRemaining > 0 ? -1 : pos;
      }
      this.pending = Buffer.allocUnsafe(frameLength);
      this.header.copy(this.pending, 0, 0, headerLength);
      this.pendingFill = headerLength;
    }
    const pending = this.pending;
    const take = Math.min(pending.length - this.pendingFill, chunk.length - pos);
    chunk.copy(pending, this.pendingFill, pos, pos + take);
    this.pendingFill += take;
    pos += take;
    if (this.pendingFill < pending.length) return -1;
    this.pending = null;
    this.pendingFill = 0;
    const code = untyped ? 0 : pending[0]!;
    if (untyped) this.untypedNext = false;
    handler.onFrame(code, pending, 0, pending.length);
    return pos;
  }
}
