import { classBit, classesOf, HIGH_RISK_CLASSES, type DataClass } from './classes.js';
import { isCardNumber, isIban, IBAN_LENGTHS, isIpv4Octet, isIpv6, isJwtHeader, isSsn } from './validators.js';

/**
 * Content detectors: which classes a row value contains. Every detector is a hand-written scanner
 * or a precompiled regex without nested quantifiers, anchored on a literal (`@`, `:`, `eyJ`,
 * `-----BEGIN `, `AKIA`...) or a digit run, so the cost is linear in the value's length; every
 * candidate is validated (Luhn and IIN, mod 97 and the country's length, SSA ranges, octet ranges,
 * JSON header) before it counts. They are conservative: a value must look like the thing, in a
 * format people write, not merely contain enough digits.
 *
 * A value in which something was found and which also holds other words (letters and whitespace
 * outside the matches) is free text: `free_text_pii` is added to the inner classes.
 */

const EMAIL = classBit('email');
const PHONE = classBit('phone');
const SSN = classBit('ssn');
const CARD = classBit('credit_card');
const IBAN = classBit('iban');
const IP = classBit('ip_address');
const SECRET = classBit('secret');
const API_KEY = classBit('api_key');
const PASSWORD = classBit('password');
const FREE_TEXT = classBit('free_text_pii');

/** Scan state of one value: found classes and how many characters the matches cover. */
interface Scan {
  bits: number;
  covered: number;
}

// ---------------------------------------------------------------------------------------- chars

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
const isWord = (c: number): boolean => isAlnum(c) || c === 95;
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const isBase64Url = (c: number): boolean => isAlnum(c) || c === 45 || c === 95;
/** RFC 5322 dot-atom characters commonly used in addresses (no quoted local parts). */
const isLocalChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isDomainChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 45;

function charAt(s: string, i: number): number {
  return i >= 0 && i < s.length ? s.charCodeAt(i) : -1;
}

// ---------------------------------------------------------------------------------------- email

function scanEmails(s: string, scan: Scan): void {
  let at = s.indexOf('@');
  while (at >= 0) {
    let start = at;
    while (start > 0 && at - start < 64 && isLocalChar(s.charCodeAt(start - 1))) start--;
    let end = at + 1;
    while (end < s.length && end - at <= 253 && isDomainChar(s.charCodeAt(end))) end++;
    // Trailing dots or hyphens end a sentence, not a domain.
    while (end > at + 1 && (s.charCodeAt(end - 1) === 46 || s.charCodeAt(end - 1) === 45)) end--;
    while (start < at && s.charCodeAt(start) === 46) start++;
    if (start < at && validDomain(s, at + 1, end)) {
      scan.bits |= EMAIL;
      scan.covered += end - start;
      at = s.indexOf('@', end);
    } else {
      at = s.indexOf('@', at + 1);
    }
  }
}

/** Labels of letters, digits and inner hyphens, at least two of them, a top-level label of 2+ letters. */
function validDomain(s: string, start: number, end: number): boolean {
  let labels = 0;
  let labelStart = start;
  for (let i = start; i <= end; i++) {
    if (i < end && s.charCodeAt(i) !== 46) continue;
    const length = i - labelStart;
    if (length === 0 || length > 63 || s.charCodeAt(labelStart) === 45 || s.charCodeAt(i - 1) === 45) return false;
    labels++;
    if (i === end) {
      if (length < 2) return false;
      for (let k = labelStart; k < i; k++) if (!isUpper(s.charCodeAt(k)) && !isLower(s.charCodeAt(k))) return false;
    }
    labelStart = i + 1;
  }
  return labels >= 2;
}

// ------------------------------------------------------------------------- digit runs: cards, SSN, phones, IPv4

const SEP_SPACE = 1;
const SEP_DASH = 2;
const SEP_DOT = 4;
const MAX_GROUPS = 8;

