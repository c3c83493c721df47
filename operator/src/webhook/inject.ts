import type { V1Container, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { DataAccessPolicy } from '@dbward/sidecar/api';
import { applyPatch, pointer, type JsonPatchOp } from './jsonpatch.js';
import { selects as matchesSelector } from '../selector.js';

/**
 * The sidecar injection, as a pure function (ADR 0016): pod + namespace + Ready policies + settings
 * → a JSON patch and the reasons behind it. The admission handler only decodes and encodes.
 */

export const SIDECAR_NAME = 'dbward-sidecar';
export const INJECTION_LABEL = 'dbward.io/injection';
export const INJECT_ANNOTATION = 'dbward.io/inject';
export const ENVIRONMENT_LABEL = 'dbward.io/environment';
export const STATUS_ANNOTATION = 'dbward.io/status';
export const CONTROL_PLANE_AUDIENCE = 'dbward-controlplane';
export const CA_CONFIGMAP = 'dbward-ca';
export const CA_CONFIGMAP_KEY = 'ca.crt';
const NEVER_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease']);

export const PATHS = {
  token: '/var/run/secrets/dbward.io/controlplane',
  ca: '/var/run/dbward/ca',
  podinfo: '/etc/dbward/podinfo',
  cache: '/var/cache/dbward',
} as const;

export const VOLUMES = {
  token: 'dbward-token',
  ca: 'dbward-ca',
  podinfo: 'dbward-podinfo',
  cache: 'dbward-cache',
} as const;

export interface InjectSettings {
  /** The sidecar image. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** The operator's own namespace: never injected. */
  operatorNamespace: string;
  /** host:port of the operator's gRPC control plane (Service DNS name). */
  controlPlane: string;
  /** Admin listener of the sidecar inside the pod (loopback). Default 9901. */
  adminPort?: number;
  /** Lifetime of the projected control-plane token; Kubernetes requires ≥ 600. Default 600. */
  tokenExpirationSeconds?: number;
  resources?: V1Container['resources'];
  /** OTLP/HTTP endpoint for audit spans, if any. */
  otlpEndpoint?: string;
  /** UID the sidecar runs as. Default 65532. */
  runAsUser?: number;
}

export interface NamespaceInfo {
  name: string;
  labels?: Readonly<Record<string, string>>;
}

export interface InjectResult {
  /** Empty when nothing changes. */
  patch: JsonPatchOp[];
  /** Why (or why not), one line each; shown as admission warnings and logged. */
  reasons: string[];
  /** Whether the pod gets (or already has) the sidecar. */
  injected: boolean;
}

/** What `dbward.io/status` records. */
export interface InjectionStatus {
  version: 1;
  sidecar: string;
  image: string;
  listenPort: number;
  policies: string[];
  rewritten: string[];
}

const skip = (reason: string): InjectResult => ({ patch: [], reasons: [reason], injected: false });

export function inject(pod: V1Pod, namespace: NamespaceInfo, policies: readonly DataAccessPolicy[], settings: InjectSettings): InjectResult {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const podName = pod.metadata?.name ?? pod.metadata?.generateName ?? '<unnamed>';
  if (NEVER_NAMESPACES.has(namespace.name)) return skip(`namespace ${namespace.name} is never injected`);
  if (namespace.name === settings.operatorNamespace) return skip(`namespace ${namespace.name} is the operator's own`);
  if (namespace.labels?.[INJECTION_LABEL] !== 'enabled') return skip(`namespace ${namespace.name} is not labelled ${INJECTION_LABEL}=enabled`);
  if (annotations[INJECT_ANNOTATION] === 'false') return skip(`pod ${podName} opted out (${INJECT_ANNOTATION}: "false")`);
  if (labels[INJECT_ANNOTATION] === 'false') return skip(`pod ${podName} opted out (label ${INJECT_ANNOTATION}: "false")`);
  if (pod.spec?.hostNetwork === true) return skip(`pod ${podName} uses hostNetwork: its loopback is the node's`);

  const selecting = policies
    .filter((p) => matchesSelector(p.spec.workloadSelector, labels))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (selecting.length === 0) return skip(`no Ready DataAccessPolicy in ${namespace.name} selects pod ${podName}`);

  const reasons: string[] = [`selected by ${selecting.map((p) => p.metadata.name).join(', ')}`];
  const first = selecting[0] as DataAccessPolicy;
  const listen = first.spec.listen;
  const withUpstream = selecting.find((p) => p.spec.upstream !== undefined);
  for (const p of selecting.slice(1)) {
    if (p.spec.listen.port !== listen.port || p.spec.listen.envVar !== listen.envVar) {
      reasons.push(`warning: ${p.metadata.name} sets a different listen; ${first.metadata.name}'s (first by name) is used`);
    }
    if (p.spec.upstream !== undefined && p !== withUpstream && JSON.stringify(p.spec.upstream) !== JSON.stringify(withUpstream?.spec.upstream)) {
      reasons.push(`warning: ${p.metadata.name} sets a different upstream; ${withUpstream?.metadata.name ?? ''}'s (first by name) is used`);
    }
  }

  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  const already = initContainers.some((c) => c.name === SIDECAR_NAME);
  const patch: JsonPatchOp[] = [];

  // The app containers' database URL → the sidecar (also on reinvocation, for containers added since).
  const rewritten: string[] = [];
  let originalUrl: URL | undefined;
  if (listen.envVar !== undefined) {
    containers.forEach((c, ci) => {
      (c.env ?? []).forEach((e, ei) => {
        if (e.name !== listen.envVar) return;
        if (e.value === undefined) {
          reasons.push(`warning: ${c.name}: ${e.name} comes from valueFrom, not rewritten; point it at postgres://127.0.0.1:${listen.port}`);
          return;
        }
        const url = parsePgUrl(e.value);
        if (url === undefined) {
          reasons.push(`warning: ${c.name}: ${e.name} is not a postgres:// URL, not rewritten`);
          return;
        }
        if (url.hostname === '127.0.0.1' && url.port === String(listen.port)) return; // done before
        originalUrl ??= new URL(url.href);
        const next = rewriteUrl(url, listen.port);
        patch.push({ op: 'replace', path: pointer('spec', 'containers', ci, 'env', ei, 'value'), value: next });
        rewritten.push(`${c.name}/${e.name}`);
      });
    });
    if (rewritten.length > 0) reasons.push(`rewrote ${rewritten.join(', ')} to postgres://127.0.0.1:${listen.port}`);
  }
  if (already) {
    reasons.push('sidecar already present (reinvocation)');
    return { patch, reasons, injected: true };
  }

  const upstream = upstreamUrl(withUpstream, originalUrl);
  if (upstream === undefined) {
    return skip(`no upstream: none of ${selecting.map((p) => p.metadata.name).join(', ')} sets spec.upstream, and ${listen.envVar ?? 'listen.envVar'} gives no URL to derive it from`);
  }
  if (withUpstream === undefined) reasons.push(`upstream derived from ${listen.envVar ?? ''}: ${upstream.display}`);

  // SPEC §3: spec.environment, else the namespace label dbward.io/environment.
  const environment = selecting.find((p) => p.spec.environment !== undefined)?.spec.environment ?? namespace.labels?.[ENVIRONMENT_LABEL];
  const sidecar = sidecarContainer(first, withUpstream, upstream.url, environment, settings);
  const volumes = sidecarVolumes(settings);
  if (pod.metadata?.annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: {} });
  const status: InjectionStatus = {
    version: 1,
    sidecar: SIDECAR_NAME,
    image: settings.image,
    listenPort: listen.port,
    policies: selecting.map((p) => p.metadata.name),
    rewritten,
  };
  patch.push({ op: 'add', path: pointer('metadata', 'annotations', STATUS_ANNOTATION), value: JSON.stringify(status) });
  // First init container: a native sidecar starts (and passes its startupProbe) before every other init container and the app.
  if (pod.spec?.initContainers === undefined) patch.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
  const taken = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  const clash = volumes.find((v) => taken.has(v.name));
  if (clash !== undefined) return skip(`pod ${podName} already has a volume named ${clash.name}`);
  // The projected token needs a service account. The ServiceAccount admission plugin sets `default`
  // before webhooks run; where it is off (envtest-like API servers) the pod would be invalid.
  if (pod.spec?.serviceAccountName === undefined && pod.spec?.serviceAccount === undefined) {
    patch.push({ op: 'add', path: '/spec/serviceAccountName', value: 'default' });
    reasons.push('serviceAccountName set to default (needed by the control-plane token)');
  }
  if (pod.spec?.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else for (const v of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  reasons.push(`injected ${SIDECAR_NAME} (${settings.image}) listening on 127.0.0.1:${listen.port}`);
  return { patch, reasons, injected: true };
}

/** The pod as it will be stored: `inject` applied. For tests and for running an injected pod spec locally. */
export function injectedPod(pod: V1Pod, namespace: NamespaceInfo, policies: readonly DataAccessPolicy[], settings: InjectSettings): { pod: V1Pod; result: InjectResult } {
  const result = inject(pod, namespace, policies, settings);
  return { pod: applyPatch(pod, result.patch), result };
}

function parsePgUrl(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'postgres:' || url.protocol === 'postgresql:' ? url : undefined;
  } catch {
    return undefined;
  }
}

const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslcrl', 'sslpassword', 'sslnegotiation'];

/** Same user, password, database and other parameters; host:port → the sidecar; no TLS on loopback. */
function rewriteUrl(url: URL, port: number): string {
  const next = new URL(url.href);
  next.hostname = '127.0.0.1';
  next.port = String(port);
  for (const p of TLS_PARAMS) next.searchParams.delete(p);
  next.searchParams.set('sslmode', 'disable');
  return next.href;
}

function upstreamUrl(policy: DataAccessPolicy | undefined, original: URL | undefined): { url: string; display: string } | undefined {
  const up = policy?.spec.upstream;
  if (up !== undefined) {
    const creds = up.credentialsSecretRef !== undefined ? '$(DBWARD_UPSTREAM_USERNAME):$(DBWARD_UPSTREAM_PASSWORD)@' : '';
    const host = up.host.includes(':') ? `[${up.host}]` : up.host;
    const url = `postgres://${creds}${host}:${up.port}?sslmode=${up.sslmode}`;
    return { url, display: url };
  }
  if (original === undefined) return undefined;
  const sslmode = original.searchParams.get('sslmode') ?? 'prefer';
  const url = `postgres://${original.hostname}:${original.port || '5432'}?sslmode=${encodeURIComponent(sslmode)}`;
  return { url, display: url };
}

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function sidecarContainer(first: DataAccessPolicy, withUpstream: DataAccessPolicy | undefined, upstream: string, environment: string | undefined, s: InjectSettings): V1Container {
  const adminPort = s.adminPort ?? 9901;
  const listen = first.spec.listen;
  const secret = withUpstream?.spec.upstream?.credentialsSecretRef;
  const env: V1EnvVar[] = [
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_UID', 'metadata.uid'),
    fieldEnv('POD_SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    ...(secret !== undefined
      ? [
          { name: 'DBWARD_UPSTREAM_USERNAME', valueFrom: { secretKeyRef: { name: secret.name, key: 'username' } } },
          { name: 'DBWARD_UPSTREAM_PASSWORD', valueFrom: { secretKeyRef: { name: secret.name, key: 'password' } } },
        ]
      : []),
    { name: 'DBWARD_UPSTREAM', value: upstream },
    { name: 'DBWARD_LISTEN', value: `127.0.0.1:${listen.port}` },
    { name: 'DBWARD_ADMIN', value: `127.0.0.1:${adminPort}` },
    { name: 'DBWARD_IDENTITY', value: 'namespace=$(POD_NAMESPACE),pod=$(POD_NAME),serviceAccount=$(POD_SERVICE_ACCOUNT)' },
    { name: 'DBWARD_IDENTITY_LABELS_FILE', value: `${PATHS.podinfo}/labels` },
    { name: 'DBWARD_CONTROL_PLANE', value: s.controlPlane },
    { name: 'DBWARD_CONTROL_PLANE_TOKEN_FILE', value: `${PATHS.token}/token` },
    { name: 'DBWARD_CONTROL_PLANE_CA_FILE', value: `${PATHS.ca}/${CA_CONFIGMAP_KEY}` },
    { name: 'DBWARD_POLICY_CACHE_DIR', value: PATHS.cache },
    ...(environment !== undefined ? [{ name: 'DBWARD_ENVIRONMENT', value: environment }] : []),
    ...(s.otlpEndpoint !== undefined ? [{ name: 'DBWARD_OTLP_ENDPOINT', value: s.otlpEndpoint }] : []),
  ];
  return {
    name: SIDECAR_NAME,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy ?? 'IfNotPresent',
    restartPolicy: 'Always',
    env,
    // Probes come from the kubelet to the pod IP, but the sidecar only listens on loopback: exec.
    startupProbe: {
      exec: { command: ['node', '-e', `fetch('http://127.0.0.1:${adminPort}/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`] },
      periodSeconds: 1,
      timeoutSeconds: 2,
      failureThreshold: 120,
    },
    livenessProbe: {
      exec: { command: ['node', '-e', `fetch('http://127.0.0.1:${adminPort}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`] },
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    resources: s.resources ?? { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: s.runAsUser ?? 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUMES.token, mountPath: PATHS.token, readOnly: true },
      { name: VOLUMES.ca, mountPath: PATHS.ca, readOnly: true },
      { name: VOLUMES.podinfo, mountPath: PATHS.podinfo, readOnly: true },
      { name: VOLUMES.cache, mountPath: PATHS.cache },
    ],
  };
}

function sidecarVolumes(s: InjectSettings): V1Volume[] {
  return [
    {
      name: VOLUMES.token,
      projected: {
        sources: [{ serviceAccountToken: { audience: CONTROL_PLANE_AUDIENCE, expirationSeconds: Math.max(600, s.tokenExpirationSeconds ?? 600), path: 'token' } }],
      },
    },
    { name: VOLUMES.ca, configMap: { name: CA_CONFIGMAP, items: [{ key: CA_CONFIGMAP_KEY, path: CA_CONFIGMAP_KEY }] } },
    { name: VOLUMES.podinfo, downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
    { name: VOLUMES.cache, emptyDir: { sizeLimit: '16Mi' } },
  ];
}
