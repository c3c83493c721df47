import { describe, expect, it } from 'vitest';
import type { MaskName } from '../policy/types.js';
import { TypeOid } from './pg-types.js';
import { BINARY_COPY_SIGNATURE, escapeCopyText, maskCopyBinaryRow, maskCopyCsvRow, maskCopyTextRow, unescapeCopyText } from './copy.js';
import { MaskingError, planColumns, type PlanDecision } from './plan.js';

const KEY = Buffer.from('k'.repeat(32));
const mask = (name: MaskName): PlanDecision => ({ action: 'mask', mask: name });
const col = (typeOid: number, format = 0): { typeOid: number; typeModifier: number; format: number } => ({ typeOid, typeModifier: -1, format });
const TEXT3 = [col(TypeOid.int4), col(TypeOid.text), col(TypeOid.text)];

describe('COPY text escaping', () => {
  it.each([
    ['plain', 'plain'],
    ['a\\tb', 'a\tb'],
    ['line\\nbreak\\r', 'line\nbreak\r'],
    ['back\\\\slash', 'back\\slash'],
    ['\\101\\x42\\7', 'AB\u0007'],
    ['\\b\\f\\v', '\b\f\v'],
    ['\\,', ','],
  ])('unescape %j', (escaped, raw) => {
    expect(unescapeCopyText(Buffer.from(escaped)).toString()).toBe(raw);
  });

  it('escape round-trips', () => {
    const value = 'a\tb\nc\rd\\e,f';
    expect(escapeCopyText(Buffer.from(value), 0x2c).toString()).toBe('a\\tb\\nc\\rd\\\\e\\,f');
    expect(unescapeCopyText(escapeCopyText(Buffer.from(value))).toString()).toBe(value);
  });
});

describe('maskCopyTextRow', () => {
  it.each([
    ['masks one column', '1\tjane@example.com\tnote\n', [undefined, mask('email')], '1\t***@example.com\tnote\n'],
    ['keeps NULL', '1\t\\N\tnote\n', [undefined, mask('redact')], null],
    ['to NULL', '1\tjane\tnote\n', [undefined, mask('null')], '1\t\\N\tnote\n'],
    ['int becomes NULL', '1\tjane\tnote\n', [mask('redact')], '\\N\tjane\tnote\n'],
    ['escaped input', '1\tpin 12\\t34\\n5678\tnote\n', [undefined, mask('partial')], '1\t**********5678\tnote\n'],
    ['partial keeps escapes valid', '1\tab\\\\cd\\tef\tx\n', [undefined, mask('partial')], '1\t****d\\tef\tx\n'],
    ['escaped delimiter in other column', '1\ta\tb\\tc\n', [undefined, mask('redact')], '1\t[redacted]\tb\\tc\n'],
    ['last column without newline', '1\ta\tb', [undefined, undefined, mask('redact')], '1\ta\t[redacted]'],
    ['CRLF kept', '1\ta\tb\r\n', [undefined, undefined, mask('redact')], '1\ta\t[redacted]\r\n'],
    ['nothing planned', '1\ta\tb\n', [], null],
  ] as const)('%s', (_name, line, decisions, expected) => {
    const out = maskCopyTextRow(Buffer.from(line), planColumns(TEXT3, decisions), KEY);
    expect(out === null ? null : out.toString()).toBe(expected);
  });

  it('honours DELIMITER and NULL options', () => {
    const out = maskCopyTextRow(Buffer.from('1|a\\|b|NIL\n'), planColumns(TEXT3, [undefined, mask('partial'), mask('redact')]), KEY, { delimiter: '|', null: 'NIL' });
    expect(out?.toString()).toBe('1|**b|NIL\n');
  });

  it('fails closed on a column count that is not the plan', () => {
    expect(() => maskCopyTextRow(Buffer.from('1\t2\n'), planColumns(TEXT3, [mask('redact')]), KEY)).toThrow(MaskingError);
  });
});

