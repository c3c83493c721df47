/**
 * The hot path: a hand-written lexer that turns a query string into a cache key in one pass,
 * without libpg_query.
 *
 * Parsing costs tens of microseconds per statement, and clients in simple-query mode (pgbench -S,
 * ORMs that interpolate) send a different literal every time, so a cache keyed by the raw text never
 * hits. The key here is the query's shape: literals become placeholders, comments and runs of
 * whitespace become one space, everything else (identifiers, keywords, operators, `$n`
 * parameters) is kept verbatim. Statement facts do not depend on literal values (see analyze.ts for
 * the places where the analyzer makes sure of that), so facts cached under a key hold for every
 * query with that key.
 *
 * The lexer follows PostgreSQL's scan.l for everything that decides token boundaries: `'...'` with
 * `''`, `E'...'` with backslash escapes (and plain strings too when standard_conforming_strings is
 * off), `B'...'`, `X'...'`, `N'...'`, `U&'...'`, `$tag$...$tag$`, `"quoted identifiers"`,
 * `--` and nested `/* *\/` comments, numbers (decimal, real, 0x/0o/0b, `_` separators), and string
 * continuation across a newline. Whenever it is not sure (an unterminated literal or comment, a
 * character PostgreSQL would reject, trailing junk after a number, `BEGIN ATOMIC` bodies...), it
 * returns null and the caller parses the text with libpg_query instead.
 *
 * Literals are replaced only in statements that start with SELECT, INSERT, UPDATE, DELETE, MERGE,
 * WITH, VALUES, TABLE or `(`. Other statements (SET, EXPLAIN, COPY, NOTIFY, DDL...) keep their
 * literals verbatim: they are rare on the hot path, and some of their literals matter (EXPLAIN
 * options, COPY file names, UESCAPE characters).
 */

/** Options that change how PostgreSQL lexes a query string. */
export interface LexOptions {
  /** The session's standard_conforming_strings (on by default since PostgreSQL 9.1). */
  standardConformingStrings: boolean;
}

/** One pass of the lexer over a query string. */
export interface LexedQuery {
  /** The query's shape: equal keys mean equal parse trees up to literal values. */
  key: string;
  /**
   * Each statement's [start, end) in the text, flattened (`[s0, e0, s1, e1, ...]`): from its first
   * token to its terminating `;` (or the end of the text), with trailing whitespace trimmed, which
   * is exactly how analyze.ts cuts statements out of libpg_query's RawStmt locations.
   */
  spans: number[];
}

/** Placeholder for a string-like literal ('...', E'...', $$...$$, B'...', X'...', U&'...'). */
const STRING_MARK = '\u0001';
/** Placeholder for a numeric literal. */
const NUMBER_MARK = '\u0002';

// Character codes.
const TAB = 9, LF = 10, CR = 13, SPACE = 32;
const QUOTE = 39, DQUOTE = 34, DOLLAR = 36, AMP = 38, LPAREN = 40, RPAREN = 41, STAR = 42;
const PLUS = 43, MINUS = 45, DOT = 46, SLASH = 47, SEMI = 59, BACKSLASH = 92, UNDERSCORE = 95;
const D0 = 48, D9 = 57;

/** Statements whose literals are replaced: the DML that makes up the hot path. */
const LITERAL_FREE_SHAPES = new Set(['select', 'insert', 'update', 'delete', 'merge', 'with', 'values', 'table']);

// Character classes of ASCII characters, as bit flags (non-ASCII characters are identifier
// characters, like PostgreSQL's \200-\377 bytes).
const SPACE_CLASS = 1, IDENT_START_CLASS = 2, IDENT_CONT_CLASS = 4, DIGIT_CLASS = 8, VERBATIM_CLASS = 16;
const CLASSES = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  let k = 0;
  if (c === SPACE || (c >= TAB && c <= CR)) k |= SPACE_CLASS;
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === UNDERSCORE) k |= IDENT_START_CLASS | IDENT_CONT_CLASS;
  if (c >= D0 && c <= D9) k |= DIGIT_CLASS | IDENT_CONT_CLASS;
  if (c === DOLLAR) k |= IDENT_CONT_CLASS;
  // Operators and punctuation PostgreSQL accepts outside literals: ! # % & * + , - . / : < = > ? @ [ ] ^ ` | ~
  if ('!#%&*+,-./:<=>?@[]^`|~'.includes(String.fromCharCode(c))) k |= VERBATIM_CLASS;
  CLASSES[c] = k;
}

