import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { isAlreadyExists, isConflict, isNotFound, type KubeClient } from '../kube/rest.js';
import { issueCertificate, type Issued } from './x509.js';

/**
 * The operator's serving certificates (ADR 0015): a CA and a serving leaf, kept in a Secret of the
 * operator's namespace (so every replica serves the same chain), created on first start, renewed
 * `renewBeforeDays` before expiry (checked every `checkIntervalMs`). The CA bundle (current CA, plus
 * the previous one while it is valid) is what the MutatingWebhookConfiguration's caBundle and the
 * sidecars' `dbward-ca` ConfigMap carry, so a CA rotation never breaks a client still on the old one.
 * The same chain serves the webhook and the gRPC control plane: `current()` and `onRotate()`.
 */

export interface ServingCertificate {
  /** PEM leaf certificate. */
  cert: string;
  /** PEM private key of the leaf. */
  key: string;
  /** PEM CA bundle to trust (current CA first). */
  ca: string;
  notAfter: Date;
}

export interface CertManagerOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** SANs of the serving certificate: the Service DNS names (and 127.0.0.1 for local runs). */
  names: readonly string[];
  leafValidityDays?: number;
  caValidityDays?: number;
  renewBeforeDays?: number;
  checkIntervalMs?: number;
  onError?: (error: unknown) => void;
}

interface SecretObject {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'));
const DAY = 86_400_000;

export class CertManager {
  private cert: ServingCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(cert: ServingCertificate) => void>();

  constructor(private readonly options: CertManagerOptions) {}

  current(): ServingCertificate {
    if (this.cert === undefined) throw new Error('CertManager: start() first');
    return this.cert;
  }

