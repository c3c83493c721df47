import { createHmac, hash } from 'node:crypto';
import type { MaskName } from '../policy/types.js';

/**
 * The masks of SPEC §5 on strings. Typed values (what a masked int or uuid becomes) are in
 * masks.ts; this module only knows text.
 */

/** What `redact` puts in a text column. */
export const REDACTED = '[redacted]';

/** What `email` puts before the kept domain. */
export const EMAIL_LOCAL_MASK = '***';

/** The character `partial` writes for each hidden character. */
export const PARTIAL_FILL = '*';

interface Pads {
  /** ipad-xored key block, followed by room for the message. */
  readonly inner: Buffer;
  /** opad-xored key block, followed by room for the inner digest. */
  readonly outer: Buffer;
}

const SHA256_BLOCK = 64;
const MAX_FAST_MESSAGE = 4096;
const padsByKey = new WeakMap<Buffer, Pads>();

function padsOf(key: Buffer): Pads {
  let pads = padsByKey.get(key);
  if (pads !== undefined) return pads;
  const block = Buffer.alloc(SHA256_BLOCK);
  (key.length > SHA256_BLOCK ? hash('sha256', key, 'buffer') : key).copy(block);
  const inner = Buffer.alloc(SHA256_BLOCK + MAX_FAST_MESSAGE);
  const outer = Buffer.alloc(SHA256_BLOCK + 32);
  for (let i = 0; i < SHA256_BLOCK; i++) {
    inner[i] = (block[i] as number) ^ 0x36;
    outer[i] = (block[i] as number) ^ 0x5c;
  }
  pads = { inner, outer };
  padsByKey.set(key, pads);
  return pads;
}

/**
 * Keyed HMAC-SHA-256 (RFC 2104) of some bytes; the process key comes from the caller. Computed
 * as two one-shot SHA-256 over the key pads cached per key object: with OpenSSL 3, creating an
 * Hmac object per value costs several times more than the hashing itself (sidecar/bench/mask.ts).
 */
export function hmac(key: Buffer, data: Buffer | string): Buffer {
  const pads = padsOf(key);
  const inner = pads.inner;
  const length = typeof data === 'string' ? inner.write(data, SHA256_BLOCK, 'utf8') : data.length <= MAX_FAST_MESSAGE ? data.copy(inner, SHA256_BLOCK) : -1;
  if (length < 0 || (typeof data === 'string' && Buffer.byteLength(data, 'utf8') > MAX_FAST_MESSAGE)) return createHmac('sha256', key).update(data).digest();
  hash('sha256', inner.subarray(0, SHA256_BLOCK + length), 'buffer').copy(pads.outer, SHA256_BLOCK);
  return hash('sha256', pads.outer, 'buffer');
}

/**
 * `partial`: every character but the last 4 becomes `*`, so the length is kept. Values shorter
 * than 8 characters keep at most half of their characters (`1234` → `**34`), so a short value is
 * never shown whole. Characters are code points: a surrogate pair is never split.
 */
export function partialText(value: string): string {
  const chars = Array.from(value);
  const keep = Math.min(4, Math.floor(chars.length / 2));
  return PARTIAL_FILL.repeat(chars.length - keep) + chars.slice(chars.length - keep).join('');
}

const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){1,126}$/;

/**
 * `email`: keeps the domain, hides the local part: `jane.doe@example.com` → `***@example.com`.
 * A value that is not one address (no `@`, or something other than a domain after the last `@`,
 * as in free text) is redacted instead: keeping "the domain" of free text would keep the text.
 */
export function emailText(value: string): string {
  const trimmed = value.trim();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0) return REDACTED;
  const domain = trimmed.slice(at + 1);
  return domain.length <= 253 && DOMAIN.test(domain) ? `${EMAIL_LOCAL_MASK}@${domain}` : REDACTED;
}

/** The text a mask gives for a text value; null for the `null` mask. `hash` is hex of the HMAC of the UTF-8 bytes. */
export function maskText(value: string, mask: MaskName, key: Buffer): string | null {
  switch (mask) {
    case 'redact':
      return REDACTED;
    case 'partial':
      return partialText(value);
    case 'email':
      return emailText(value);
    case 'hash':
      return hmac(key, value).toString('hex');
    case 'null':
      return null;
  }
}

/**
 * Fits a masked string into char(n): pads with spaces or truncates to n characters, as
 * PostgreSQL's bpchar output would show it. A redaction that does not fit becomes n `*`.
 */
export function fitChars(text: string, n: number, mask: MaskName): string {
  const chars = Array.from(text);
  if (chars.length === n) return text;
  if (chars.length < n) return text + ' '.repeat(n - chars.length);
  if (mask === 'redact') return PARTIAL_FILL.repeat(n);
  return chars.slice(0, n).join('');
}