function classOf(c: number): number {
  return c < 128 ? (CLASSES[c] ?? 0) : IDENT_START_CLASS | IDENT_CONT_CLASS;
}

/** PostgreSQL's `space` class: what separates tokens. */
export function isSqlSpace(c: number): boolean {
  return c < 128 && ((CLASSES[c] ?? 0) & SPACE_CLASS) !== 0;
}

function isDigit(c: number): boolean {
  return c >= D0 && c <= D9;
}

/** scan.l `ident_start`: letters, `_`, and every non-ASCII character. */
function isIdentStart(c: number): boolean {
  return (classOf(c) & IDENT_START_CLASS) !== 0;
}

/** scan.l `ident_cont`: ident_start plus digits and `$`. */
function isIdentCont(c: number): boolean {
  return (classOf(c) & IDENT_CONT_CLASS) !== 0;
}

/** Characters kept verbatim that PostgreSQL accepts outside literals: operators and punctuation. */
function isVerbatimChar(c: number): boolean {
  return (classOf(c) & VERBATIM_CLASS) !== 0;
}

/** End of the text with PostgreSQL whitespace trimmed off, looking back from `end`. */
export function trimSqlEnd(text: string, start: number, end: number): number {
  while (end > start && isSqlSpace(text.charCodeAt(end - 1))) end--;
  return end;
}

/**
 * Scan a quoted literal whose opening quote is at `q`. `backslash`: backslash escapes the next
 * character (E'...', or '...' with standard_conforming_strings off). `doubled`: `''` stands for a
 * quote (false for B'...' and X'...'). Follows continuation (`'a'<newline>'b'` is one literal).
 * Returns the index after the closing quote, or -1 when unterminated or odd. `fixes` receives the
 * index of each backslash that escapes a quote, for rewriting to standard strings.
 */
export function scanQuoted(text: string, q: number, backslash: boolean, doubled: boolean, fixes?: number[]): number {
  const n = text.length;
  let i = q + 1;
  for (;;) {
    let close: number;
    if (!backslash) {
      close = text.indexOf("'", i);
      if (close < 0) return -1;
    } else {
      close = -1;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === BACKSLASH) {
          if (i + 1 >= n) return -1;
          if (fixes !== undefined && text.charCodeAt(i + 1) === QUOTE) fixes.push(i);
          i += 2;
        } else if (c === QUOTE) {
          close = i;
          break;
        } else i++;
      }
      if (close < 0) return -1;
    }
    const next = text.charCodeAt(close + 1);
    if (next === QUOTE) {
      if (!doubled) return -1;
      i = close + 2;
      continue;
    }
    // Continuation: whitespace containing a newline, then another quote, continues the literal.
    let k = close + 1;
    let newline = false;
    while (k < n) {
      const c = text.charCodeAt(k);
      if (!isSqlSpace(c)) break;
      if (c === LF || c === CR) newline = true;
      k++;
    }
    if (text.charCodeAt(k) === QUOTE) {
      if (!newline) return -1; // two adjacent literals: a syntax error, or a case we do not model
      i = k + 1;
      continue;
    }
    return close + 1;
  }
}

/**
 * Literal contents PostgreSQL's lexer itself validates, so that a key never stands for both a
 * valid and an invalid literal: B'..' takes binary digits, X'..' hex digits. In strings with
 * backslash escapes, octal, `\x`, `\u` and `\U` escapes can produce invalid characters (a zero
 * byte, a broken UTF-8 sequence, a lone surrogate), so such strings are left to the parser.
 * `kind` is the lower-cased prefix letter, or 0 for a plain string; [from, to) the content.
 */
function validContent(text: string, kind: number, backslash: boolean, from: number, to: number): boolean {
  if (kind === 98 || kind === 120) {
    for (let k = from; k < to; k++) {
      const c = text.charCodeAt(k);
      if (kind === 98 ? c !== D0 && c !== 49 : !isHexDigit(c)) return false;
    }
    return true;
  }
  if (!backslash) return true;
  for (let k = text.indexOf('\\', from); k >= 0 && k < to; k = text.indexOf('\\', k + 2)) {
    const e = text.charCodeAt(k + 1);
    if (isDigit(e) || e === 120 || e === 117 || e === 85) return false;
  }
  return true;
}

/** Scan a `"quoted identifier"` from its opening quote; -1 when unterminated. */
function scanQuotedIdent(text: string, q: number): number {
  let i = q + 1;
  for (;;) {
    const close = text.indexOf('"', i);
    if (close < 0) return -1;
    if (text.charCodeAt(close + 1) === DQUOTE) {
      i = close + 2;
      continue;
    }
    return close + 1;
  }
}

