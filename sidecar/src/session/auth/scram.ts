import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** SCRAM-SHA-256 failed: a malformed server message or a server signature that does not verify. */
export class ScramError extends Error {
  override readonly name = 'ScramError';
}

const MECHANISM = 'SCRAM-SHA-256';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it: empty user name
 * in the exchange (the server takes it from the startup message), no channel binding (`n,,`),
 * because the sidecar is the TLS endpoint of neither the client nor, for binding purposes, a party
 * the server's certificate hash would prove anything about.
 */
export class ScramClient {
  readonly mechanism = MECHANISM;
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | null = null;

  /**
   * @param user left empty for PostgreSQL, which ignores it; set only to reproduce RFC test vectors.
   */
  constructor(
    private readonly password: string,
    nonce: string = randomBytes(18).toString('base64'),
    user = '',
  ) {
    this.clientNonce = nonce;
    this.clientFirstBare = `n=${user},r=${this.clientNonce}`;
  }

  /** Choose SCRAM-SHA-256 from the server's list, or null when it is not offered. */
  static pick(mechanisms: readonly string[]): string | null {
    return mechanisms.includes(MECHANISM) ? MECHANISM : null;
  }

  /** client-first-message, sent in SASLInitialResponse. */
  clientFirst(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  /** Consumes server-first-message (AuthenticationSASLContinue); returns client-final-message. */
  clientFinal(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString('utf8');
    const attrs = parseAttributes(text);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || salt === undefined || !Number.isInteger(iterations) || iterations < 1) {
      throw new ScramError('malformed SCRAM server-first-message');
    }
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new ScramError('SCRAM server nonce does not extend the client nonce');
    }
    const saltedPassword = pbkdf2Sync(saslPrep(this.password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    const serverKey = hmac(saltedPassword, 'Server Key');
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Verifies server-final-message (AuthenticationSASLFinal): proves the server knew the verifier. */
  verifyServerFinal(serverFinal: Buffer): void {
    const attrs = parseAttributes(serverFinal.toString('utf8'));
    const error = attrs.get('e');
    if (error !== undefined) throw new ScramError(`SCRAM server error: ${error}`);
    const v = attrs.get('v');
    if (v === undefined || this.expectedServerSignature === null) throw new ScramError('malformed SCRAM server-final-message');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new ScramError('SCRAM server signature does not match: the server does not know the password');
    }
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function parseAttributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part.length >= 2 && part[1] === '=') attrs.set(part[0]!, part.slice(2));
  }
  return attrs;
}

/**
 * SASLprep as PostgreSQL applies it: normalise with NFKC and map non-ASCII spaces to a space and
 * "commonly mapped to nothing" characters to nothing; if the result is not valid, PostgreSQL uses
 * the raw bytes, and so do we.
 */
function saslPrep(password: string): string {
  if (/^[\x20-\x7e]*$/.test(password)) return password;
  let mapped = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (NON_ASCII_SPACES.has(cp) || (cp >= 0x2000 && cp <= 0x200b)) mapped += ' ';
    else if (!MAPPED_TO_NOTHING.has(cp) && !(cp >= 0x180b && cp <= 0x180d) && !(cp >= 0xfe00 && cp <= 0xfe0f)) mapped += ch;
  }
  mapped = mapped.normalize('NFKC');
  // Prohibited output (controls, private use, non-characters): fall back to the raw bytes.
  for (const ch of mapped) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfdd0 && cp <= 0xfdef) || cp === 0xfffe || cp === 0xffff) {
      return password;
    }
  }
  return mapped;
}

/** RFC 3454 table C.1.2 (non-ASCII space characters), besides U+2000..U+200B. */
const NON_ASCII_SPACES = new Set([0x00a0, 0x1680, 0x202f, 0x205f, 0x3000]);
/** RFC 3454 table B.1 (commonly mapped to nothing), besides the ranges tested inline. */
const MAPPED_TO_NOTHING = new Set([0x00ad, 0x034f, 0x1806, 0x200c, 0x200d, 0x2060, 0xfeff]);

/** MD5 password response: "md5" + md5(md5(password + user) + salt), as libpq computes it. */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner, 'utf8'), salt])).digest('hex');
}
