import { createHmac } from 'node:crypto';
import types from 'pg-types';
import { describe, expect, it } from 'vitest';
import type { MaskName } from '../policy/types.js';
import { fixedMaskValue, maskValue, type MaskColumn } from './masks.js';
import { TypeOid } from './pg-types.js';
import { emailText, fitChars, hmac, partialText, truncateUtf8 } from './text-masks.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const text = (typeOid: number, typeModifier = -1): MaskColumn => ({ typeOid, typeModifier, format: 0 });
const binary = (typeOid: number, typeModifier = -1): MaskColumn => ({ typeOid, typeModifier, format: 1 });
const mask = (value: Buffer | string | null, column: MaskColumn, name: MaskName): Buffer | null =>
  maskValue(typeof value === 'string' ? Buffer.from(value) : value, column, name, KEY);
const str = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'));
const parseText = (oid: number, b: Buffer | null): unknown => (b === null ? null : types.getTypeParser(oid, 'text')(b.toString('utf8')));
const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('text masks', () => {
  it.each([
    ['4111111111111111', '************1111'],
    ['+1 415 555 0100', '***********0100'],
    ['12345678', '****5678'],
    ['1234567', '****567'],
    ['1234', '**34'],
    ['a', '*'],
    ['', ''],
    ['naïve café 😀😀', '*********é 😀😀'],
  ])('partial(%j) = %j', (value, expected) => {
    expect(partialText(value)).toBe(expected);
  });

  it('partial never splits a surrogate pair', () => {
    expect(partialText('abcd😀efg')).toBe('****😀efg');
  });

  it.each([
    ['jane.doe@example.com', '***@example.com'],
    [' jane@Example.COM ', '***@Example.COM'],
    ['a@b@sub.example.org', '***@sub.example.org'],
    ['not an email', '[redacted]'],
    ['@example.com', '[redacted]'],
    ['call jane@example.com tomorrow', '[redacted]'],
    ['jane@', '[redacted]'],
  ])('email(%j) = %j', (value, expected) => {
    expect(emailText(value)).toBe(expected);
  });

  it.each([
    ['abc', 5, 'partial', 'abc  '],
    ['abcdefgh', 5, 'partial', 'abcde'],
    ['[redacted]', 12, 'redact', '[redacted]  '],
    ['[redacted]', 4, 'redact', '****'],
  ] as const)('fitChars(%j, %d, %s)', (value, n, name, expected) => {
    expect(fitChars(value, n, name)).toBe(expected);
  });

  it('truncates UTF-8 on a character boundary', () => {
    expect(truncateUtf8('ééé', 5).toString()).toBe('éé');
    expect(truncateUtf8('abc', 5).toString()).toBe('abc');
  });
});

describe('maskValue: text types', () => {
  const cases: [name: string, column: MaskColumn, value: string, mask: MaskName, expected: string | null][] = [
    ['text redact', text(TypeOid.text), 'jane@example.com', 'redact', '[redacted]'],
    ['varchar partial', text(TypeOid.varchar, 4 + 20), '4111111111111111', 'partial', '************1111'],
    ['text email', text(TypeOid.text), 'jane@example.com', 'email', '***@example.com'],
    ['text null', text(TypeOid.text), 'jane@example.com', 'null', null],
    ['bpchar(16) redact pads', text(TypeOid.bpchar, 4 + 16), '4111111111111111', 'redact', '[redacted]      '],
    ['bpchar(4) redact', text(TypeOid.bpchar, 4 + 4), '1234', 'redact', '****'],
    ['bpchar(10) partial ignores padding', text(TypeOid.bpchar, 4 + 10), '123456    ', 'partial', '***456    '],
    ['bpchar(20) email pads', text(TypeOid.bpchar, 4 + 20), 'jo@example.com      ', 'email', '***@example.com     '],
    ['bpchar(8) hash truncates', text(TypeOid.bpchar, 4 + 8), 'abcdefgh', 'hash', createHmac('sha256', KEY).update('abcdefgh').digest('hex').slice(0, 8)],
    ['bpchar without typmod', text(TypeOid.bpchar), 'x', 'redact', '[redacted]'],
    ['name hash cut to 63 bytes', text(TypeOid.name), 'postgres', 'hash', createHmac('sha256', KEY).update('postgres').digest('hex').slice(0, 63)],
    ['citext by name', { ...text(99999), typeName: 'citext' }, 'Jane@Example.com', 'email', '***@Example.com'],
    ['text binary format', binary(TypeOid.text), 'jane@example.com', 'email', '***@example.com'],
  ];
  it.each(cases)('%s', (_name, column, value, name, expected) => {
    expect(str(mask(value, column, name))).toBe(expected);
  });

  it('hash is the keyed HMAC-SHA-256 in hex, deterministic and format-independent', () => {
    const expected = createHmac('sha256', KEY).update('jane@example.com').digest('hex');
    expect(str(mask('jane@example.com', text(TypeOid.text), 'hash'))).toBe(expected);
    expect(str(mask('jane@example.com', binary(TypeOid.varchar), 'hash'))).toBe(expected);
    expect(str(maskValue(Buffer.from('jane@example.com'), text(TypeOid.text), 'hash', Buffer.from('other key')))).not.toBe(expected);
  });

  it('keeps SQL NULL under every mask', () => {
    for (const name of ['redact', 'partial', 'email', 'hash', 'null'] as const) {
      expect(maskValue(null, text(TypeOid.text), name, KEY)).toBeNull();
      expect(maskValue(null, binary(TypeOid.uuid), name, KEY)).toBeNull();
    }
  });
});

