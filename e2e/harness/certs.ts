import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from './process.js';

export interface KeyPair {
  /** PEM certificate path. */
  cert: string;
  /** PEM private key path (mode 0600). */
  key: string;
}

export interface Certificates {
  dir: string;
  /** Self-signed CA that issued every leaf: give it to clients as `ca` / `sslrootcert`. */
  caCert: string;
  caKey: string;
  /** Leaf for the PostgreSQL server (CN=localhost). */
  server: KeyPair;
  /** The extra leaves asked for by name (CN=name), e.g. `sidecar` for its client-facing TLS. */
  leaves: Record<string, KeyPair>;
}

export interface CertificateOptions {
  /** subjectAltName entries of every leaf; default `DNS:localhost, IP:127.0.0.1`. A named leaf also gets `DNS:<name>`. */
  altNames?: string[];
  /** chown the server key (and its cert) to this account, e.g. the OS user the postmaster runs as. */
  serverKeyOwner?: { uid: number; gid: number };
  /** Validity in days; default 825. */
  days?: number;
}

const LEAF_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DEFAULT_ALT_NAMES = ['DNS:localhost', 'IP:127.0.0.1'];

function config(commonName: string, altNames: readonly string[]): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = ${commonName}`,
    '[ca_ext]',
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '[leaf_ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth, clientAuth',
    `subjectAltName = ${altNames.join(', ')}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n');
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeLeaf(dir: string, file: string, commonName: string, altNames: readonly string[], ca: { cert: string; key: string }, days: number): Promise<KeyPair> {
  const cnf = join(dir, `${file}.cnf`);
  const csr = join(dir, `${file}.csr`);
  const pair: KeyPair = { cert: join(dir, `${file}.crt`), key: join(dir, `${file}.key`) };
  await writeFile(cnf, config(commonName, altNames));
  await runChecked('openssl', ['req', '-new', '-config', cnf, ...EC_KEY, '-keyout', pair.key, '-out', csr]);
  await runChecked('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', String(days),
    '-extfile', cnf, '-extensions', 'leaf_ext', '-out', pair.cert,
  ]);
  await Promise.all([rm(cnf), rm(csr), chmod(pair.key, 0o600), chmod(pair.cert, 0o644)]);
  return pair;
}

/**
 * Generates, with the openssl CLI, a test CA plus a server leaf (`server.crt`/`server.key`,
 * CN=localhost) and one leaf per entry of `names` (`<name>.crt`/`<name>.key`, CN=<name>, usable
 * as a server or client certificate). Every leaf carries `DNS:localhost, IP:127.0.0.1` so
 * `sslmode=verify-full` works against 127.0.0.1. Keys are EC P-256, mode 0600.
 */
export async function makeCertificates(dir: string, names: readonly string[] = [], options: CertificateOptions = {}): Promise<Certificates> {
  const altNames = options.altNames ?? DEFAULT_ALT_NAMES;
  const days = options.days ?? 825;
  for (const name of names) {
    if (!LEAF_NAME.test(name) || name === 'ca' || name === 'server') {
      throw new Error(`makeCertificates: bad leaf name ${JSON.stringify(name)}`);
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);

  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const caCnf = join(dir, 'ca.cnf');
  await writeFile(caCnf, config('dbward test CA', altNames));
  await runChecked('openssl', [
    'req', '-x509', '-config', caCnf, '-extensions', 'ca_ext', ...EC_KEY,
    '-days', String(days + 1), '-keyout', ca.key, '-out', ca.cert,
  ]);
  await Promise.all([rm(caCnf), chmod(ca.key, 0o600), chmod(ca.cert, 0o644)]);

  const server = await makeLeaf(dir, 'server', 'localhost', altNames, ca, days);
  if (options.serverKeyOwner) {
    const { uid, gid } = options.serverKeyOwner;
    // PostgreSQL refuses a key that is group/world readable while owned by the server user.
    await Promise.all([chown(server.key, uid, gid), chown(server.cert, uid, gid)]);
  }
  const leaves: Record<string, KeyPair> = {};
  for (const name of names) {
    const leafAltNames = altNames.includes(`DNS:${name}`) ? altNames : [...altNames, `DNS:${name}`];
    leaves[name] = await makeLeaf(dir, name, name, leafAltNames, ca, days);
  }
  return { dir, caCert: ca.cert, caKey: ca.key, server, leaves };
}