/** Truncates to at most maxBytes of UTF-8 without splitting a character (for `name`, 63 bytes). */
export function truncateUtf8(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

// ---- byte fast paths (ASCII values: the common case for emails, phones, card numbers) ----

const REDACTED_BYTES = Buffer.from(REDACTED, 'latin1');
const EMAIL_PREFIX = Buffer.from(EMAIL_LOCAL_MASK, 'latin1');
const STAR = 0x2a;

function isAsciiSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/**
 * emailText on the UTF-8 bytes of an ASCII value, without making strings: the same result as
 * `Buffer.from(emailText(raw.toString()))`. Undefined when the value is not plain ASCII or has
 * surrounding white space (the string path decides those).
 */
export function emailBytes(raw: Buffer): Buffer | undefined {
  const at = emailLayout(raw, 0, raw.length);
  if (at === EMAIL_DEFER) return undefined;
  if (at === EMAIL_REDACT) return REDACTED_BYTES;
  const out = Buffer.allocUnsafe(emailMaskedLength(at, raw.length));
  writeEmailMask(raw, at, raw.length, out, 0);
  return out;
}

/** emailLayout: the value must go through the string path. */
export const EMAIL_DEFER = -1;
/** emailLayout: the value is not one address; it becomes REDACTED_BYTES. */
export const EMAIL_REDACT = -2;

/**
 * How the `email` mask treats the ASCII value `raw[from..to)`: the offset of its last `@` when it
 * keeps the domain, EMAIL_REDACT, or EMAIL_DEFER (non-ASCII or surrounding space).
 */
export function emailLayout(raw: Buffer, from: number, to: number): number {
  if (to === from) return EMAIL_DEFER;
  const first = raw[from] as number;
  const last = raw[to - 1] as number;
  // Leading or trailing white space (or a multi-byte character, which might be Unicode space) is
  // trimmed by the string path: let it decide.
  if (isAsciiSpace(first) || isAsciiSpace(last) || first >= 0x80 || last >= 0x80) return EMAIL_DEFER;
  // One backward scan over the domain only: the last `@` is the first one met. A byte that cannot
  // be in a domain means there is no valid domain after the last `@` (or no `@`): redact.
  // (0x40 is never part of a multi-byte UTF-8 sequence, so the local part is never read.)
  let labels = 0;
  let labelEnd = to;
  for (let i = to - 1; i >= from; i--) {
    const b = raw[i] as number;
    if (b === 0x2e || b === 0x40) {
      const length = labelEnd - i - 1;
      if (length < 1 || length > 63 || !isAlnum(raw[i + 1] as number) || !isAlnum(raw[labelEnd - 1] as number)) return EMAIL_REDACT;
      labels++;
      labelEnd = i;
      if (b === 0x40) return i === from || labels < 2 || labels > 127 || to - i - 1 > 253 ? EMAIL_REDACT : i;
    } else if (!isAlnum(b) && b !== 0x2d) {
      return EMAIL_REDACT;
    }
  }
  return EMAIL_REDACT;
}

/** Length of `***@domain` for a value whose `@` is at `at` and which ends at `to`. */
export function emailMaskedLength(at: number, to: number): number {
  return EMAIL_LOCAL_MASK.length + (to - at);
}

/** Writes `***@domain` at `out[pos]`. */
export function writeEmailMask(raw: Buffer, at: number, to: number, out: Buffer, pos: number): void {
  for (let i = 0; i < EMAIL_PREFIX.length; i++) out[pos + i] = EMAIL_PREFIX[i] as number;
  raw.copy(out, pos + EMAIL_LOCAL_MASK.length, at, to);
}

/** True when `raw[from..to)` is all ASCII. */
export function isAscii(raw: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((raw[i] as number) >= 0x80) return false;
  return true;
}

/** Writes `partial` of the ASCII value `raw[from..to)` at `out[pos]` (same length). */
export function writePartialMask(raw: Buffer, from: number, to: number, out: Buffer, pos: number): void {
  const n = to - from;
  const keep = Math.min(4, Math.floor(n / 2));
  // Short values: a loop beats Buffer#fill's call overhead.
  for (let i = 0; i < n - keep; i++) out[pos + i] = STAR;
  for (let i = n - keep; i < n; i++) out[pos + i] = raw[from + i] as number;
}

/** partialText on an ASCII value's bytes; undefined when it is not plain ASCII. */
export function partialBytes(raw: Buffer): Buffer | undefined {
  if (!isAscii(raw, 0, raw.length)) return undefined;
  const out = Buffer.allocUnsafe(raw.length);
  writePartialMask(raw, 0, raw.length, out, 0);
  return out;
}

export { REDACTED_BYTES };
