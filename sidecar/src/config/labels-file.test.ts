import { describe, expect, it } from 'vitest';
import { LabelsFileError, parseLabelsFile } from './labels-file.js';

describe('parseLabelsFile', () => {
  it.each([
    ['empty file', '', {}],
    ['kubelet output', 'app="checkout"\ndbward.io/kind="ai-agent"\npod-template-hash="7d9f"\n', { app: 'checkout', 'dbward.io/kind': 'ai-agent', 'pod-template-hash': '7d9f' }],
    ['empty value', 'tier=""', { tier: '' }],
    ['escapes', String.raw`a="q\"uote" b="back\\slash" c="tab\there" d="\x41\u00e9\U0001F600" e="\101"`.split(' ').join('\n'), { a: 'q"uote', b: 'back\\slash', c: 'tab\there', d: 'Aé😀', e: 'A' }],
    ['utf-8 written raw', 'team="équipe"', { team: 'équipe' }],
    ['CRLF and blank lines', 'a="1"\r\n\r\nb="2"\r\n', { a: '1', b: '2' }],
    ['= inside the value', 'expr="a=b"', { expr: 'a=b' }],
  ])('%s', (_name, text, expected) => {
    expect(parseLabelsFile(text)).toEqual(expected);
  });

  it.each([
    ['no =', 'app', 'line 1: expected key="value"'],
    ['unquoted value', 'app=checkout', 'line 1: expected a double-quoted value'],
    ['bad key', 'bad key="x"', 'line 1: invalid label key'],
    ['unknown escape', 'a="\\q"', 'line 1: unknown escape \\q'],
    ['short hex', 'a="\\x4"', 'line 1: bad escape: expected 2 hex digits'],
    ['stray quote', 'a="x"y"', 'line 1: unescaped "'],
    ['error on a later line', 'a="1"\nb=2', 'line 2: expected a double-quoted value'],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parseLabelsFile(text)).toThrow(LabelsFileError);
    expect(() => parseLabelsFile(text)).toThrow(message);
  });
});