/** One run of digit groups with single separators: `+1 (415) 555-0100`, `4111 1111 1111 1111`, `10.0.0.1`. */
class DigitRun {
  start = 0;
  end = 0;
  plus = false;
  paren = false;
  seps = 0;
  digits = '';
  readonly groups = new Int32Array(MAX_GROUPS + 1);
  groupCount = 0;
  tooLong = false;
}

function sepBit(c: number): number {
  return c === 32 ? SEP_SPACE : c === 45 ? SEP_DASH : c === 46 ? SEP_DOT : 0;
}

/** Reads a run starting at i (a digit, `+` or `(`); returns false when none starts there. */
function readRun(s: string, i: number, run: DigitRun): boolean {
  const n = s.length;
  let p = i;
  run.start = i;
  run.plus = false;
  run.paren = false;
  run.seps = 0;
  run.groupCount = 0;
  run.tooLong = false;
  let digitCount = 0;
  if (s.charCodeAt(p) === 43) {
    run.plus = true;
    p++;
    if (charAt(s, p) === 32 && startsGroup(s, p + 1)) p++;
  }
  while (true) {
    const g = p;
    let size: number;
    let paren = false;
    if (charAt(s, p) === 40) {
      // (415) 555-0100: a group of up to 4 digits in parentheses.
      let q = p + 1;
      while (q < n && isDigit(s.charCodeAt(q)) && q - p <= 4) q++;
      if (q === p + 1 || charAt(s, q) !== 41) break;
      size = q - p - 1;
      p = q + 1;
      paren = true;
      run.paren = true;
    } else if (isDigit(charAt(s, p))) {
      while (p < n && isDigit(s.charCodeAt(p))) p++;
      size = p - g;
    } else {
      break;
    }
    digitCount += size;
    if (run.groupCount < MAX_GROUPS) run.groups[run.groupCount] = size;
    run.groupCount++;
    run.end = p;
    const sep = sepBit(charAt(s, p));
    if (sep !== 0 && startsGroup(s, p + 1)) {
      // `4111 1111`, `555-0100`: one separator character between groups.
      run.seps |= sep;
      p++;
    } else if (!(paren && isDigit(charAt(s, p)))) {
      break;
    }
  }
  if (run.groupCount === 0) return false;
  run.tooLong = digitCount > 19 || run.groupCount > MAX_GROUPS;
  let digits = '';
  if (!run.tooLong) for (let k = run.start; k < run.end; k++) if (isDigit(s.charCodeAt(k))) digits += s[k];
  run.digits = digits;
  return true;
}

function startsGroup(s: string, p: number): boolean {
  const c = charAt(s, p);
  return isDigit(c) || (c === 40 && isDigit(charAt(s, p + 1)));
}

function groupsAre(run: DigitRun, ...sizes: number[]): boolean {
  if (run.groupCount !== sizes.length) return false;
  for (let k = 0; k < sizes.length; k++) if (run.groups[k] !== sizes[k]) return false;
  return true;
}

function classifyRun(s: string, run: DigitRun): number {
  if (run.tooLong) return 0;
  const d = run.digits;
  const n = d.length;
  const seps = run.seps;
  if (run.plus) {
    // E.164: up to 15 digits, country code first, formatted or not.
    return n >= 8 && n <= 15 && d.charCodeAt(0) !== 48 ? PHONE : 0;
  }
  if (!run.paren && seps === SEP_DOT && groupsAre4(run)) {
    return s.slice(run.start, run.end).split('.').every(isIpv4Octet) ? IP : 0;
  }
  if (!run.paren && (seps === SEP_DASH || seps === SEP_SPACE) && groupsAre(run, 3, 2, 4)) {
    return isSsn(d.slice(0, 3), d.slice(3, 5), d.slice(5)) ? SSN : 0;
  }
  if (!run.paren && (seps & SEP_DOT) === 0 && n >= 13 && n <= 19 && (seps === 0 || run.groupCount >= 3)) {
    return isCardNumber(d) ? CARD : 0;
  }
  if (seps === 0 && !run.paren) return 0; // bare digit strings: ids, amounts, timestamps
  // North American numbers: (415) 555-0100, 415-555-0100, 415.555.0100, 1 415 555 0100.
  const nanp = groupsAre(run, 3, 3, 4) ? 0 : groupsAre(run, 1, 3, 3, 4) && d.charCodeAt(0) === 49 ? 1 : -1;
  if (nanp >= 0) return d.charCodeAt(nanp) >= 50 && d.charCodeAt(nanp + 3) >= 50 ? PHONE : 0;
  // National numbers with a trunk 0, grouped by spaces or dashes: 07700 900123, 020 7946 0958, 06 12 34 56 78.
  if ((seps & SEP_DOT) === 0 && d.charCodeAt(0) === 48 && (n === 10 || n === 11) && run.groupCount >= 2) return PHONE;
  return 0;
}

