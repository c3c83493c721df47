import { request, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * The few Kubernetes calls `kubectl dbward` makes, over the kubeconfig's credentials (KUBECONFIG,
 * --kubeconfig, --context; in-cluster when nothing else is configured).
 */

export class KubeCallError extends Error {
  override readonly name = 'KubeCallError';
  constructor(readonly status: number, readonly reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface KubeTarget {
  config: KubeConfig;
  /** --namespace, else the context's namespace, else default. */
  namespace: string;
}

export function loadKube(options: { kubeconfig?: string | undefined; context?: string | undefined; namespace?: string | undefined }): KubeTarget {
  const config = new KubeConfig();
  try {
    if (options.kubeconfig !== undefined) config.loadFromFile(options.kubeconfig);
    else config.loadFromDefault();
    if (options.context !== undefined) config.setCurrentContext(options.context);
  } catch (cause) {
    throw new KubeCallError(0, 'Config', `cannot load the kubeconfig: ${(cause as Error).message}`, { cause });
  }
  if (config.getCurrentCluster() === null) throw new KubeCallError(0, 'Config', 'the kubeconfig has no current cluster (set --context or KUBECONFIG)');
  const ctxNamespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return { config, namespace: options.namespace ?? ctxNamespace ?? 'default' };
}

export async function kubeCall<T>(config: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new KubeCallError(0, 'Config', 'no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const opts: RequestOptions = {
    method,
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    headers: { accept: 'application/json', ...(payload !== undefined ? { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) } : {}) },
    timeout: 15_000,
  };
  await config.applyToHTTPSOptions(opts);
  const send = url.protocol === 'http:' ? httpRequest : request;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (cause) => reject(new KubeCallError(0, 'Connection', `cannot reach the API server at ${url.host}: ${cause.message}`, { cause })));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
  if (status < 200 || status >= 300) {
    let reason = 'Unknown';
    let message = text.slice(0, 300);
    try {
      const s = JSON.parse(text) as { reason?: string; message?: string };
      reason = s.reason ?? reason;
      message = s.message ?? message;
    } catch {
      // not a Status
    }
    throw new KubeCallError(status, reason, message);
  }
  return JSON.parse(text) as T;
}

/** The authenticated user name, as the API server sees it (SelfSubjectReview). */
export async function whoAmI(config: KubeConfig): Promise<string> {
  const review = await kubeCall<{ status?: { userInfo?: { username?: string } } }>(config, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  const name = review.status?.userInfo?.username;
  if (name === undefined || name === '') throw new KubeCallError(0, 'Unknown', 'the API server did not say who you are (SelfSubjectReview)');
  return name;
}
