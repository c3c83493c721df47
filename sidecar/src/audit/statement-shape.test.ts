import { beforeAll, describe, expect, it } from 'vitest';
import { initSqlAnalysis } from '../sql/index.js';
import { findTraceParent, normalizeQueryText, stripComments } from './statement-shape.js';

beforeAll(async () => {
  await initSqlAnalysis();
});

describe('normalizeQueryText', () => {
  it.each([
    ["select * from t where id = 5 and name = 'ada'", 'select * from t where id = $1 and name = $2'],
    ["select 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/", 'select $1'],
    ["insert into t values (1, 'secret') -- trailing", 'insert into t values ($1, $2)'],
    ['select $$body$$', 'select $1'],
    ['select "we/*ird" from t', 'select "we/*ird" from t'],
  ])('%s', (text, expected) => {
    expect(normalizeQueryText(text)).toBe(expected);
  });

  it('gives null for text that does not parse (never the raw text)', () => {
    expect(normalizeQueryText("selec 'secret'")).toBeNull();
  });
});

describe('stripComments', () => {
  it.each([
    ['a /* x /* nested */ y */ b', 'a   b'],
    ['a -- c\nb', 'a  \nb'],
    ["'--not' b", "'--not' b"],
  ])('%j', (text, expected) => {
    expect(stripComments(text)).toBe(expected);
  });
});

describe('findTraceParent', () => {
  const frame = (sql: string): Buffer => Buffer.from(`Qxxxx${sql}\0`);
  const id = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it.each([
    [`select 1 /*traceparent='${id}'*/`, true],
    [`select 1 /*controller='x',traceparent='${id}'*/;`, true],
    [`select 1 /*traceparent='${id}'*/ \n`, true],
    [`/*traceparent='${id}'*/ select 1`, false], // sqlcommenter appends: leading comments are not read
    [`select 1 /*traceparent='01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/`, false],
    [`select 1 /*traceparent='00-00000000000000000000000000000000-00f067aa0ba902b7-01'*/`, false],
    [`select 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01'*/`, false],
    [`select 1 /*traceparent='00-4bf92f*/`, false],
    ['select 1', false],
  ])('%s -> %s', (sql, found) => {
    const buf = frame(sql);
    const tp = findTraceParent(buf, 0, buf.length);
    expect(tp !== undefined).toBe(found);
    if (tp !== undefined) {
      expect(tp.traceId.toString('hex')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(tp.spanId.toString('hex')).toBe('00f067aa0ba902b7');
    }
  });
});
