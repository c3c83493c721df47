import { maskValue } from './masks.js';
import { MaskingError, type ColumnPlan } from './plan.js';

/**
 * `COPY ... TO STDOUT` rows (the payload of one CopyData 'd' message; PostgreSQL sends one row per
 * message). Build the plan from the CopyOutResponse's column formats: 0 for text and CSV, 1 for
 * binary. Each function returns the rewritten row, or null when nothing changes.
 */

const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const CR = 0x0d;

export interface CopyTextOptions {
  /** DELIMITER (one byte); default tab. */
  readonly delimiter?: string;
  /** NULL string; default `\N`. */
  readonly null?: string;
}

interface Field {
  start: number;
  end: number;
}

/** The row's content end (before its `\n` or `\r\n`) and the terminator's bytes. */
function contentEnd(line: Buffer): number {
  let end = line.length;
  if (end > 0 && line[end - 1] === NEWLINE) end--;
  if (end > 0 && line[end - 1] === CR) end--;
  return end;
}

function checkCount(found: number, plan: readonly ColumnPlan[], what: string): void {
  if (found !== plan.length) throw new MaskingError(`${what} row has ${found} columns but the COPY has ${plan.length}`);
}

function oneByte(value: string, what: string): number {
  const b = Buffer.from(value, 'utf8');
  if (b.length !== 1) throw new MaskingError(`COPY ${what} must be one single-byte character`);
  return b[0] as number;
}

// ---------------------------------------------------------------------------------------- text

/** Splits a text-format row at unescaped delimiters. */
function splitText(line: Buffer, end: number, delimiter: number): Field[] {
  const fields: Field[] = [];
  let start = 0;
  for (let i = 0; i < end; i++) {
    const c = line[i];
    if (c === BACKSLASH) i++;
    else if (c === delimiter) {
      fields.push({ start, end: i });
      start = i + 1;
    }
  }
  fields.push({ start, end });
  return fields;
}

const UNESCAPE: Record<number, number> = { 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11 };

const isOctal = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x37;
const hexValue = (c: number | undefined): number =>
  c === undefined ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;

/** COPY text-format de-escaping (backslash sequences of the COPY documentation). */
export function unescapeCopyText(src: Buffer): Buffer {
  if (!src.includes(BACKSLASH)) return src;
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number;
    if (c !== BACKSLASH || i + 1 === src.length) {
      out[n++] = c;
      continue;
    }
    const e = src[++i] as number;
    const simple = UNESCAPE[e];
    if (simple !== undefined) {
      out[n++] = simple;
    } else if (isOctal(e)) {
      let v = e - 0x30;
      for (let k = 0; k < 2 && isOctal(src[i + 1]); k++) v = v * 8 + ((src[++i] as number) - 0x30);
      out[n++] = v & 0xff;
    } else if (e === 0x78 && hexValue(src[i + 1]) >= 0) {
      let v = hexValue(src[++i]);
      if (hexValue(src[i + 1]) >= 0) v = v * 16 + hexValue(src[++i]);
      out[n++] = v;
    } else {
      out[n++] = e;
    }
  }
  return out.subarray(0, n);
}

/** COPY text-format escaping of a value: backslash, newline, carriage return, tab and the delimiter. */
export function escapeCopyText(value: Buffer, delimiter = 0x09): Buffer {
  let extra = 0;
  for (const c of value) if (c === BACKSLASH || c === NEWLINE || c === CR || c === 0x09 || c === delimiter) extra++;
  if (extra === 0) return value;
  const out = Buffer.allocUnsafe(value.length + extra);
  let n = 0;
  for (const c of value) {
    const escaped = c === BACKSLASH ? BACKSLASH : c === NEWLINE ? 0x6e : c === CR ? 0x72 : c === 0x09 ? 0x74 : c === delimiter ? c : -1;
    if (escaped >= 0) {
      out[n++] = BACKSLASH;
      out[n++] = escaped;
    } else {
      out[n++] = c;
    }
  }
  return out;
}