function groupsAre4(run: DigitRun): boolean {
  if (run.groupCount !== 4) return false;
  for (let k = 0; k < 4; k++) {
    const g = run.groups[k] as number;
    if (g < 1 || g > 3) return false;
  }
  return true;
}

const RUN = new DigitRun();

function scanDigitRuns(s: string, scan: Scan): void {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (!isDigit(c) && c !== 43 && c !== 40) {
      i++;
      continue;
    }
    const before = charAt(s, i - 1);
    if (isWord(before) || before === 46 || (before === 45 && isDigit(charAt(s, i - 2))) || !readRun(s, i, RUN)) {
      // Inside a word or a longer number: skip the rest of this digit run.
      i++;
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      continue;
    }
    const after = charAt(s, RUN.end);
    if (!isWord(after)) {
      const bits = classifyRun(s, RUN);
      if (bits !== 0) {
        scan.bits |= bits;
        scan.covered += RUN.end - RUN.start;
      }
    }
    i = Math.max(RUN.end, i + 1);
  }
}

// ---------------------------------------------------------------------------------------- IBAN

function scanIbans(s: string, scan: Scan): void {
  const n = s.length;
  for (let i = 0; i + 15 <= n; i++) {
    if (!isUpper(s.charCodeAt(i)) || !isUpper(s.charCodeAt(i + 1)) || !isDigit(s.charCodeAt(i + 2)) || !isDigit(s.charCodeAt(i + 3))) continue;
    if (isAlnum(charAt(s, i - 1))) continue;
    const length = IBAN_LENGTHS.get(s.slice(i, i + 2));
    if (length === undefined) continue;
    // Read `length` alphanumerics, allowing single spaces between groups (print format: groups of 4).
    let p = i;
    let compact = '';
    while (p < n && compact.length < length) {
      const c = s.charCodeAt(p);
      if (isDigit(c) || isUpper(c)) {
        compact += s[p];
        p++;
      } else if (c === 32 && compact.length % 4 === 0 && compact.length > 0 && p + 1 < n && isAlnum(s.charCodeAt(p + 1))) {
        p++;
      } else {
        break;
      }
    }
    if (compact.length === length && !isAlnum(charAt(s, p)) && isIban(compact)) {
      scan.bits |= IBAN;
      scan.covered += p - i;
      i = p - 1;
    }
  }
}

// ---------------------------------------------------------------------------------------- IPv6

function scanIpv6(s: string, scan: Scan): void {
  const n = s.length;
  let colon = s.indexOf(':');
  while (colon >= 0) {
    let start = colon;
    while (start > 0 && colon - start < 45 && (isHex(s.charCodeAt(start - 1)) || s.charCodeAt(start - 1) === 58 || s.charCodeAt(start - 1) === 46)) start--;
    let end = colon + 1;
    while (end < n && end - start < 46 && (isHex(s.charCodeAt(end)) || s.charCodeAt(end) === 58 || s.charCodeAt(end) === 46)) end++;
    let last = end;
    while (last > colon + 1 && s.charCodeAt(last - 1) === 46) last--; // sentence dot
    const text = s.slice(start, last);
    if (!isWord(charAt(s, start - 1)) && !isWord(charAt(s, end)) && countColons(text) >= 2 && isIpv6(text)) {
      scan.bits |= IP;
      scan.covered += last - start;
    }
    colon = s.indexOf(':', end + 1);
  }
}

