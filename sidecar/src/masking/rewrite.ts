import type { DataRowScanner } from '../wire/backend.js';
import type { MaskName } from '../policy/types.js';
import { detectContentBits } from './detect-content.js';
import { maskValue } from './masks.js';
import { EMAIL_REDACT, emailLayout, emailMaskedLength, isAscii, REDACTED_BYTES, writeEmailMask, writePartialMask } from './text-masks.js';
import { MaskingError, type ColumnPlan } from './plan.js';

/**
 * DataRow ('D') rewriting: a new frame with only the planned columns replaced. The frame is
 * validated by the scanner; the output is allocated once, at its final size, and the unchanged
 * stretches between masked columns are copied with Buffer.copy.
 */

/** Below this many bytes a JIT-compiled loop beats Buffer.copy's call overhead. */
const SMALL_COPY = 48;

/** Big-endian int32 without Buffer#writeInt32BE's argument checks (offsets are ours, in range). */
function writeInt32(dst: Buffer, at: number, value: number): void {
  dst[at] = value >>> 24;
  dst[at + 1] = (value >>> 16) & 0xff;
  dst[at + 2] = (value >>> 8) & 0xff;
  dst[at + 3] = value & 0xff;
}

/** Copies src[from..to) to dst at `at`; returns the number of bytes copied. */
function copyBytes(src: Buffer, dst: Buffer, at: number, from: number, to: number): number {
  const n = to - from;
  if (n >= SMALL_COPY) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i] as number;
  return n;
}

/** Per-call scratch: the new value of each column (undefined: unchanged). Reused, never escapes. */
let scratch: (Buffer | null | undefined)[] = [];
/** Per column masked inline (scratch[i] === INLINE): the `@` offset for email, -1 for partial. */
let inlineAt = new Int32Array(0);
/** Marks a value masked straight into the frame (email/partial on ASCII text). */
const INLINE = Buffer.alloc(0);

/** Where rewritten frames can be written in place (the session's relay to the client). */
export interface FrameSink {
  /** Offset in {@link chunk} where exactly `size` bytes must be written next. */
  reserve(size: number): number;
  readonly chunk: Buffer;
}

/**
 * Rewrites the DataRow `buf[start..end)` (type byte included) by `plan`. Returns the new frame, or
 * null when nothing changes (no masked column, or every masked column is NULL), so the caller
 * forwards the original bytes. Throws MaskingError when the row's column count is not the plan's
 * and ProtocolViolation (from the scanner) for a malformed frame: fail closed, never forward it.
 */
export function rewriteDataRow(buf: Buffer, start: number, end: number, plan: readonly ColumnPlan[], scanner: DataRowScanner, key: Buffer): Buffer | null {
  const size = maskColumns(buf, start, end, plan, scanner, key);
  if (size < 0) return null;
  const frame = Buffer.allocUnsafe(size);
  writeFrame(buf, start, end, scanner.count, scanner, frame, 0, size);
  return frame;
}

/**
 * {@link rewriteDataRow} into a sink: the new frame is written straight into the sink's chunk
 * (no allocation per row). Returns false when nothing changes (forward the original bytes).
 */
export function rewriteDataRowTo(sink: FrameSink, buf: Buffer, start: number, end: number, plan: readonly ColumnPlan[], scanner: DataRowScanner, key: Buffer): boolean {
  const size = maskColumns(buf, start, end, plan, scanner, key);
  if (size < 0) return false;
  const at = sink.reserve(size);
  writeFrame(buf, start, end, scanner.count, scanner, sink.chunk, at, size);
  return true;
}

/** Scans the row and computes the masked values into `scratch`; the new frame size, or -1 when unchanged. */
function maskColumns(buf: Buffer, start: number, end: number, plan: readonly ColumnPlan[], scanner: DataRowScanner, key: Buffer): number {
  const n = scanner.scan(buf, start, end);
  if (n !== plan.length) throw new MaskingError(`DataRow has ${n} columns but the RowDescription had ${plan.length}`);
  if (scratch.length < n) {
    scratch = new Array<Buffer | null | undefined>(n);
    inlineAt = new Int32Array(n);
  }
  const outs = scratch;
  const offsets = scanner.offsets;
  const lengths = scanner.lengths;
  let changed = false;
  let size = end - start;
  for (let i = 0; i < n; i++) {
    const step = plan[i] as ColumnPlan;
    outs[i] = undefined;
    if (step.action === 'pass') continue;
    const length = lengths[i] as number;
    if (length === -1) continue; // NULL stays NULL
    const offset = offsets[i] as number;
    let mask = step.action === 'mask' ? step.mask : undefined;
    if (step.action === 'watch') {
      if (!step.watch.active()) continue;
      mask = step.watch.maskFor(length < 3 ? 0 : detectContentBits(buf.toString('utf8', offset, offset + length)));
      if (mask === undefined) continue;
    } else if (step.inline === 'email') {
      const at = emailLayout(buf, offset, offset + length);
      if (at >= 0) {
        outs[i] = INLINE;
        inlineAt[i] = at;
        size += emailMaskedLength(at, offset + length) - length;
        changed = true;
        continue;
      }
      if (at === EMAIL_REDACT) {
        outs[i] = REDACTED_BYTES;
        size += REDACTED_BYTES.length - length;
        changed = true;
        continue;
      }
    } else if (step.inline === 'partial' && isAscii(buf, offset, offset + length)) {
      outs[i] = INLINE;
      inlineAt[i] = -1;
      changed = true;
      continue;
    }
    const out = step.action === 'mask' && step.fixed !== undefined ? step.fixed : maskValue(buf.subarray(offset, offset + length), step.column, mask as MaskName, key);
    outs[i] = out;
    size += (out === null ? 0 : out.length) - length;
    changed = true;
  }
  return changed ? size : -1;
}

/** Writes the frame: unchanged stretches copied from `buf`, masked values from `scratch`. */
function writeFrame(buf: Buffer, start: number, end: number, n: number, scanner: DataRowScanner, frame: Buffer, base: number, size: number): void {
  const outs = scratch;
  const offsets = scanner.offsets;
  const lengths = scanner.lengths;
  frame[base] = buf[start] as number; // 'D'
  writeInt32(frame, base + 1, size - 1);
  frame[base + 5] = buf[start + 5] as number; // column count
  frame[base + 6] = buf[start + 6] as number;
  let read = start + 7;
  let write = base + 7;
  for (let i = 0; i < n; i++) {
    const out = outs[i];
    if (out === undefined) continue;
    const header = (offsets[i] as number) - 4;
    write += copyBytes(buf, frame, write, read, header);
    if (out === null) {
      writeInt32(frame, write, -1);
      write += 4;
    } else if (out === INLINE) {
      const from = offsets[i] as number;
      const to = from + (lengths[i] as number);
      const at = inlineAt[i] as number;
      const length = at >= 0 ? emailMaskedLength(at, to) : to - from;
      writeInt32(frame, write, length);
      if (at >= 0) writeEmailMask(buf, at, to, frame, write + 4);
      else writePartialMask(buf, from, to, frame, write + 4);
      write += 4 + length;
    } else {
      writeInt32(frame, write, out.length);
      write += 4 + copyBytes(out, frame, write + 4, 0, out.length);
    }
    read = header + 4 + (lengths[i] as number);
    outs[i] = undefined;
  }
  copyBytes(buf, frame, write, read, end);
}