describe('maskValue: json and jsonb', () => {
  it.each([
    [text(TypeOid.json), '{"email":"jane@example.com"}', 'redact', '[redacted]'],
    [text(TypeOid.jsonb), '"jane@example.com"', 'email', '***@example.com'],
    [text(TypeOid.jsonb), '"4111111111111111"', 'partial', '************1111'],
    [text(TypeOid.jsonb), '{"a": 1}', 'partial', '****: 1}'],
    [text(TypeOid.json), '{"a":1}', 'email', '[redacted]'],
    [binary(TypeOid.json), '"jane@example.com"', 'email', '***@example.com'],
  ] as const)('%j %s %s', (column, value, name, expected) => {
    const out = mask(value, column, name);
    expect(parseText(column.typeOid, out)).toBe(expected);
  });

  it('jsonb binary keeps version byte 1', () => {
    const raw = Buffer.concat([Buffer.from([1]), Buffer.from('"jane@example.com"')]);
    const out = mask(raw, binary(TypeOid.jsonb), 'email');
    expect(out?.[0]).toBe(1);
    expect(JSON.parse(out!.subarray(1).toString())).toBe('***@example.com');
    const hashed = mask(raw, binary(TypeOid.jsonb), 'hash');
    const hashedText = mask('"jane@example.com"', text(TypeOid.jsonb), 'hash');
    expect(hashed?.subarray(1).toString()).toBe(hashedText?.toString());
    expect(JSON.parse(hashedText!.toString())).toMatch(/^[0-9a-f]{64}$/);
  });

  it('jsonb binary of an unknown version becomes NULL', () => {
    expect(mask(Buffer.from([2, 0x7b, 0x7d]), binary(TypeOid.jsonb), 'redact')).toBeNull();
  });
});