function countColons(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 58) count++;
  return count;
}

// ---------------------------------------------------------------------------------------- JWT

function scanJwts(s: string, scan: Scan): void {
  let at = s.indexOf('eyJ');
  const n = s.length;
  while (at >= 0) {
    let p = at;
    if (isBase64Url(charAt(s, at - 1))) {
      while (p < n && isBase64Url(s.charCodeAt(p))) p++;
      at = s.indexOf('eyJ', p);
      continue;
    }
    while (p < n && isBase64Url(s.charCodeAt(p))) p++;
    const headerEnd = p;
    let ok = false;
    if (charAt(s, p) === 46) {
      const payload = ++p;
      while (p < n && isBase64Url(s.charCodeAt(p))) p++;
      if (p - payload >= 2 && charAt(s, p) === 46) {
        p++;
        while (p < n && isBase64Url(s.charCodeAt(p))) p++;
        ok = !isWord(charAt(s, p)) && isJwtHeader(s.slice(at, headerEnd));
      }
    }
    if (ok) {
      scan.bits |= API_KEY;
      scan.covered += p - at;
    }
    at = s.indexOf('eyJ', Math.max(p, at + 3));
  }
}

// ------------------------------------------------------------------------------ PEM private keys

function scanPem(s: string, scan: Scan): void {
  let at = s.indexOf('-----BEGIN ');
  while (at >= 0) {
    const labelStart = at + 11;
    const close = s.indexOf('-----', labelStart);
    if (close < 0) return;
    const label = s.slice(labelStart, close);
    if (close - labelStart <= 40 && label.includes('PRIVATE KEY')) {
      scan.bits |= SECRET;
      const endMarker = s.indexOf(`-----END ${label}-----`, close);
      const end = endMarker < 0 ? close + 5 : endMarker + 14 + label.length;
      scan.covered += end - at;
      at = s.indexOf('-----BEGIN ', end);
    } else {
      at = s.indexOf('-----BEGIN ', close);
    }
  }
}

// ------------------------------------------------------------------ cloud and SaaS keys, password hashes

/**
 * Literal-prefixed, bounded patterns (no nested quantifiers): each match attempt does bounded work
 * at a position where the literal matches. Group 1: API keys; group 2: password hashes.
 */
const TOKENS = new RegExp(
  [
    '(?<![A-Za-z0-9_])(',
    [
      '(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])', // AWS access key id
      'gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])', // GitHub tokens
      'github_pat_[A-Za-z0-9_]{60,255}(?![A-Za-z0-9_])', // GitHub fine-grained PAT
      'xox[abposr]-[A-Za-z0-9-]{10,250}', // Slack
      '(?:sk|rk)_live_[0-9A-Za-z]{16,247}(?![0-9A-Za-z])', // Stripe secret / restricted keys
      'AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])', // Google API key
    ].join('|'),
    ')|(?<![A-Za-z0-9$])(',
    [
      '\\$2[aby]?\\$[0-9]{2}\\$[./A-Za-z0-9]{53}', // bcrypt
      '\\$argon2(?:id|i|d)\\$v=[0-9]{1,3}\\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}\\$[A-Za-z0-9+/]{8,128}\\$[A-Za-z0-9+/]{16,256}',
      'SCRAM-SHA-256\\$[0-9]{1,10}:[A-Za-z0-9+/=]{8,64}\\$[A-Za-z0-9+/=]{40,48}:[A-Za-z0-9+/=]{40,48}', // PostgreSQL verifier
    ].join('|'),
    ')',
  ].join(''),
  'g',
);

function scanTokens(s: string, scan: Scan): void {
  TOKENS.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = TOKENS.exec(s)) !== null) {
    scan.bits |= m[1] !== undefined ? API_KEY : PASSWORD;
    scan.covered += m[0].length;
  }
}

// ---------------------------------------------------------------------------------------- entry

