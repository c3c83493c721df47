import type { V1Container, V1Pod } from '@kubernetes/client-node';

/**
 * Turns a container of an (injected) pod spec into the environment a local process gets, the way
 * the kubelet would: `fieldRef` from the pod, `secretKeyRef`/`configMapKeyRef` from the maps given,
 * `$(VAR)` references expanded, and mount paths remapped to local directories. For end-to-end tests
 * that launch the webhook's pod spec as local processes.
 */

export interface LocalEnvOptions {
  /** Secret name → key → value. */
  secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  configMaps?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Mount path in the pod → local directory (e.g. /var/cache/dbward → a temp dir). */
  paths?: Readonly<Record<string, string>>;
}

export class LocalEnvError extends Error {
  override readonly name = 'LocalEnvError';
}

export function localEnv(pod: V1Pod, container: V1Container, options: LocalEnvOptions = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const field = (path: string): string => {
    const m = pod.metadata ?? {};
    switch (path) {
      case 'metadata.name':
        return m.name ?? '';
      case 'metadata.namespace':
        return m.namespace ?? '';
      case 'metadata.uid':
        return m.uid ?? '';
      case 'spec.serviceAccountName':
        return pod.spec?.serviceAccountName ?? 'default';
      default:
        throw new LocalEnvError(`fieldRef ${path} is not supported locally`);
    }
  };
  for (const e of container.env ?? []) {
    let value: string;
    if (e.value !== undefined) value = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
    else if (e.valueFrom?.fieldRef) value = field(e.valueFrom.fieldRef.fieldPath);
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const v = options.secrets?.[name ?? '']?.[key];
      if (v === undefined) throw new LocalEnvError(`${e.name}: Secret ${name ?? ''} key ${key} not given`);
      value = v;
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      const v = options.configMaps?.[name ?? '']?.[key];
      if (v === undefined) throw new LocalEnvError(`${e.name}: ConfigMap ${name ?? ''} key ${key} not given`);
      value = v;
    } else value = '';
    for (const [from, to] of Object.entries(options.paths ?? {})) {
      if (value === from || value.startsWith(`${from}/`)) value = to + value.slice(from.length);
    }
    env[e.name] = value;
  }
  return env;
}

/** The downward-API labels file content (`key="value"` lines, sorted), as the kubelet writes it. */
export function labelsFile(pod: V1Pod): string {
  return Object.entries(pod.metadata?.labels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join('\n');
}
