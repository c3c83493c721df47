import type { MaskName } from '../policy/types.js';
import { bpcharLength, NAME_MAX_BYTES, TypeOid, typeCategory, type TypeCategory } from './pg-types.js';
import { emailBytes, fitChars, hmac, maskText, partialBytes, REDACTED, truncateUtf8 } from './text-masks.js';

/**
 * Type-preserving masks (SPEC §5, ADR 0012): the bytes that replace a value in a DataRow or a
 * binary COPY tuple, valid for the column's type in the column's format, so that the client's
 * decoder accepts them.
 *
 * | category | redact / partial / email | hash | null |
 * |---|---|---|---|
 * | text, varchar, bpchar(n), name, citext | the masked string (bpchar padded/truncated to n, name cut to 63 bytes) | 64 hex digits | NULL |
 * | json, jsonb | a JSON string (`"[redacted]"`); jsonb binary has its version byte 1 | JSON string of the hex | NULL |
 * | uuid | NULL | a version-8 UUID from the HMAC | NULL |
 * | int4, int8 | NULL | a non-negative integer from the HMAC | NULL |
 * | bytea | NULL | the 32 HMAC bytes | NULL |
 * | anything else | NULL | NULL | NULL |
 *
 * `hash` hashes a canonical form of the value, the same in text and binary format, so a value
 * hashes alike for every client: the text (UTF-8 bytes) of text types, the JSON text of json and
 * jsonb, the 16 bytes of a uuid, the decimal text of an integer, the bytes of a bytea.
 * SQL NULL stays NULL under every mask: there is nothing to hide.
 */

/** What maskValue needs to know about a column: a FieldDescription has all of it. */
export interface MaskColumn {
  readonly typeOid: number;
  /** pg_attribute.atttypmod; -1 when unknown. For bpchar(n) it is n + 4. */
  readonly typeModifier: number;
  /** 0 text, 1 binary. */
  readonly format: number;
  /** For extension types without a fixed OID: `citext` is treated as text. */
  readonly typeName?: string;
}

const JSONB_VERSION = 1;

/** The masked bytes for one value, or null for SQL NULL. `raw` is the value as sent, without its length. */
export function maskValue(raw: Buffer | null, column: MaskColumn, mask: MaskName, key: Buffer): Buffer | null {
  if (raw === null || mask === 'null') return null;
  const category = typeCategory(column.typeOid, column.typeName);
  switch (category) {
    case 'text':
      return maskTextValue(raw, column, mask, key);
    case 'json':
      return maskJson(raw, column, mask, key);
    case 'uuid':
      return mask === 'hash' ? hashUuid(raw, column.format, key) : null;
    case 'integer':
      return mask === 'hash' ? hashInteger(raw, column, key) : null;
    case 'bytea':
      return mask === 'hash' ? hashBytea(raw, column.format, key) : null;
    case 'other':
      return null;
  }
}

/**
 * The output of a mask that does not depend on the value (every row gets the same bytes):
 * Buffer or null (SQL NULL). Undefined when the value is needed. Non-NULL inputs only: NULL stays NULL.
 */
export function fixedMaskValue(column: MaskColumn, mask: MaskName): Buffer | null | undefined {
  if (mask === 'null') return null;
  const category: TypeCategory = typeCategory(column.typeOid, column.typeName);
  if (category === 'other') return null;
  if (mask === 'hash') return undefined;
  if (category === 'uuid' || category === 'integer' || category === 'bytea') return null;
  if (mask !== 'redact') return undefined;
  return category === 'text' ? textBytes(REDACTED, column, mask) : jsonBytes(REDACTED, column.typeOid, column.format);
}

function textBytes(text: string, column: MaskColumn, mask: MaskName): Buffer {
  if (column.typeOid === TypeOid.bpchar) {
    const n = bpcharLength(column.typeModifier);
    return Buffer.from(n > 0 ? fitChars(text, n, mask) : text, 'utf8');
  }
  if (column.typeOid === TypeOid.name) return truncateUtf8(text, NAME_MAX_BYTES);
  return Buffer.from(text, 'utf8');
}

/** Text types have the same bytes in both formats (the client encoding's text; UTF-8 assumed). */
function maskTextValue(raw: Buffer, column: MaskColumn, mask: MaskName, key: Buffer): Buffer {
  if (column.typeOid !== TypeOid.bpchar && column.typeOid !== TypeOid.name) {
    // Byte fast paths for ASCII values; they return undefined for anything else.
    const fast = mask === 'email' ? emailBytes(raw) : mask === 'partial' ? partialBytes(raw) : undefined;
    if (fast !== undefined) return fast;
  }
  let text: string;
  if (mask === 'hash') {
    text = hmac(key, raw).toString('hex');
  } else {
    let value = raw.toString('utf8');
    // char(n) pads with spaces: the "last 4 characters" are the last 4 of the value, not padding.
    if (column.typeOid === TypeOid.bpchar) value = value.replace(/ +$/, '');
    text = maskText(value, mask, key) ?? '';
  }
  return textBytes(text, column, mask);
}

