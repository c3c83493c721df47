import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnProcess, type KubeCluster, type ManagedProcess } from '../../e2e/harness/index.js';
import type { KubeClient } from '../src/kube/rest.js';
import { eventually, startKubeWithCrds } from './support/kube.js';

// The built dbward-operator binary: flags, startup against a kubeconfig, a policy reconciled,
// graceful shutdown on SIGTERM releasing the leader Lease.
let kube: KubeCluster;
let client: KubeClient;
let proc: ManagedProcess | undefined;

beforeAll(async () => {
  ({ kube, client } = await startKubeWithCrds({ name: 'main' }));
  await kube.kubectlOk(['create', 'namespace', 'dbward-system']);
  await kube.kubectlOk(['create', 'namespace', 'team']);
});
afterAll(async () => {
  await proc?.kill();
  await kube?.stop();
});

describe('dbward-operator', () => {
  it('refuses bad flags with usage (exit 2)', async () => {
    const p = spawnProcess('node', ['operator/dist/main.js', '--namespace', 'x']);
    const exit = await p.exited;
    expect(exit.code).toBe(2);
    expect(p.stderr).toMatch(/--sidecar-image is required[\s\S]*usage: dbward-operator/);
  });

  it('starts, reconciles, and on SIGTERM releases the Lease and exits 0', async () => {
    const [port, grpcPort] = [await freePort(), await freePort()];
    proc = spawnProcess('node', ['operator/dist/main.js', '--kubeconfig', kube.kubeconfig, '--namespace', 'dbward-system', '--webhook-host', '127.0.0.1', '--webhook-port', String(port)], {
      env: { DBWARD_SIDECAR_IMAGE: 'dbward/sidecar:test', KUBERNETES_SERVICE_HOST: undefined, DBWARD_CONTROL_PLANE_HOST: '127.0.0.1', DBWARD_CONTROL_PLANE_PORT: String(grpcPort) },
    });
    await proc.waitFor(/operator started/, { timeoutMs: 30_000 });
    // The gRPC control plane listens over TLS on the port given.
    expect(proc.output).toMatch(new RegExp(`"address":"127\\.0\\.0\\.1:${grpcPort}","tls":true,"msg":"control plane listening"`));
    await kube.kubectlOk(['apply', '-f', '-'], { input: 'apiVersion: dbward.io/v1alpha1\nkind: DataAccessPolicy\nmetadata: {name: p, namespace: team}\nspec: {}\n' });
    await eventually('Ready', async () => {
      const out = await kube.kubectlOk(['get', 'dap', 'p', '-n', 'team', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return out === 'True' ? true : undefined;
    });
    const lease = await client.get<{ spec: { holderIdentity: string } }>('/apis/coordination.k8s.io/v1/namespaces/dbward-system/leases/dbward-operator');
    expect(lease.spec.holderIdentity).not.toBe('');
    await proc.kill('SIGTERM', 25_000);
    expect(proc.exitInfo?.code).toBe(0);
    expect(proc.output).toMatch(/control plane stopped/);
    const released = await client.get<{ spec: { holderIdentity?: string } }>('/apis/coordination.k8s.io/v1/namespaces/dbward-system/leases/dbward-operator');
    expect(released.spec.holderIdentity ?? '').toBe('');
  });
});
