import { startKube, type KubeCluster, type StartKubeOptions } from '../../../e2e/harness/index.js';
import type { Logger } from '../../src/controller/controller.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/rest.js';

/** A kube-apiserver with dbward's CRDs installed, and an admin KubeClient. */
export async function startKubeWithCrds(options: StartKubeOptions = {}): Promise<{ kube: KubeCluster; client: KubeClient }> {
  const kube = await startKube(options);
  try {
    await kube.kubectlOk(['apply', '-f', 'crds/']);
    await kube.kubectlOk(['wait', '--for=condition=Established', 'crd/dataaccesspolicies.dbward.io', 'crd/accessrequests.dbward.io', '--timeout=30s']);
  } catch (error) {
    await kube.stop();
    throw error;
  }
  return { kube, client: new KubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfig })) };
}

/** Collects log lines; echoes them with DBWARD_E2E_VERBOSE=1. */
export function testLogger(name: string): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (obj: object, msg: string): void => {
    const line = `[${name}] ${level} ${msg} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`;
    lines.push(line);
    if (process.env['DBWARD_E2E_VERBOSE'] === '1') process.stderr.write(`${line}\n`);
  };
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A MutatingWebhookConfiguration that sends pod creations in enabled namespaces to an operator on
 * loopback (`clientConfig.url`: no Service here), as the chart's does; `extraWebhooks` is YAML of
 * more entries of its `webhooks` list.
 */
export function injectorWebhookYaml(port: number, extraWebhooks = ''): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: dbward-sidecar-injector}
webhooks:
- name: inject.dbward.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  reinvocationPolicy: IfNeeded
  timeoutSeconds: 10
  clientConfig: {url: "https://127.0.0.1:${port}/mutate-pods"}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods], scope: Namespaced}]
  namespaceSelector: {matchLabels: {dbward.io/injection: enabled}}
  objectSelector: {matchExpressions: [{key: dbward.io/inject, operator: NotIn, values: ["false"]}]}
${extraWebhooks}`;
}
