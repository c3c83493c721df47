/**
 * `string.matches(pattern)` runs on V8's backtracking RegExp engine (cel-js calls `new RegExp`),
 * not on RE2 as the CEL spec intends. Statement text is attacker-controlled and can be large, so a
 * careless pattern is a denial of service: measured on Node 24, `.*foo` over a 100 KB statement
 * takes 26 s, `[a-z]+@[a-z]+` 22 s, `(x+)+y` explodes exponentially. cel-js has no evaluation cost
 * budget, so patterns are screened when the policy is loaded and only provably cheap ones pass:
 *
 * - a string literal of at most 256 characters that compiles as a JavaScript RegExp;
 * - anchored with a leading `^` (so only one start position is tried);
 * - at most one unguarded unbounded quantifier (`*`, `+`, `{n,}`, or `{n,m}` with m - n > 32).
 *   A quantifier on one character (`\s*`, `[a-z]+`) directly followed by a literal character it
 *   cannot match (`\s*select`, `[a-z]+@`) is guarded: it never backtracks into what follows, so it
 *   does not count;
 * - no quantifier on a group that contains a quantifier or an alternation;
 * - no backreferences or lookaround (RE2 has neither);
 * - the product of the choices of the other quantifiers and alternations is at most 1024.
 *
 * Together these bound one match attempt to O(1024 · n) steps for an input of n characters.
 */

export const MAX_PATTERN_LENGTH = 256;
const MAX_BOUNDED_SPAN = 32;
const MAX_CHOICE_PRODUCT = 1024;

interface Group {
  /** Branches seen so far in this group (1 + number of `|`). */
  branches: number;
  /** The group contains a quantifier or an alternation (directly or nested). */
  complex: boolean;
}

interface Quantifier {
  /** Number of characters the quantifier takes, or 0 when there is none here. */
  length: number;
  /** Number of repetitions it can choose from; Infinity when unbounded. */
  span: number;
}

/** Reads a quantifier at `i`: `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each optionally lazy (`?`). */
function readQuantifier(pattern: string, i: number): Quantifier {
  const c = pattern[i];
  let length = 0;
  let span = 1;
  if (c === '*' || c === '+') {
    length = 1;
    span = Infinity;
  } else if (c === '?') {
    length = 1;
    span = 2;
  } else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
    if (m) {
      length = m[0].length;
      const min = Number(m[1]);
      if (m[2] === undefined) span = 1;
      else if (m[3] === '') span = Infinity;
      else span = Number(m[3]) - min + 1;
      if (span > MAX_BOUNDED_SPAN + 1) span = Infinity;
    }
  }
  if (length > 0 && pattern[i + length] === '?') length++;
  return { length, span };
}

/**
 * The literal character that must come next at `j` (looking into the first atom of a group that
 * starts there), or undefined when what comes next is not one mandatory literal character.
 */
function mandatoryLiteralAt(pattern: string, j: number): string | undefined {
  for (;;) {
    const opener = /^\((\?(<[A-Za-z_][A-Za-z0-9_]*>|[a-z-]*:))?/.exec(pattern.slice(j));
    if (opener === null || opener[0] === '') break;
    j += opener[0].length;
  }
  const c = pattern[j];
  let char: string | undefined;
  let end = j + 1;
  if (c === undefined || '.[]()|^$*+?{}'.includes(c)) return undefined;
  if (c === '\\') {
    const next = pattern[j + 1];
    if (next === undefined || /[A-Za-z0-9]/.test(next)) return undefined;
    char = next;
    end = j + 2;
  } else {
    char = c;
  }
  const after = pattern[end];
  if (after === '?' || after === '*' || pattern.startsWith('{0', end)) return undefined;
  return char;
}

/** True when a quantified one-character atom cannot match the literal that must follow it. */
function guarded(atom: string, pattern: string, next: number): boolean {
  const literal = mandatoryLiteralAt(pattern, next);
  if (literal === undefined) return false;
  try {
    return !new RegExp(`^(?:${atom})$`, 'i').test(literal); // 'i': conservative inside (?i:...)
  } catch {
    return false;
  }
}

/** Index just past the character class starting at `i` (`[...]`, escapes honoured). */
function skipClass(pattern: string, i: number): number {
  let j = i + 1;
  if (pattern[j] === '^') j++;
  if (pattern[j] === ']') j++;
  while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** Why the pattern is rejected, or undefined when it is safe to evaluate. */
export function screenPattern(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (error) {
    const hint = /^\(\?[a-z]+\)/.test(pattern) ? ' (inline flags are written (?i:...) here)' : '';
    return `invalid regular expression: ${(error as Error).message}${hint}`;
  }
  if (!pattern.startsWith('^')) {
    return 'pattern must be anchored with a leading ^ (unanchored patterns retry at every position: use ^.*x, or contains()/startsWith()/endsWith())';
  }
  let unbounded = 0;
  let product = 1;
  const stack: Group[] = [{ branches: 1, complex: false }];
  let i = 1;
  while (i < pattern.length) {
    const c = pattern[i];
    let atomEnd = i + 1;
    let closed: Group | undefined;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not supported';
      atomEnd = i + 2;
    } else if (c === '[') {
      atomEnd = skipClass(pattern, i);
    } else if (c === '(') {
      if (/^\(\?(=|!|<=|<!)/.test(pattern.slice(i))) return 'lookaround is not supported';
      stack.push({ branches: 1, complex: false });
      const named = /^\(\?(<[A-Za-z_][A-Za-z0-9_]*>|[a-z-]*:)/.exec(pattern.slice(i));
      i += named ? named[0].length : 1;
      continue;
    } else if (c === ')') {
      closed = stack.pop();
      if (closed === undefined || stack.length === 0) return 'unbalanced parentheses';
      product *= closed.branches;
      if (closed.complex) (stack[stack.length - 1] as Group).complex = true;
    } else if (c === '|') {
      const top = stack[stack.length - 1] as Group;
      top.branches++;
      top.complex = true;
      i++;
      continue;
    }
    const q = readQuantifier(pattern, atomEnd);
    if (q.length > 0) {
      if (closed?.complex) return 'a repeated group must not contain quantifiers or alternatives (catastrophic backtracking)';
      (stack[stack.length - 1] as Group).complex = true;
      if (q.span === Infinity) {
        if (closed !== undefined || !guarded(pattern.slice(i, atomEnd), pattern, atomEnd + q.length)) unbounded++;
      } else {
        product *= q.span;
      }
      if (unbounded > 1) {
        return 'at most one unbounded quantifier (*, +, {n,}) per pattern unless a literal it cannot match follows it (more can take quadratic time)';
      }
    }
    if (product * (stack[0]?.branches ?? 1) > MAX_CHOICE_PRODUCT) return 'too many optional parts and alternatives (backtracking could explode)';
    i = atomEnd + q.length;
  }
  if (stack.length !== 1) return 'unbalanced parentheses';
  if (stack[0] !== undefined && stack[0].branches > 1) {
    return 'top-level alternatives are only anchored in their first branch: wrap them, ^(a|b)';
  }
  return undefined;
}