function jsonBytes(text: string, typeOid: number, format: number): Buffer {
  const json = JSON.stringify(text);
  if (format !== 1 || typeOid !== TypeOid.jsonb) return Buffer.from(json, 'utf8');
  const length = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(length + 1);
  out[0] = JSONB_VERSION;
  out.write(json, 1, 'utf8');
  return out;
}

/** json/jsonb: a JSON string. partial and email mask the string itself when the value is a JSON string. */
function maskJson(raw: Buffer, column: MaskColumn, mask: MaskName, key: Buffer): Buffer | null {
  let body = raw;
  if (column.format === 1 && column.typeOid === TypeOid.jsonb) {
    if (raw.length === 0 || raw[0] !== JSONB_VERSION) return null; // unknown jsonb version: fail safe
    body = raw.subarray(1);
  }
  if (mask === 'hash') return jsonBytes(hmac(key, body).toString('hex'), column.typeOid, column.format);
  const text = body.toString('utf8');
  let value = text;
  if (mask !== 'redact' && text.trimStart().startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'string') value = parsed;
    } catch {
      // not valid JSON: mask the text as it is
    }
  }
  return jsonBytes(maskText(value, mask, key) ?? REDACTED, column.typeOid, column.format);
}

// ------------------------------------------------------------------------------------ typed hashes

const HEX = /^[0-9a-fA-F]{32}$/;

/** The 16 bytes of a uuid in either format (text: any form uuid_in accepts with 32 hex digits), or undefined. */
function uuidBytes(raw: Buffer, format: number): Buffer | undefined {
  if (format === 1) return raw.length === 16 ? raw : undefined;
  const hex = raw.toString('latin1').replace(/[{}-]/g, '');
  return HEX.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

/** RFC 9562 text form. */
export function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** hash on uuid: the first 16 HMAC bytes as an RFC 9562 version 8 (custom) UUID. */
function hashUuid(raw: Buffer, format: number, key: Buffer): Buffer | null {
  const bytes = uuidBytes(raw, format);
  if (bytes === undefined) return null;
  const digest = hmac(key, bytes).subarray(0, 16);
  digest[6] = ((digest[6] as number) & 0x0f) | 0x80;
  digest[8] = ((digest[8] as number) & 0x3f) | 0x80;
  return format === 1 ? Buffer.from(digest) : Buffer.from(formatUuid(digest), 'latin1');
}

/** The decimal text of an int4/int8 in either format, or undefined when malformed. */
function integerText(raw: Buffer, column: MaskColumn): string | undefined {
  if (column.format !== 1) return /^-?[0-9]{1,19}$/.test(raw.toString('latin1')) ? raw.toString('latin1') : undefined;
  if (column.typeOid === TypeOid.int4) return raw.length === 4 ? String(raw.readInt32BE(0)) : undefined;
  return raw.length === 8 ? raw.readBigInt64BE(0).toString() : undefined;
}

/**
 * hash on int4/int8: a non-negative integer of the column's width from the HMAC of the decimal
 * text (31 or 63 bits), so hashed ids still join with each other. int4 pseudonyms collide sooner
 * (birthday bound ~77,000 distinct values for 50%); use int8 ids where joins must be exact.
 */
function hashInteger(raw: Buffer, column: MaskColumn, key: Buffer): Buffer | null {
  const text = integerText(raw, column);
  if (text === undefined) return null;
  const digest = hmac(key, text);
  if (column.typeOid === TypeOid.int4) {
    const value = digest.readUInt32BE(0) & 0x7fffffff;
    if (column.format !== 1) return Buffer.from(String(value), 'latin1');
    const out = Buffer.allocUnsafe(4);
    out.writeInt32BE(value, 0);
    return out;
  }
  const value = digest.readBigUInt64BE(0) & 0x7fffffffffffffffn;
  if (column.format !== 1) return Buffer.from(value.toString(), 'latin1');
  const out = Buffer.allocUnsafe(8);
  out.writeBigInt64BE(value, 0);
  return out;
}

/** bytea text output: hex (`\x...`, the default since 9.0) or escape format. */
function byteaBytes(raw: Buffer, format: number): Buffer | undefined {
  if (format === 1) return raw;
  if (raw.length >= 2 && raw[0] === 0x5c && raw[1] === 0x78) {
    const hex = raw.toString('latin1', 2);
    return /^(?:[0-9a-fA-F]{2})*$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  }
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (c !== 0x5c) {
      out[n++] = c;
    } else if (raw[i + 1] === 0x5c) {
      out[n++] = 0x5c;
      i++;
    } else {
      const octal = raw.toString('latin1', i + 1, i + 4);
      if (!/^[0-3][0-7]{2}$/.test(octal)) return undefined;
      out[n++] = parseInt(octal, 8);
      i += 3;
    }
  }
  return out.subarray(0, n);
}

function hashBytea(raw: Buffer, format: number, key: Buffer): Buffer | null {
  const bytes = byteaBytes(raw, format);
  if (bytes === undefined) return null;
  const digest = hmac(key, bytes);
  return format === 1 ? digest : Buffer.from(`\\x${digest.toString('hex')}`, 'latin1');
}