/** Letters and whitespace outside the matches: the value is free text around the finding. */
function isFreeText(s: string, covered: number): boolean {
  const trimmed = s.trim();
  if (trimmed.length - covered < 3) return false;
  return /\s/.test(trimmed) && /[A-Za-z\u00C0-\uFFFF]{2}/.test(trimmed);
}

const SCAN: Scan = { bits: 0, covered: 0 };

/** The classes found in a value, as a bit set over DATA_CLASSES (see classes.ts). */
export function detectContentBits(value: string): number {
  const s = value;
  if (s.length < 3) return 0; // shortest finding: `::1`
  const scan = SCAN;
  scan.bits = 0;
  scan.covered = 0;
  if (s.includes('@')) scanEmails(s, scan);
  scanDigitRuns(s, scan);
  scanIbans(s, scan);
  if (s.includes(':')) scanIpv6(s, scan);
  if (s.includes('eyJ')) scanJwts(s, scan);
  if (s.includes('-----BEGIN ')) scanPem(s, scan);
  scanTokens(s, scan);
  let bits = scan.bits;
  if (bits !== 0 && isFreeText(s, scan.covered)) bits |= FREE_TEXT;
  return bits;
}

/** The classes found in a value, in DATA_CLASSES order. */
export function detectContent(value: string): DataClass[] {
  return classesOf(detectContentBits(value));
}

// ---------------------------------------------------------------------------------------- sampling

export interface SampleOptions {
  /** Share of non-empty values a class must appear in to be reported (default 0.05). */
  readonly minShare?: number;
  /** Characters scanned per value (default 65,536); the rest of a longer value is not sampled. */
  readonly maxChars?: number;
}

export interface SampleClassification {
  /** Classes of the column, in DATA_CLASSES order. */
  readonly classes: readonly DataClass[];
  /**
   * Share (0–1) of the non-empty sampled values in which a reported class was found; 0 when
   * nothing was reported or nothing non-empty was sampled. Low confidence with few samples: see `sampled`.
   */
  readonly confidence: number;
  /** Non-null, non-empty values looked at. */
  readonly sampled: number;
  /** Per class: the share of sampled values it was found in (every class found, even below minShare). */
  readonly shares: Readonly<Partial<Record<DataClass, number>>>;
}

const HIGH_RISK = HIGH_RISK_CLASSES.reduce((bits, c) => bits | classBit(c), 0);

/**
 * Classifies a column from a sample of its values (the caller caches the result per table and
 * column). A class is reported when found in at least `minShare` of the non-empty values; the
 * validated high-risk classes (ssn, credit_card, iban, secret, api_key, password) and
 * free_text_pii count from a single value, because one leaked key or card number is one too many.
 */
export function sampleClassify(values: readonly (string | null)[], options: SampleOptions = {}): SampleClassification {
  const minShare = options.minShare ?? 0.05;
  const maxChars = options.maxChars ?? 65_536;
  const counts = new Map<number, number>();
  const perValue: number[] = [];
  let sampled = 0;
  for (const value of values) {
    if (value === null || value.length === 0) continue;
    sampled++;
    const bits = detectContentBits(value.length > maxChars ? value.slice(0, maxChars) : value);
    perValue.push(bits);
    for (let b = bits; b !== 0; b &= b - 1) {
      const bit = b & -b;
      counts.set(bit, (counts.get(bit) ?? 0) + 1);
    }
  }
  let reported = 0;
  const shares: Partial<Record<DataClass, number>> = {};
  for (const [bit, count] of counts) {
    const share = count / sampled;
    const cls = classesOf(bit)[0] as DataClass;
    shares[cls] = share;
    if (share >= minShare || (bit & (HIGH_RISK | FREE_TEXT)) !== 0) reported |= bit;
  }
  const hits = perValue.reduce((n, bits) => n + ((bits & reported) !== 0 ? 1 : 0), 0);
  return { classes: classesOf(reported), confidence: sampled === 0 ? 0 : hits / sampled, sampled, shares };
}
