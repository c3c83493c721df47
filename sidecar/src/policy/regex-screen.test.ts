import { describe, expect, it } from 'vitest';
import { screenPattern } from './regex-screen.js';

describe('matches() pattern screen', () => {
  it.each([
    '^SELECT',
    '^\\s*(?i:drop)\\s',
    '^[a-z]+-admin$',
    '^.*pii\\.',
    '^(foo|bar)-[0-9]{1,4}$',
    '^(ab)+c',
    '^\\d{3}-\\d{2}-\\d{4}$',
    '^(?<schema>[a-z_]+)\\.orders$',
    '^[^.]+\\.secrets?$',
    '^[a-z]+@[a-z]+',
    '^\\s*(?i:set)\\s+(?i:role)',
    '^\\s*(?i:delete)\\s+(?i:from)\\s+pii\\.',
    '^[0-9]+-[0-9]+$',
  ])('accepts %s', (pattern) => {
    expect(screenPattern(pattern)).toBeUndefined();
  });

  it.each([
    ['.*foo', 'anchored'],
    ['foo|^bar', 'anchored'],
    ['^a|b', 'top-level alternatives'],
    ['^.*foo.*bar', 'at most one unbounded'],
    ['^\\s*.*x', 'at most one unbounded'],
    ['^\\w+\\w+x', 'at most one unbounded'],
    ['^a+(?:a)+', 'at most one unbounded'],
    ['^(a+)+$', 'repeated group'],
    ['^(a|aa)*$', 'repeated group'],
    ['^(?:x*y)*$', 'repeated group'],
    ['^(a)\\1', 'backreferences'],
    ['^(?<n>a)\\k<n>', 'backreferences'],
    ['^(?=a)', 'lookaround'],
    ['^(?<!a)b', 'lookaround'],
    ['^(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)(m|n)(o|p)(q|r)(s|t)(u|v)', 'too many'],
    ['^a{0,1000}b*', 'at most one unbounded'],
    ['(?i)^admin', 'inline flags'],
    ['^(', 'invalid regular expression'],
    [`^${'a'.repeat(300)}`, 'longer than'],
  ])('rejects %s', (pattern, why) => {
    const problem = screenPattern(pattern);
    if (why === 'invalid') expect(problem).toBeDefined();
    else expect(problem).toContain(why);
  });

  it('accepted patterns stay linear on a hostile 200 KB statement', () => {
    const texts = [`${'x'.repeat(100_000)}${'@'.repeat(100_000)}`, `${' '.repeat(100_000)}set${' '.repeat(100_000)}`, 'xa'.repeat(100_000)];
    const patterns = ['^.*pii\\.', '^[a-z]+-admin$', '^(ab)+c', '^\\s*(?i:drop)\\s', '^[^@]*@[a-z]{0,32}$', '^[a-z]+@[a-z]+', '^\\s*(?i:set)\\s+(?i:role)', '^x*@*y'];
    for (const pattern of patterns) {
      expect(screenPattern(pattern)).toBeUndefined();
      for (const text of texts) {
        const started = performance.now();
        new RegExp(pattern).test(text);
        expect(performance.now() - started).toBeLessThan(500);
      }
    }
  });
});
