import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_USER, freePort, run, spawnProcess, startPostgres, toolsBin, type KubeCluster, type ManagedProcess, type PgCluster } from '../../e2e/harness/index.js';
import type { OperatorHandle } from '../src/operator.js';
import { startOperator } from '../src/operator.js';
import type { KubeClient } from '../src/kube/rest.js';
import { CA_CONFIGMAP, CA_CONFIGMAP_KEY, CONTROL_PLANE_AUDIENCE, PATHS, SIDECAR_NAME } from '../src/webhook/inject.js';
import { labelsFile, localEnv } from '../src/webhook/local.js';
import { eventually, injectorWebhookYaml, startKubeWithCrds, testLogger } from './support/kube.js';

/**
 * Issue #6 end to end, against a real kube-apiserver + etcd and a real PostgreSQL:
 *
 *   kubectl apply (CRDs, policy) → operator (in process: controller, webhook, gRPC control plane)
 *   → a pod created through the API server is stored with the injected sidecar
 *   → that pod spec is launched as local processes, the way the kubelet would: the built sidecar
 *     with the injected env, a projected token from the TokenRequest API bound to the pod, the CA
 *     from the dbward-ca ConfigMap, the downward-API labels file, an emptyDir-like cache dir
 *   → the app's rewritten DATABASE_URL (psql, node-postgres) is masked by the policy delivered over
 *     gRPC; a `kubectl apply` of an edited policy changes behaviour within 2 s on the same backend
 *     connection; `requireApproval` creates an AccessRequest that `kubectl dbward approve|deny`
 *     decides (as an RBAC-limited user), and the held statement runs (or fails with 42501).
 *
 * The one departure from a cluster: there is no cluster DNS here, so the sidecar dials the control
 * plane at 127.0.0.1:<port> instead of the injected dbward-operator.dbward-system.svc:<port>
 * (the serving certificate carries 127.0.0.1 as an extra SAN for that). Everything else is the
 * injected spec as stored by the API server.
 */

const NS = 'shop';
const OP_NS = 'dbward-system';
const POD = 'api-1';
const DBWARD = resolve('sidecar/dist/dbward.js');
const log = testLogger('operator');

const CUSTOMERS = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@analytical.example' },
  { id: 2, name: 'Grace Hopper', email: 'grace@cobol.example' },
  { id: 3, name: 'Alan Turing', email: 'alan@bletchley.example' },
  { id: 4, name: 'Edsger Dijkstra', email: 'edsger@shortest.example' },
];

let db: PgCluster;
let kube: KubeCluster;
let client: KubeClient;
let op: OperatorHandle | undefined;
let dir: string;
let pluginDir: string;
let sidecar: ManagedProcess | undefined;
let conn: pg.Client | undefined;
let listenPort: number;
let adminPort: number;
let cpPort: number;
let storedPod: V1Pod;
let databaseUrl: string;
let sidecarEnv: Record<string, string | undefined>;

const webhookConfig = (port: number): string => injectorWebhookYaml(port);

/** The policy; `revealForApi` is the edit made with kubectl apply. */
const policyYaml = (revealForApi: boolean): string => `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: {name: orders, namespace: ${NS}}
spec:
  workloadSelector: {matchLabels: {app: api}}
  upstream: {host: 127.0.0.1, port: ${db.port}, sslmode: disable, credentialsSecretRef: {name: orders-db}}
  listen: {port: ${listenPort}, envVar: DATABASE_URL}
  masking:
    rules:
${revealForApi ? `    - name: api-reveals
      when: 'identity.serviceAccount == "api" && identity.labels["app"] == "api"'
      action: reveal
` : ''}    - name: emails-keep-domain
      when: '"email" in column.classes'
      action: mask
      mask: email
  guardrails:
  - name: hold-deletes
    when: 'query.command == "DELETE"'
    action: requireApproval
  approvals: {timeout: 2m}
`;

const podYaml = `apiVersion: v1
kind: Pod
metadata:
  name: ${POD}
  namespace: ${NS}
  labels: {app: api, tier: backend}
spec:
  serviceAccountName: api
  containers:
  - name: app
    image: shop/api:1
    env:
    - {name: DATABASE_URL, value: "postgres://app@orders-db.data:5432/app?sslmode=require"}
`;

/**
 * The PATCH of the policy in `kubectl -v=6` output (klog, TZ=UTC): when it ended and how long it
 * took. Both the classic (`PATCH https://... 200 OK in 5 milliseconds`) and the structured
 * (`"Response" verb="PATCH" url="https://..." status="200 OK" milliseconds=5`) formats.
 */