  onRotate(listener: (cert: ServingCertificate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<ServingCertificate> {
    const cert = await this.ensure();
    const every = this.options.checkIntervalMs ?? 3_600_000;
    this.timer = setInterval(() => {
      this.ensure().catch((error: unknown) => this.options.onError?.(error));
    }, every);
    this.timer.unref();
    return cert;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Loads the Secret, renews what needs it, stores it back; resolves the chain in use. */
  async ensure(now = new Date()): Promise<ServingCertificate> {
    const { client, namespace, secretName } = this.options;
    const path = `/api/v1/namespaces/${namespace}/secrets`;
    for (let attempt = 0; attempt < 5; attempt++) {
      let secret: SecretObject | undefined;
      try {
        secret = await client.get<SecretObject>(`${path}/${secretName}`);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const data = secret?.data ?? {};
      const stored = {
        caCert: unb64(data['ca.crt']),
        caKey: unb64(data['ca.key']),
        previousCa: unb64(data['ca-previous.crt']),
        cert: unb64(data['tls.crt']),
        key: unb64(data['tls.key']),
      };
      const next = this.plan(stored, now);
      if (next.changed) {
        const body: SecretObject = {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: secretName, namespace, labels: { 'app.kubernetes.io/part-of': 'dbward' }, ...(secret?.metadata.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}) },
          type: 'kubernetes.io/tls',
          data: {
            'ca.crt': b64(next.ca.cert),
            'ca.key': b64(next.ca.key),
            'tls.crt': b64(next.leaf.cert),
            'tls.key': b64(next.leaf.key),
            ...(next.previousCa !== '' ? { 'ca-previous.crt': b64(next.previousCa) } : {}),
          },
        };
        try {
          if (secret === undefined) await client.create(path, body);
          else await client.replace(`${path}/${secretName}`, body);
        } catch (error) {
          // Another replica wrote first: use theirs.
          if (isConflict(error) || isAlreadyExists(error)) continue;
          throw error;
        }
      }
      const cert: ServingCertificate = {
        cert: next.leaf.cert,
        key: next.leaf.key,
        ca: next.ca.cert + (next.previousCa !== '' ? next.previousCa : ''),
        notAfter: new Date(new X509Certificate(next.leaf.cert).validTo),
      };
      const rotated = this.cert === undefined || this.cert.cert !== cert.cert || this.cert.ca !== cert.ca;
      this.cert = cert;
      if (rotated) for (const l of [...this.listeners]) l(cert);
      return cert;
    }
    throw new Error(`CertManager: Secret ${namespace}/${secretName} kept changing under us`);
  }

  private plan(stored: { caCert: string; caKey: string; previousCa: string; cert: string; key: string }, now: Date): { changed: boolean; ca: Issued; leaf: Issued; previousCa: string } {
    const renewBefore = (this.options.renewBeforeDays ?? 30) * DAY;
    const leafDays = this.options.leafValidityDays ?? 365;
    const caDays = this.options.caValidityDays ?? 3650;
    let changed = false;
    let ca: Issued = { cert: stored.caCert, key: stored.caKey };
    let previousCa = stored.previousCa !== '' && !expired(stored.previousCa, now, 0) ? stored.previousCa : '';
    if (previousCa !== stored.previousCa) changed = true;
    // The CA is renewed when a fresh leaf would outlive it.
    if (ca.cert === '' || expired(ca.cert, now, leafDays * DAY + renewBefore)) {
      if (ca.cert !== '' && !expired(ca.cert, now, 0)) previousCa = ca.cert;
      ca = issueCertificate({ commonName: 'dbward operator CA', organization: 'dbward', isCA: true, validityDays: caDays, notBefore: new Date(Date.now() - 300_000) });
      changed = true;
    }
    let leaf: Issued = { cert: stored.cert, key: stored.key };
    if (changed || leaf.cert === '' || expired(leaf.cert, now, renewBefore) || !issuedBy(leaf.cert, ca.cert) || !coversNames(leaf.cert, this.options.names)) {
      const dnsNames = this.options.names.filter((n) => isIP(n) === 0);
      const ipAddresses = this.options.names.filter((n) => isIP(n) !== 0);
      leaf = issueCertificate({ commonName: dnsNames[0] ?? ipAddresses[0] ?? 'dbward-operator', issuer: ca, dnsNames, ipAddresses, validityDays: leafDays, notBefore: new Date(Date.now() - 300_000) });
      changed = true;
    }
    return { changed, ca, leaf, previousCa };
  }
}

function expired(pem: string, now: Date, marginMs: number): boolean {
  try {
    return Date.parse(new X509Certificate(pem).validTo) - now.getTime() <= marginMs;
  } catch {
    return true;
  }
}

function issuedBy(leaf: string, ca: string): boolean {
  try {
    const l = new X509Certificate(leaf);
    const c = new X509Certificate(ca);
    return l.checkIssued(c) && l.verify(c.publicKey);
  } catch {
    return false;
  }
}

function coversNames(leaf: string, names: readonly string[]): boolean {
  try {
    const x = new X509Certificate(leaf);
    return names.every((n) => (isIP(n) !== 0 ? x.checkIP(n) !== undefined : x.checkHost(n) !== undefined));
  } catch {
    return false;
  }
}

/** Sets caBundle on every webhook of a MutatingWebhookConfiguration. NotFound is reported, not thrown (Helm may not have created it yet). */
export async function patchCaBundle(client: KubeClient, configurationName: string, caPem: string): Promise<'patched' | 'unchanged' | 'missing'> {
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    let config: { metadata: { resourceVersion: string }; webhooks?: { caBundle?: string; clientConfig: { caBundle?: string } }[] };
    try {
      config = await client.get(path);
    } catch (error) {
      if (isNotFound(error)) return 'missing';
      throw error;
    }
    const bundle = b64(caPem);
    const webhooks = config.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig.caBundle === bundle)) return 'unchanged';
    for (const w of webhooks) w.clientConfig.caBundle = bundle;
    try {
      await client.replace(path, config);
      return 'patched';
    } catch (error) {
      if (isConflict(error)) continue;
      throw error;
    }
  }
  throw new Error(`could not patch caBundle of ${configurationName}: kept conflicting`);
}
