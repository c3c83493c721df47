import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * A minimal X.509 v3 issuer on node:crypto (ADR 0015). Node 24 parses certificates
 * (`X509Certificate`) but cannot create them, and the operator image must not depend on an
 * `openssl` binary, so this file DER-encodes exactly what a webhook/gRPC serving chain needs:
 * ECDSA P-256 keys, ecdsa-with-SHA256 signatures, basicConstraints, keyUsage, extKeyUsage,
 * subjectAltName (DNS and IP), subject/authority key identifiers.
 */

// ---------------------------------------------------------------- DER
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, content: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(content.length), content]);
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && ((b[1] ?? 0) & 0x80) === 0) b = b.subarray(1);
  if (((b[0] ?? 0) & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(text: string): Buffer {
  const parts = text.split('.').map(Number);
  const out: number[] = [(parts[0] ?? 0) * 40 + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString();
  const compact = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(compact.slice(2), 'ascii')) : tlv(0x18, Buffer.from(compact, 'ascii'));
}

const OID = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

const name = (cn: string, o?: string): Buffer =>
  seq(...(o !== undefined ? [set(seq(oid(OID.o), utf8(o)))] : []), set(seq(oid(OID.cn), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer): Buffer => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

function keyUsage(flags: number): Buffer {
  // bit 0 = MSB; DER: trailing zero bits are "unused".
  const byte = flags & 0xff;
  let unused = 0;
  while (unused < 7 && ((byte >> unused) & 1) === 0) unused++;
  return bits(Buffer.from([byte]), unused);
}
const KU = { digitalSignature: 0x80, keyEncipherment: 0x20, keyCertSign: 0x04, cRLSign: 0x02 };

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head = '', tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

// ---------------------------------------------------------------- issuing
export interface Issued {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

export interface IssueOptions {
  commonName: string;
  organization?: string;
  /** Issuer; absent: self-signed. */
  issuer?: Issued;
  isCA?: boolean;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  notBefore?: Date;
  validityDays: number;
}

export function issueCertificate(options: IssueOptions): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000); // clock skew
  const notAfter = new Date(notBefore.getTime() + options.validityDays * 86_400_000);
  let issuerName: Buffer;
  let issuerKey: KeyObject;
  let issuerSpki: Buffer;
  if (options.issuer !== undefined) {
    issuerKey = createPrivateKey(options.issuer.key);
    issuerSpki = createPublicKey(issuerKey).export({ type: 'spki', format: 'der' });
    const issuerCert = new X509Certificate(options.issuer.cert);
    issuerName = derName(issuerCert.raw);
  } else {
    issuerKey = privateKey;
    issuerSpki = spki;
    issuerName = name(options.commonName, options.organization);
  }
  const sans = [
    ...(options.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(options.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  const extensions = [
    extension(OID.basicConstraints, true, options.isCA === true ? seq(bool(true)) : seq()),
    extension(OID.keyUsage, true, keyUsage(options.isCA === true ? KU.digitalSignature | KU.keyCertSign | KU.cRLSign : KU.digitalSignature | KU.keyEncipherment)),
    ...(options.isCA === true ? [] : [extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)))]),
    ...(sans.length > 0 ? [extension(OID.subjectAltName, false, seq(...sans))] : []),
    extension(OID.subjectKeyId, false, octets(keyId(spki))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  const algorithm = seq(oid(OID.ecdsaSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    name(options.commonName, options.organization),
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, issuerKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, algorithm, bits(signature));
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

// The issuer's subject Name, copied byte for byte from its certificate (so chains match exactly).
function derName(certDer: Buffer): Buffer {
  const read = (buf: Buffer, at: number): { tag: number; start: number; end: number; next: number } => {
    const tag = buf[at] ?? 0;
    let l = buf[at + 1] ?? 0;
    let start = at + 2;
    if (l & 0x80) {
      const n = l & 0x7f;
      l = 0;
      for (let i = 0; i < n; i++) l = (l << 8) | (buf[at + 2 + i] ?? 0);
      start = at + 2 + n;
    }
    return { tag, start, end: start + l, next: start + l };
  };
  const cert = read(certDer, 0);
  const tbs = read(certDer, cert.start);
  let at = tbs.start;
  const fields: { start: number; next: number }[] = [];
  while (at < tbs.end && fields.length < 6) {
    const f = read(certDer, at);
    fields.push({ start: at, next: f.next });
    at = f.next;
  }
  // [0] version, serial, signature, issuer, validity, subject
  const subject = fields[5];
  if (subject === undefined) throw new Error('issuer certificate: cannot find its subject');
  return certDer.subarray(subject.start, subject.next);
}

