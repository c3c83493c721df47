import type { DataRowScanner } from '../wire/backend.js';
import { maskValue } from './masks.js';
import { MaskingError, type ColumnPlan } from './plan.js';

/**
 * DataRow ('D') rewriting: a new frame with only the planned columns replaced. The frame is
 * validated by the scanner; the output is allocated once, at its final size, and the unchanged
 * stretches between masked columns are copied with Buffer.copy.
 */

/** Below this many bytes a JIT-compiled loop beats Buffer.copy's call overhead. */
const SMALL_COPY = 48;

/** Copies src[from..to) to dst at `at`; returns the number of bytes copied. */
function copyBytes(src: Buffer, dst: Buffer, at: number, from: number, to: number): number {
  const n = to - from;
  if (n >= SMALL_COPY) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i] as number;
  return n;
}

/** Per-call scratch: the new value of each column (undefined: unchanged). Reused, never escapes. */
let scratch: (Buffer | null | undefined)[] = [];

/**
 * Rewrites the DataRow `buf[start..end)` (type byte included) by `plan`. Returns the new frame, or
 * null when nothing changes (no masked column, or every masked column is NULL), so the caller
 * forwards the original bytes. Throws MaskingError when the row's column count is not the plan's
 * and ProtocolViolation (from the scanner) for a malformed frame: fail closed, never forward it.
 */
export function rewriteDataRow(buf: Buffer, start: number, end: number, plan: readonly ColumnPlan[], scanner: DataRowScanner, key: Buffer): Buffer | null {
  const n = scanner.scan(buf, start, end);
  if (n !== plan.length) throw new MaskingError(`DataRow has ${n} columns but the RowDescription had ${plan.length}`);
  if (scratch.length < n) scratch = new Array<Buffer | null | undefined>(n);
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
    const out = step.fixed !== undefined ? step.fixed : maskValue(buf.subarray(offset, offset + length), step.column, step.mask, key);
    outs[i] = out;
    size += (out === null ? 0 : out.length) - length;
    changed = true;
  }
  if (!changed) return null;

  const frame = Buffer.allocUnsafe(size);
  frame[0] = buf[start] as number; // 'D'
  frame.writeInt32BE(size - 1, 1);
  frame[5] = buf[start + 5] as number; // column count
  frame[6] = buf[start + 6] as number;
  let read = start + 7;
  let write = 7;
  for (let i = 0; i < n; i++) {
    const out = outs[i];
    if (out === undefined) continue;
    const header = (offsets[i] as number) - 4;
    write += copyBytes(buf, frame, write, read, header);
    if (out === null) {
      frame.writeInt32BE(-1, write);
      write += 4;
    } else {
      frame.writeInt32BE(out.length, write);
      write += 4 + copyBytes(out, frame, write + 4, 0, out.length);
    }
    read = header + 4 + (lengths[i] as number);
    outs[i] = undefined;
  }
  copyBytes(buf, frame, write, read, end);
  return frame;
}