function patchTiming(stderr: string): { endedAt: number; tookMs: number } | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.includes('PATCH') || !/dataaccesspolicies\/orders\b/.test(line)) continue;
    const head = /^I(\d\d)(\d\d) (\d\d:\d\d:\d\d\.\d+)/.exec(line);
    const took = /(\d+) milliseconds/.exec(line) ?? /milliseconds=(\d+)/.exec(line);
    if (head === null || took === null) continue;
    const [, month, day, clock] = head;
    return { endedAt: Date.parse(`${new Date().getUTCFullYear()}-${month}-${day}T${clock!.slice(0, 12)}Z`), tookMs: Number(took[1]) };
  }
  return undefined;
}

/** `kubectl dbward ...` through kubectl's plugin mechanism, as `user`. */
const kubectlDbward = async (user: string, args: string[]) =>
  run(join(toolsBin(), 'kubectl'), ['dbward', ...args], {
    env: { KUBECONFIG: await kube.kubeconfigFor(user), PATH: `${pluginDir}:${process.env['PATH'] ?? ''}` },
    timeoutMs: 30_000,
  });

const psql = (sql: string) => run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', databaseUrl, '-c', sql], { env: { PGPASSWORD: undefined, PGSERVICEFILE: undefined }, timeoutMs: 30_000 });

beforeAll(async () => {
  db = await startPostgres({ auth: 'scram-sha-256' });
  await db.sql(
    `create table customers (id int primary key, full_name text, email text);
     insert into customers values ${CUSTOMERS.map((c) => `(${c.id}, '${c.name}', '${c.email}')`).join(', ')};`,
    { database: 'app', user: 'app' },
  );
  dir = await mkdtemp(join(tmpdir(), 'dbward-e2e-k8s-'));
  pluginDir = join(dir, 'plugins');
  await mkdir(pluginDir);
  // What `npm install -g` makes of the kubectl-dbward bin: an executable on PATH.
  await writeFile(join(pluginDir, 'kubectl-dbward'), `#!/bin/sh\nexec "${process.execPath}" "${DBWARD}" "$@"\n`, { mode: 0o755 });

  ({ kube, client } = await startKubeWithCrds({ name: 'e2e', users: [{ name: 'alice', groups: ['dba'] }] }));
  await kube.kubectlOk(['create', 'namespace', OP_NS]);
  await kube.kubectlOk(['create', 'namespace', NS]);
  await kube.kubectlOk(['label', 'namespace', NS, 'dbward.io/injection=enabled']);
  await kube.kubectlOk(['create', 'serviceaccount', 'api', '-n', NS]);
  // The database credentials, mounted only into the sidecar.
  await kube.kubectlOk(['create', 'secret', 'generic', 'orders-db', '-n', NS, `--from-literal=username=${APP_USER.user}`, `--from-literal=password=${APP_USER.password}`]);
  // What the chart's dbward-approver ClusterRole grants, bound to alice's group in the namespace.
  await kube.kubectlOk(['apply', '-f', 'charts/dbward/files/approver-clusterrole.yaml']);
  await kube.kubectlOk(['create', 'rolebinding', 'dba-approve', '-n', NS, '--clusterrole=dbward-approver', '--group=dba']);

  const webhookPort = await freePort();
  [listenPort, adminPort, cpPort] = [await freePort(), await freePort(), await freePort()];
  await kube.kubectlOk(['apply', '-f', '-'], { input: webhookConfig(webhookPort) });
  op = await startOperator({
    kubeconfig: kube.kubeconfig,
    namespace: OP_NS,
    identity: 'op-e2e',
    leaseDurationSeconds: 5,
    renewMs: 1_000,
    retryMs: 500,
    webhookHost: '127.0.0.1',
    webhookPort,
    // The API server calls the webhook, and the local sidecar dials the control plane, at 127.0.0.1.
    extraCertNames: ['127.0.0.1'],
    controlPlane: { host: '127.0.0.1', port: cpPort },
    inject: { image: 'dbward/sidecar:test', controlPlane: `dbward-operator.${OP_NS}.svc:${cpPort}`, adminPort },
    log,
  });
}, 180_000);

