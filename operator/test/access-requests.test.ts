import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessRequestSpec, AccessRequestStatus } from '@dbward/sidecar/api';
import { run, toolsBin, type KubeCluster } from '../../e2e/harness/index.js';
import { KubeAccessRequestStore } from '../src/kube/access-requests.js';
import type { KubeClient } from '../src/kube/rest.js';
import { eventually, startKubeWithCrds } from './support/kube.js';

// AccessRequests against a real kube-apiserver: the operator's store creates them and hears the
// decision; `kubectl dbward approve|deny` (the real kubectl running the kubectl-dbward plugin)
// decides as an RBAC-limited user, recorded from SelfSubjectReview; expiry; refusals.
let kube: KubeCluster;
let client: KubeClient;
let store: KubeAccessRequestStore;
let pluginDir: string;
const NS = 'shop';
const DBWARD = resolve('sidecar/dist/dbward.js');

const spec = (rule: string, expiresInMs = 600_000): AccessRequestSpec => ({
  policy: 'orders',
  rule,
  statement: 'DELETE FROM orders WHERE id = $1',
  identity: { user: 'app', database: 'orders', application: 'api', namespace: NS, serviceAccount: 'api', pod: 'api-1', labels: { app: 'api' } },
  requestedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  expiresAt: new Date(Date.now() + expiresInMs).toISOString().replace(/\.\d+Z$/, 'Z'),
});

/** `kubectl dbward ...` through kubectl's plugin mechanism, as `user`. */
const kubectlDbward = async (user: string, args: string[]) =>
  run(join(toolsBin(), 'kubectl'), ['dbward', ...args], {
    env: { KUBECONFIG: await kube.kubeconfigFor(user), PATH: `${pluginDir}:${process.env['PATH'] ?? ''}` },
    timeoutMs: 30_000,
  });

const decision = (name: string): Promise<AccessRequestStatus> => new Promise((ok) => store.onDecision(NS, name, ok));

beforeAll(async () => {
  ({ kube, client } = await startKubeWithCrds({ name: 'areq', users: [{ name: 'alice', groups: ['dba'] }, { name: 'bob' }] }));
  await kube.kubectlOk(['create', 'namespace', NS]);
  // What the chart's dbward-approver ClusterRole grants, bound to alice's group in the namespace.
  await kube.kubectlOk(['apply', '-f', 'charts/dbward/files/approver-clusterrole.yaml']);
  await kube.kubectlOk(['create', 'rolebinding', 'dba-approve', '-n', NS, '--clusterrole=dbward-approver', '--group=dba']);
  store = new KubeAccessRequestStore(client);
  pluginDir = await mkdtemp(join(tmpdir(), 'dbward-plugin-'));
  // What `npm install -g` makes of the kubectl-dbward bin: an executable on PATH.
  await writeFile(join(pluginDir, 'kubectl-dbward'), `#!/bin/sh\nexec "${process.execPath}" "${DBWARD}" "$@"\n`, { mode: 0o755 });
});

afterAll(async () => {
  await store?.stop();
  await kube?.stop();
  if (pluginDir) await rm(pluginDir, { recursive: true, force: true });
});

describe('kubectl dbward', () => {
  it('approve: the held statement hears Approved, decidedBy is the authenticated user', async () => {
    const name = await store.create(NS, spec('hold-deletes'));
    expect(name).toMatch(/^hold-deletes-[a-z0-9]{5}$/);
    const heard = decision(name);
    const list = await kubectlDbward('alice', ['list', '-n', NS]);
    expect(list.stdout).toMatch(new RegExp(`${name}\\s+Pending\\s+orders\\s+hold-deletes`));
    const r = await kubectlDbward('alice', ['approve', name, '-n', NS, '--reason', 'ticket 42']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`accessrequest ${NS}/${name} approved by alice`);
    const status = await heard;
    expect(status).toMatchObject({ phase: 'Approved', decidedBy: 'alice', reason: 'ticket 42' });
    expect(Date.now() - Date.parse(status.decidedAt ?? '')).toBeLessThan(60_000);
    const printed = await kube.kubectlOk(['get', 'areq', name, '-n', NS, '-o', 'wide']);
    expect(printed).toMatch(/Approved\s+orders\s+hold-deletes\s+alice/);
  });

  it('deny, then a second decision is refused', async () => {
    const name = await store.create(NS, spec('hold-deletes'));
    const heard = decision(name);
    expect((await kubectlDbward('alice', ['deny', name, '-n', NS])).code).toBe(0);
    expect(await heard).toMatchObject({ phase: 'Denied', decidedBy: 'alice' });
    const again = await kubectlDbward('alice', ['approve', name, '-n', NS]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already Denied \(by alice\)/);
  });

  it('a user without the approver role is refused and nothing changes', async () => {
    const name = await store.create(NS, spec('hold-deletes'));
    const r = await kubectlDbward('bob', ['approve', name, '-n', NS]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/forbidden/);
    const obj = await client.get<{ status?: { phase?: string } }>(`/apis/dbward.io/v1alpha1/namespaces/${NS}/accessrequests/${name}`);
    expect(obj.status?.phase ?? 'Pending').toBe('Pending');
  });

  it('unknown names and usage errors', async () => {
    const missing = await kubectlDbward('alice', ['approve', 'nope', '-n', NS]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found/);
    expect((await kubectlDbward('alice', ['approve'])).code).toBe(2);
  });
});

describe('expiry', () => {
  it('expire() marks a Pending request Expired, once; approving it afterwards is refused', async () => {
    const name = await store.create(NS, spec('hold-deletes'));
    const heard = decision(name);
    await store.expire(NS, name, 'client disconnected');
    expect(await heard).toMatchObject({ phase: 'Expired', decidedBy: 'dbward-operator', reason: 'client disconnected' });
    await store.expire(NS, name, 'again'); // no-op
    const obj = await client.get<{ status: { reason: string } }>(`/apis/dbward.io/v1alpha1/namespaces/${NS}/accessrequests/${name}`);
    expect(obj.status.reason).toBe('client disconnected');
    const r = await kubectlDbward('alice', ['approve', name, '-n', NS]);
    expect(r.stderr).toMatch(/already Expired/);
  });

  it('a request past its expiresAt cannot be approved even before the operator marks it', async () => {
    const name = await store.create(NS, spec('hold-deletes', 1_000));
    await new Promise((r) => setTimeout(r, 1_500));
    const r = await kubectlDbward('alice', ['approve', name, '-n', NS]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/expired at/);
  });

  it('onDecision for an already decided request fires at once', async () => {
    const name = await store.create(NS, spec('hold-deletes'));
    await store.expire(NS, name, 'timeout');
    await eventually('decided in cache', async () => ((await client.get<{ status?: { phase?: string } }>(`/apis/dbward.io/v1alpha1/namespaces/${NS}/accessrequests/${name}`)).status?.phase === 'Expired' ? true : undefined));
    expect((await decision(name)).phase).toBe('Expired');
  });
});
