import { createHmac } from 'node:crypto';
import type { MaskName } from '../policy/types.js';
import { describe, expect, it } from 'vitest';
import { Backend, DataRowScanner, decodeBackend, ProtocolViolation, writers } from '../wire/index.js';
import type { FieldDescription } from '../wire/index.js';
import { TypeOid } from './pg-types.js';
import { MaskingError, masksAnything, maskedIndexes, PASS, planColumns, type PlanDecision } from './plan.js';
import { maskValue } from './masks.js';
import { rewriteDataRow, rewriteDataRowTo } from './rewrite.js';

const KEY = Buffer.from('k'.repeat(32));

function field(name: string, typeOid: number, format = 0, typeModifier = -1): FieldDescription {
  return { name, tableOid: 16384, columnAttr: 1, typeOid, typeSize: -1, typeModifier, format };
}

const FIELDS = [field('id', TypeOid.int8), field('email', TypeOid.text), field('name', TypeOid.varchar), field('card', TypeOid.bpchar, 0, 4 + 16), field('note', TypeOid.text)];
const mask = (name: MaskName): PlanDecision => ({ action: 'mask', mask: name });
const reveal: PlanDecision = { action: 'reveal', mask: 'redact' };

function values(frame: Buffer): (string | null)[] {
  const msg = decodeBackend(Backend.DataRow, frame, 0, frame.length);
  if (msg.type !== 'DataRow') throw new Error('not a DataRow');
  return msg.values.map((v) => (v === null ? null : v.toString('utf8')));
}

function rewrite(row: Buffer, plan: ReturnType<typeof planColumns>): Buffer | null {
  return rewriteDataRow(row, 0, row.length, plan, new DataRowScanner(2), KEY);
}

describe('planColumns', () => {
  it('masks only the columns with a mask decision, precomputing fixed outputs', () => {
    const plan = planColumns(FIELDS, [undefined, mask('email'), reveal, mask('redact'), mask('null')]);
    expect(plan[0]).toBe(PASS);
    expect(plan[2]).toBe(PASS);
    expect(plan[1]).toMatchObject({ action: 'mask', mask: 'email', fixed: undefined });
    expect(plan[3]).toMatchObject({ action: 'mask', mask: 'redact' });
    expect(plan[3]?.action === 'mask' && plan[3].fixed?.toString()).toBe('[redacted]      ');
    expect(plan[4]).toMatchObject({ action: 'mask', fixed: null });
    expect(masksAnything(plan)).toBe(true);
    expect(maskedIndexes(plan)).toEqual([1, 3, 4]);
    expect(masksAnything(planColumns(FIELDS, []))).toBe(false);
  });

  it.each([
    [undefined, [0, 0]],
    [[], [0, 0]],
    [[1], [1, 1]],
    [[0, 1], [0, 1]],
  ])('Bind result formats %j → %j', (formats, expected) => {
    const plan = planColumns([field('a', TypeOid.text), field('b', TypeOid.text)], [mask('hash'), mask('hash')], formats);
    expect(plan.map((c) => (c.action === 'mask' ? c.column.format : -1))).toEqual(expected);
  });
});

describe('rewriteDataRow', () => {
  const row = writers.dataRow(['42', 'jane@example.com', 'Jane Doe', '4111111111111111', 'call me']);

  it('rewrites only the planned columns', () => {
    const plan = planColumns(FIELDS, [undefined, mask('email'), undefined, mask('partial'), undefined]);
    expect(values(rewrite(row, plan)!)).toEqual(['42', '***@example.com', 'Jane Doe', '************1111', 'call me']);
  });

  it.each([
    ['first column', [mask('hash')], ['ZZ', 'jane@example.com', 'Jane Doe', '4111111111111111', 'call me']],
    ['last column', [undefined, undefined, undefined, undefined, mask('redact')], ['42', 'jane@example.com', 'Jane Doe', '4111111111111111', '[redacted]']],
    ['to NULL', [undefined, mask('null'), undefined, undefined, mask('null')], ['42', null, 'Jane Doe', '4111111111111111', null]],
    ['every column', [mask('redact'), mask('redact'), mask('redact'), mask('redact'), mask('redact')], [null, '[redacted]', '[redacted]', '[redacted]      ', '[redacted]']],
  ] as const)('%s', (_name, decisions, expected) => {
    const out = rewrite(row, planColumns(FIELDS, decisions));
    const got = values(out!);
    if (expected[0] === 'ZZ') {
      // hash on int8 text: a non-negative int8 derived from HMAC("42")
      const digest = createHmac('sha256', KEY).update('42').digest();
      expect(got[0]).toBe((digest.readBigUInt64BE(0) & 0x7fffffffffffffffn).toString());
      expect(got.slice(1)).toEqual(expected.slice(1));
    } else {
      expect(got).toEqual(expected);
    }
  });

  it('writes a frame whose length field matches its size', () => {
    const out = rewrite(row, planColumns(FIELDS, [undefined, mask('redact'), undefined, undefined, undefined]))!;
    expect(out[0]).toBe(0x44);
    expect(out.readInt32BE(1)).toBe(out.length - 1);
    expect(out.readInt16BE(5)).toBe(5);
  });

  it('returns null when nothing changes', () => {
    expect(rewrite(row, planColumns(FIELDS, []))).toBeNull();
    const nulls = writers.dataRow(['1', null, 'x', null, 'y']);
    expect(rewrite(nulls, planColumns(FIELDS, [undefined, mask('redact'), undefined, mask('hash'), undefined]))).toBeNull();
  });

  it('rewrites a row inside a larger buffer', () => {
    const buf = Buffer.concat([Buffer.from('garbage'), row, Buffer.from('more')]);
    const plan = planColumns(FIELDS, [undefined, mask('email'), undefined, undefined, undefined]);
    const out = rewriteDataRow(buf, 7, 7 + row.length, plan, new DataRowScanner(), KEY)!;
    expect(values(out)).toEqual(['42', '***@example.com', 'Jane Doe', '4111111111111111', 'call me']);
  });

  it('binary format columns get binary values', () => {
    const fields = [field('id', TypeOid.uuid, 1), field('doc', TypeOid.jsonb, 1)];
    const uuid = Buffer.from('123e4567e89b12d3a456426614174000', 'hex');
    const doc = Buffer.concat([Buffer.from([1]), Buffer.from('{"email":"jane@example.com"}')]);
    const out = rewrite(writers.dataRow([uuid, doc]), planColumns(fields, [mask('hash'), mask('redact')]))!;
    const msg = decodeBackend(Backend.DataRow, out, 0, out.length);
    if (msg.type !== 'DataRow') throw new Error('not a DataRow');
    expect(msg.values[0]?.length).toBe(16);
    expect(((msg.values[0]?.[6] as number) & 0xf0) >> 4).toBe(8);
    expect(msg.values[1]?.[0]).toBe(1);
    expect(JSON.parse(msg.values[1]!.subarray(1).toString())).toBe('[redacted]');
  });

  it('fails closed on a column count that is not the plan', () => {
    expect(() => rewrite(writers.dataRow(['1', '2']), planColumns(FIELDS, [mask('redact')]))).toThrow(MaskingError);
  });

  it('fails closed on a malformed frame', () => {
    const broken = Buffer.from(row);
    broken.writeInt32BE(1000, 7);
    expect(() => rewrite(broken, planColumns(FIELDS, [mask('redact')]))).toThrow(ProtocolViolation);
  });
});