/**
 * Scan what starts with `$` at `q`: a parameter `$n` (returns its end, kept verbatim) or a
 * dollar-quoted string `$tag$...$tag$`. Returns [end, isLiteral] packed as end * 2 + (literal ? 1 : 0),
 * or -1 when odd.
 */
function scanDollar(text: string, q: number): number {
  const n = text.length;
  let i = q + 1;
  const c = text.charCodeAt(i);
  if (isDigit(c)) {
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i < n && isIdentCont(text.charCodeAt(i))) return -1; // trailing junk after parameter
    return i * 2;
  }
  if (c !== DOLLAR && !(isIdentStart(c))) return -1;
  while (i < n && text.charCodeAt(i) !== DOLLAR) {
    const t = text.charCodeAt(i);
    if (!isIdentStart(t) && !isDigit(t)) return -1;
    i++;
  }
  if (i >= n) return -1;
  const delimiter = text.slice(q, i + 1);
  const close = text.indexOf(delimiter, i + 1);
  if (close < 0) return -1;
  return (close + delimiter.length) * 2 + 1;
}

function isHexDigit(c: number): boolean {
  const l = c | 0x20;
  return isDigit(c) || (l >= 97 && l <= 102);
}

/**
 * Digits of one base from `j`, with `_` allowed only between two digits (scan.l's
 * `{digit}(_?{digit})*`). Returns the end, or -1 for a misplaced underscore.
 */
function scanDigits(text: string, j: number, digit: (c: number) => boolean, leadingUnderscore: boolean): number {
  const n = text.length;
  let k = j;
  if (leadingUnderscore && text.charCodeAt(k) === UNDERSCORE) k++;
  while (k < n) {
    const c = text.charCodeAt(k);
    if (digit(c)) k++;
    else if (c === UNDERSCORE) {
      if (!digit(text.charCodeAt(k + 1)) || k === j) return -1;
      k++;
    } else break;
  }
  return k;
}

/** Scan a numeric literal starting at `i` (a digit, or `.` before a digit); -1 when odd. */
export function scanNumber(text: string, i: number): number {
  const n = text.length;
  const first = text.charCodeAt(i);
  if (first === D0 && i + 1 < n) {
    const p = text.charCodeAt(i + 1) | 0x20;
    if (p === 120 || p === 111 || p === 98) {
      // 0x, 0o, 0b: `0x_1F` is allowed, `0x` alone is not.
      const digit = p === 120 ? isHexDigit : p === 111 ? (c: number) => c >= D0 && c <= 55 : (c: number) => c === D0 || c === 49;
      const start = i + 2;
      const j = scanDigits(text, start, digit, true);
      if (j < 0 || j === start || !digit(text.charCodeAt(j - 1)) || (j < n && isIdentCont(text.charCodeAt(j)))) return -1;
      return j;
    }
  }
  let j = scanDigits(text, i, isDigit, false);
  if (j < 0) return -1;
  if (j < n && text.charCodeAt(j) === DOT) {
    if (text.charCodeAt(j + 1) === DOT) return -1; // `1..2`: PostgreSQL's numericfail rule
    j++;
    if (isDigit(text.charCodeAt(j))) j = scanDigits(text, j, isDigit, false);
    if (j < 0) return -1;
  }
  if (j < n && (text.charCodeAt(j) | 0x20) === 101) {
    let k = j + 1;
    const sign = text.charCodeAt(k);
    if (sign === PLUS || sign === MINUS) k++;
    if (!isDigit(text.charCodeAt(k))) return -1; // realfail: `1e`, `1e+`
    while (k < n && isDigit(text.charCodeAt(k))) k++;
    j = k;
  }
  if (j < n && (isIdentCont(text.charCodeAt(j)) || text.charCodeAt(j) === DOT)) return -1;
  return j;
}

/** Skip a comment at `i` (`--` or `/*`); returns its end, or -1 for an unterminated block comment. */
function skipComment(text: string, i: number): number {
  const n = text.length;
  if (text.charCodeAt(i) === MINUS) {
    let j = i + 2;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (c === LF || c === CR) break;
      j++;
    }
    return j;
  }
  let depth = 1;
  let j = i + 2;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (c === STAR && text.charCodeAt(j + 1) === SLASH) {
      j += 2;
      if (--depth === 0) return j;
    } else if (c === SLASH && text.charCodeAt(j + 1) === STAR) {
      j += 2;
      depth++;
    } else j++;
  }
  return -1;
}

