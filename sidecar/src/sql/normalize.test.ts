import { readFileSync } from 'node:fs';
import { fingerprintSync, parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeQuery, initSqlAnalysis, isUnparseable } from './analyze.js';
import { APPLICATION, CASES, PGBENCH } from './fixtures.js';
import { cacheKey, lexQuery, toStandardStrings } from './normalize.js';

const ON = { standardConformingStrings: true };
const OFF = { standardConformingStrings: false };

beforeAll(async () => {
  await initSqlAnalysis();
});

/** Deterministic pseudo-random numbers. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The parser's statement texts, or null when it rejects the string. */
function parserTexts(sql: string): string[] | null {
  const r = analyzeQuery(sql, { searchPath: ['public'] });
  return isUnparseable(r) ? null : r.statements.map((s) => s.text);
}

function lexerTexts(sql: string, opts = ON): string[] | null {
  const l = lexQuery(sql, opts);
  if (l === null) return null;
  const out: string[] = [];
  for (let i = 0; i < l.spans.length; i += 2) out.push(sql.slice(l.spans[i], l.spans[i + 1]));
  return out;
}

/** libpg_query's fingerprint of a statement the parser accepts, else null. */
function fingerprint(sql: string): string | null {
  try {
    parseSync(sql);
    return fingerprintSync(sql);
  } catch {
    return null;
  }
}

