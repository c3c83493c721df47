import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from './cleanup.js';
import { freePort } from './ports.js';
import { run, spawnProcess, type ManagedProcess, type RunResult } from './process.js';

/**
 * A throw-away Kubernetes control plane for integration tests, the way controller-runtime's envtest
 * builds one: etcd + kube-apiserver on loopback (no controller-manager, scheduler or kubelet), a
 * service-account signing key pair and issuer, the apiserver's self-signed serving certificate, a
 * static-token admin in `system:masters`, RBAC authorization and the default admission chain
 * (MutatingAdmissionWebhook included; ServiceAccount disabled since nothing creates `default`).
 */

const HERE = dirname(fileURLToPath(import.meta.url));
/** e2e/tools/bin, unless DBWARD_TOOLS_BIN points elsewhere. */
export function toolsBin(): string {
  return process.env['DBWARD_TOOLS_BIN'] ?? resolve(HERE, '..', 'tools', 'bin');
}

export interface KubeUser {
  name: string;
  token: string;
  groups: readonly string[];
}

export interface StartKubeOptions {
  /** Extra static-token users, e.g. an approver outside system:masters (RBAC applies to them). */
  users?: readonly { name: string; groups?: readonly string[] }[];
  /** Extra kube-apiserver flags (`--flag=value`). */
  apiserverArgs?: readonly string[];
  /** Readiness timeout; default 90 s. */
  startTimeoutMs?: number;
  name?: string;
}

export interface KubeCluster {
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  readonly baseDir: string;
  /** Admin kubeconfig (token of a system:masters user), for kubectl, helm and @kubernetes/client-node. */
  readonly kubeconfig: string;
  /** CA of the apiserver serving certificate. */
  readonly caFile: string;
  readonly admin: KubeUser;
  readonly users: Readonly<Record<string, KubeUser>>;
  /** Service-account issuer (`--service-account-issuer`). */
  readonly issuer: string;
  readonly etcdUrl: string;
  /** A kubeconfig for one of the extra users (written on demand). */
  kubeconfigFor(user: string): Promise<string>;
  /** kubectl with the admin kubeconfig; resolves for any exit status. */
  kubectl(args: readonly string[], options?: { input?: string; timeoutMs?: number; kubeconfig?: string }): Promise<RunResult>;
  /** Like kubectl(), rejects unless the exit status is 0; resolves stdout. */
  kubectlOk(args: readonly string[], options?: { input?: string; timeoutMs?: number; kubeconfig?: string }): Promise<string>;
  /** Compacts etcd at its current revision, so a watch from an older resourceVersion gets 410 Gone. */
  compactEtcd(): Promise<number>;
  /** Stops the apiserver, then etcd, and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const KEEP = process.env['DBWARD_E2E_KEEP'] === '1';

function token(): string {
  return randomBytes(16).toString('hex');
}

function kubeconfigYaml(server: string, caFile: string, user: KubeUser): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: envtest',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    `- name: ${user.name}`,
    '  user:',
    `    token: ${user.token}`,
    'contexts:',
    '- name: envtest',
    `  context: {cluster: envtest, user: ${user.name}}`,
    'current-context: envtest',
    '',
  ].join('\n');
}

async function waitUntil(what: string, timeoutMs: number, procs: readonly ManagedProcess[], check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of procs) {
      if (p.exitInfo !== undefined) throw new Error(`${p.name} exited while waiting for ${what}:\n${p.output.split('\n').slice(-30).join('\n')}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${procs.map((p) => `--- ${p.name}\n${p.output.split('\n').slice(-20).join('\n')}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function etcdPost(etcdUrl: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Starts etcd + kube-apiserver; see {@link KubeCluster}. Their ports are picked free and then
 * bound by the child processes, so another process can take one in between: such a start is
 * retried on fresh ports (as the PostgreSQL harness does).
 */
export async function startKube(options: StartKubeOptions = {}): Promise<KubeCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKubeOnce(options);
    } catch (error) {
      if (attempt < 3 && error instanceof Error && /address already in use/i.test(error.message)) continue;
      throw error;
    }
  }
}

