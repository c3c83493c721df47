/**
 * Validation behind the content detectors: checksums and structure that turn "looks like" into
 * "is". All functions take the candidate already cut out of the value and run in time linear in
 * its (bounded) length.
 */

/** Luhn (mod 10) check over a string of ASCII digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

interface Brand {
  readonly name: string;
  /** Inclusive ranges of the first `digits` digits. */
  readonly ranges: readonly (readonly [number, number])[];
  readonly digits: number;
  readonly lengths: readonly [number, number];
}

/** Issuer identification number prefixes of the major networks (ISO/IEC 7812 registrations). */
const BRANDS: readonly Brand[] = [
  { name: 'visa', ranges: [[4, 4]], digits: 1, lengths: [13, 19] },
  { name: 'mastercard', ranges: [[51, 55]], digits: 2, lengths: [16, 16] },
  { name: 'mastercard', ranges: [[2221, 2720]], digits: 4, lengths: [16, 16] },
  { name: 'amex', ranges: [[34, 34], [37, 37]], digits: 2, lengths: [15, 15] },
  { name: 'discover', ranges: [[6011, 6011], [6440, 6599]], digits: 4, lengths: [16, 19] },
  { name: 'discover', ranges: [[622126, 622925]], digits: 6, lengths: [16, 19] },
  { name: 'unionpay', ranges: [[62, 62], [81, 81]], digits: 2, lengths: [16, 19] },
  { name: 'jcb', ranges: [[3528, 3589]], digits: 4, lengths: [16, 19] },
  { name: 'diners', ranges: [[300, 305], [309, 309], [360, 369], [380, 399]], digits: 3, lengths: [14, 19] },
  { name: 'mir', ranges: [[2200, 2204]], digits: 4, lengths: [16, 19] },
  { name: 'maestro', ranges: [[50, 50], [56, 58], [63, 63], [67, 67]], digits: 2, lengths: [13, 19] },
  { name: 'rupay', ranges: [[60, 60], [65, 65], [81, 82]], digits: 2, lengths: [16, 16] },
];

/** The card network of a PAN (13–19 digits) with a known IIN and a length the network issues, or undefined. */
export function cardBrand(digits: string): string | undefined {
  const n = digits.length;
  if (n < 13 || n > 19) return undefined;
  for (const brand of BRANDS) {
    if (n < brand.lengths[0] || n > brand.lengths[1]) continue;
    const prefix = Number(digits.slice(0, brand.digits));
    if (brand.ranges.some(([lo, hi]) => prefix >= lo && prefix <= hi)) return brand.name;
  }
  return undefined;
}

/** A payment card number: known IIN, valid length for it, Luhn. */
export function isCardNumber(digits: string): boolean {
  return cardBrand(digits) !== undefined && luhn(digits);
}

/**
 * US Social Security number AAA-GG-SSSS, excluding what the SSA never issues: area 000, 666 and
 * 900–999, group 00, serial 0000.
 */
export function isSsn(area: string, group: string, serial: string): boolean {
  if (area.length !== 3 || group.length !== 2 || serial.length !== 4) return false;
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== '00' && serial !== '0000';
}

/** IBAN lengths by country (ISO 13616 registry, SWIFT release 2024). */
export const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  Object.entries({
    AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24,
    DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28,
    HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
    LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
    RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
  }),
);

/** ISO 7064 mod 97-10 over an IBAN without spaces: the rearranged number mod 97 must be 1. */
export function ibanMod97(iban: string): boolean {
  const n = iban.length;
  if (n < 5) return false;
  let rest = 0;
  for (let k = 0; k < n; k++) {
    const c = iban.charCodeAt((k + 4) % n);
    if (c >= 48 && c <= 57) rest = (rest * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rest = (rest * 100 + (c - 55)) % 97;
    else return false;
  }
  return rest === 1;
}

/** A complete IBAN (no spaces, upper case): registered country, its length, check digits, mod 97. */
export function isIban(iban: string): boolean {
  const length = IBAN_LENGTHS.get(iban.slice(0, 2));
  return length === iban.length && /^[0-9]{2}$/.test(iban.slice(2, 4)) && ibanMod97(iban);
}

/** One IPv4 octet in dotted-decimal: 0–255 without leading zeros. */
export function isIpv4Octet(s: string): boolean {
  if (s.length === 0 || s.length > 3 || (s.length > 1 && s.charCodeAt(0) === 48)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return Number(s) <= 255;
}

export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every(isIpv4Octet);
}

function isHexGroup(s: string): boolean {
  return /^[0-9A-Fa-f]{1,4}$/.test(s);
}

/** RFC 4291 text forms: eight groups, one `::`, an embedded IPv4 tail. No zone (strip `%...` first). */
export function isIpv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIpv4(last)) return false;
    all.pop();
    count += 1;
  }
  if (!all.every(isHexGroup)) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** Decodes base64url (no padding) to UTF-8 text, or undefined when it is not base64url. */
function base64UrlText(segment: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(segment) || segment.length % 4 === 1) return undefined;
  return Buffer.from(segment, 'base64url').toString('utf8');
}

/** A JWT (JWS compact form) header: base64url of a JSON object with a string `alg`. */
export function isJwtHeader(segment: string): boolean {
  if (segment.length > 2048) return false;
  const text = base64UrlText(segment);
  if (text === undefined) return false;
  try {
    const header: unknown = JSON.parse(text);
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}