describe('in-place masking (email and partial on ASCII text, written straight into the frame)', () => {
  const plan = planColumns(
    [field('id', TypeOid.int4), field('email', TypeOid.text), field('phone', TypeOid.varchar), field('note', TypeOid.text)],
    [undefined, mask('email'), mask('partial'), mask('email')],
  );
  const samples = ['jane@example.com', 'jösé@example.com', ' x@y.com', 'not an email', '@x.com', 'a@b', '', '+1 202 555 0143', 'naïve', '12', null];

  it('gives the same frames as masking each value on its own, into a chunk shared by many rows', () => {
    const chunk = { chunk: Buffer.alloc(4096), end: 0, reserve(size: number): number { const at = this.end; this.end += size; return at; } };
    const scanner = new DataRowScanner(2);
    let expectedAt = 0;
    for (const a of samples) {
      for (const b of samples) {
        const row = writers.dataRow(['7', a, b, b]);
        const alone = rewriteDataRow(row, 0, row.length, plan, scanner, KEY);
        const before = chunk.end;
        const wrote = rewriteDataRowTo(chunk, row, 0, row.length, plan, scanner, KEY);
        expect(wrote).toBe(alone !== null);
        if (alone === null) continue;
        expect(chunk.chunk.subarray(before, chunk.end).equals(alone)).toBe(true);
        const got = values(alone);
        const reference = (v: string | null, m: 'email' | 'partial') => (v === null ? null : maskValue(Buffer.from(v), { typeOid: TypeOid.text, typeModifier: -1, format: 0 }, m, KEY)?.toString('utf8'));
        expect(got).toEqual(['7', reference(a, 'email'), reference(b, 'partial'), reference(b, 'email')]);
        expectedAt += alone.length;
        if (chunk.end > 3000) chunk.end = 0;
      }
    }
    expect(expectedAt).toBeGreaterThan(0);
  });
});

describe('watched columns (content detection)', () => {
  it('scans values while active, masks those the watch decides to mask, passes the rest', () => {
    let budget = 3;
    const seen: number[] = [];
    const watch = {
      active: () => budget-- > 0,
      maskFor: (bits: number) => {
        seen.push(bits);
        return bits !== 0 ? ('redact' as const) : undefined;
      },
      settled: () => budget <= 0,
    };
    const plan = planColumns([field('id', TypeOid.int4), field('note', TypeOid.text)], [undefined, { action: 'watch', watch }]);
    expect(plan[1]).toMatchObject({ action: 'watch' });
    const row = (note: string): Buffer => writers.dataRow(['1', note]);
    expect(rewrite(row('nothing to see'), plan)).toBeNull();
    const card = rewrite(row('card 4111111111111111'), plan);
    expect(card === null ? null : values(card)).toEqual(['1', '[redacted]']);
    expect(rewrite(row('ssn 123-45-6789'), plan)).not.toBeNull();
    // Inactive (sampling over): not even scanned.
    expect(rewrite(row('card 4111111111111111'), plan)).toBeNull();
    expect(seen.length).toBe(3);
    expect(seen[0]).toBe(0);
    // Only text columns are watched.
    expect(planColumns([field('n', TypeOid.int4)], [{ action: 'watch', watch }])[0]).toBe(PASS);
  });
});
