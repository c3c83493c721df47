import { describe, expect, it } from 'vitest';
import { cardBrand, ibanMod97, isCardNumber, isIban, isIpv4, isIpv6, isJwtHeader, isSsn, luhn } from './validators.js';

describe('luhn and card brands', () => {
  it.each([
    ['4111111111111111', 'visa'],
    ['4012888888881881', 'visa'],
    ['4222222222222', 'visa'],
    ['5555555555554444', 'mastercard'],
    ['2223003122003222', 'mastercard'],
    ['378282246310005', 'amex'],
    ['371449635398431', 'amex'],
    ['6011111111111117', 'discover'],
    ['3530111333300000', 'jcb'],
    ['30569309025904', 'diners'],
    ['6200000000000005', 'unionpay'],
  ])('%s is a %s card', (digits, brand) => {
    expect(luhn(digits)).toBe(true);
    expect(cardBrand(digits)).toBe(brand);
    expect(isCardNumber(digits)).toBe(true);
  });

  it.each([
    ['4111111111111112', 'Luhn fails'],
    ['1234567812345670', 'Luhn passes, no network issues 12'],
    ['37828224631000', 'amex with 14 digits'],
    ['411111111111', '12 digits'],
    ['41111111111111111111', '20 digits'],
  ])('%s is not a card (%s)', (digits) => {
    expect(isCardNumber(digits)).toBe(false);
  });

  it('rejects non-digits and empty input', () => {
    expect(luhn('')).toBe(false);
    expect(luhn('4111-1111')).toBe(false);
  });
});

describe('SSN ranges', () => {
  it.each([
    ['123', '45', '6789', true],
    ['899', '99', '9999', true],
    ['000', '12', '3456', false],
    ['666', '12', '3456', false],
    ['900', '12', '3456', false],
    ['987', '65', '4321', false],
    ['123', '00', '4567', false],
    ['123', '45', '0000', false],
    ['12', '345', '6789', false],
  ])('%s-%s-%s → %s', (area, group, serial, expected) => {
    expect(isSsn(area, group, serial)).toBe(expected);
  });
});

describe('IBAN', () => {
  it.each([
    ['DE89370400440532013000', true],
    ['GB82WEST12345698765432', true],
    ['FR1420041010050500013M02606', true],
    ['NL91ABNA0417164300', true],
    ['NO9386011117947', true],
    ['DE89370400440532013001', false], // check digits
    ['DE8937040044053201300', false], // length for DE
    ['ZZ89370400440532013000', false], // unknown country
    ['de89370400440532013000', false], // lower case
  ])('%s → %s', (iban, expected) => {
    expect(isIban(iban)).toBe(expected);
  });

  it('mod 97 alone', () => {
    expect(ibanMod97('GB82WEST12345698765432')).toBe(true);
    expect(ibanMod97('GB')).toBe(false);
  });
});

describe('IP addresses', () => {
  it.each([
    ['192.168.1.1', true],
    ['0.0.0.0', true],
    ['255.255.255.255', true],
    ['256.1.1.1', false],
    ['01.2.3.4', false],
    ['1.2.3', false],
  ])('IPv4 %s → %s', (text, expected) => {
    expect(isIpv4(text)).toBe(expected);
  });

  it.each([
    ['2001:db8::1', true],
    ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', true],
    ['fe80::1', true],
    ['::1', true],
    ['::ffff:192.0.2.128', true],
    ['2001:db8::1::2', false],
    ['12:30:45', false],
    ['00:1a:2b:3c:4d:5e', false],
    ['1:2:3:4:5:6:7:8:9', false],
    ['2001:db8::g', false],
  ])('IPv6 %s → %s', (text, expected) => {
    expect(isIpv6(text)).toBe(expected);
  });
});

describe('JWT header', () => {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  it.each([
    [b64({ alg: 'HS256', typ: 'JWT' }), true],
    [b64({ alg: 'none' }), true],
    [b64({ typ: 'JWT' }), false],
    [b64({ alg: 256 }), false],
    [b64(['alg']), false],
    ['eyJub3QganNvbg', false],
    ['eyJ!!', false],
  ])('%s → %s', (segment, expected) => {
    expect(isJwtHeader(segment)).toBe(expected);
  });
});
