import { describe, expect, it } from 'vitest';
import { detectContent, sampleClassify } from './detect-content.js';

const jwt = [
  Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url'),
  Buffer.from('{"sub":"1234567890","name":"John Doe","iat":1516239022}').toString('base64url'),
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
].join('.');
const notJwt = [Buffer.from('{"foo":"bar"}').toString('base64url'), 'eyJzdWIiOiIxIn0', 'sig'].join('.');
const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n-----END RSA PRIVATE KEY-----';
const alnum = (n: number): string => 'aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zA1bC2dE3fG4hJ5kL6mN7pQ8rS9tU0vW'.repeat(5).slice(0, n);

describe('detectContent', () => {
  const cases: [name: string, value: string, classes: string[]][] = [
    // email
    ['email', 'jane.doe+news@example.co.uk', ['email']],
    ['email in text', 'Please contact jane@example.com about the refund.', ['email', 'free_text_pii']],
    ['email mailto', 'mailto:jane@example.com', ['email']],
    ['not an email: no dot', 'user@localhost', []],
    ['not an email: numeric tld', 'a@b.123', []],
    ['not an email: handle', '@jane and @bob', []],
    // phones
    ['E.164', '+14155550100', ['phone']],
    ['E.164 formatted', '+44 20 7946 0958', ['phone']],
    ['E.164 with parens', '+1 (415) 555-0100', ['phone']],
    ['NANP parens', '(415) 555-0100', ['phone']],
    ['NANP dashes', '415-555-0100', ['phone']],
    ['NANP dots', '415.555.0100', ['phone']],
    ['NANP with 1', '1 415 555 0100', ['phone']],
    ['UK mobile', '07700 900123', ['phone']],
    ['FR mobile', '06 12 34 56 78', ['phone']],
    ['phone in text', 'call me at 415-555-0100 after 5pm', ['phone', 'free_text_pii']],
    ['bare 10 digits are not a phone', '4155550100', []],
    ['NANP area code 1xx is not', '115-555-0100', []],
    ['date is not a phone', '2024-01-15', []],
    ['short E.164 is not', '+1234', []],
    ['amount', '1,234.56', []],
    // SSN
    ['SSN', '123-45-6789', ['ssn']],
    ['SSN with spaces', '123 45 6789', ['ssn']],
    ['SSN in text', 'SSN on file: 123-45-6789 (verified)', ['ssn', 'free_text_pii']],
    ['SSN area 666', '666-45-6789', []],
    ['SSN area 9xx', '912-45-6789', []],
    ['SSN group 00', '123-00-6789', []],
    ['SSN serial 0000', '123-45-0000', []],
    ['SSN mixed separators', '123-45 6789', []],
    ['bare 9 digits', '123456789', []],
    // cards
    ['card', '4111111111111111', ['credit_card']],
    ['card spaced', '4111 1111 1111 1111', ['credit_card']],
    ['card dashed', '5555-5555-5555-4444', ['credit_card']],
    ['amex grouped', '3782 822463 10005', ['credit_card']],
    ['card in text', 'paid with 4111 1111 1111 1111 yesterday', ['credit_card', 'free_text_pii']],
    ['card failing Luhn', '4111 1111 1111 1112', []],
    ['card with unknown IIN', '1234567812345670', []],
    ['card inside a longer number', '94111111111111111', []],
    ['card inside a word', 'ref4111111111111111', []],
    // IBAN
    ['IBAN', 'DE89370400440532013000', ['iban']],
    ['IBAN print format', 'GB82 WEST 1234 5698 7654 32', ['iban']],
    ['IBAN in text', 'Pay to NL91ABNA0417164300 by Friday', ['iban', 'free_text_pii']],
    ['IBAN bad checksum', 'DE89370400440532013001', []],
    ['IBAN too short', 'DE8937040044053201300', []],
    // IP
    ['IPv4', '192.168.1.10', ['ip_address']],
    ['IPv4 with port', '10.0.0.1:5432', ['ip_address']],
    ['IPv4 in text', 'login from 203.0.113.7 failed', ['ip_address', 'free_text_pii']],
    ['not IPv4: octet', '256.1.1.1', []],
    ['not IPv4: five parts', '1.2.3.4.5', []],
    ['IPv6', '2001:db8::ff00:42:8329', ['ip_address']],
    ['IPv6 full', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', ['ip_address']],
    ['IPv6 bracketed', '[fe80::1]:8080', ['ip_address']],
    ['time is not IPv6', '12:30:45', []],
    ['MAC is not IPv6', '00:1a:2b:3c:4d:5e', []],
    ['C++ scope is not IPv6', 'std::vector<int>', []],
    // secrets
    ['JWT', jwt, ['api_key']],
    ['bearer JWT', `Bearer ${jwt}`, ['api_key', 'free_text_pii']],
    ['not a JWT header', notJwt, []],
    ['PEM private key', pem, ['secret']],
    ['PEM public key', '-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----', []],
    ['AWS key id', 'AKIAIOSFODNN7EXAMPLE', ['api_key']],
    ['AWS key id too short', 'AKIAIOSFODNN7EXAMPL', []],
    ['GitHub token', `ghp_${alnum(36)}`, ['api_key']],
    ['GitHub OAuth token', `gho_${alnum(36)}`, ['api_key']],
    ['GitHub fine-grained PAT', `github_pat_${alnum(22)}_${alnum(59)}`, ['api_key']],
    ['Slack bot token', 'xoxb-123456789012-1234567890123-abcdefABCDEF', ['api_key']],
    ['Stripe secret key', `sk_live_${alnum(24)}`, ['api_key']],
    ['Stripe test key is not live', `sk_test_${alnum(24)}`, []],
    ['Google API key', `AIza${alnum(35)}`, ['api_key']],
    ['key in config text', `aws_access_key_id = AKIAIOSFODNN7EXAMPLE # prod`, ['api_key', 'free_text_pii']],
    ['bcrypt hash', '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', ['password']],
    ['nothing', 'The quick brown fox jumps over the lazy dog', []],
    ['empty', '', []],
    ['uuid', '123e4567-e89b-12d3-a456-426614174000', []],
  ];
  it.each(cases)('%s', (_name, value, classes) => {
    expect(detectContent(value)).toEqual(classes);
  });

  it('finds several classes in one value', () => {
    expect(detectContent('Jane, jane@example.com, +1 415 555 0100, card 4111111111111111')).toEqual(['email', 'phone', 'credit_card', 'free_text_pii']);
  });

  it('runs in linear time on adversarial input', () => {
    const inputs = ['a'.repeat(200_000) + '@', '@'.repeat(200_000), '1-'.repeat(100_000), 'eyJ'.repeat(70_000), ':'.repeat(200_000), 'AKIA'.repeat(50_000), 'DE89'.repeat(50_000), '-----BEGIN '.repeat(20_000)];
    for (const input of inputs) {
      const t = performance.now();
      detectContent(input);
      expect(performance.now() - t, input.slice(0, 8)).toBeLessThan(500);
    }
  });
});

describe('sampleClassify', () => {
  it('reports a class found in most values', () => {
    const result = sampleClassify(['a@example.com', 'b@example.org', null, '', 'c@example.net', 'unknown']);
    expect(result.classes).toEqual(['email']);
    expect(result.sampled).toBe(4);
    expect(result.confidence).toBe(0.75);
    expect(result.shares.email).toBe(0.75);
  });

  it('ignores a rare low-risk finding but keeps a single high-risk one', () => {
    const values = Array.from({ length: 100 }, (_, i) => `order note ${i}`);
    values[3] = 'ship to 10.0.0.1';
    expect(sampleClassify(values).classes).toEqual(['free_text_pii']);
    values[7] = 'card 4111 1111 1111 1111 on file';
    expect(sampleClassify(values).classes).toEqual(['credit_card', 'free_text_pii']);
  });

  it('reports nothing for clean or empty samples', () => {
    expect(sampleClassify(['red', 'green', 'blue'])).toEqual({ classes: [], confidence: 0, sampled: 3, shares: {} });
    expect(sampleClassify([null, null]).confidence).toBe(0);
  });

  it('scans at most maxChars of each value', () => {
    expect(sampleClassify([`${'x '.repeat(10)}jane@example.com`], { maxChars: 10 }).classes).toEqual([]);
  });
});
