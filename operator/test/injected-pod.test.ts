import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataAccessPolicySchema } from '@dbward/sidecar/api';
import { freePort, run, spawnProcess, startPostgres, type ManagedProcess, type PgCluster } from '../../e2e/harness/index.js';
import { injectedPod } from '../src/webhook/inject.js';
import { localEnv } from '../src/webhook/local.js';

// The webhook's pod spec, run as local processes against a real PostgreSQL: the built sidecar gets
// exactly the injected environment (credentials from the Secret, identity from the downward API),
// its startupProbe command decides readiness, and the app reaches the database through the
// rewritten DATABASE_URL without ever holding the password. The policy comes from a file here
// (the sidecar's standalone mode in an injected pod); over gRPC from a real operator:
// e2e-kubernetes.test.ts.
let db: PgCluster;
let dir: string;
let sidecar: ManagedProcess | undefined;

const policyYaml = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: {name: orders, namespace: shop}
spec:
  guardrails:
  - {name: no-drop, when: "query.command == 'DROP TABLE'", action: deny, message: ask the DBA}
`;

beforeAll(async () => {
  db = await startPostgres({ auth: 'scram-sha-256' });
  await db.sql('create table orders (id int primary key); insert into orders values (1), (2)', { database: 'app', user: 'app' });
  dir = await mkdtemp(join(tmpdir(), 'dbward-injected-'));
});
afterAll(async () => {
  await sidecar?.kill();
  await db?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an injected pod, run locally', () => {
  it('the sidecar starts from the injected env; the app uses the rewritten URL; the policy applies', async () => {
    const [listenPort, adminPort] = [await freePort(), await freePort()];
    const policy = DataAccessPolicySchema.parse({
      apiVersion: 'dbward.io/v1alpha1',
      kind: 'DataAccessPolicy',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { workloadSelector: { matchLabels: { app: 'api' } }, upstream: { host: '127.0.0.1', port: db.port, sslmode: 'disable', credentialsSecretRef: { name: 'orders-db' } }, listen: { port: listenPort, envVar: 'DATABASE_URL' } },
    });
    const { pod, result } = injectedPod(
      { metadata: { name: 'api-1', namespace: 'shop', uid: 'uid-1', labels: { app: 'api' } }, spec: { serviceAccountName: 'api', containers: [{ name: 'app', image: 'shop/api', env: [{ name: 'DATABASE_URL', value: 'postgres://app@orders-db.data:5432/app?sslmode=require' }] }] } },
      { name: 'shop', labels: { 'dbward.io/injection': 'enabled' } },
      [policy],
      { image: 'dbward/sidecar:test', operatorNamespace: 'dbward-system', controlPlane: '127.0.0.1:1', adminPort },
    );
    expect(result.injected).toBe(true);
    const [sidecarSpec] = pod.spec?.initContainers ?? [];
    const [appSpec] = pod.spec?.containers ?? [];
    if (sidecarSpec === undefined || appSpec === undefined) throw new Error('not injected');

    const env = localEnv(pod, sidecarSpec, { secrets: { 'orders-db': { username: 'app', password: 'app_pw' } } });
    // Standalone here: the policy from a file, no control-plane settings.
    for (const key of Object.keys(env)) if (/^DBWARD_(CONTROL_PLANE|POLICY_CACHE_DIR|IDENTITY_LABELS_FILE)/.test(key)) delete env[key];
    await writeFile(join(dir, 'policy.yaml'), policyYaml);
    sidecar = spawnProcess('node', ['sidecar/dist/main.js'], { env: { ...env, DBWARD_POLICY: join(dir, 'policy.yaml') }, inheritEnv: true, name: 'sidecar' });

    // The startupProbe command, as the kubelet would run it, until it succeeds.
    const probe = sidecarSpec.startupProbe?.exec?.command ?? [];
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await run(probe[0] ?? 'false', probe.slice(1), { timeoutMs: 5_000 });
      if (r.code === 0) break;
      if (Date.now() > deadline || sidecar.exitInfo) throw new Error(`sidecar never ready:\n${sidecar.output}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }
    expect(sidecar.output).toMatch(/"auth":"credential-injection"/);

    const app = localEnv(pod, appSpec);
    expect(app['DATABASE_URL']).toBe(`postgres://app@127.0.0.1:${listenPort}/app?sslmode=disable`);
    const psql = (sql: string) => run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', app['DATABASE_URL'] ?? '', '-c', sql], { env: { PGPASSWORD: undefined }, timeoutMs: 20_000 });
    const ok = await psql('select count(*) from orders');
    expect(ok.stderr).toBe('');
    expect(ok.stdout.trim()).toBe('2');
    const denied = await psql('drop table orders');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/dbward: denied by no-drop: ask the DBA/);
    expect(await db.sql('select count(*) from orders', { database: 'app' })).toBe('2');
  });
});
