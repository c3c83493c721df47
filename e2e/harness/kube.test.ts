import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKube, type KubeCluster } from './index.js';

describe('startKube', () => {
  let kube: KubeCluster;
  beforeAll(async () => {
    kube = await startKube({ users: [{ name: 'alice', groups: ['devs'] }] });
  });
  afterAll(() => kube?.stop());

  it('serves kubectl with the admin kubeconfig', async () => {
    const out = await kube.kubectlOk(['get', 'ns', '-o', 'name']);
    expect(out.split('\n')).toEqual(expect.arrayContaining(['namespace/default', 'namespace/kube-system']));
  });

  it('enforces RBAC for the extra users', async () => {
    const config = await kube.kubeconfigFor('alice');
    const r = await kube.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: config });
    expect(r.stdout).toBe('alice');
    const denied = await kube.kubectl(['get', 'secrets', '-n', 'default'], { kubeconfig: config });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/);
  });

  it('stop() ends both processes and removes the directory', async () => {
    const other = await startKube({ name: 'stop' });
    await other.stop();
    expect(existsSync(other.baseDir)).toBe(false);
    await other.stop(); // idempotent
  });
});
