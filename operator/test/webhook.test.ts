import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type KubeCluster } from '../../e2e/harness/index.js';
import { ControlPlaneAuthError } from '../src/controlplane/ports.js';
import type { KubeClient } from '../src/kube/rest.js';
import { startOperator, type OperatorHandle } from '../src/operator.js';
import { eventually, injectorWebhookYaml, startKubeWithCrds, testLogger } from './support/kube.js';

// The injection webhook called by a real kube-apiserver over TLS (clientConfig.url), with the
// operator's own CA in caBundle; reinvocation through a second webhook that edits the pod;
// opt-out; non-enabled namespaces; certificate rotation; TokenReview and pod lookups.
let kube: KubeCluster;
let client: KubeClient;
let op: OperatorHandle;
let touchServer: Server;
const log = testLogger('operator');

const webhookConfig = (port: number, touchPort: number): string =>
  injectorWebhookYaml(
    port,
    `- name: touch.test.dbward.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig: {url: "https://127.0.0.1:${touchPort}/touch"}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods], scope: Namespaced}]
  namespaceSelector: {matchLabels: {dbward.io/injection: enabled}}
`,
  );

const pod = (name: string, ns: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels: {app: api}
${extra}
spec:
  serviceAccountName: api
  containers:
  - name: app
    image: shop/api:1
    env:
    - {name: DATABASE_URL, value: "postgres://shop:pw@orders-db:5432/orders?sslmode=require"}
`;

interface PodObject {
  metadata: { name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { initContainers?: { name: string; restartPolicy?: string; env?: { name: string; value?: string }[] }[]; containers: { name: string; env?: { name: string; value?: string }[] }[]; volumes?: { name: string }[] };
}
const getPod = (ns: string, name: string): Promise<PodObject> => client.get<PodObject>(`/api/v1/namespaces/${ns}/pods/${name}`);
const admissionsFor = (name: string): number => log.lines.filter((l) => l.includes(' admission ') && l.includes(`"pod":"${name}"`)).length;

beforeAll(async () => {
  ({ kube, client } = await startKubeWithCrds({ name: 'webhook' }));
  await kube.kubectlOk(['create', 'namespace', 'dbward-system']);
  await kube.kubectlOk(['create', 'namespace', 'shop']);
  await kube.kubectlOk(['label', 'namespace', 'shop', 'dbward.io/injection=enabled']);
  await kube.kubectlOk(['create', 'namespace', 'plain']);
  for (const ns of ['shop', 'plain']) await kube.kubectlOk(['create', 'serviceaccount', 'api', '-n', ns]);
  const [port, touchPort] = [await freePort(), await freePort()];
  await kube.kubectlOk(['apply', '-f', '-'], { input: webhookConfig(port, touchPort) });
  op = await startOperator({
    kubeconfig: kube.kubeconfig,
    namespace: 'dbward-system',
    identity: 'op-1',
    leaseDurationSeconds: 3,
    renewMs: 500,
    retryMs: 300,
    webhookHost: '127.0.0.1',
    webhookPort: port,
    extraCertNames: ['127.0.0.1'],
    inject: { image: 'dbward/sidecar:test', controlPlane: 'dbward-operator.dbward-system.svc:9443' },
    log,
  });
  // A second webhook that adds a label: the API server then reinvokes ours (reinvocationPolicy IfNeeded).
  const { cert, key } = op.certs.current();
  touchServer = createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as { request: { uid: string; object: { metadata: { labels?: Record<string, string> } } } };
      const has = review.request.object.metadata.labels?.['touched'] === 'yes';
      const patch = has ? [] : [{ op: 'add', path: '/metadata/labels/touched', value: 'yes' }];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}) } }));
    });
  });
  await new Promise<void>((r) => touchServer.listen(touchPort, '127.0.0.1', r));
  await kube.kubectlOk(['apply', '-f', '-'], {
    input: `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: {name: orders, namespace: shop}
spec:
  workloadSelector: {matchLabels: {app: api}}
  upstream: {host: orders-db, sslmode: require}
  listen: {envVar: DATABASE_URL}
`,
  });
  await eventually('policy Ready in the source', () => (op.policySource.list('shop').length === 1 ? true : undefined));
});

afterAll(async () => {
  touchServer?.close();
  await op?.stop();
  await kube?.stop();
});

describe('webhook TLS', () => {
  it('the operator wrote its CA into the configuration caBundle and the dbward-ca ConfigMap of enabled namespaces only', async () => {
    const config = await client.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dbward-sidecar-injector');
    const ca = op.certs.current().ca;
    for (const w of config.webhooks) expect(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString()).toBe(ca);
    const cm = await eventually('dbward-ca in shop', () => client.get<{ data: Record<string, string> }>('/api/v1/namespaces/shop/configmaps/dbward-ca'));
    expect(cm.data['ca.crt']).toBe(ca);
    await expect(client.get('/api/v1/namespaces/plain/configmaps/dbward-ca')).rejects.toMatchObject({ status: 404 });
    const secret = await client.get<{ type: string; data: Record<string, string> }>('/api/v1/namespaces/dbward-system/secrets/dbward-operator-tls');
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  });
});

describe('injection through the API server', () => {
  it('a pod in an enabled namespace is stored with the native sidecar, once, despite reinvocation', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-1', 'shop') });
    const stored = await getPod('shop', 'api-1');
    const sidecars = (stored.spec.initContainers ?? []).filter((c) => c.name === 'dbward-sidecar');
    expect(sidecars).toHaveLength(1);
    expect(stored.spec.initContainers?.[0]?.name).toBe('dbward-sidecar');
    expect(stored.spec.initContainers?.[0]?.restartPolicy).toBe('Always');
    expect(stored.spec.containers[0]?.env?.find((e) => e.name === 'DATABASE_URL')?.value).toBe('postgres://shop:pw@127.0.0.1:6432/orders?sslmode=disable');
    expect(stored.spec.volumes?.map((v) => v.name)).toEqual(expect.arrayContaining(['dbward-token', 'dbward-ca', 'dbward-podinfo', 'dbward-cache']));
    expect(JSON.parse(stored.metadata.annotations?.['dbward.io/status'] ?? '{}')).toMatchObject({ policies: ['orders'] });
    // The second webhook changed the pod after ours, so ours ran again and added nothing.
    expect(stored.metadata.labels?.['touched']).toBe('yes');
    expect(admissionsFor('api-1')).toBeGreaterThanOrEqual(2);
  });

  it('a pod without a service account is still valid (the token volume needs one)', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-nosa', 'shop').replace('  serviceAccountName: api\n', '') });
    const stored = (await getPod('shop', 'api-nosa')) as PodObject & { spec: { serviceAccountName?: string } };
    expect(stored.spec.initContainers?.[0]?.name).toBe('dbward-sidecar');
    expect(stored.spec.serviceAccountName).toBe('default');
  });

  it('opt-out by annotation and by label', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-optout', 'shop', '  annotations: {dbward.io/inject: "false"}') });
    expect((await getPod('shop', 'api-optout')).spec.initContainers).toBeUndefined();
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-optout-label', 'shop').replace('labels: {app: api}', 'labels: {app: api, dbward.io/inject: "false"}') });
    expect((await getPod('shop', 'api-optout-label')).spec.initContainers).toBeUndefined();
    expect(admissionsFor('api-optout-label')).toBe(0); // objectSelector: never called
  });

  it('a pod in a namespace without the label is untouched (the webhook is not even called)', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-plain', 'plain') });
    const stored = await getPod('plain', 'api-plain');
    expect(stored.spec.initContainers).toBeUndefined();
    expect(stored.spec.containers[0]?.env?.[0]?.value).toMatch(/orders-db:5432/);
    expect(admissionsFor('api-plain')).toBe(0);
  });

  it('after a certificate rotation the new chain is served and admission keeps working', async () => {
    const before = op.certs.current();
    const rotated = await op.certs.ensure(new Date(Date.now() + 340 * 86_400_000)); // inside the 30-day renewal window
    expect(rotated.cert).not.toBe(before.cert);
    expect(rotated.ca).toBe(before.ca);
    const served = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: op.webhook.port, ca: rotated.ca, servername: 'localhost', checkServerIdentity: () => undefined }, () => {
        resolve(s.getPeerX509Certificate()?.serialNumber ?? '');
        s.end();
      });
      s.on('error', reject);
    });
    expect(served).toBe(new X509Certificate(rotated.cert).serialNumber);
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-2', 'shop') });
    expect((await getPod('shop', 'api-2')).spec.initContainers?.[0]?.name).toBe('dbward-sidecar');
  });
});

describe('CA rotation', () => {
  it('a CA near its end is replaced; the bundle keeps the old CA; caBundle and dbward-ca follow; admission keeps working', async () => {
    const before = op.certs.current();
    const rotated = await op.certs.ensure(new Date(Date.now() + 9.5 * 365 * 86_400_000));
    expect(rotated.ca.startsWith(before.ca)).toBe(false);
    expect(rotated.ca.endsWith(before.ca.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n')).toBe(true);
    await eventually('caBundle updated', async () => {
      const config = await client.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dbward-sidecar-injector');
      return config.webhooks.every((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString() === rotated.ca) ? true : undefined;
    });
    await eventually('dbward-ca updated', async () => ((await client.get<{ data: Record<string, string> }>('/api/v1/namespaces/shop/configmaps/dbward-ca')).data['ca.crt'] === rotated.ca ? true : undefined));
    await kube.kubectlOk(['apply', '-f', '-'], { input: pod('api-3', 'shop') });
    expect((await getPod('shop', 'api-3')).spec.initContainers?.[0]?.name).toBe('dbward-sidecar');
  });
});

describe('TokenVerifier and PodLookup', () => {
  const tokenFor = async (podName: string, audience: string): Promise<string> => {
    const p = await getPod('shop', podName);
    const r = await client.create<{ status: { token: string } }>('/api/v1/namespaces/shop/serviceaccounts/api/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: podName, uid: p.metadata.uid } },
    });
    return r.status.token;
  };

  it('resolves a pod-bound projected token for the dbward-controlplane audience', async () => {
    const p = await getPod('shop', 'api-1');
    const identity = await op.tokenVerifier.verify(await tokenFor('api-1', 'dbward-controlplane'));
    expect(identity).toEqual({ namespace: 'shop', serviceAccount: 'api', pod: 'api-1', podUid: p.metadata.uid });
  });

  it('refuses a token for another audience, and garbage', async () => {
    await expect(op.tokenVerifier.verify(await tokenFor('api-1', 'something-else'))).rejects.toBeInstanceOf(ControlPlaneAuthError);
    await expect(op.tokenVerifier.verify('not-a-token')).rejects.toBeInstanceOf(ControlPlaneAuthError);
  });

  it('looks up the labels the API server holds', async () => {
    expect(await op.podLookup.labels('shop', 'api-1')).toMatchObject({ app: 'api', touched: 'yes' });
    expect(await op.podLookup.labels('shop', 'nope')).toBeUndefined();
  });
});
