import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { OperatorOptions } from './operator.js';

/**
 * dbward-operator's flags; each also reads an environment variable (flags win). Pure apart from
 * reading the in-cluster namespace file.
 */

export class OperatorConfigError extends Error {
  override readonly name = 'OperatorConfigError';
}

const FLAGS = {
  kubeconfig: 'KUBECONFIG',
  context: 'DBWARD_KUBE_CONTEXT',
  namespace: 'DBWARD_OPERATOR_NAMESPACE',
  'webhook-port': 'DBWARD_WEBHOOK_PORT',
  'webhook-host': 'DBWARD_WEBHOOK_HOST',
  'webhook-configuration': 'DBWARD_WEBHOOK_CONFIGURATION',
  'leader-election-id': 'DBWARD_LEADER_ELECTION_ID',
  'service-name': 'DBWARD_SERVICE_NAME',
  'cert-secret': 'DBWARD_CERT_SECRET',
  'control-plane-port': 'DBWARD_CONTROL_PLANE_PORT',
  'control-plane-host': 'DBWARD_CONTROL_PLANE_HOST',
  'sidecar-image': 'DBWARD_SIDECAR_IMAGE',
  'sidecar-otlp-endpoint': 'DBWARD_SIDECAR_OTLP_ENDPOINT',
  'log-level': 'DBWARD_LOG_LEVEL',
} as const;

export const OPERATOR_USAGE = `usage: dbward-operator [--kubeconfig file] [--context name] [--namespace ns]
                      [--webhook-port 9443] [--webhook-host 0.0.0.0] [--webhook-configuration dbward-sidecar-injector]
                      [--leader-election-id dbward-operator] [--service-name dbward-operator] [--cert-secret dbward-operator-tls]
                      [--control-plane-port 9444] [--control-plane-host 0.0.0.0] --sidecar-image image [--sidecar-otlp-endpoint url] [--log-level info]
Every flag also reads an environment variable: ${Object.entries(FLAGS).map(([f, e]) => `--${f} -> ${e}`).join(', ')}.
Without a kubeconfig the in-cluster service account is used; the namespace defaults to the pod's own.`;

export interface OperatorConfig {
  options: Omit<OperatorOptions, 'log'>;
  controlPlanePort: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export function parseOperatorConfig(argv: readonly string[], env: NodeJS.ProcessEnv, readNamespaceFile: () => string | undefined = defaultNamespaceFile): OperatorConfig | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: { ...Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])), help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    throw new OperatorConfigError((error as Error).message.replace(/\. To specify.*$/s, ''), { cause: error });
  }
  if (values['help'] === true) return 'help';
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const e = env[FLAGS[flag]];
    return e === undefined || e === '' ? undefined : e;
  };
  const port = (flag: keyof typeof FLAGS, fallback: number): number => {
    const raw = get(flag);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new OperatorConfigError(`--${flag}: not a port: ${raw}`);
    return n;
  };
  const kubeconfig = get('kubeconfig');
  const inCluster = kubeconfig === undefined && env['KUBERNETES_SERVICE_HOST'] !== undefined;
  const namespace = get('namespace') ?? env['POD_NAMESPACE'] ?? (inCluster ? readNamespaceFile() : undefined);
  if (namespace === undefined) throw new OperatorConfigError('--namespace is required outside a cluster (the operator\'s own namespace)');
  const image = get('sidecar-image');
  if (image === undefined) throw new OperatorConfigError('--sidecar-image is required (the image injected into pods)');
  const logLevel = get('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new OperatorConfigError(`--log-level: debug, info, warn or error, not ${logLevel}`);
  const service = get('service-name') ?? 'dbward-operator';
  const controlPlanePort = port('control-plane-port', 9444);
  const otlp = get('sidecar-otlp-endpoint');
  const context = get('context');
  const webhookHost = get('webhook-host');
  const controlPlaneHost = get('control-plane-host');
  return {
    controlPlanePort,
    logLevel: logLevel as OperatorConfig['logLevel'],
    options: {
      ...(kubeconfig !== undefined ? { kubeconfig } : {}),
      ...(context !== undefined ? { context } : {}),
      inCluster,
      namespace,
      leaseName: get('leader-election-id') ?? 'dbward-operator',
      serviceName: service,
      certSecretName: get('cert-secret') ?? 'dbward-operator-tls',
      webhookPort: port('webhook-port', 9443),
      ...(webhookHost !== undefined ? { webhookHost } : {}),
      webhookConfigurationName: get('webhook-configuration') ?? 'dbward-sidecar-injector',
      controlPlane: { port: controlPlanePort, ...(controlPlaneHost !== undefined ? { host: controlPlaneHost } : {}) },
      inject: {
        image,
        controlPlane: `${service}.${namespace}.svc:${controlPlanePort}`,
        ...(otlp !== undefined ? { otlpEndpoint: otlp } : {}),
      },
    },
  };
}

function defaultNamespaceFile(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