/** The key being written: verbatim runs, placeholders, single spaces. */
class KeyWriter {
  /** The key's pieces, joined once at the end (one flat string to hash, not a rope). */
  readonly parts: string[] = [];
  /** Start of the verbatim run being accumulated, or -1. */
  run = -1;
  /** Whitespace or a comment since the last emitted piece. */
  space = false;
  /** First token of the current statement, or -1 before it. */
  stmtStart = -1;
  /** Replace literals in the current statement. */
  replace = false;
  /** After UESCAPE: the escape character changes an identifier, keep it. */
  keepNextLiteral = false;

  constructor(
    private readonly text: string,
    /** When given, receives [start, end) of every literal replaced by a placeholder. */
    private readonly replaced: number[] | undefined,
  ) {}

  /** Close the verbatim run at `end`. */
  flush(end: number): void {
    if (this.run >= 0) {
      this.parts.push(this.text.slice(this.run, end));
      this.run = -1;
    }
  }

  /** Open a verbatim run at `at` (a token start), emitting the pending space first. */
  open(at: number): void {
    if (this.run >= 0) return;
    if (this.space && this.stmtStart >= 0 && this.stmtStart !== at) this.parts.push(' ');
    this.space = false;
    this.run = at;
  }

  /** A token starts at `at`: the first one decides the statement's mode. */
  begin(at: number, word: string | null): void {
    if (this.stmtStart >= 0) return;
    this.stmtStart = at;
    this.replace = word === null ? this.text.charCodeAt(at) === LPAREN : LITERAL_FREE_SHAPES.has(word);
  }

  /** Emit a literal spanning [start, end). */
  literal(start: number, end: number, mark: string): void {
    if (this.replace && !this.keepNextLiteral) {
      this.flush(start);
      if (this.space && this.stmtStart !== start) this.parts.push(' ');
      this.space = false;
      this.parts.push(mark);
      this.replaced?.push(start, end);
    } else this.open(start);
    this.keepNextLiteral = false;
  }
}

/**
 * Lex a query string: its shape key and statement spans, or null when the lexer is not sure (the
 * caller then parses the full text). `fixes`, when given, collects the backslashes that escape a
 * quote inside plain strings (only with standard_conforming_strings off; see toStandardStrings).
 * `replaced`, when given, receives [start, end) of each literal the key replaces (shape-template.ts).
 */
