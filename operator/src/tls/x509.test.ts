import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueCertificate } from './x509.js';

describe('issueCertificate', () => {
  const ca = issueCertificate({ commonName: 'dbward CA', organization: 'dbward', isCA: true, validityDays: 3650 });
  const leaf = issueCertificate({
    commonName: 'dbward-operator.dbward-system.svc',
    issuer: ca,
    dnsNames: ['dbward-operator.dbward-system.svc', 'localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    validityDays: 365,
  });

  it('makes a self-signed CA that Node parses', () => {
    const x = new X509Certificate(ca.cert);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('O=dbward\nCN=dbward CA');
    expect(x.verify(x.publicKey)).toBe(true);
    expect(Date.parse(x.validTo) - Date.now()).toBeGreaterThan(3649 * 86_400_000);
  });

  it('makes a leaf signed by the CA, with SANs and the matching key', () => {
    const x = new X509Certificate(leaf.cert);
    const c = new X509Certificate(ca.cert);
    expect(x.ca).toBe(false);
    expect(x.checkIssued(c)).toBe(true);
    expect(x.verify(c.publicKey)).toBe(true);
    expect(x.subjectAltName).toBe('DNS:dbward-operator.dbward-system.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkPrivateKey(createPrivateKey(leaf.key))).toBe(true);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('passes openssl verify (an independent DER parser)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbward-x509-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), ca.cert);
      writeFileSync(join(dir, 'leaf.crt'), leaf.cert);
      const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), join(dir, 'leaf.crt')], { encoding: 'utf8' });
      expect(out.trim()).toMatch(/leaf\.crt: OK$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
