import { isIP } from 'node:net';
import { experimental, Server, ServerCredentials, type ServerOptions, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, controlPlaneService, HELLO_TIMEOUT_MS } from '@dbward/sidecar/controlplane';
import { pino } from 'pino';
import { newMetrics, type ControlPlaneMetrics } from './metrics.js';
import type { AccessRequestStore, ControlPlaneLogger, PodLookup, PolicySource, RejectionSink, TokenVerifier } from './ports.js';
import { buildSnapshot, type SnapshotContent } from './snapshot.js';
import { SidecarStream, type SubscribeCall } from './stream.js';

/**
 * The gRPC control plane (docs/control-plane.md, ADR 0018): sidecars subscribe, the server pushes
 * each one the versioned snapshot of the Ready policies that select its pod, records NACKs, and
 * carries approvals to AccessRequests and decisions back.
 *
 * Fan-out: a policy change in a namespace computes one snapshot per distinct label set of the
 * sidecars subscribed there (not one per sidecar), once per burst of changes, and offers it to
 * every stream of that label set; streams skip versions they already have.
 */

export interface ControlPlanePorts {
  tokens: TokenVerifier;
  pods: PodLookup;
  policies: PolicySource;
  rejections: RejectionSink;
  accessRequests: AccessRequestStore;
}

export interface ControlPlaneTls {
  /** PEM serving certificate (chain) and key. */
  cert: Buffer;
  key: Buffer;
  /** PEM CA bundle to verify client certificates; when given, sidecars must present one. Sidecars authenticate with tokens, so this is optional. */
  clientCa?: Buffer;
  /**
   * Certificate rotation: called once with a listener; the server serves each new chain given to
   * it for new connections (open streams keep theirs). Returns an unsubscribe function.
   */
  watch?: (listener: (next: { cert: Buffer; key: Buffer }) => void) => () => void;
}

export interface ControlPlaneOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  address: string;
  /** Required unless `address` is a loopback address (plaintext is for tests only). */
  tls?: ControlPlaneTls;
  ports: ControlPlanePorts;
  /** A pino logger fits; default silent. */
  log?: ControlPlaneLogger;
  /** A stream that has not said Hello by then is closed. Default 10 s. */
  helloTimeoutMs?: number;
}

export interface SidecarStatus {
  namespace: string;
  pod: string;
  serviceAccount: string;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  nackedVersion: string | undefined;
}

export interface ControlPlane {
  readonly host: string;
  readonly port: number;
  /** Live counters (the same object; read it, do not write it). */
  readonly metrics: Readonly<ControlPlaneMetrics>;
  /** One line per subscribed sidecar. */
  sidecars(): SidecarStatus[];
  /** Stops accepting, ends every stream with UNAVAILABLE, and waits up to `graceMs` for them to go. */
  close(graceMs?: number): Promise<void>;
}

export class ControlPlaneConfigError extends Error {
  override readonly name = 'ControlPlaneConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { host } = splitAddress(options.address);
  if (options.tls === undefined && !isLoopback(host)) {
    throw new ControlPlaneConfigError(`the control plane needs TLS (cert and key) to listen on ${host}; plaintext is allowed on loopback only`);
  }
  const log = options.log ?? pino({ level: 'silent' });
  const metrics = newMetrics();
  const hub = new SnapshotHub(options.ports.policies, options.ports.pods, log);
  const serverOptions: ServerOptions = {
    ...CHANNEL_OPTIONS,
    // A sidecar stream lives as long as the pod; streams per connection are not limited.
    'grpc.max_concurrent_streams': 0x7fffffff,
  };
  delete serverOptions['grpc.keepalive_permit_without_calls'];
  const server = new Server(serverOptions);
  const implementation: UntypedServiceImplementation = {
    Subscribe: (call: SubscribeCall) => {
      if (hub.closed) {
        call.emit('error', { code: 14, details: 'the control plane is shutting down' });
        return;
      }
      const stream = new SidecarStream(call, {
        ...options.ports,
        metrics,
        log,
        helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
        subscribe: (s) => hub.add(s),
        unsubscribe: (s) => hub.remove(s),
      });
      hub.track(stream);
      stream.start();
    },
  };
  server.addService(controlPlaneService(), implementation);
  const rotating = options.tls?.watch !== undefined ? rotatingCredentials(options.tls, log) : undefined;
  const credentials =
    options.tls === undefined
      ? ServerCredentials.createInsecure()
      : (rotating?.credentials ?? ServerCredentials.createSsl(options.tls.clientCa ?? null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], options.tls.clientCa !== undefined));
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => server.bindAsync(options.address, credentials, (error, bound) => (error ? reject(error) : resolve(bound))));
  } catch (cause) {
    hub.close();
    rotating?.stop();
    throw new ControlPlaneConfigError(`cannot listen on ${options.address}: ${(cause as Error).message}`, { cause });
  }
  log.info({ address: `${host}:${port}`, tls: options.tls !== undefined }, 'control plane listening');
  return {
    host,
    port,
    metrics,
    sidecars: () => hub.statuses(),
    close: async (graceMs = 5_000) => {
      hub.close();
      rotating?.stop();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      log.info({ address: `${host}:${port}` }, 'control plane stopped');
    },
  };
}