afterAll(async () => {
  await conn?.end().catch(() => undefined);
  await sidecar?.kill();
  await op?.stop();
  await kube?.stop();
  await db?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('issue 6 end to end on a real kube-apiserver', () => {
  it('kubectl apply of a policy with masking and a requireApproval guardrail gives Ready', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: policyYaml(false) });
    const ready = await eventually('policy Ready', async () => {
      const out = await kube.kubectlOk(['get', 'dap', 'orders', '-n', NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return out === 'True' ? out : undefined;
    });
    expect(ready).toBe('True');
    expect(op?.policySource.list(NS).map((p) => p.policy.metadata.name)).toEqual(['orders']);
  });

  it('a pod created through the API server is stored with the injected sidecar', async () => {
    await kube.kubectlOk(['apply', '-f', '-'], { input: podYaml });
    storedPod = await client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${POD}`);
    const sidecarSpec = storedPod.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
    expect(sidecarSpec?.restartPolicy).toBe('Always');
    const env = Object.fromEntries((sidecarSpec?.env ?? []).map((e) => [e.name, e.value]));
    expect(env['DBWARD_CONTROL_PLANE']).toBe(`dbward-operator.${OP_NS}.svc:${cpPort}`);
    const tokenVolume = storedPod.spec?.volumes?.find((v) => v.projected !== undefined);
    expect(tokenVolume?.projected?.sources?.[0]?.serviceAccountToken?.audience).toBe(CONTROL_PLANE_AUDIENCE);
    const app = storedPod.spec?.containers.find((c) => c.name === 'app');
    expect(app?.env?.find((e) => e.name === 'DATABASE_URL')?.value).toBe(`postgres://app@127.0.0.1:${listenPort}/app?sslmode=disable`);
  });

  it('the pod spec runs as local processes; the client is masked by the policy delivered over gRPC', async () => {
    const sidecarSpec = storedPod.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
    const appSpec = storedPod.spec?.containers.find((c) => c.name === 'app');
    if (sidecarSpec === undefined || appSpec === undefined) throw new Error('not injected');

    // The volumes, as the kubelet would fill them.
    const vol = { token: join(dir, 'token'), ca: join(dir, 'ca'), podinfo: join(dir, 'podinfo'), cache: join(dir, 'cache') };
    for (const d of Object.values(vol)) await mkdir(d, { recursive: true });
    const tokenRequest = await client.create<{ status: { token: string } }>(`/api/v1/namespaces/${NS}/serviceaccounts/api/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [CONTROL_PLANE_AUDIENCE], expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: POD, uid: storedPod.metadata?.uid } },
    });
    await writeFile(join(vol.token, 'token'), tokenRequest.status.token);
    const caMap = await eventually('the dbward-ca ConfigMap in the namespace', async () => {
      const cm = await client.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${NS}/configmaps/${CA_CONFIGMAP}`);
      return cm.data?.[CA_CONFIGMAP_KEY];
    });
    await writeFile(join(vol.ca, CA_CONFIGMAP_KEY), caMap);
    await writeFile(join(vol.podinfo, 'labels'), labelsFile(storedPod));

    const env = localEnv(storedPod, sidecarSpec, {
      secrets: { 'orders-db': { username: APP_USER.user, password: APP_USER.password } },
      paths: { [PATHS.token]: vol.token, [PATHS.ca]: vol.ca, [PATHS.podinfo]: vol.podinfo, [PATHS.cache]: vol.cache },
    });
    // The policy comes over gRPC, never from a file.
    expect(Object.keys(env).filter((k) => k.startsWith('DBWARD_POLICY') && k !== 'DBWARD_POLICY_CACHE_DIR')).toEqual([]);
    expect([...(sidecarSpec.command ?? []), ...(sidecarSpec.args ?? [])].join(' ')).not.toMatch(/--policy\b/);
    expect(env['DBWARD_CONTROL_PLANE_TOKEN_FILE']).toBe(join(vol.token, 'token'));
    // The only override: no cluster DNS here, so dial the control plane on loopback.
    env['DBWARD_CONTROL_PLANE'] = `127.0.0.1:${cpPort}`;
    sidecarEnv = { ...env, DBWARD_POLICY: undefined };
    sidecar = spawnProcess('node', ['sidecar/dist/main.js'], { env: sidecarEnv, name: 'sidecar' });

    // The startupProbe command, as the kubelet would run it, until it succeeds.
    const probe = sidecarSpec.startupProbe?.exec?.command ?? [];
    expect(probe.length).toBeGreaterThan(0);
    await eventually(
      'the sidecar startupProbe',
      async () => {
        if (sidecar?.exitInfo) throw new Error(`sidecar exited:\n${sidecar.output}`);
        return (await run(probe[0] ?? 'false', probe.slice(1), { timeoutMs: 5_000 })).code === 0 ? true : undefined;
      },
      60_000,
    );
    expect(sidecar.output).toMatch(/"source":"control-plane"[^\n]*"msg":"policy loaded"/);
    expect(sidecar.output).toMatch(/"auth":"credential-injection"/);
    // The operator sees the verified pod, and the sidecar ACKed what it was sent.
    const status = await eventually('the sidecar ACK', () => op?.controlPlane?.sidecars().find((s) => s.pod === POD && s.ackedVersion !== undefined && s.ackedVersion === s.sentVersion));
    expect(status).toMatchObject({ namespace: NS, serviceAccount: 'api' });

    // The app container's env, rewritten by the webhook.
    databaseUrl = localEnv(storedPod, appSpec)['DATABASE_URL'] ?? '';
    expect(databaseUrl).toBe(`postgres://app@127.0.0.1:${listenPort}/app?sslmode=disable`);
    const r = await psql('select email from customers order by id');
    expect(r.stderr).toBe('');
    const emails = r.stdout.trim().split('\n');
    expect(emails).toHaveLength(CUSTOMERS.length);
    emails.forEach((masked, i) => {
      const [local, domain] = CUSTOMERS[i]!.email.split('@');
      expect(masked).not.toContain(local);
      expect(masked.endsWith(`@${domain}`)).toBe(true);
    });

    conn = new pg.Client({ connectionString: databaseUrl });
    await conn.connect();
    const viaPg = await conn.query<{ email: string }>('select email from customers where id = 1');
    expect(viaPg.rows[0]?.email).not.toBe(CUSTOMERS[0]!.email);
    expect(viaPg.rows[0]?.email).toMatch(/@analytical\.example$/);
  });

  it('kubectl apply of an edited policy changes behaviour within 2 s, on the same connection', async () => {
    if (conn === undefined) throw new Error('no connection');
    const c = conn;
    const pidBefore = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    // Poll the open connection while kubectl runs; record when the new behaviour is first seen.
    let revealedAt: number | undefined;
    let polling = true;
    const poller = (async () => {
      while (polling && revealedAt === undefined) {
        const email = (await c.query<{ email: string }>('select email from customers where id = 1')).rows[0]?.email;
        if (email === CUSTOMERS[0]!.email) revealedAt = Date.now();
        else await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const kubectlStarted = Date.now();
    // -v=6 logs each request with its wall-clock time and duration: the PATCH that stores the edit
    // starts the clock (kubectl's own start-up and discovery, seconds on a loaded machine, do not count).
    const apply = await run(join(toolsBin(), 'kubectl'), ['apply', '-f', '-', '-v=6'], { input: policyYaml(true), env: { KUBECONFIG: kube.kubeconfig, TZ: 'UTC' }, timeoutMs: 60_000 });
    expect(apply.code).toBe(0);
    expect(apply.stdout).toMatch(/dataaccesspolicy.dbward.io\/orders configured/);
    const patch = patchTiming(apply.stderr);
    if (patch === undefined) throw new Error(`no PATCH of the policy in kubectl -v=6 output:\n${apply.stderr}`);
    const patchStarted = patch.endedAt - patch.tookMs;
    const tookMs = patch.tookMs;
    await eventually('the revealed email on the open connection', () => revealedAt, 10_000).finally(() => {
      polling = false;
    });
    await poller;
    const pidAfter = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    const propagation = revealedAt! - patchStarted;
    process.stderr.write(
      `[e2e] policy edit: PATCH sent -> new behaviour on the open connection ${propagation} ms (PATCH ${tookMs} ms; from kubectl start ${revealedAt! - kubectlStarted} ms)\n`,
    );
    expect(pidAfter).toBe(pidBefore);
    expect(patchStarted).toBeGreaterThanOrEqual(kubectlStarted - 5);
    expect(propagation).toBeGreaterThan(0);
    expect(propagation).toBeLessThan(2_000);
    // The sidecar's own log agrees: the new version went in force between the PATCH and the first new answer.
    const reloads = (sidecar?.output ?? '')
      .split('\n')
      .filter((l) => l.includes('"msg":"policy loaded"') && l.includes('"previousVersion"'))
      .map((l) => JSON.parse(l) as { time: string; source: string });
    expect(reloads).toHaveLength(1);
    expect(reloads[0]?.source).toBe('control-plane');
    const loadedAt = Date.parse(reloads[0]!.time);
    expect(loadedAt).toBeGreaterThanOrEqual(patchStarted);
    expect(loadedAt).toBeLessThanOrEqual(revealedAt!);
  });

  it('requireApproval: the statement is held, an AccessRequest appears, kubectl dbward approve runs it', async () => {
    if (conn === undefined) throw new Error('no connection');
    const notices: string[] = [];
    const onNotice = (n: { message?: string }): void => void notices.push(n.message ?? '');
    conn.on('notice', onNotice);
    try {
      const held = conn.query('delete from customers where id = 4 returning full_name');
      held.catch(() => undefined);
      const name = await eventually('the approval NOTICE', () => notices.map((n) => /^dbward: waiting for approval (\S+)$/.exec(n)?.[1]).find((n) => n !== undefined), 30_000);
      const listed = await eventually('the AccessRequest listed', async () => {
        const out = (await kubectlDbward('alice', ['list', '-n', NS])).stdout;
        return out.includes(name) ? out : undefined;
      });
      expect(listed).toMatch(new RegExp(`${name}\\s+Pending\\s+orders\\s+hold-deletes`));
      // Still held: the row is there.
      expect(await db.sql('select count(*) from customers where id = 4', { database: 'app' })).toBe('1');
      const approve = await kubectlDbward('alice', ['approve', name, '-n', NS, '--reason', 'ticket 42']);
      expect(approve.stderr).toBe('');
      expect(approve.stdout.trim()).toBe(`accessrequest ${NS}/${name} approved by alice`);
      const result = await held;
      expect(result.rowCount).toBe(1);
      expect(result.rows).toEqual([{ full_name: 'Edsger Dijkstra' }]);
      expect(await db.sql('select count(*) from customers where id = 4', { database: 'app' })).toBe('0');
      const areq = await client.get<{ spec: { identity: { pod?: string; serviceAccount?: string } }; status: { phase: string; decidedBy: string } }>(`/apis/dbward.io/v1alpha1/namespaces/${NS}/accessrequests/${name}`);
      expect(areq.status).toMatchObject({ phase: 'Approved', decidedBy: 'alice' });
      expect(areq.spec.identity).toMatchObject({ pod: POD, serviceAccount: 'api' });
    } finally {
      conn.off('notice', onNotice);
    }
  });

  it('kubectl dbward deny: the held statement fails with 42501 and the SPEC message', async () => {
    if (conn === undefined) throw new Error('no connection');
    const notices: string[] = [];
    const onNotice = (n: { message?: string }): void => void notices.push(n.message ?? '');
    conn.on('notice', onNotice);
    try {
      const held = conn.query('delete from customers where id = 3');
      const outcome = held.then(
        () => undefined,
        (error: unknown) => error as { code?: string; message?: string },
      );
      const name = await eventually('the approval NOTICE', () => notices.map((n) => /^dbward: waiting for approval (\S+)$/.exec(n)?.[1]).find((n) => n !== undefined), 30_000);
      await eventually('the AccessRequest stored', async () => ((await kube.kubectl(['get', 'areq', name, '-n', NS])).code === 0 ? true : undefined));
      const deny = await kubectlDbward('alice', ['deny', name, '-n', NS, '--reason', 'not today']);
      expect(deny.code).toBe(0);
      const error = await outcome;
      expect(error?.code).toBe('42501');
      expect(error?.message).toBe(`dbward: approval ${name} denied`);
      expect(await db.sql('select count(*) from customers where id = 3', { database: 'app' })).toBe('1');
      // The connection stays usable after the ERROR.
      expect((await conn.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
    } finally {
      conn.off('notice', onNotice);
    }
  });

  it('NACK: two Ready policies that conflict only together are rejected by the sidecar and recorded on their status; the last good policy stays, also across a restart', async () => {
    if (conn === undefined) throw new Error('no connection');
    // Each compiles alone (so each is Ready), but one pod cannot be in two environments at once.
    const envPolicy = (name: string, environment: string): string =>
      `apiVersion: dbward.io/v1alpha1\nkind: DataAccessPolicy\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  workloadSelector: {matchLabels: {app: api}}\n  environment: ${environment}\n`;
    await kube.kubectlOk(['apply', '-f', '-'], { input: `${envPolicy('env-prod', 'production')}---\n${envPolicy('env-staging', 'staging')}` });
    try {
      const applied = await eventually(
        'Applied=False on env-staging',
        async () => {
          const out = await kube.kubectlOk(['get', 'dap', 'env-staging', '-n', NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Applied")].reason}: {.status.conditions[?(@.type=="Applied")].message}']);
          return out.startsWith('True Rejected') ? out : undefined;
        },
        30_000,
      );
      expect(applied).toMatch(new RegExp(`sidecar ${NS}/${POD} rejected policy version [0-9a-f]{16}: .*environment "\\w+" conflicts with`));
      const status = await eventually('the NACK on the server', () => op!.controlPlane!.sidecars().find((s) => s.pod === POD && s.nackedVersion !== undefined && s.nackedVersion === s.sentVersion));
      expect(status.ackedVersion).toBeDefined();
      expect(status.ackedVersion).not.toBe(status.nackedVersion);
      const events = await kube.kubectlOk(['get', 'events', '-n', NS, '--field-selector', 'reason=Rejected', '-o', 'jsonpath={range .items[*]}{.regarding.name}{.involvedObject.name} {end}']);
      expect(events).toMatch(/env-staging/);
      expect(sidecar?.output).toMatch(/control plane: snapshot rejected \(NACK\); keeping the last good policy/);
      // The last good policy (revealing emails to this workload) is still in force on the open connection.
      expect((await conn.query<{ email: string }>('select email from customers where id = 1')).rows[0]?.email).toBe(CUSTOMERS[0]!.email);

      // A restart while the conflict lasts: the first snapshot is rejected, so the last-known-good
      // from the emptyDir cache is enforced (never pass-through, never nothing).
      await conn.end();
      conn = undefined;
      await sidecar?.kill();
      sidecar = spawnProcess('node', ['sidecar/dist/main.js'], { env: sidecarEnv, name: 'sidecar-restarted-nack' });
      await sidecar.waitFor(/"source":"cache"[^\n]*"msg":"policy loaded"/, { timeoutMs: 60_000 });
      expect(sidecar.output).toMatch(/control plane: snapshot rejected \(NACK\)/);
      expect(sidecar.output).toMatch(/control plane: using the last-known-good policy from the cache/);
      const r = await psql('select email from customers where id = 1');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(CUSTOMERS[0]!.email);
    } finally {
      // Removing the conflict: the next snapshot is put in force and ACKed.
      await kube.kubectlOk(['delete', 'dap', 'env-prod', 'env-staging', '-n', NS, '--ignore-not-found']);
    }
    await sidecar!.waitFor(/"source":"control-plane"[^\n]*"msg":"policy loaded"/, { timeoutMs: 30_000 });
    await eventually('ACK after the conflict is gone', () => {
      const s = op!.controlPlane!.sidecars().find((x) => x.pod === POD);
      return s !== undefined && s.ackedVersion !== undefined && s.ackedVersion === s.sentVersion ? true : undefined;
    });
  });

  it('a renewed serving certificate is served on the control plane; a restarted sidecar verifies it and gets the policy', async () => {
    const before = op!.certs.current();
    const rotated = await op!.certs.ensure(new Date(Date.now() + 340 * 86_400_000)); // inside the 30-day renewal window
    expect(rotated.cert).not.toBe(before.cert);
    // A new connection gets the new leaf, verified for 127.0.0.1 against the CA in the dbward-ca ConfigMap.
    const served = await eventually('the renewed certificate on the control-plane port', () =>
      new Promise<string | undefined>((ok, fail) => {
        const s = connect({ host: '127.0.0.1', port: cpPort, ca: rotated.ca, ALPNProtocols: ['h2'] }, () => {
          const serial = s.getPeerX509Certificate()?.serialNumber;
          s.end();
          ok(serial === new X509Certificate(rotated.cert).serialNumber ? serial : undefined);
        });
        s.on('error', fail);
      }),
    );
    expect(served).toBe(new X509Certificate(rotated.cert).serialNumber);
    // A sidecar (re)starting now dials the renewed chain and gets the current policy over gRPC.
    await sidecar?.kill();
    sidecar = spawnProcess('node', ['sidecar/dist/main.js'], { env: sidecarEnv, name: 'sidecar-restarted' });
    await sidecar.waitFor(/"source":"control-plane"[^\n]*"msg":"policy loaded"/, { timeoutMs: 60_000 });
    const r = await psql('select email from customers where id = 1');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(CUSTOMERS[0]!.email);
  });
});
