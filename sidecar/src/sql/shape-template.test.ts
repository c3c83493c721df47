import { describe, expect, it } from 'vitest';
import { lexQuery } from './normalize.js';
import { matchTemplate, templateOf, type ShapeTemplate } from './shape-template.js';

const SCS = { standardConformingStrings: true };

function template(text: string): ShapeTemplate<string> {
  const replaced: number[] = [];
  const lexed = lexQuery(text, SCS, undefined, replaced);
  if (lexed === null) throw new Error(`not lexable: ${text}`);
  const t = templateOf(text, replaced, lexed.spans, lexed.key);
  if (t === null) throw new Error(`no template: ${text}`);
  return t;
}

/** What lexQuery says about `text`: a match must agree with it exactly. */
function lexed(text: string): { key: string; spans: number[] } | null {
  const l = lexQuery(text, SCS);
  return l === null ? null : { key: l.key, spans: l.spans };
}

const TEMPLATES = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 46712;',
  'SELECT abalance FROM pgbench_accounts WHERE aid = 46712',
  "SELECT * FROM users WHERE email = 'a@example.com' AND age > 30 LIMIT 10",
  "INSERT INTO t (a, b, c) VALUES (1, 'x', 2.5), (3, 'it''s', .5)",
  "UPDATE accounts SET balance = balance - 10 WHERE id = 7; SELECT 1; DELETE FROM q WHERE id IN (1, 2, 3)",
  "select 'a' || 'b', 1e10, 0x1F from t where s = ''",
  "WITH x AS (SELECT 1 AS n) SELECT n + 2 FROM x WHERE n < 3.25e-2",
];

describe('shape templates: a query matches only when lexQuery gives it the same key', () => {
  it.each([
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 99999999999999999999;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1.5e3;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = .5;'],
    [TEMPLATES[1]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 7'],
    [TEMPLATES[1]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1.'],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = 'o''brien; DROP TABLE users; --' AND age > 1 LIMIT 99999"],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = '' AND age > 0 LIMIT 0"],
    [TEMPLATES[3]!, "INSERT INTO t (a, b, c) VALUES (100, 'yy', 0.0), (4, '', 9)"],
    [TEMPLATES[4]!, 'UPDATE accounts SET balance = balance - 1000 WHERE id = 71234; SELECT 12; DELETE FROM q WHERE id IN (10, 20, 300)'],
    [TEMPLATES[5]!, "select 'long string here' || '', 5, 0x2A from t where s = 'z'"],
    [TEMPLATES[6]!, 'WITH x AS (SELECT 100 AS n) SELECT n + 20 FROM x WHERE n < 1'],
  ])('%s matches %s', (t, q) => {
    const spans = matchTemplate(template(t), q);
    expect(spans).not.toBeNull();
    const l = lexed(q);
    expect(l).not.toBeNull();
    expect(l!.key).toBe(template(t).value);
    expect(spans).toEqual(l!.spans);
  });

  it.each([
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1; DROP TABLE pgbench_accounts;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1 OR 1=1;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = -1;'],
    [TEMPLATES[0]!, "SELECT abalance FROM pgbench_accounts WHERE aid = '1';"],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1e;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1abc;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1 ;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1;;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1; '],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = 1 -- x;'],
    [TEMPLATES[0]!, 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;'],
    [TEMPLATES[0]!, 'select abalance FROM pgbench_accounts WHERE aid = 1;'],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = 'unterminated AND age > 1 LIMIT 1"],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = E'x' AND age > 1 LIMIT 1"],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = $$x$$ AND age > 1 LIMIT 1"],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = 'a' 'b' AND age > 1 LIMIT 1"],
    [TEMPLATES[2]!, "SELECT * FROM users WHERE email = 'a' AND age > 1 LIMIT 1; DELETE FROM users"],
  ])('%s does not match %s', (t, q) => {
    expect(matchTemplate(template(t), q)).toBeNull();
  });

  it('a string literal continued on the next line is one literal, as for the lexer', () => {
    const t = template("SELECT * FROM users WHERE email = 'a' AND age > 30 LIMIT 10");
    const q = "SELECT * FROM users WHERE email = 'a'\n'b' AND age > 30 LIMIT 10";
    const spans = matchTemplate(t, q);
    expect(spans).toEqual(lexed(q)!.spans);
    expect(lexed(q)!.key).toBe(t.value);
  });

  it('literals that are neither numbers nor plain strings make no template', () => {
    for (const text of ["SELECT E'x' FROM t WHERE a = 1", 'SELECT $$x$$ FROM t', "SELECT B'101' FROM t", "SELECT n'x' FROM t", "SELECT X'1f' FROM t"]) {
      const replaced: number[] = [];
      const l = lexQuery(text, SCS, undefined, replaced)!;
      expect(replaced.length).toBeGreaterThan(0);
      expect(templateOf(text, replaced, l.spans, l.key)).toBeNull();
    }
  });

  // Differential fuzzing: random literal replacements and random edits anywhere; every match must
  // be exactly what lexQuery says (same key, same spans), and same-shape variants must match.
  it('fuzz: 60,000 variants, every match agrees with lexQuery', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = ["'", "''", ';', ' ', '\n', '1', '9', '.', 'e', 'E', '-', '+', '/*', '*/', '--', '$', '$$', 'x', 'DROP ', ')', '(', ',', '\\', '"', '0x', '_'];
    const randomText = (max: number): string => {
      let s = '';
      const n = 1 + rand(max);
      for (let i = 0; i < n; i++) s += alphabet[rand(alphabet.length)];
      return s;
    };
    let matches = 0;
    let sameShapeMisses = 0;
    for (let round = 0; round < 60_000; round++) {
      const text = TEMPLATES[rand(TEMPLATES.length)]!;
      const t = template(text);
      const replaced: number[] = [];
      lexQuery(text, SCS, undefined, replaced);
      let q: string;
      const mode = rand(3);
      if (mode === 0) {
        // Same shape: new literal values of the same kind.
        q = '';
        let at = 0;
        for (let k = 0; k < replaced.length; k += 2) {
          q += text.slice(at, replaced[k]);
          q += text.charCodeAt(replaced[k]!) === 39 ? `'${'ab'.repeat(rand(4))}${rand(2) === 0 ? "''" : ''}'` : String(rand(1_000_000));
          at = replaced[k + 1]!;
        }
        q += text.slice(at);
      } else if (mode === 1) {
        // A literal replaced by random tokens.
        const k = 2 * rand(replaced.length / 2);
        q = text.slice(0, replaced[k]) + randomText(4) + text.slice(replaced[k + 1]);
      } else {
        // A random edit anywhere.
        const at = rand(text.length + 1);
        q = text.slice(0, at) + randomText(3) + text.slice(at + rand(3));
      }
      const spans = matchTemplate(t, q);
      if (spans === null) {
        if (mode === 0) sameShapeMisses++;
        continue;
      }
      matches++;
      const l = lexed(q);
      expect(l, q).not.toBeNull();
      expect(l!.key, q).toBe(t.value);
      expect(spans, q).toEqual(l!.spans);
    }
    expect(sameShapeMisses).toBe(0);
    expect(matches).toBeGreaterThan(20_000);
  });
});
