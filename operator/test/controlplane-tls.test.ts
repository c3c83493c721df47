import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataAccessPolicyInput } from '@dbward/sidecar/api';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeCertificates, type Certificates } from '../../e2e/harness/index.js';
import { ControlPlaneClient } from '../../sidecar/src/controlplane/client.js';
import { startSidecar } from '../../sidecar/test/support/sidecar.js';
import { ControlPlaneConfigError, memoryPorts, startControlPlane, type ControlPlane } from '../src/controlplane/index.js';

/**
 * The control plane over TLS with the sidecar's client in process (no PostgreSQL needed): the CA
 * check, token rotation (the token file is re-read on each connect), an unknown pod, a deleted
 * policy, and the refusal to serve plaintext off loopback.
 */

const NS = 'shop';
let certs: Certificates;
let dir: string;
let cp: ControlPlane;
let port: number;
const ports = memoryPorts();
const clients: ControlPlaneClient[] = [];

const POLICY: DataAccessPolicyInput = {
  apiVersion: 'dbward.io/v1alpha1',
  kind: 'DataAccessPolicy',
  metadata: { name: 'checkout', namespace: NS },
  spec: { workloadSelector: { matchLabels: { app: 'checkout' } } },
} as DataAccessPolicyInput;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbward-cp-tls-'));
  certs = await makeCertificates(join(dir, 'certs'));
  port = await freePort();
  cp = await startControlPlane({ address: `127.0.0.1:${port}`, ports, tls: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) } });
  ports.policies.apply(POLICY);
});

afterAll(async () => {
  for (const client of clients) await client.close();
  await cp?.close();
});