export function lexQuery(text: string, opts: LexOptions, fixes?: number[], replaced?: number[]): LexedQuery | null {
  const n = text.length;
  const scs = opts.standardConformingStrings;
  const w = new KeyWriter(text, replaced);
  const spans: number[] = [];
  let depth = 0; // parenthesis depth: `;` inside parentheses (CREATE RULE actions) ends nothing
  let afterBegin = false; // previous token was BEGIN (BEGIN ATOMIC bodies contain `;`)
  let lastWasString = false; // previous token was a string literal
  let i = 0;

  while (i < n) {
    const c = text.charCodeAt(i);
    const k = classOf(c);
    if ((k & SPACE_CLASS) !== 0) {
      w.flush(i);
      w.space = true;
      i++;
      while (i < n && isSqlSpace(text.charCodeAt(i))) i++;
      continue;
    }
    if ((c === MINUS && text.charCodeAt(i + 1) === MINUS) || (c === SLASH && text.charCodeAt(i + 1) === STAR)) {
      w.flush(i);
      w.space = true;
      i = skipComment(text, i);
      if (i < 0) return null;
      continue;
    }
    if (c === SEMI && depth === 0) {
      w.flush(i);
      if (w.stmtStart >= 0) {
        spans.push(w.stmtStart, trimSqlEnd(text, w.stmtStart, i));
        w.parts.push(';');
      }
      w.stmtStart = -1;
      w.space = false;
      afterBegin = false;
      lastWasString = false;
      w.keepNextLiteral = false;
      i++;
      continue;
    }
    if ((k & IDENT_START_CLASS) !== 0) {
      let j = i + 1;
      while (j < n && (classOf(text.charCodeAt(j)) & IDENT_CONT_CLASS) !== 0) j++;
      const next = text.charCodeAt(j);
      if (j === i + 1 && (next === QUOTE || (next === AMP && (c | 0x20) === 117))) {
        // Prefixed literal: E'..', B'..', X'..', N'..', U&'..' or U&"..".
        const lc = c | 0x20;
        w.begin(i, null);
        w.open(i);
        if (lc === 117) {
          const q = text.charCodeAt(j + 1);
          if (q === DQUOTE) {
            const end = scanQuotedIdent(text, j + 1);
            if (end < 0) return null;
            i = end;
            lastWasString = false;
            afterBegin = false;
            continue;
          }
          // U&'...': whether its escapes are valid depends on the content (and on UESCAPE), and
          // it is an error with standard_conforming_strings off. Rare enough to always parse.
          return null;
        }
        if (lc !== 101 && lc !== 98 && lc !== 120 && lc !== 110) {
          // Another one-letter identifier directly before a string: `a'x'` is ident then string.
          i = j;
          lastWasString = false;
          afterBegin = false;
          continue;
        }
        w.flush(j);
        const backslash = lc === 101 || (lc === 110 && !scs);
        const end = scanQuoted(text, j, backslash, lc === 101 || lc === 110, lc === 110 ? fixes : undefined);
        if (end < 0 || lastWasString || !validContent(text, lc, backslash, j + 1, end - 1)) return null;
        w.literal(j, end, STRING_MARK);
        i = end;
        lastWasString = true;
        afterBegin = false;
        continue;
      }
      // Words that matter: the statement's first, and BEGIN / ATOMIC / UESCAPE anywhere.
      let word: string | null = null;
      const len = j - i;
      const lc = c | 0x20;
      if (w.stmtStart < 0 || (len === 5 && lc === 98) || (len === 6 && lc === 97) || (len === 7 && lc === 117)) {
        word = text.slice(i, j).toLowerCase();
      }
      w.begin(i, word);
      w.open(i);
      if (word === 'uescape') w.keepNextLiteral = true;
      if (word === 'atomic' && afterBegin) return null;
      afterBegin = word === 'begin';
      lastWasString = false;
      i = j;
      continue;
    }
    if (c === QUOTE) {
      if (lastWasString) return null;
      w.begin(i, null);
      const end = scanQuoted(text, i, !scs, true, fixes);
      if (end < 0 || !validContent(text, 0, !scs, i + 1, end - 1)) return null;
      w.literal(i, end, STRING_MARK);
      i = end;
      lastWasString = true;
      afterBegin = false;
      continue;
    }
    lastWasString = false;
    afterBegin = false;
    if (isDigit(c) || (c === DOT && isDigit(text.charCodeAt(i + 1)))) {
      w.begin(i, null);
      const end = scanNumber(text, i);
      if (end < 0) return null;
      w.literal(i, end, NUMBER_MARK);
      i = end;
      continue;
    }
    if (c === DQUOTE) {
      w.begin(i, null);
      w.open(i);
      const end = scanQuotedIdent(text, i);
      if (end < 0) return null;
      i = end;
      continue;
    }
    if (c === DOLLAR) {
      w.begin(i, null);
      const r = scanDollar(text, i);
      if (r < 0) return null;
      const end = r >>> 1;
      if ((r & 1) === 1) {
        w.literal(i, end, STRING_MARK);
        lastWasString = true;
      } else w.open(i);
      i = end;
      continue;
    }
    if (c === LPAREN) depth++;
    else if (c === RPAREN) {
      if (--depth < 0) return null;
    } else if (c !== SEMI && !isVerbatimChar(c)) return null; // a character PostgreSQL rejects
    w.begin(i, null);
    w.open(i);
    i++;
  }
  w.flush(n);
  if (depth !== 0) return null;
  if (w.stmtStart >= 0) spans.push(w.stmtStart, trimSqlEnd(text, w.stmtStart, n));
  if (spans.length === 0) return null; // nothing to cache for an empty query
  return { key: w.parts.join(''), spans };
}

/**
 * The cache key of a query string: its shape with literals replaced, comments removed and
 * whitespace collapsed; null when the lexer is not sure (parse the text instead).
 */
export function cacheKey(text: string, opts: LexOptions): string | null {
  const lexed = lexQuery(text, opts);
  return lexed === null ? null : lexed.key;
}

/**
 * Rewrite a query string lexed with standard_conforming_strings off into one that a parser with it
 * on (libpg_query's only mode) splits into the same tokens: each `\'` inside a plain or N'' string
 * becomes `''` (same length, so positions are unchanged). Backslashes that escape anything else
 * cannot move a token boundary. Returns null when the lexer is not sure.
 */
export function toStandardStrings(text: string): string | null {
  const fixes: number[] = [];
  if (lexQuery(text, { standardConformingStrings: false }, fixes) === null) return null;
  if (fixes.length === 0) return text;
  let out = '';
  let from = 0;
  for (const at of fixes) {
    out += text.slice(from, at) + "'";
    from = at + 1;
  }
  return out + text.slice(from);
}