/** Subscribed streams per namespace, and the snapshots they share. */
class SnapshotHub {
  closed = false;
  readonly #all = new Set<SidecarStream>();
  readonly #byNamespace = new Map<string, Set<SidecarStream>>();
  /** Snapshots per namespace and label set, valid until the namespace changes. */
  readonly #cache = new Map<string, Map<string, SnapshotContent>>();
  readonly #scheduled = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly policies: PolicySource,
    pods: PodLookup,
    private readonly log: ControlPlaneLogger,
  ) {
    this.#unsubscribe.push(policies.onChange((namespace) => this.#changed(namespace)));
    if (pods.onChange !== undefined) this.#unsubscribe.push(pods.onChange((namespace, pod) => void this.#relabelled(namespace, pod)));
  }

  /** Every stream, subscribed or not (for shutdown). */
  track(stream: SidecarStream): void {
    this.#all.add(stream);
  }

  add(stream: SidecarStream): void {
    if (this.closed) return stream.shutdown();
    const namespace = stream.namespace;
    const streams = this.#byNamespace.get(namespace) ?? new Set();
    this.#byNamespace.set(namespace, streams);
    streams.add(stream);
    stream.offer(this.#snapshot(namespace, stream));
  }

  remove(stream: SidecarStream): void {
    this.#all.delete(stream);
    const streams = this.#byNamespace.get(stream.namespace);
    streams?.delete(stream);
    if (streams?.size === 0) {
      this.#byNamespace.delete(stream.namespace);
      this.#cache.delete(stream.namespace);
    }
  }

  statuses(): SidecarStatus[] {
    return [...this.#byNamespace.values()].flatMap((streams) =>
      [...streams].map((s) => ({
        namespace: s.namespace,
        pod: s.identity?.pod ?? '',
        serviceAccount: s.identity?.serviceAccount ?? '',
        sentVersion: s.sentVersion,
        ackedVersion: s.ackedVersion,
        nackedVersion: s.nackedVersion,
      })),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    for (const stream of [...this.#all]) stream.shutdown();
    this.#all.clear();
    this.#byNamespace.clear();
  }

  #snapshot(namespace: string, stream: SidecarStream): SnapshotContent {
    const byLabels = this.#cache.get(namespace) ?? new Map<string, SnapshotContent>();
    this.#cache.set(namespace, byLabels);
    let content = byLabels.get(stream.labelsKey);
    if (content === undefined) {
      content = buildSnapshot(namespace, this.policies.list(namespace), stream.labels);
      byLabels.set(stream.labelsKey, content);
    }
    return content;
  }

  /** A pod was relabelled: its stream gets the snapshot of its new label set. */
  async #relabelled(namespace: string, pod: string): Promise<void> {
    for (const stream of this.#byNamespace.get(namespace) ?? []) {
      if (stream.identity?.pod !== pod) continue;
      if ((await stream.relabel()) && !this.closed) stream.offer(this.#snapshot(namespace, stream));
    }
  }

  /** Coalesces a burst of changes into one recomputation per namespace (on the next turn of the event loop). */
  #changed(namespace: string): void {
    if (this.closed || !this.#byNamespace.has(namespace) || this.#scheduled.has(namespace)) return;
    this.#scheduled.add(namespace);
    setImmediate(() => {
      this.#scheduled.delete(namespace);
      this.#cache.delete(namespace);
      const streams = this.#byNamespace.get(namespace);
      if (streams === undefined || this.closed) return;
      const started = performance.now();
      for (const stream of streams) {
        try {
          stream.offer(this.#snapshot(namespace, stream));
        } catch (error) {
          this.log.error({ err: error, namespace, pod: stream.identity?.pod }, 'offering a snapshot failed');
        }
      }
      this.log.debug({ namespace, streams: streams.size, labelSets: this.#cache.get(namespace)?.size ?? 0, ms: Math.round(performance.now() - started) }, 'snapshots offered');
    });
  }
}

/**
 * TLS credentials whose chain can change under a running server: grpc-js's certificate-provider
 * credentials (experimental API) fed from `tls.watch`. New connections get the newest chain.
 */
function rotatingCredentials(tls: ControlPlaneTls, log: ControlPlaneLogger): { credentials: ServerCredentials; stop: () => void } {
  type Update = { certificate: Buffer; privateKey: Buffer };
  let latest: Update = { certificate: tls.cert, privateKey: tls.key };
  const listeners = new Set<(update: Update | null) => void>();
  const unwatch = tls.watch?.((next) => {
    latest = { certificate: next.cert, privateKey: next.key };
    log.info({}, 'control plane: serving a renewed certificate');
    for (const listener of listeners) listener(latest);
  });
  const provider: experimental.CertificateProvider = {
    addCaCertificateListener: () => undefined,
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (listener) => {
      listeners.add(listener);
      // Asynchronously: grpc-js registers its own watcher right after adding this listener.
      queueMicrotask(() => {
        if (listeners.has(listener)) listener(latest);
      });
    },
    removeIdentityCertificateListener: (listener) => {
      listeners.delete(listener);
    },
  };
  // grpc-js names the first parameter caCertificateProvider, but passes it on as the identity provider.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, null, false);
  return { credentials, stop: () => unwatch?.() };
}

function splitAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (match === null) throw new ControlPlaneConfigError(`expected host:port, got "${address}"`);
  return { host: (match[1] ?? match[2])!, port: Number(match[3]) };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
