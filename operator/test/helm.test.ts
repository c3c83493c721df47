import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, run, startKube, toolsBin, type KubeCluster, type RunResult } from '../../e2e/harness/index.js';
import { KubeClient, loadKubeConfig } from '../src/kube/rest.js';
import { startOperator } from '../src/operator.js';
import { eventually, testLogger } from './support/kube.js';

// charts/dbward: lint, rendered objects, and `helm install` into a real kube-apiserver; then the
// operator runs with the chart's ServiceAccount token, proving its least-privilege RBAC suffices.
let kube: KubeCluster;
let work: string;
let chart: string;
const NS = 'dbward-system';

const helm = (args: string[]): Promise<RunResult> =>
  run(join(toolsBin(), 'helm'), args, {
    env: { HELM_CACHE_HOME: join(work, 'cache'), HELM_CONFIG_HOME: join(work, 'config'), HELM_DATA_HOME: join(work, 'data'), KUBECONFIG: kube?.kubeconfig },
    timeoutMs: 60_000,
  });

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

let rendered: Obj[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dbward-helm-'));
  // A copy with a dashboard, as issue #5 will add one.
  chart = join(work, 'dbward');
  await cp('charts/dbward', chart, { recursive: true });
  await writeFile(join(chart, 'dashboards', 'dbward-sidecar.json'), JSON.stringify({ title: 'dbward sidecar', panels: [] }));
  kube = await startKube({ name: 'helm' });
  const r = await helm(['template', 'dbward', chart, '-n', NS]);
  expect(r.stderr).toBe('');
  rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean);
});

afterAll(async () => {
  await kube?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const one = (kind: string, name?: string): Obj => {
  const found = rendered.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found === undefined) throw new Error(`no ${kind} ${name ?? ''}`);
  return found;
};

describe('chart', () => {
  it('lints', async () => {
    const r = await helm(['lint', 'charts/dbward']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0 chart\(s\) failed/);
  });

  it('renders the operator objects', () => {
    expect(rendered.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/dbward-approver',
      'ClusterRole/dbward-operator',
      'ClusterRoleBinding/dbward-operator',
      'ConfigMap/dbward-dashboard-dbward-sidecar',
      'Deployment/dbward-operator',
      'MutatingWebhookConfiguration/dbward-sidecar-injector',
      'PodDisruptionBudget/dbward-operator',
      'Role/dbward-operator',
      'RoleBinding/dbward-operator',
      'Service/dbward-operator',
      'ServiceAccount/dbward-operator',
    ]);
  });

  it('runs the operator non-root, read-only, with resources and probes', () => {
    const spec = (one('Deployment') as unknown as { spec: { template: { spec: { securityContext: Record<string, unknown>; containers: Record<string, unknown>[] } } } }).spec.template.spec;
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
    const c = spec.containers[0] ?? {};
    expect(c['securityContext']).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c['resources']).toMatchObject({ requests: { cpu: '100m', memory: '128Mi' } });
    expect(c['readinessProbe']).toMatchObject({ httpGet: { path: '/readyz', scheme: 'HTTPS' } });
    expect((c['args'] as string[]).join(' ')).toMatch(/--sidecar-image=ghcr\.io\/dbward\/sidecar:0\.1\.0/);
  });

  it('configures the webhook: enabled namespaces, opt-out label, IfNeeded, no side effects, Fail', () => {
    const w = (one('MutatingWebhookConfiguration') as unknown as { webhooks: Record<string, unknown>[] }).webhooks[0] ?? {};
    expect(w).toMatchObject({
      sideEffects: 'None',
      failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded',
      clientConfig: { service: { name: 'dbward-operator', namespace: NS, path: '/mutate-pods', port: 443 } },
      namespaceSelector: { matchLabels: { 'dbward.io/injection': 'enabled' } },
      objectSelector: { matchExpressions: [{ key: 'dbward.io/inject', operator: 'NotIn', values: ['false'] }] },
    });
    expect(JSON.stringify(w['namespaceSelector'])).toContain(NS);
    expect(w['clientConfig']).not.toHaveProperty('caBundle');
  });

  it('grants least privilege: no wildcards, Secrets only in its own namespace', () => {
    const rules = (kind: string): { resources: string[]; verbs: string[]; resourceNames?: string[] }[] => (one(kind, 'dbward-operator') as unknown as { rules: never[] }).rules;
    for (const r of [...rules('ClusterRole'), ...rules('Role')]) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      expect(r.verbs).not.toContain('delete');
    }
    expect(rules('ClusterRole').some((r) => r.resources.includes('secrets'))).toBe(false);
    expect(rules('Role').find((r) => r.resources.includes('secrets') && r.verbs.includes('get'))?.resourceNames).toEqual(['dbward-operator-tls']);
  });

  it('ships one ConfigMap per dashboard, labelled for Grafana', () => {
    const cm = one('ConfigMap', 'dbward-dashboard-dbward-sidecar') as Obj & { data: Record<string, string> };
    expect(cm.metadata.labels?.['grafana_dashboard']).toBe('1');
    expect(JSON.parse(cm.data['dbward-sidecar.json'] ?? '{}')).toMatchObject({ title: 'dbward sidecar' });
  });
});

