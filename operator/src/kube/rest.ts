import { Agent, request, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A small JSON client for the Kubernetes REST API on top of @kubernetes/client-node's KubeConfig
 * (credentials, CA, in-cluster config). Typed objects stay plain JSON: the operator validates what it
 * reads with the zod schemas of `@dbward/sidecar/api`, and sends exactly the patch it means
 * (merge-patch for status, JSON patch for webhooks), with no serializer in between.
 */

/** A Kubernetes API error: HTTP status + the Status object's reason and message. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`, options);
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409 && e.reason === 'AlreadyExists';
export const isGone = (e: unknown): boolean => e instanceof KubeApiError && e.status === 410;

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export interface KubeList<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

/** Loads a KubeConfig: an explicit file, else $KUBECONFIG / ~/.kube/config, else in-cluster; optional context. */
export function loadKubeConfig(options: { kubeconfig?: string | undefined; context?: string | undefined; inCluster?: boolean } = {}): KubeConfig {
  const kc = new KubeConfig();
  if (options.inCluster === true) kc.loadFromCluster();
  else if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig);
  else kc.loadFromDefault();
  if (options.context !== undefined) kc.setCurrentContext(options.context);
  return kc;
}

export class KubeClient {
  readonly server: string;
  private agent: Agent | undefined;

  constructor(readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  private async options(method: string, path: string, headers: Record<string, string>): Promise<RequestOptions> {
    const opts: RequestOptions = { method, headers: { accept: 'application/json', ...headers } };
    await this.config.applyToHTTPSOptions(opts);
    this.agent ??= new Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key, ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}) });
    const url = new URL(this.server + path);
    return { ...opts, agent: this.agent, hostname: url.hostname, port: url.port, path: url.pathname + url.search, ...(opts.servername ? { servername: opts.servername } : {}) };
  }

  private async send(method: string, path: string, body: unknown, contentType: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) };
    const opts = await this.options(method, path, headers);
    const send = this.server.startsWith('http:') ? httpRequest : request;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send({ ...opts, ...(signal ? { signal } : {}) }, resolve);
      req.on('error', (cause) => reject(new KubeApiError(0, 'ConnectionError', cause.message, method, path, { cause })));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** 429 TooManyRequests (the request was not processed, e.g. a watch cache still initializing) is retried, honouring Retry-After. */
  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(method, path, body, contentType);
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const status = res.statusCode ?? 0;
      if (status === 429 && attempt < 20) {
        const after = Number(res.headers['retry-after'] ?? '0');
        await new Promise((r) => setTimeout(r, Math.min(Number.isFinite(after) && after > 0 ? after * 1000 : 250, 2_000)));
        continue;
      }
      if (status < 200 || status >= 300) throw apiError(status, text, method, path);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    }
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  patch<T>(path: string, patch: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, patch, PATCH_CONTENT[type]);
  }
  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /**
   * Watches `path` from `resourceVersion` until the server ends the stream, `signal` aborts, or an
   * ERROR event arrives (thrown as KubeApiError, e.g. 410 Gone). Resolves the last resourceVersion seen.
   */
  async watch<T extends KubeObject>(path: string, resourceVersion: string, onEvent: (event: WatchEvent<T>) => void, signal?: AbortSignal, timeoutSeconds = 300): Promise<string> {
    const sep = path.includes('?') ? '&' : '?';
    const full = `${path}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${timeoutSeconds}`;
    let last = resourceVersion;
    let res: IncomingMessage;
    try {
      res = await this.send('GET', full, undefined, '', signal);
    } catch (error) {
      if (signal?.aborted === true) return last;
      throw error;
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      throw apiError(status, Buffer.concat(chunks).toString('utf8'), 'GET', full);
    }
    // A connection that died without a FIN/RST would hang forever: the server sends bookmarks and
    // ends the watch after timeoutSeconds, so silence beyond that means it is gone.
    res.setTimeout((timeoutSeconds + 60) * 1000, () => res.destroy(new KubeApiError(0, 'WatchIdle', 'no data on the watch connection', 'WATCH', path)));
    let buffered = '';
    try {
      for await (const chunk of res) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          const event = JSON.parse(line) as WatchEvent<T>;
          if (event.type === 'ERROR') {
            const s = event.object as unknown as { code?: number; reason?: string; message?: string };
            throw new KubeApiError(s.code ?? 500, s.reason ?? 'WatchError', s.message ?? 'watch error', 'WATCH', path);
          }
          const rv = event.object.metadata?.resourceVersion;
          if (rv !== undefined) last = rv;
          onEvent(event);
        }
      }
    } catch (error) {
      if (signal?.aborted === true && !(error instanceof KubeApiError)) return last;
      throw error;
    }
    return last;
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

function apiError(status: number, text: string, method: string, path: string): KubeApiError {
  let reason = 'Unknown';
  let message = text.slice(0, 500);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? reason;
    message = s.message ?? message;
  } catch {
    // not a Status object
  }
  return new KubeApiError(status, reason, message, method, path);
}

/** REST path of a namespaced resource collection or object. */
export function resourcePath(r: { group: string; version: string; plural: string }, namespace?: string, name?: string, sub?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return `${base}${namespace !== undefined ? `/namespaces/${namespace}` : ''}/${r.plural}${name !== undefined ? `/${name}` : ''}${sub !== undefined ? `/${sub}` : ''}`;
}