async function startKubeOnce(options: StartKubeOptions): Promise<KubeCluster> {
  const bin = toolsBin();
  for (const b of ['etcd', 'kube-apiserver', 'kubectl']) {
    if (!existsSync(join(bin, b))) throw new Error(`startKube: missing ${join(bin, b)} (run: make tools)`);
  }
  const baseDir = await mkdtemp(join(tmpdir(), `dbward-kube-${options.name ?? 'envtest'}-`));
  const pki = join(baseDir, 'pki');
  await mkdir(pki, { recursive: true });
  const procs: ManagedProcess[] = [];
  let stopped = false;

  const stopSync = (): void => {
    for (const p of [...procs].reverse()) {
      if (p.pid !== undefined && p.exitInfo === undefined) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (!KEEP) rmSync(baseDir, { recursive: true, force: true });
  };
  const unregister = onExit(stopSync);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // apiserver first: with etcd gone it hangs in shutdown for 30 s and more.
    for (const p of [...procs].reverse()) await p.kill('SIGTERM', 10_000);
    unregister();
    if (!KEEP) await rm(baseDir, { recursive: true, force: true });
  };

  try {
    // Service-account token signing key pair (RSA, as kube-controller-manager's default).
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(pki, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(join(pki, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

    const admin: KubeUser = { name: 'admin', token: token(), groups: ['system:masters'] };
    const users: Record<string, KubeUser> = {};
    for (const u of options.users ?? []) users[u.name] = { name: u.name, token: token(), groups: u.groups ?? [] };
    const csv = [admin, ...Object.values(users)]
      .map((u, i) => `${u.token},${u.name},uid-${i}${u.groups.length > 0 ? `,"${u.groups.join(',')}"` : ''}`)
      .join('\n');
    await writeFile(join(pki, 'tokens.csv'), `${csv}\n`, { mode: 0o600 });

    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = spawnProcess(join(bin, 'etcd'), [
      '--name=envtest', `--data-dir=${join(baseDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=envtest=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync', `--quota-backend-bytes=${256 * 1024 * 1024}`, '--log-level=warn',
    ], { name: 'etcd' });
    procs.push(etcd);
    const timeoutMs = options.startTimeoutMs ?? 90_000;
    await waitUntil('etcd /health', 15_000, procs, async () => (await fetch(`${etcdUrl}/health`)).ok);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = spawnProcess(join(bin, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`, '--etcd-prefix=/registry',
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      `--cert-dir=${join(pki, 'serving')}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      ...(options.apiserverArgs ?? []),
    ], { name: 'kube-apiserver' });
    procs.push(apiserver);
    const caFile = join(pki, 'serving', 'apiserver.crt');
    await waitUntil('the apiserver serving certificate', 30_000, procs, async () => existsSync(caFile));

    const kubeconfig = join(baseDir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, caFile, admin), { mode: 0o600 });
    const ca = await readFile(caFile);
    const agent = new Agent({ ca });
    const readyz = (): Promise<boolean> =>
      new Promise((ok) => {
        const req = get(`${server}/readyz`, { agent, headers: { authorization: `Bearer ${admin.token}` }, timeout: 2_000 }, (res) => {
          res.resume();
          ok(res.statusCode === 200);
        });
        req.on('error', () => ok(false));
        req.on('timeout', () => req.destroy());
      });
    await waitUntil('kube-apiserver /readyz', timeoutMs, procs, readyz);
    agent.destroy();

    const kubectlBin = join(bin, 'kubectl');
    const kubectl = (args: readonly string[], o: { input?: string; timeoutMs?: number; kubeconfig?: string } = {}): Promise<RunResult> =>
      run(kubectlBin, [`--kubeconfig=${o.kubeconfig ?? kubeconfig}`, ...args], {
        ...(o.input !== undefined ? { input: o.input } : {}),
        timeoutMs: o.timeoutMs ?? 30_000,
        env: { KUBECONFIG: undefined },
      });
    const cluster: KubeCluster = {
      server,
      baseDir,
      kubeconfig,
      caFile,
      admin,
      users,
      issuer: server,
      etcdUrl,
      async kubeconfigFor(name) {
        const user = users[name];
        if (user === undefined) throw new Error(`startKube: no user ${name}`);
        const file = join(baseDir, `kubeconfig-${name}`);
        await writeFile(file, kubeconfigYaml(server, caFile, user), { mode: 0o600 });
        return file;
      },
      kubectl,
      async kubectlOk(args, o) {
        const r = await kubectl(args, o);
        if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${String(r.code)}\n${r.stderr}${r.stdout}`);
        return r.stdout;
      },
      async compactEtcd() {
        const status = (await etcdPost(etcdUrl, '/v3/kv/range', { key: Buffer.from('/registry').toString('base64') })) as { header?: { revision?: string } };
        const revision = Number(status.header?.revision ?? 0);
        await etcdPost(etcdUrl, '/v3/kv/compaction', { revision: String(revision), physical: true });
        return revision;
      },
      stop,
    };
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}