describe('maskCopyCsvRow', () => {
  it.each([
    ['unquoted', '1,jane@example.com,note\n', [undefined, mask('email')], '1,"***@example.com",note\n'],
    ['quoted with comma', '1,"Doe, Jane",note\n', [undefined, mask('partial')], '1,"*****Jane",note\n'],
    ['quoted quote', '1,"say ""hi"" now",x\n', [undefined, mask('partial')], '1,"******** now",x\n'],
    ['NULL kept', '1,,x\n', [undefined, mask('redact')], null],
    ['empty string is not NULL', '1,"",x\n', [undefined, mask('redact')], '1,"[redacted]",x\n'],
    ['to NULL', '1,a,x\n', [undefined, mask('null')], '1,,x\n'],
    ['newline inside quotes', '1,"a\nb",x\n', [undefined, undefined, mask('redact')], '1,"a\nb","[redacted]"\n'],
    ['masked newline stays quoted', '1,"line one\nline two",x\n', [undefined, mask('partial')], `1,"${partial('line one\nline two')}",x\n`],
    ['masked quote char is doubled', '1,"abcdefg""h",x\n', [undefined, mask('partial')], '1,"*****fg""h",x\n'],
    ['int to NULL', '7,a,b\n', [mask('hash')], null],
  ] as const)('%s', (_name, line, decisions, expected) => {
    const out = maskCopyCsvRow(Buffer.from(line), planColumns(TEXT3, decisions), KEY);
    if (_name === 'int to NULL') {
      // hash on int4 is a typed value, not NULL
      expect(out?.toString()).toMatch(/^"[0-9]+",a,b\n$/);
      return;
    }
    expect(out === null ? null : out.toString()).toBe(expected);
  });

  it('honours QUOTE, ESCAPE, DELIMITER and NULL options', () => {
    const options = { delimiter: ';', quote: "'", escape: '\\', null: 'NULL' };
    const out = maskCopyCsvRow(Buffer.from("1;'it\\'s';NULL\n"), planColumns(TEXT3, [undefined, mask('partial'), mask('redact')]), KEY, options);
    expect(out?.toString()).toBe("1;'**\\'s';NULL\n");
  });

  it('fails closed on malformed rows', () => {
    expect(() => maskCopyCsvRow(Buffer.from('1,"open,x\n'), planColumns(TEXT3, [mask('redact')]), KEY)).toThrow(MaskingError);
    expect(() => maskCopyCsvRow(Buffer.from('1,"a"b,x\n'), planColumns(TEXT3, [mask('redact')]), KEY)).toThrow(MaskingError);
    expect(() => maskCopyCsvRow(Buffer.from('1,2\n'), planColumns(TEXT3, [mask('redact')]), KEY)).toThrow(MaskingError);
  });
});

function partial(value: string): string {
  const chars = Array.from(value);
  return '*'.repeat(chars.length - 4) + chars.slice(-4).join('');
}

describe('maskCopyBinaryRow', () => {
  const BIN3 = [col(TypeOid.int4, 1), col(TypeOid.text, 1), col(TypeOid.uuid, 1)];
  function tuple(values: (Buffer | null)[]): Buffer {
    const parts: Buffer[] = [Buffer.alloc(2)];
    parts[0]!.writeInt16BE(values.length);
    for (const v of values) {
      const length = Buffer.alloc(4);
      length.writeInt32BE(v === null ? -1 : v.length);
      parts.push(length);
      if (v !== null) parts.push(v);
    }
    return Buffer.concat(parts);
  }
  function fields(data: Buffer, from: number): (Buffer | null)[] {
    const n = data.readInt16BE(from);
    const out: (Buffer | null)[] = [];
    let p = from + 2;
    for (let i = 0; i < n; i++) {
      const length = data.readInt32BE(p);
      out.push(length === -1 ? null : data.subarray(p + 4, p + 4 + length));
      p += 4 + Math.max(length, 0);
    }
    expect(p).toBe(data.length);
    return out;
  }
  const int = Buffer.from([0, 0, 0, 7]);
  const uuid = Buffer.from('123e4567e89b12d3a456426614174000', 'hex');
  const header = Buffer.concat([BINARY_COPY_SIGNATURE, Buffer.alloc(8)]);

  it('masks fields of a tuple', () => {
    const out = maskCopyBinaryRow(tuple([int, Buffer.from('jane@example.com'), uuid]), planColumns(BIN3, [mask('redact'), mask('email'), mask('hash')]), KEY)!;
    const [a, b, c] = fields(out, 0);
    expect(a).toBeNull();
    expect(b?.toString()).toBe('***@example.com');
    expect(c?.length).toBe(16);
  });

  it('keeps the header of the first message', () => {
    const out = maskCopyBinaryRow(Buffer.concat([header, tuple([int, Buffer.from('x'), null])]), planColumns(BIN3, [undefined, mask('redact')]), KEY)!;
    expect(out.subarray(0, 19)).toEqual(header);
    expect(fields(out, 19)[1]?.toString()).toBe('[redacted]');
  });

  it('skips a header extension', () => {
    const ext = Buffer.concat([BINARY_COPY_SIGNATURE, Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 9, 9, 9])]);
    const out = maskCopyBinaryRow(Buffer.concat([ext, tuple([int, Buffer.from('x'), null])]), planColumns(BIN3, [undefined, mask('redact')]), KEY)!;
    expect(fields(out, 22)[1]?.toString()).toBe('[redacted]');
  });

  it('passes the trailer and NULLs unchanged', () => {
    expect(maskCopyBinaryRow(Buffer.from([0xff, 0xff]), planColumns(BIN3, [mask('redact')]), KEY)).toBeNull();
    expect(maskCopyBinaryRow(tuple([null, null, null]), planColumns(BIN3, [mask('redact'), mask('redact'), mask('hash')]), KEY)).toBeNull();
  });

  it('fails closed on malformed tuples', () => {
    const plan = planColumns(BIN3, [mask('redact')]);
    expect(() => maskCopyBinaryRow(tuple([int, int]), plan, KEY)).toThrow(MaskingError);
    expect(() => maskCopyBinaryRow(tuple([int, Buffer.from('x'), uuid]).subarray(0, 10), plan, KEY)).toThrow(MaskingError);
    expect(() => maskCopyBinaryRow(Buffer.concat([Buffer.from([0xff, 0xff]), int]), plan, KEY)).toThrow(MaskingError);
    expect(() => maskCopyBinaryRow(BINARY_COPY_SIGNATURE, plan, KEY)).toThrow(MaskingError);
  });
});
