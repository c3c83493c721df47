import { beforeAll, describe, expect, it } from 'vitest';
import { initSqlAnalysis } from './analyze.js';
import { copyOutFormat } from './copy-options.js';

beforeAll(() => initSqlAnalysis());

describe('copyOutFormat', () => {
  it.each([
    ['copy t to stdout', { format: 'text', header: false }],
    ['COPY t TO STDOUT CSV HEADER', { format: 'csv', header: true }],
    ["copy (select 1) to stdout with (format csv, header false, delimiter ';', null 'N', quote '''', escape '\\')", { format: 'csv', header: false, delimiter: ';', null: 'N', quote: "'", escape: '\\' }],
    ['copy t (a, b) to stdout (format binary)', { format: 'binary', header: false }],
    ["copy t to stdout with (format text, header on, encoding 'UTF8')", { format: 'text', header: true }],
    ['copy t to stdout with (force_quote (a), format csv)', { format: 'csv', header: false }],
  ])('%s', (sql, expected) => {
    expect(copyOutFormat(sql)).toEqual(expected);
  });

  it.each(['copy t from stdin', "copy t to '/tmp/x'", "copy t to program 'cat'", 'select 1', 'copy t to stdout; select 1', 'copy t to stdout with (force_null (a))', 'not sql at all ('])(
    'undefined for %s',
    (sql) => {
      expect(copyOutFormat(sql)).toBeUndefined();
    },
  );
});