describe('cacheKey', () => {
  it('replaces literals, strips comments, collapses whitespace', () => {
    const a = cacheKey('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;', ON);
    const b = cacheKey('SELECT  abalance\n FROM pgbench_accounts /* hi */ WHERE aid = 7 -- x\n;', ON);
    expect(a).toBe(b);
    expect(a).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = \u0002;');
    expect(cacheKey("SELECT * FROM t WHERE s = 'it''s' AND e = E'\\'' AND d = $$x$$ AND t = $q$ $$ $q$", ON)).toBe(
      'SELECT * FROM t WHERE s = \u0001 AND e = E\u0001 AND d = \u0001 AND t = \u0001',
    );
    expect(cacheKey('SELECT 1.5e3, .5, 0x1F, 0o17, 0b101, 1_000', ON)).toBe('SELECT \u0002, \u0002, \u0002, \u0002, \u0002, \u0002');
    expect(cacheKey('DROP/**/TABLE t', ON)).toBe('DROP TABLE t');
    expect(cacheKey('SELECT 1 /* a /* nested */ comment */ + 2', ON)).toBe('SELECT \u0002 + \u0002');
  });

  it('keeps what is not a literal: identifiers, parameters, operators, quoted names', () => {
    expect(cacheKey('SELECT "a b", t1.c2, $1, $2 FROM t1 WHERE x <> -1', ON)).toBe('SELECT "a b", t1.c2, $1, $2 FROM t1 WHERE x <> -\u0002');
    expect(cacheKey('SELECT a FROM t', ON)).not.toBe(cacheKey('SELECT b FROM t', ON));
    expect(cacheKey('SELECT $1', ON)).not.toBe(cacheKey('SELECT 1', ON));
    expect(cacheKey("SELECT 'a'", ON)).not.toBe(cacheKey('SELECT 1', ON));
    expect(cacheKey("SELECT E'a'", ON)).not.toBe(cacheKey("SELECT 'a'", ON));
  });

  it('keeps the literals of statements other than DML', () => {
    expect(cacheKey("SET application_name = 'a'", ON)).toBe("SET application_name = 'a'");
    expect(cacheKey('EXPLAIN (ANALYZE 0) DELETE FROM t', ON)).not.toBe(cacheKey('EXPLAIN (ANALYZE 1) DELETE FROM t', ON));
    expect(cacheKey("COPY t TO '/a'", ON)).not.toBe(cacheKey("COPY t TO '/b'", ON));
    expect(cacheKey("SELECT 1; NOTIFY c, 'x'", ON)).toBe("SELECT \u0002;NOTIFY c, 'x'");
  });

  it('keeps the UESCAPE character, which changes an identifier', () => {
    expect(cacheKey('SELECT U&"d!0061t" UESCAPE \'!\' FROM t', ON)).not.toBe(cacheKey('SELECT U&"d!0061t" UESCAPE \'#\' FROM t', ON));
  });

  it.each([
    ["SELECT 'unterminated"],
    ['SELECT "unterminated'],
    ['SELECT $$unterminated'],
    ['SELECT $a$ $b$'],
    ['SELECT 1 /* unterminated'],
    ['SELECT 123abc'],
    ['SELECT 1e'],
    ['SELECT $1abc'],
    ['SELECT 1..2'],
    ["SELECT 'a' 'b'"],
    ["SELECT 'a' /* c */ 'b'"],
    ['SELECT \\x'],
    ['SELECT {}'],
    ['SELECT (1'],
    ['SELECT 1)'],
    ['SELECT \u0000'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END'],
    ["SELECT U&'\\0041'", OFF],
  ])('returns null when unsure: %s', (sql, opts = ON) => {
    expect(cacheKey(sql, opts)).toBeNull();
  });

  it('follows string continuation across a newline', () => {
    expect(cacheKey("SELECT 'a'\n  'b'", ON)).toBe('SELECT \u0001');
    expect(cacheKey("SELECT E'a'\n'b'", ON)).toBe('SELECT E\u0001');
  });

  it('lexes backslashes as PostgreSQL does for each standard_conforming_strings setting', () => {
    const sql = "SELECT '\\', '; DROP TABLE t; --'";
    expect(lexerTexts(sql, ON)).toEqual([sql]);
    expect(lexerTexts(sql, OFF)).toEqual(["SELECT '\\', '", 'DROP TABLE t']);
    expect(cacheKey("SELECT 'a\\'b'", OFF)).toBe('SELECT \u0001');
    expect(cacheKey("SELECT 'a\\'b'", ON)).toBeNull(); // 'a\' then b'... unterminated
  });
});

describe('toStandardStrings', () => {
  it('rewrites \\\' inside plain strings so a standard-strings parser agrees', () => {
    expect(toStandardStrings("SELECT 'a\\'b', E'c\\'d', '\\\\'")).toBe("SELECT 'a''b', E'c\\'d', '\\\\'");
    expect(toStandardStrings('SELECT 1')).toBe('SELECT 1');
    expect(toStandardStrings("SELECT 'open")).toBeNull();
  });
});

/** Statements whose literals vary: `#n` a number, `#s` a string. */
const TEMPLATES = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = #n',
  'UPDATE pgbench_accounts SET abalance = abalance + #n WHERE aid = #n',
  'UPDATE pgbench_tellers SET tbalance = tbalance + #n WHERE tid = #n',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (#n, #n, #n, #n, CURRENT_TIMESTAMP)',
  'SELECT id, email FROM customers WHERE email = #s',
  'SELECT * FROM orders WHERE status IN (#s, #s) AND total > #n ORDER BY id LIMIT #n',
  'SELECT count(*) FROM events WHERE payload->>#s = #s',
  'INSERT INTO customers (email, name) VALUES (#s, #s) RETURNING id',
  'UPDATE customers SET name = #s WHERE id = #n',
  'DELETE FROM sessions WHERE id = #s',
  'SELECT #s || name FROM products WHERE price BETWEEN #n AND #n',
  'SELECT * FROM t WHERE a = #n OR b LIKE #s ESCAPE #s',
  'WITH x AS (SELECT #n AS v) SELECT v + #n FROM x',
  'SELECT CASE WHEN a > #n THEN #s ELSE #s END FROM t',
  'SELECT * FROM t WHERE created_at > now() - interval #s',
  'SELECT date #s, timestamp #s, #s::date',
  'SELECT ARRAY[#n, #n, #n], (#s)::jsonb -> #s',
  'INSERT INTO t (a, b) VALUES (#n, #s), (#n, #s) ON CONFLICT (a) DO UPDATE SET b = excluded.b',
  'SELECT * FROM t WHERE (a, b) = (#n, #s)',
  'SELECT a FROM t WHERE b = #s; SELECT c FROM u WHERE d = #n',
  'UPDATE t SET a = #n; DELETE FROM u WHERE b = #s',
  'SELECT * FROM t ORDER BY #n',
  'SELECT a, b FROM t GROUP BY #n, #n',
  'SELECT * FROM t OFFSET #n ROWS FETCH FIRST #n ROWS ONLY',
  'SELECT json_build_object(#s, a, #s, b) FROM t',
  'SELECT substring(a FROM #n FOR #n), position(#s IN a) FROM t',
  'SELECT * FROM t WHERE a ~ #s AND b SIMILAR TO #s',
  'MERGE INTO t USING u ON t.id = u.id WHEN MATCHED AND u.x > #n THEN UPDATE SET a = #s',
  'SELECT #n::numeric(10, 2), #s::varchar(20)',
  'VALUES (#n, #s), (#n, #s)',
  'SELECT * FROM t WHERE a = ANY (#s::int[])',
  'SELECT xmlelement(name a, #s), JSON_VALUE(j, #s) FROM t',
  'SELECT * FROM t TABLESAMPLE SYSTEM (#n) REPEATABLE (#n)',
  'SELECT a FROM t WHERE b IS DISTINCT FROM #n AND c IS NOT NULL',
  'SELECT * FROM t t1 JOIN u u1 ON u1.x = t1.a AND u1.y = #s',
  "SELECT 'x'; SELECT #s",
  'SET application_name = #s',
  'EXPLAIN (FORMAT #s) SELECT #n',
  "NOTIFY ch, #s",
  'SHOW search_path',
  'COPY t TO STDOUT WITH (FORMAT #s)',
  'FETCH #n FROM c',
];

const NUMBERS = ['1', '0', '42', '12345', '3.14', '.5', '1e10', '2.5E-3', '0x1F', '0o17', '0b101', '1_000', '99999999999999999999'];
const STRINGS = ["'a'", "''", "'it''s'", "'; DROP TABLE t; --'", "'/* not a comment */'", "'$$'", "'\\'", "'é ü 😀'", "'a\n b'", "'--'", "'\"'", "'a;b'"];
const STRING_FORMS = [
  (v: string) => v,
  (v: string) => `E${v.replace(/\\/g, '\\\\')}`,
  (v: string) => `$$${v.slice(1, -1).replace(/''/g, "'").replace(/\$/g, '')}$$`,
  (v: string) => `$tag$${v.slice(1, -1).replace(/''/g, "'")}$tag$`,
  (v: string) => `U&${v.replace(/\\/g, '\\\\')}`,
  (v: string) => `${v}\n${v}`,
];
const U_AMP_FORM = 4;
const COMMENTS = [' ', '  ', '\n', '\t', ' /* c */ ', ' /* ; */ ', '/* /* nested ; */ */', ' -- c ;\n', '\r\n'];

/** Instantiate a template: literal values vary, spacing and comments vary, the literal forms are fixed by `form`. */
function instantiate(template: string, rand: () => number, form: number): string {
  const pick = <T,>(a: readonly T[]): T => a[Math.floor(rand() * a.length)] as T;
  const fill = template
    .replace(/#n/g, () => pick(NUMBERS))
    .replace(/#s/g, () => (STRING_FORMS[form % STRING_FORMS.length] ?? ((v: string) => v))(pick(STRINGS)));
  return fill.replace(/ /g, () => (rand() < 0.2 ? pick(COMMENTS) : ' '));
}

describe('cacheKey against libpg_query', () => {
  const rand = prng(20240607);
  const corpus: string[] = [];
  for (const t of TEMPLATES) {
    for (let form = 0; form < STRING_FORMS.length; form++) {
      for (let i = 0; i < 20; i++) corpus.push(instantiate(t, rand, form));
    }
  }
  const selects = readFileSync(new URL('./corpus/selects.sql', import.meta.url), 'utf8');
  const fixed = [...CASES.map((c) => c.sql), ...PGBENCH, ...APPLICATION];
  const parsed = analyzeCorpusLater(selects);
  const tricky = [
    "SELECT 'it''s'; SELECT 2",
    "SELECT E'\\''; SELECT 2",
    'SELECT $$ ; $$; SELECT 2',
    'SELECT $a$ $b$ ; $a$; SELECT 2',
    '/* /* nested */ ; */ SELECT 1; SELECT 2',
    'SELECT "quoted;ident" FROM t; SELECT 2',
    "SELECT U&'\\0041'; SELECT 2",
    "SELECT U&\"\\0041\"; SELECT 2",
    "SELECT 'a' -- ;\n; SELECT 2",
    'SELECT 1;;;SELECT 2;',
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); DELETE FROM u); SELECT 1",
    "SELECT B'101', X'1F', N'nat'; SELECT 2",
    "SELECT 'a'\n'b'; SELECT 2",
    "SELECT $_$x$_$, $1; SELECT 3",
    "  \n SELECT 1 \n ; \n SELECT 2 -- end",
  ];

  it('covers at least 5,000 statements', () => {
    expect(corpus.length + fixed.length + parsed().length + tricky.length).toBeGreaterThanOrEqual(5000);
  });

  it('never merges two statement shapes libpg_query fingerprints differently', () => {
    const byKey = new Map<string, { fp: string; sql: string }>();
    let compared = 0;
    for (const sql of [...corpus, ...fixed, ...parsed(), ...tricky]) {
      const key = cacheKey(sql, ON);
      const fp = fingerprint(sql);
      if (key === null || fp === null) continue;
      compared++;
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { fp, sql });
      else if (seen.fp !== fp) expect.fail(`same key, different fingerprints:\n  ${seen.sql}\n  ${sql}`);
    }
    expect(compared).toBeGreaterThan(4500);
  });

  it('gives one key per template and literal form, whatever the values, spacing and comments', () => {
    const r = prng(7);
    for (const t of TEMPLATES.filter((x) => /^(SELECT|UPDATE|INSERT|DELETE|WITH|MERGE|VALUES)/.test(x))) {
      for (let form = 0; form < STRING_FORMS.length; form++) {
        const keys = new Set<string | null>();
        for (let i = 0; i < 10; i++) {
          const sql = instantiate(t, r, form);
          if (fingerprint(sql) !== null) keys.add(cacheKey(sql, ON));
        }
        if (form === U_AMP_FORM && t.includes('#s')) {
          // U&'...' escapes are content-dependent: always parsed, never cached.
          expect([...keys]).toEqual([null]);
          continue;
        }
        expect([...keys], `${t} (form ${form})`).toHaveLength(1);
        expect(keys.has(null)).toBe(false);
      }
    }
  });

  it('agrees with the parser on statement boundaries', () => {
    let checked = 0;
    const r = prng(99);
    const pieces = [...tricky, ...fixed, ...corpus.slice(0, 1500)];
    const joined: string[] = [...pieces];
    for (let i = 0; i < 500; i++) {
      const a = pieces[Math.floor(r() * pieces.length)] ?? '';
      const b = pieces[Math.floor(r() * pieces.length)] ?? '';
      joined.push(`${a}${COMMENTS[i % COMMENTS.length] ?? ''};${COMMENTS[(i * 7) % COMMENTS.length] ?? ''}${b}`);
    }
    for (const sql of joined) {
      const lexed = lexerTexts(sql);
      const parsedTexts = parserTexts(sql);
      if (lexed === null || parsedTexts === null) continue;
      checked++;
      expect(lexed, sql).toEqual(parsedTexts);
    }
    expect(checked).toBeGreaterThan(1500);
  });
});

