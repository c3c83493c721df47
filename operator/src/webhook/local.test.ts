import { describe, expect, it } from 'vitest';
import { DataAccessPolicySchema } from '@dbward/sidecar/api';
import { injectedPod, PATHS } from './inject.js';
import { labelsFile, localEnv, LocalEnvError } from './local.js';

const policy = DataAccessPolicySchema.parse({
  apiVersion: 'dbward.io/v1alpha1',
  kind: 'DataAccessPolicy',
  metadata: { name: 'p', namespace: 'shop' },
  spec: { workloadSelector: {}, upstream: { host: '127.0.0.1', port: 5999, sslmode: 'disable', credentialsSecretRef: { name: 'db' } }, listen: { envVar: 'DATABASE_URL' } },
});
const { pod } = injectedPod(
  { metadata: { name: 'api-1', namespace: 'shop', uid: 'u-1', labels: { app: 'api', tier: 'web' } }, spec: { serviceAccountName: 'api', containers: [{ name: 'app', env: [{ name: 'DATABASE_URL', value: 'postgres://app@db:5432/app' }] }] } },
  { name: 'shop', labels: { 'dbward.io/injection': 'enabled' } },
  [policy],
  { image: 'i', operatorNamespace: 'dbward-system', controlPlane: '127.0.0.1:9444' },
);

describe('localEnv', () => {
  it('resolves fieldRefs, secrets, $(VAR) and mount paths like the kubelet', () => {
    const sidecar = pod.spec?.initContainers?.[0];
    if (sidecar === undefined) throw new Error('not injected');
    const env = localEnv(pod, sidecar, { secrets: { db: { username: 'app', password: 'pw' } }, paths: { [PATHS.cache]: '/tmp/cache', [PATHS.token]: '/tmp/token' } });
    expect(env).toMatchObject({
      DBWARD_UPSTREAM: 'postgres://app:pw@127.0.0.1:5999?sslmode=disable',
      DBWARD_IDENTITY: 'namespace=shop,pod=api-1,serviceAccount=api',
      DBWARD_POLICY_CACHE_DIR: '/tmp/cache',
      DBWARD_CONTROL_PLANE_TOKEN_FILE: '/tmp/token/token',
      DBWARD_CONTROL_PLANE: '127.0.0.1:9444',
    });
    expect(localEnv(pod, pod.spec?.containers[0] ?? { name: 'x' })).toEqual({ DATABASE_URL: 'postgres://app@127.0.0.1:6432/app?sslmode=disable' });
  });

  it('refuses a missing Secret', () => {
    const sidecar = pod.spec?.initContainers?.[0];
    expect(() => localEnv(pod, sidecar ?? { name: 'x' })).toThrow(LocalEnvError);
  });

  it('writes the labels file as the downward API does', () => {
    expect(labelsFile(pod)).toBe('app="api"\ntier="web"');
  });
});