function client(pod: string, options: { ca?: Buffer; tokenFile?: string } = {}): { client: ControlPlaneClient; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  let tokenFile = options.tokenFile;
  if (tokenFile === undefined) {
    tokenFile = join(dir, `${pod}.token`);
    writeFileSync(tokenFile, ports.tokens.issue({ namespace: NS, serviceAccount: 'checkout', pod, podUid: `uid-${pod}` }));
  }
  const c = new ControlPlaneClient({
    target: `localhost:${port}`,
    tokenFile,
    ca: options.ca ?? readFileSync(certs.caCert),
    cacheDir: undefined,
    sidecarVersion: 'test',
    hints: { node: '', pod, namespace: NS },
    log,
    backoff: { initialMs: 50, maxMs: 200, factor: 2 },
  });
  clients.push(c);
  c.start();
  return { client: c, logs };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('control plane over TLS', () => {
  it('delivers over TLS to a sidecar that trusts the CA, with the verified identity', async () => {
    ports.pods.set(NS, 'tls-1', { app: 'checkout' });
    const { client: c } = client('tls-1');
    const inForce = await until('a policy', () => c.inForce);
    expect(inForce.source).toBe('control-plane');
    expect(inForce.set?.policies).toEqual(['shop/checkout']);
    expect(inForce.identity).toEqual({ namespace: NS, serviceAccount: 'checkout', pod: 'tls-1', podUid: 'uid-tls-1', labels: { app: 'checkout' } });
    await until('the ACK', () => cp.sidecars().find((s) => s.pod === 'tls-1' && s.ackedVersion === inForce.version));
  });

  it('a relabelled pod gets the policies of its new labels without reconnecting', async () => {
    const opened = cp.metrics.streamsOpened;
    ports.pods.set(NS, 'tls-1', { app: 'other' });
    const c = clients[0]!;
    await until('the empty snapshot', () => (c.inForce?.version === 'empty' ? true : undefined));
    expect(c.inForce?.identity.labels).toEqual({ app: 'other' });
    ports.pods.set(NS, 'tls-1', { app: 'checkout' });
    await until('the policy again', () => c.current);
    expect(c.inForce?.identity.labels).toEqual({ app: 'checkout' });
    expect(cp.metrics.streamsOpened).toBe(opened);
  });

  it('a sidecar with another CA does not connect and gets no policy', async () => {
    const other = await makeCertificates(join(dir, 'other-ca'));
    ports.pods.set(NS, 'tls-2', { app: 'checkout' });
    const { client: c, logs } = client('tls-2', { ca: readFileSync(other.caCert) });
    await until('a failed attempt', () => logs.find((l) => l.msg === 'control plane stream ended; reconnecting' && l.code === 'UNAVAILABLE'));
    expect(c.current).toBeUndefined();
    expect(c.notReadyReason).toMatch(/no policy loaded/);
    expect(cp.sidecars().some((s) => s.pod === 'tls-2')).toBe(false);
  });

  it('re-reads the token file on each connect (projected tokens rotate)', async () => {
    ports.pods.set(NS, 'tls-3', { app: 'checkout' });
    const tokenFile = join(dir, 'rotating.token');
    const first = ports.tokens.issue({ namespace: NS, serviceAccount: 'checkout', pod: 'tls-3', podUid: 'u3' });
    writeFileSync(tokenFile, first);
    const { client: c } = client('tls-3', { tokenFile });
    await until('a policy', () => c.current);
    const second = ports.tokens.issue({ namespace: NS, serviceAccount: 'checkout', pod: 'tls-3', podUid: 'u3' });
    writeFileSync(tokenFile, second);
    ports.tokens.revoke(first);
    // Drop the stream: the pod is deleted and comes back (the sidecar reconnects with the new token).
    ports.pods.delete(NS, 'tls-3');
    const restarted = await restartControlPlane();
    ports.pods.set(NS, 'tls-3', { app: 'checkout' });
    await until('the new token', () => (ports.tokens.calls.includes(second) ? true : undefined));
    await until('subscribed again', () => restarted.sidecars().find((s) => s.pod === 'tls-3' && s.ackedVersion !== undefined));
  });

  it('an unknown pod is refused (PERMISSION_DENIED)', async () => {
    const { client: c, logs } = client('ghost');
    const line = await until('the refusal', () => logs.find((l) => l.code === 'PERMISSION_DENIED'));
    expect(line.details).toBe('pod shop/ghost not found');
    expect(c.current).toBeUndefined();
  });

  it('deleting the only policy: an empty snapshot, nothing in force, not ready', async () => {
    ports.pods.set(NS, 'tls-4', { app: 'checkout' });
    const { client: c } = client('tls-4');
    await until('a policy', () => c.current);
    ports.policies.delete(NS, 'checkout');
    await until('the empty snapshot', () => (c.inForce?.version === 'empty' ? true : undefined));
    expect(c.current).toBeUndefined();
    expect(c.notReadyReason).toBe('no DataAccessPolicy selects this pod');
    ports.policies.apply(POLICY);
    await until('the policy again', () => c.current);
  });

  it('the built sidecar subscribes over TLS with --control-plane-ca-file', async () => {
    ports.pods.set(NS, 'tls-cli', { app: 'checkout' });
    const tokenFile = join(dir, 'cli.token');
    writeFileSync(tokenFile, ports.tokens.issue({ namespace: NS, serviceAccount: 'checkout', pod: 'tls-cli', podUid: 'u-cli' }));
    const sidecar = await startSidecar({
      // Never connected to in this test: the sidecar dials upstream per client connection.
      upstream: `postgres://app@127.0.0.1:${await freePort()}/app?sslmode=disable`,
      args: ['--control-plane', `localhost:${port}`, '--control-plane-token-file', tokenFile, '--control-plane-ca-file', certs.caCert],
      name: 'sidecar-tls',
    });
    try {
      const loaded = await until('policy loaded', () => sidecar.logs().find((l) => l.msg === 'policy loaded'));
      expect(loaded).toMatchObject({ source: 'control-plane', policies: ['shop/checkout'], identity: { namespace: NS, pod: 'tls-cli', serviceAccount: 'checkout' } });
      await until('the ACK', () => cp.sidecars().find((s) => s.pod === 'tls-cli' && s.ackedVersion === loaded.policyVersion));
    } finally {
      await sidecar.stop();
    }
  });

  it('refuses to serve plaintext off loopback', async () => {
    await expect(startControlPlane({ address: '0.0.0.0:0', ports })).rejects.toThrow(ControlPlaneConfigError);
    await expect(startControlPlane({ address: '0.0.0.0:0', ports })).rejects.toThrow(/plaintext is allowed on loopback only/);
  });
});

async function restartControlPlane(): Promise<ControlPlane> {
  await cp.close(1_000);
  cp = await startControlPlane({ address: `127.0.0.1:${port}`, ports, tls: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) } });
  return cp;
}