describe('cacheKey on mutated statements', () => {
  it('never merges shapes or disagrees on boundaries when quotes, comments and digits are thrown in', () => {
    const rand = prng(31337);
    const base = [...CASES.map((c) => c.sql), ...PGBENCH, ...APPLICATION];
    const inserts = ["'", '"', '$', '$$', '$a$', '\\', '--', '/*', '*/', ';', "''", "E'", 'U&', '\n', ' ', '1', '.', 'e', '_', '(', ')', '::', "B'", "X'", 'N'];
    const byKey = new Map<string, { fp: string; sql: string }>();
    let compared = 0;
    for (let i = 0; i < 6000; i++) {
      let sql = base[Math.floor(rand() * base.length)] ?? '';
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
        const at = Math.floor(rand() * (sql.length + 1));
        sql = rand() < 0.6 ? sql.slice(0, at) + (inserts[Math.floor(rand() * inserts.length)] ?? '') + sql.slice(at) : sql.slice(0, at) + sql.slice(at + 1 + Math.floor(rand() * 3));
      }
      const parsedTexts = parserTexts(sql);
      const key = cacheKey(sql, ON);
      if (parsedTexts === null || key === null) continue;
      compared++;
      expect(lexerTexts(sql), sql).toEqual(parsedTexts);
      const fp = fingerprint(sql) ?? '';
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { fp, sql });
      else if (seen.fp !== fp) expect.fail(`same key, different fingerprints:\n  ${seen.sql}\n  ${sql}`);
    }
    expect(compared).toBeGreaterThan(500);
  });
});

/** The SELECT corpus split into statements by the parser (done lazily, after initSqlAnalysis). */
function analyzeCorpusLater(text: string): () => string[] {
  let cached: string[] | undefined;
  return () => {
    if (cached === undefined) {
      const r = analyzeQuery(text, { searchPath: ['public'] });
      cached = isUnparseable(r) ? [] : r.statements.map((s) => s.text);
    }
    return cached;
  };
}
