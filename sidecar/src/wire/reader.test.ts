import { describe, expect, it } from 'vitest';
import { ProtocolViolation } from './errors.js';
import { openFrame, readFormats, Reader } from './reader.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('Reader', () => {
  it('reads signed and unsigned integers big-endian', () => {
    const r = new Reader(hex('ff 80 ff7f ffff 8000 fffffffe ffffffff 7fffffff'), 0, 20, 'Test');
    expect(r.uint8('a')).toBe(255);
    expect(r.int8('b')).toBe(-128);
    expect(r.int16('c')).toBe(-129);
    expect(r.uint16('d')).toBe(65535);
    expect(r.int16('e')).toBe(-32768);
    expect(r.int32('f')).toBe(-2);
    expect(r.uint32('g')).toBe(4294967295);
    expect(r.int32('h')).toBe(2147483647);
    expect(r.remaining()).toBe(0);
    r.done();
  });

  it('honours start and end, never reading outside them', () => {
    const buf = hex('01 02 03 04 05 06');
    const r = new Reader(buf, 1, 4, 'Test');
    expect(r.uint8('x')).toBe(2);
    expect(r.uint16('y')).toBe(0x0304);
    expect(() => r.uint8('z')).toThrow(/Test: z needs 1 bytes but only 0 remain/);
  });

  it.each([
    ['int8', (r: Reader) => r.int8('f'), 0],
    ['int16', (r: Reader) => r.int16('f'), 1],
    ['uint16', (r: Reader) => r.uint16('f'), 1],
    ['int32', (r: Reader) => r.int32('f'), 3],
    ['uint32', (r: Reader) => r.uint32('f'), 3],
    ['bytes(5)', (r: Reader) => r.bytes(5, 'f'), 4],
  ])('%s overrun throws ProtocolViolation naming the message and field', (_n, read, available) => {
    const r = new Reader(Buffer.alloc(10), 2, 2 + available, 'Bind');
    expect(() => read(r)).toThrow(ProtocolViolation);
    expect(() => read(r)).toThrow(new RegExp(`^Bind: f needs \\d bytes but only ${available} remain in the message$`));
  });

  it('reads NUL-terminated UTF-8 strings, short and long', () => {
    const long = 'é'.repeat(100);
    const buf = Buffer.concat([Buffer.from('abc\0\0'), Buffer.from(`${long}\0`), Buffer.from('🐘\0')]);
    const r = new Reader(buf, 0, buf.length, 'Test');
    expect(r.cstring('a')).toBe('abc');
    expect(r.cstring('b')).toBe('');
    expect(r.cstring('c')).toBe(long);
    expect(r.cstring('d')).toBe('🐘');
    r.done();
  });

  it('refuses a string whose NUL lies past the end, on both the short and the long path', () => {
    for (const n of [0, 5, 31, 32, 33, 200]) {
      const buf = Buffer.concat([Buffer.alloc(n, 0x61), Buffer.from([0])]);
      const r = new Reader(buf, 0, n, 'Query');
      expect(() => r.cstring('query string')).toThrow(/^Query: query string is not terminated by a NUL byte/);
      expect(r.pos).toBe(0);
    }
  });

  it('returns views for bytes() and rest(), and refuses negative lengths', () => {
    const buf = hex('00 01 02 03 04');
    const r = new Reader(buf, 1, 5, 'Test');
    const b = r.bytes(2, 'x');
    expect(b).toEqual(hex('0102'));
    expect(b.buffer).toBe(buf.buffer);
    expect(r.rest()).toEqual(hex('0304'));
    expect(r.rest()).toEqual(Buffer.alloc(0));
    expect(() => new Reader(buf, 0, 5, 'T').bytes(-1, 'x')).toThrow(/x has invalid length -1/);
  });

  it('nullableBytes: -1 is NULL, other negatives and overruns are violations', () => {
    expect(new Reader(hex('ffffffff'), 0, 4, 'T').nullableBytes('v')).toBeNull();
    expect(new Reader(hex('00000000'), 0, 4, 'T').nullableBytes('v')).toEqual(Buffer.alloc(0));
    expect(new Reader(hex('00000001 41'), 0, 5, 'T').nullableBytes('v')).toEqual(Buffer.from('A'));
    expect(() => new Reader(hex('fffffffe'), 0, 4, 'T').nullableBytes('v')).toThrow(/v has invalid length -2/);
    expect(() => new Reader(hex('80000000'), 0, 4, 'T').nullableBytes('v')).toThrow(/invalid length -2147483648/);
    expect(() => new Reader(hex('00000002 41'), 0, 5, 'T').nullableBytes('v')).toThrow(/v needs 2 bytes but only 1 remain/);
  });

  it('count16 reads unsigned counts and checks them against the bytes left', () => {
    expect(new Reader(hex('0002 0000 0000'), 0, 6, 'T').count16('n', 2)).toBe(2);
    expect(() => new Reader(hex('0003 0000 0000'), 0, 6, 'T').count16('n', 2)).toThrow(/n is 3 but only 4 bytes remain/);
    // 0xffff is 65535 (as PostgreSQL's pq_getmsgint reads it), not -1.
    expect(() => new Reader(hex('ffff'), 0, 2, 'T').count16('n', 1)).toThrow(/n is 65535/);
  });

  it('count32 refuses negative counts', () => {
    expect(() => new Reader(hex('ffffffff'), 0, 4, 'T').count32('n', 1)).toThrow(/n is negative \(-1\)/);
    expect(new Reader(hex('00000001 00'), 0, 5, 'T').count32('n', 1)).toBe(1);
  });

  it('done() reports trailing bytes', () => {
    const r = new Reader(hex('0102'), 0, 2, 'Sync');
    expect(() => r.done()).toThrow(/^Sync: 2 unexpected bytes after the last field$/);
  });

  it('readFormats reads an Int16 count and signed codes', () => {
    expect(readFormats(new Reader(hex('0003 0000 0001 ffff'), 0, 8, 'T'), 'f')).toEqual([0, 1, -1]);
    expect(() => readFormats(new Reader(hex('0002 0000'), 0, 4, 'T'), 'f')).toThrow(/f count is 2/);
  });
});

describe('openFrame', () => {
  it('returns a reader over the body', () => {
    const r = openFrame(0x51, hex('aa 51 00000006 4100 bb'), 1, 8, 'Query');
    expect(r.pos).toBe(6);
    expect(r.end).toBe(8);
    expect(r.cstring('q')).toBe('A');
  });

  it.each([
    ['start beyond the buffer', hex('5100000004'), -1, 5, /shorter than its 5-byte header|frame of/],
    ['end beyond the buffer', hex('5100000005'), 0, 6, /frame of 6 bytes/],
    ['end before start', hex('5100000004'), 5, 0, /frame of -5 bytes/],
    ['wrong type byte', hex('5000000004'), 0, 5, /starts with type byte 0x50, not 0x51/],
    ['length mismatch', hex('5100000005'), 0, 5, /length field says 5 but the frame holds 4/],
  ])('%s', (_n, buf, start, end, message) => {
    expect(() => openFrame(0x51, buf, start, end, 'Query')).toThrow(message);
  });
});
