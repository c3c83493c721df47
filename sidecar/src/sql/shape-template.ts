/**
 * Shape templates: recognising, without lexing it from scratch, a query string that differs from
 * one already lexed only in the values of its literals (pgbench -S, and every client that
 * interpolates values into SQL, sends one shape with a new literal each time).
 *
 * A template is a lexed query cut at the literals its key replaced: fixed segments (compared as
 * they are, character for character) and, between them, literals that are numbers or plain
 * `'...'` strings. A query matches when each fixed segment is found where expected and each gap
 * holds one literal of the same kind, scanned by the lexer's own scanners (normalize.ts). That is
 * exactly the path lexQuery takes through the query: the characters before a gap are the
 * template's, so the lexer is in the same state there; at the gap it scans a literal of the same
 * kind with the same function, which ends where the next fixed segment starts; after it, the
 * state is again the template's (a literal changes no parenthesis depth, no statement boundary).
 * So a match has the template's key, and its statement spans are the template's shifted by the
 * difference in literal lengths. Anything else (other whitespace, another kind of literal, a
 * literal that does not end where the template's next segment begins, trailing text) does not
 * match and is lexed in full.
 */
import { scanNumber, scanQuoted } from './normalize.js';

const QUOTE = 39;
const DOT = 46;

export interface ShapeTemplate<T> {
  /** The fixed segments: one more than there are literals. */
  readonly segments: readonly string[];
  /** Per literal: true for a plain string, false for a number. */
  readonly strings: readonly boolean[];
  /** Literal ends in the template's text, for shifting the spans. */
  readonly literalEnds: readonly number[];
  /** Literal lengths in the template's text. */
  readonly literalLengths: readonly number[];
  /** Statement spans of the template's text (see LexedQuery.spans). */
  readonly spans: readonly number[];
  /** Scratch space of matchTemplate, one number per literal. */
  readonly shifts: Float64Array;
  /** What the caller keeps for this shape (the cached facts). */
  readonly value: T;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** A character that, right before a quote, would make the quote part of a prefixed literal or an identifier. */
function isPrefix(c: number): boolean {
  return c >= 128 || isDigit(c) || c === 36 || c === 95 || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c === 38;
}

/**
 * A template from a lexed query: `replaced` holds [start, end) of each literal its key replaced.
 * Only for standard_conforming_strings on; null when a replaced literal is neither a number nor a
 * plain string (E'', $$, B'', X'', N'' strings are lexed in full every time).
 */
export function templateOf<T>(text: string, replaced: readonly number[], spans: readonly number[], value: T): ShapeTemplate<T> | null {
  const segments: string[] = [];
  const strings: boolean[] = [];
  const literalEnds: number[] = [];
  const literalLengths: number[] = [];
  let at = 0;
  for (let k = 0; k < replaced.length; k += 2) {
    const start = replaced[k]!;
    const end = replaced[k + 1]!;
    const c = text.charCodeAt(start);
    // E'..', N'..', B'..', X'..': the key replaces the quoted part only, the prefix letter before it
    // (kept in the segment) changes how the lexer scans it. Those are lexed in full every time.
    if (c === QUOTE && start > 0 && isPrefix(text.charCodeAt(start - 1))) return null;
    if (c === QUOTE) strings.push(true);
    else if (isDigit(c) || c === DOT) strings.push(false);
    else return null;
    segments.push(text.slice(at, start));
    literalEnds.push(end);
    literalLengths.push(end - start);
    at = end;
  }
  segments.push(text.slice(at));
  return { segments, strings, literalEnds, literalLengths, spans, shifts: new Float64Array(strings.length), value };
}

/** The statement spans of `text` when it has the template's shape, else null. */
export function matchTemplate<T>(template: ShapeTemplate<T>, text: string): number[] | null {
  const { segments, strings, literalLengths } = template;
  const n = segments.length - 1;
  // shifts[k]: how far the template's positions after literal k moved (its length difference, accumulated).
  const shifts = template.shifts;
  let shift = 0;
  let moved = false;
  let at = 0;
  for (let k = 0; k < n; k++) {
    const segment = segments[k]!;
    // slice + === compares with memcmp; startsWith walks character by character (3-4x slower).
    if (text.slice(at, at + segment.length) !== segment) return null;
    at += segment.length;
    const c = text.charCodeAt(at);
    let end: number;
    if (strings[k]) {
      if (c !== QUOTE) return null;
      end = scanQuoted(text, at, false, true);
    } else {
      if (!(isDigit(c) || (c === DOT && isDigit(text.charCodeAt(at + 1))))) return null;
      end = scanNumber(text, at);
    }
    if (end < 0) return null;
    const delta = end - at - literalLengths[k]!;
    if (delta !== 0) moved = true;
    shift += delta;
    shifts[k] = shift;
    at = end;
  }
  const last = segments[n]!;
  if (text.length - at !== last.length || text.slice(at) !== last) return null;
  const spans = template.spans;
  if (!moved) return spans.slice();
  // A span boundary is never inside a literal: it moves by the shift of the last literal before it.
  const out = new Array<number>(spans.length);
  const ends = template.literalEnds;
  let k = -1;
  for (let i = 0; i < spans.length; i++) {
    const b = spans[i]!;
    while (k + 1 < n && ends[k + 1]! <= b) k++;
    out[i] = b + (k < 0 ? 0 : shifts[k]!);
  }
  return out;
}
