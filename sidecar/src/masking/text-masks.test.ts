import { describe, expect, it } from 'vitest';
import { emailBytes, emailText, partialBytes, partialText } from './text-masks.js';

/** The byte fast paths must give exactly what the string masks give, for every ASCII value. */

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TRICKY = [
  'jane.doe@example.com', 'a@b.c', '@example.com', 'x@', 'x@example', 'x@-bad.com', 'x@bad-.com', 'x@ok-ok.co',
  'x@a..b', 'x@.a.b', 'x@a.b.', 'two@at@example.org', 'free text mail me at a@b.com please', '', 'a', 'ab', '1234',
  '12345678', '4111111111111111', '+44 20 7946 0018', `x@${'a'.repeat(63)}.com`, `x@${'a'.repeat(64)}.com`,
  `x@${Array.from({ length: 130 }, () => 'a').join('.')}`, 'x@UPPER.EXAMPLE', 'x@1.2', 'tab\t@x.y', 'x@under_score.com',
];

function randomAscii(rand: () => number): string {
  const alphabet = ['a', 'b', 'X', '0', '9', '-', '.', '_', '@', ' ', '@', '.', '-', 'é', 'ü', '\u00a0', '\t'];
  const length = Math.floor(rand() * 24);
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

describe('byte fast paths', () => {
  const rand = lcg(42);
  const values = [...TRICKY, ...Array.from({ length: 20_000 }, () => randomAscii(rand))];

  it('emailBytes equals emailText, or defers to it', () => {
    let fast = 0;
    for (const v of values) {
      const out = emailBytes(Buffer.from(v, 'utf8'));
      if (out === undefined) continue;
      fast++;
      expect(out.toString('utf8'), JSON.stringify(v)).toBe(emailText(v));
    }
    expect(fast).toBeGreaterThan(values.length * 0.4);
  });

  it('partialBytes equals partialText', () => {
    let fast = 0;
    for (const v of values) {
      const out = partialBytes(Buffer.from(v, 'utf8'));
      if (out === undefined) continue;
      fast++;
      expect(out.toString('utf8'), JSON.stringify(v)).toBe(partialText(v));
    }
    expect(fast).toBeGreaterThan(values.length * 0.2);
  });

  it('handles non-ASCII inside the value like the string mask, defers values that may need trimming', () => {
    expect(emailBytes(Buffer.from('jösé@example.com', 'utf8'))?.toString('utf8')).toBe(emailText('jösé@example.com'));
    expect(emailBytes(Buffer.from('x@exämple.com', 'utf8'))?.toString('utf8')).toBe(emailText('x@exämple.com'));
    expect(emailBytes(Buffer.from('\u00a0x@example.com', 'utf8'))).toBeUndefined();
    expect(emailBytes(Buffer.from('x@example.com\u2003', 'utf8'))).toBeUndefined();
    expect(emailBytes(Buffer.from(' a@b.com', 'utf8'))).toBeUndefined();
    expect(partialBytes(Buffer.from('naïve', 'utf8'))).toBeUndefined();
  });
});
