import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { DataAccessPolicySchema } from '@dbward/sidecar/api';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { inject, injectedPod, SIDECAR_NAME, STATUS_ANNOTATION, type InjectSettings, type NamespaceInfo } from './inject.js';

// Golden files: testdata/<case>.yaml (namespace, pod, policies) → testdata/<case>.golden.json
// (patch and reasons). DBWARD_UPDATE_GOLDEN=1 rewrites the golden files; review the diff.
const DIR = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const SETTINGS: InjectSettings = {
  image: 'ghcr.io/dbward/sidecar:0.1.0',
  operatorNamespace: 'dbward-system',
  controlPlane: 'dbward-operator.dbward-system.svc:9443',
};
const UPDATE = process.env['DBWARD_UPDATE_GOLDEN'] === '1';

interface Case {
  namespace: NamespaceInfo;
  pod: V1Pod;
  policies: unknown[];
}

const cases = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();

function load(name: string): { input: Case; policies: ReturnType<typeof DataAccessPolicySchema.parse>[] } {
  const input = parse(readFileSync(join(DIR, `${name}.yaml`), 'utf8')) as Case;
  return { input, policies: input.policies.map((p) => DataAccessPolicySchema.parse(p)) };
}

describe('inject (golden files)', () => {
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));

  it.each(cases)('%s', (name) => {
    const { input, policies } = load(name);
    const result = inject(input.pod, input.namespace, policies, SETTINGS);
    const actual = `${JSON.stringify({ reasons: result.reasons, patch: result.patch }, null, 2)}\n`;
    const file = join(DIR, `${name}.golden.json`);
    if (UPDATE) writeFileSync(file, actual);
    expect(actual).toBe(readFileSync(file, 'utf8'));
  });

  it.each(cases)('%s: reinvocation adds nothing', (name) => {
    const { input, policies } = load(name);
    const once = injectedPod(input.pod, input.namespace, policies, SETTINGS);
    const twice = inject(once.pod, input.namespace, policies, SETTINGS);
    expect(twice.patch).toEqual([]);
    expect(twice.injected).toBe(once.result.injected);
  });
});

describe('the injected pod', () => {
  const { input, policies } = load('basic');
  const { pod } = injectedPod(input.pod, input.namespace, policies, SETTINGS);
  const sidecar = pod.spec?.initContainers?.[0];

  it('is a native sidecar placed first, with a startup probe', () => {
    expect(sidecar?.name).toBe(SIDECAR_NAME);
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.startupProbe?.exec?.command?.join(' ')).toMatch(/127\.0\.0\.1:9901\/readyz/);
  });

  it('rewrites the app URL keeping user, password, database and parameters', () => {
    const env = pod.spec?.containers[0]?.env?.find((e) => e.name === 'DATABASE_URL');
    expect(env?.value).toBe('postgres://shop:s3cret@127.0.0.1:6432/orders?application_name=api&sslmode=disable');
  });

  it('gives the sidecar the upstream, identity and control-plane settings; the app gets none of them', () => {
    const env = Object.fromEntries((sidecar?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      DBWARD_UPSTREAM: 'postgres://orders-db.data:5432?sslmode=verify-full',
      DBWARD_LISTEN: '127.0.0.1:6432',
      DBWARD_ENVIRONMENT: 'production',
      DBWARD_CONTROL_PLANE: SETTINGS.controlPlane,
      DBWARD_POLICY_CACHE_DIR: '/var/cache/dbward',
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    expect(JSON.stringify(pod.spec?.containers)).not.toMatch(/DBWARD_|dbward-token/);
    const token = pod.spec?.volumes?.find((v) => v.name === 'dbward-token');
    expect(token?.projected?.sources?.[0]?.serviceAccountToken).toEqual({ audience: 'dbward-controlplane', expirationSeconds: 600, path: 'token' });
  });

  it('records what it did in dbward.io/status', () => {
    expect(JSON.parse(pod.metadata?.annotations?.[STATUS_ANNOTATION] ?? '{}')).toMatchObject({ policies: ['orders'], listenPort: 6432, rewritten: ['app/DATABASE_URL'] });
  });

  it('mounts the credentials Secret only into the sidecar', () => {
    const c = load('credentials');
    const injected = injectedPod(c.input.pod, c.input.namespace, c.policies, SETTINGS).pod;
    const [first, second] = injected.spec?.initContainers ?? [];
    expect(first?.name).toBe(SIDECAR_NAME);
    expect(second?.name).toBe('migrate');
    expect(JSON.stringify(first?.env)).toMatch(/orders-reporter/);
    expect(JSON.stringify([second, ...(injected.spec?.containers ?? [])])).not.toMatch(/orders-reporter/);
  });
});