/** Masks the planned columns of one COPY text-format row (`\N` is NULL unless `null` says otherwise). */
export function maskCopyTextRow(line: Buffer, plan: readonly ColumnPlan[], key: Buffer, options: CopyTextOptions = {}): Buffer | null {
  const delimiter = oneByte(options.delimiter ?? '\t', 'DELIMITER');
  const nullText = Buffer.from(options.null ?? '\\N', 'utf8');
  const end = contentEnd(line);
  const fields = splitText(line, end, delimiter);
  checkCount(fields.length, plan, 'COPY text');
  const parts: Buffer[] = [];
  let read = 0;
  let changed = false;
  fields.forEach((field, i) => {
    const step = plan[i] as ColumnPlan;
    if (step.action !== 'mask') return; // content watching is for result rows only
    const raw = line.subarray(field.start, field.end);
    if (raw.equals(nullText)) return;
    const out = step.fixed !== undefined ? step.fixed : maskValue(unescapeCopyText(raw), step.column, step.mask, key);
    parts.push(line.subarray(read, field.start), out === null ? nullText : escapeCopyText(out, delimiter));
    read = field.end;
    changed = true;
  });
  if (!changed) return null;
  parts.push(line.subarray(read));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------- CSV

export interface CopyCsvOptions {
  /** DELIMITER; default `,`. */
  readonly delimiter?: string;
  /** QUOTE; default `"`. */
  readonly quote?: string;
  /** ESCAPE; default the QUOTE character. */
  readonly escape?: string;
  /** NULL string; default the empty string (unquoted). */
  readonly null?: string;
}

interface CsvField extends Field {
  quoted: boolean;
}

function splitCsv(line: Buffer, end: number, delimiter: number, quote: number, escape: number): CsvField[] {
  const fields: CsvField[] = [];
  let i = 0;
  while (true) {
    const start = i;
    let quoted = false;
    if (line[i] === quote && i < end) {
      quoted = true;
      i++;
      while (true) {
        if (i >= end) throw new MaskingError('COPY CSV row ends inside a quoted field');
        const c = line[i];
        if (c === escape && escape !== quote && (line[i + 1] === quote || line[i + 1] === escape)) i += 2;
        else if (c === quote && line[i + 1] === quote && escape === quote) i += 2;
        else if (c === quote) {
          i++;
          break;
        } else i++;
      }
      if (i < end && line[i] !== delimiter) throw new MaskingError('COPY CSV: characters after a closing quote');
    } else {
      while (i < end && line[i] !== delimiter) i++;
    }
    fields.push({ start, end: i, quoted });
    if (i >= end) return fields;
    i++; // delimiter
  }
}

function unquoteCsv(raw: Buffer, quote: number, escape: number): Buffer {
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i] as number;
    if ((c === escape || c === quote) && i + 1 < raw.length - 1 && (raw[i + 1] === quote || (escape !== quote && raw[i + 1] === escape))) {
      out[n++] = raw[++i] as number;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** Always quoted: valid whatever the value holds, and never mistaken for the NULL string. */
function quoteCsv(value: Buffer, quote: number, escape: number): Buffer {
  let extra = 0;
  for (const c of value) if (c === quote || (c === escape && escape !== quote)) extra++;
  const out = Buffer.allocUnsafe(value.length + extra + 2);
  let n = 0;
  out[n++] = quote;
  for (const c of value) {
    if (c === quote || (c === escape && escape !== quote)) out[n++] = escape;
    out[n++] = c;
  }
  out[n] = quote;
  return out;
}

/** Masks the planned columns of one COPY CSV row. */
export function maskCopyCsvRow(line: Buffer, plan: readonly ColumnPlan[], key: Buffer, options: CopyCsvOptions = {}): Buffer | null {
  const delimiter = oneByte(options.delimiter ?? ',', 'DELIMITER');
  const quote = oneByte(options.quote ?? '"', 'QUOTE');
  const escape = options.escape === undefined ? quote : oneByte(options.escape, 'ESCAPE');
  const nullText = Buffer.from(options.null ?? '', 'utf8');
  const end = contentEnd(line);
  const fields = splitCsv(line, end, delimiter, quote, escape);
  checkCount(fields.length, plan, 'COPY CSV');
  const parts: Buffer[] = [];
  let read = 0;
  let changed = false;
  fields.forEach((field, i) => {
    const step = plan[i] as ColumnPlan;
    if (step.action !== 'mask') return; // content watching is for result rows only
    const raw = line.subarray(field.start, field.end);
    if (!field.quoted && raw.equals(nullText)) return;
    const value = field.quoted ? unquoteCsv(raw, quote, escape) : raw;
    const out = step.fixed !== undefined ? step.fixed : maskValue(value, step.column, step.mask, key);
    parts.push(line.subarray(read, field.start), out === null ? nullText : quoteCsv(out, quote, escape));
    read = field.end;
    changed = true;
  });
  if (!changed) return null;
  parts.push(line.subarray(read));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------- binary

/** "PGCOPY\n\377\r\n\0": the binary COPY signature. */
export const BINARY_COPY_SIGNATURE = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

/**
 * Masks the planned columns of the tuples in one binary COPY CopyData payload. The first payload
 * starts with the file header (signature, flags, extension), which is kept; the trailer (field
 * count -1) is kept. Each tuple is: int16 field count, then per field int32 length (-1 NULL) and
 * the value in binary format. A payload must hold whole tuples (PostgreSQL sends one per message).
 */
export function maskCopyBinaryRow(data: Buffer, plan: readonly ColumnPlan[], key: Buffer): Buffer | null {
  let p = 0;
  if (data.length >= BINARY_COPY_SIGNATURE.length && data.subarray(0, BINARY_COPY_SIGNATURE.length).equals(BINARY_COPY_SIGNATURE)) {
    if (data.length < 19) throw new MaskingError('binary COPY header is truncated');
    const extension = data.readInt32BE(15);
    if (extension < 0 || 19 + extension > data.length) throw new MaskingError('binary COPY header extension overruns the message');
    p = 19 + extension;
  }
  const parts: Buffer[] = [];
  let read = 0;
  let changed = false;
  while (p < data.length) {
    if (data.length - p < 2) throw new MaskingError('binary COPY tuple is truncated');
    const count = data.readInt16BE(p);
    p += 2;
    if (count === -1) {
      if (p !== data.length) throw new MaskingError('binary COPY data after the trailer');
      break;
    }
    checkCount(count, plan, 'binary COPY');
    for (let i = 0; i < count; i++) {
      if (data.length - p < 4) throw new MaskingError('binary COPY field length is truncated');
      const length = data.readInt32BE(p);
      if (length < -1 || (length > 0 && length > data.length - p - 4)) throw new MaskingError('binary COPY field overruns the message');
      const step = plan[i] as ColumnPlan;
      const valueEnd = p + 4 + Math.max(length, 0);
      if (step.action === 'mask' && length !== -1) {
        const out = step.fixed !== undefined ? step.fixed : maskValue(data.subarray(p + 4, valueEnd), step.column, step.mask, key);
        const header = Buffer.allocUnsafe(4);
        header.writeInt32BE(out === null ? -1 : out.length, 0);
        parts.push(data.subarray(read, p), header);
        if (out !== null) parts.push(out);
        read = valueEnd;
        changed = true;
      }
      p = valueEnd;
    }
  }
  if (!changed) return null;
  parts.push(data.subarray(read));
  return Buffer.concat(parts);
}