describe('maskValue: typed values', () => {
  const uuid = '123e4567-e89b-12d3-a456-426614174000';
  const uuidBin = Buffer.from(uuid.replace(/-/g, ''), 'hex');

  it('hash on uuid gives a valid version-8 UUID, equal in both formats', () => {
    const t = str(mask(uuid, text(TypeOid.uuid), 'hash'));
    expect(t).toMatch(UUID_V8);
    const b = mask(uuidBin, binary(TypeOid.uuid), 'hash');
    expect(b?.length).toBe(16);
    expect(b?.toString('hex')).toBe(t?.replace(/-/g, ''));
    expect(str(mask(uuid.toUpperCase(), text(TypeOid.uuid), 'hash'))).toBe(t);
  });

  it('other masks on uuid give NULL', () => {
    for (const name of ['redact', 'partial', 'email'] as const) expect(mask(uuid, text(TypeOid.uuid), name)).toBeNull();
  });

  it('hash on int4 and int8 gives a non-negative integer, equal in both formats', () => {
    const int4Text = mask('42', text(TypeOid.int4), 'hash');
    const v4 = parseText(TypeOid.int4, int4Text) as number;
    expect(Number.isInteger(v4) && v4 >= 0 && v4 <= 2 ** 31 - 1).toBe(true);
    const int4Bin = Buffer.alloc(4);
    int4Bin.writeInt32BE(42);
    const out4 = mask(int4Bin, binary(TypeOid.int4), 'hash');
    expect(out4?.length).toBe(4);
    expect(types.getTypeParser(TypeOid.int4, 'binary')(out4 as unknown as string)).toBe(v4);

    const int8Text = mask('-9000000000', text(TypeOid.int8), 'hash');
    const v8 = BigInt(int8Text!.toString());
    expect(v8 >= 0n && v8 < 2n ** 63n).toBe(true);
    const int8Bin = Buffer.alloc(8);
    int8Bin.writeBigInt64BE(-9000000000n);
    const out8 = mask(int8Bin, binary(TypeOid.int8), 'hash');
    expect(out8?.length).toBe(8);
    expect(out8?.readBigInt64BE(0)).toBe(v8);
  });

  it('hash on bytea gives the 32 HMAC bytes, from hex or escape text or binary', () => {
    const bytes = Buffer.from([0, 1, 0x5c, 0xff]);
    const digest = createHmac('sha256', KEY).update(bytes).digest();
    expect(mask(bytes, binary(TypeOid.bytea), 'hash')).toEqual(digest);
    const hexOut = mask('\\x00015cff', text(TypeOid.bytea), 'hash');
    expect(parseText(TypeOid.bytea, hexOut)).toEqual(digest);
    expect(mask('\\000\\001\\\\\\377', text(TypeOid.bytea), 'hash')?.toString()).toBe(hexOut?.toString());
    expect(mask('\\x0', text(TypeOid.bytea), 'hash')).toBeNull();
  });

  it.each([
    [TypeOid.int2], [TypeOid.numeric], [TypeOid.date], [TypeOid.timestamptz], [TypeOid.inet], [TypeOid.bool], [1009 /* _text */], [99999],
  ])('every mask on type %i gives NULL', (oid) => {
    for (const name of ['redact', 'partial', 'email', 'hash'] as const) {
      expect(mask('1', text(oid), name)).toBeNull();
      expect(mask(Buffer.from([0, 0, 0, 1]), binary(oid), name)).toBeNull();
    }
  });

  it('malformed typed input becomes NULL rather than a wrong value', () => {
    expect(mask(Buffer.from([1, 2, 3]), binary(TypeOid.uuid), 'hash')).toBeNull();
    expect(mask('abc', text(TypeOid.int4), 'hash')).toBeNull();
    expect(mask(Buffer.from([1, 2]), binary(TypeOid.int8), 'hash')).toBeNull();
  });
});

describe('fixedMaskValue', () => {
  it.each([
    [text(TypeOid.text), 'redact', '[redacted]'],
    [text(TypeOid.bpchar, 8), 'redact', '****'],
    [binary(TypeOid.jsonb), 'redact', '\u0001"[redacted]"'],
    [text(TypeOid.json), 'redact', '"[redacted]"'],
    [text(TypeOid.text), 'null', null],
    [text(TypeOid.int4), 'redact', null],
    [text(TypeOid.date), 'hash', null],
    [text(TypeOid.text), 'hash', undefined],
    [text(TypeOid.int4), 'hash', undefined],
    [text(TypeOid.text), 'partial', undefined],
  ] as const)('%j %s', (column, name, expected) => {
    const out = fixedMaskValue(column, name);
    expect(out === null || out === undefined ? out : out.toString()).toBe(expected);
  });

  it('agrees with maskValue', () => {
    for (const column of [text(TypeOid.text), binary(TypeOid.jsonb), text(TypeOid.bpchar, 12), text(TypeOid.uuid)]) {
      for (const name of ['redact', 'null'] as const) {
        const raw = column.format === 1 ? Buffer.from('\u0001"value"') : Buffer.from('"value"');
        expect(fixedMaskValue(column, name)).toEqual(maskValue(raw, column, name, KEY));
      }
    }
  });
});

describe('hmac', () => {
  it.each([
    ['short key', Buffer.from('k'), 'value'],
    ['64-byte key', Buffer.alloc(64, 7), 'value'],
    ['long key', Buffer.alloc(100, 9), 'value'],
    ['empty value', Buffer.from('key'), ''],
    ['unicode value', Buffer.from('key'), 'naïve 😀'],
    ['value at the fast-path limit', Buffer.from('key'), 'x'.repeat(4096)],
    ['long value', Buffer.from('key'), 'x'.repeat(10_000)],
    ['long unicode value', Buffer.from('key'), 'é'.repeat(3000)],
  ])('matches createHmac: %s', (_name, key, value) => {
    const expected = createHmac('sha256', key).update(value).digest('hex');
    expect(hmac(key, value).toString('hex')).toBe(expected);
    expect(hmac(key, Buffer.from(value)).toString('hex')).toBe(expected);
  });
});