describe('helm install into a real API server', () => {
  it('creates the CRDs and objects; the operator works with exactly the chart RBAC', async () => {
    const r = await helm(['install', 'dbward', chart, '-n', NS, '--create-namespace']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const name of ['crd/dataaccesspolicies.dbward.io', 'crd/accessrequests.dbward.io', 'mutatingwebhookconfiguration/dbward-sidecar-injector', 'clusterrole/dbward-operator', 'clusterrole/dbward-approver']) {
      await kube.kubectlOk(['get', name]);
    }
    for (const name of ['deployment/dbward-operator', 'service/dbward-operator', 'serviceaccount/dbward-operator', 'role/dbward-operator', 'configmap/dbward-dashboard-dbward-sidecar']) {
      await kube.kubectlOk(['get', name, '-n', NS]);
    }
    // Run the operator as the chart's ServiceAccount.
    const token = (await kube.kubectlOk(['create', 'token', 'dbward-operator', '-n', NS, '--duration=1h'])).trim();
    const kubeconfig = join(work, 'operator.kubeconfig');
    await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${kube.server}", certificate-authority: "${kube.caFile}"}}]\nusers: [{name: sa, user: {token: "${token}"}}]\ncontexts: [{name: c, context: {cluster: c, user: sa}}]\ncurrent-context: c\n`);
    await kube.kubectlOk(['create', 'namespace', 'shop']);
    await kube.kubectlOk(['label', 'namespace', 'shop', 'dbward.io/injection=enabled']);
    const log = testLogger('chart-sa');
    const op = await startOperator({ kubeconfig, namespace: NS, webhookHost: '127.0.0.1', webhookPort: await freePort(), inject: { image: 'x', controlPlane: 'y:1' }, log, leaseDurationSeconds: 3, renewMs: 500, retryMs: 300 });
    try {
      await kube.kubectlOk(['apply', '-f', '-'], { input: 'apiVersion: dbward.io/v1alpha1\nkind: DataAccessPolicy\nmetadata: {name: p, namespace: shop}\nspec: {}\n' });
      await eventually('Ready written by the SA', async () => ((await kube.kubectlOk(['get', 'dap', 'p', '-n', 'shop', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True' ? true : undefined));
      const admin = new KubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfig }));
      const config = await admin.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dbward-sidecar-injector');
      expect(Buffer.from(config.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString()).toBe(op.certs.current().ca);
      await eventually('dbward-ca in shop', () => admin.get('/api/v1/namespaces/shop/configmaps/dbward-ca'));
      const name = await op.accessRequests.create('shop', { policy: 'p', rule: 'r', statement: 'DELETE', identity: { user: '', database: '', application: '', namespace: 'shop', serviceAccount: '', pod: '', labels: {} }, requestedAt: '2026-01-01T00:00:00Z' });
      await op.accessRequests.expire('shop', name, 'test');
      expect(log.lines.filter((l) => / (warn|error) /.test(l) && /403|forbidden/i.test(l))).toEqual([]);
      admin.close();
    } finally {
      await op.stop();
    }
    const un = await helm(['uninstall', 'dbward', '-n', NS]);
    expect(un.code).toBe(0);
  });
});
