import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AccessRequestStore, ControlPlaneLogger, PodLookup, PolicySource, RejectionSink, TokenVerifier } from './controlplane/ports.js';
import { startControlPlane, type ControlPlane } from './controlplane/server.js';
import { PolicyController, type Logger } from './controller/controller.js';
import { KubeAccessRequestStore } from './kube/access-requests.js';
import { CaConfigMaps } from './kube/ca-configmaps.js';
import { Informer } from './kube/informer.js';
import { KubePodLookup } from './kube/pod-lookup.js';
import { KubeClient, loadKubeConfig, type KubeObject } from './kube/rest.js';
import { KubeTokenVerifier } from './kube/token-verifier.js';
import { CertManager, patchCaBundle, type ServingCertificate } from './tls/manager.js';
import type { InjectSettings } from './webhook/inject.js';
import { startWebhookServer, type WebhookServer } from './webhook/server.js';

/**
 * The operator, in-process: everything main.ts starts, as one function, so tests (and the lead's
 * end-to-end test) can run it against any kubeconfig. With `controlPlane` it also serves the gRPC
 * control plane (docs/control-plane.md) with the Kubernetes-backed ports below, over TLS with the
 * same serving chain as the webhook (renewals are picked up for new connections).
 */

export interface OperatorControlPlaneOptions {
  /** Default 0.0.0.0. */
  host?: string;
  /** Default 9444 (the chart's Service port `grpc`); 0 picks a free port. */
  port?: number;
}

export interface OperatorOptions {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  /** The operator's own namespace (Lease, certificate Secret; never injected). */
  namespace: string;
  /** Unique per replica; default `<hostname>-<random>`. */
  identity?: string;
  leaseName?: string;
  leaseDurationSeconds?: number;
  renewMs?: number;
  retryMs?: number;
  /** Service in front of the operator: the certificate's DNS names derive from it. */
  serviceName?: string;
  /** Extra SANs (e.g. 127.0.0.1 when the API server calls a local process). */
  extraCertNames?: readonly string[];
  certSecretName?: string;
  webhookHost?: string;
  webhookPort: number;
  /** MutatingWebhookConfiguration whose caBundle the operator maintains. */
  webhookConfigurationName?: string;
  /** Serve the gRPC control plane (issue #6); off when absent. */
  controlPlane?: OperatorControlPlaneOptions;
  /** Sidecar settings for injected pods (operatorNamespace is filled in). */
  inject: Omit<InjectSettings, 'operatorNamespace'>;
  log: Logger;
}

export interface OperatorHandle {
  readonly client: KubeClient;
  readonly controller: PolicyController;
  readonly policySource: PolicySource;
  readonly rejectionSink: RejectionSink;
  readonly tokenVerifier: TokenVerifier;
  readonly podLookup: PodLookup;
  readonly accessRequests: AccessRequestStore;
  readonly certs: CertManager;
  readonly webhook: WebhookServer;
  /** The gRPC control plane, when `controlPlane` was given. */
  readonly controlPlane: ControlPlane | undefined;
  /** The serving chain for the gRPC control plane (same CA as the webhook). */
  servingCertificate(): ServingCertificate;
  stop(): Promise<void>;
}

export async function startOperator(options: OperatorOptions): Promise<OperatorHandle> {
  const { log, namespace } = options;
  const client = new KubeClient(loadKubeConfig({ kubeconfig: options.kubeconfig, context: options.context, inCluster: options.inCluster === true }));
  const identity = options.identity ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
  const service = options.serviceName ?? 'dbward-operator';
  const configurationName = options.webhookConfigurationName ?? 'dbward-sidecar-injector';
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (error) {
        log.warn({ err: error }, 'shutdown step failed');
      }
    }
    client.close();
  };
  try {
    const controller = new PolicyController({
      client,
      namespace,
      leaseName: options.leaseName ?? 'dbward-operator',
      identity,
      log,
      ...(options.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: options.leaseDurationSeconds } : {}),
      ...(options.renewMs !== undefined ? { renewMs: options.renewMs } : {}),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
    await controller.start();
    stops.push(() => controller.stop());

    const namespaces = new Informer<KubeObject>(client, '/api/v1/namespaces', { onError: (error) => log.warn({ err: error }, 'namespace watch failed') });
    await namespaces.start();
    stops.push(() => namespaces.stop());

    const certs = new CertManager({
      client,
      namespace,
      secretName: options.certSecretName ?? 'dbward-operator-tls',
      names: [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, service, ...(options.extraCertNames ?? [])],
      onError: (error) => log.error({ err: error }, 'certificate renewal failed'),
    });
    const caMaps = new CaConfigMaps(client, namespaces, namespace, (error) => log.warn({ err: error }, 'could not write the dbward-ca ConfigMap'));
    const publishCa = async (cert: ServingCertificate): Promise<void> => {
      const result = await patchCaBundle(client, configurationName, cert.ca).catch((error: unknown) => {
        log.warn({ err: error }, 'could not patch the webhook caBundle');
        return 'failed';
      });
      if (result === 'missing') log.warn({ configuration: configurationName }, 'MutatingWebhookConfiguration not found; caBundle not set');
      await caMaps.setBundle(cert.ca);
    };
    certs.onRotate((cert) => void publishCa(cert));
    await certs.start();
    stops.push(() => certs.stop());
    await publishCa(certs.current());
    // The configuration may appear after us (Helm hooks, kubectl apply): keep its caBundle right.
    const caTimer = setInterval(() => void publishCa(certs.current()), 30_000);
    caTimer.unref();
    stops.push(() => clearInterval(caTimer));

    const webhook = await startWebhookServer({
      ...(options.webhookHost !== undefined ? { host: options.webhookHost } : {}),
      port: options.webhookPort,
      certs,
      log,
      ready: () => controller.informer.synced && namespaces.synced,
      context: {
        namespace: (name) => {
          const ns = namespaces.get(undefined, name);
          return ns === undefined ? undefined : { name, labels: ns.metadata.labels ?? {} };
        },
        policies: (ns) => controller.policySource.list(ns).map((p) => p.policy),
        settings: { ...options.inject, operatorNamespace: namespace },
      },
    });
    stops.push(() => webhook.close());

    const accessRequests = new KubeAccessRequestStore(client, (error) => log.warn({ err: error }, 'AccessRequest watch'));
    stops.push(() => accessRequests.stop());
    const tokenVerifier = new KubeTokenVerifier(client);
    const podLookup = new KubePodLookup(client);

    let controlPlane: ControlPlane | undefined;
    if (options.controlPlane !== undefined) {
      const host = options.controlPlane.host ?? '0.0.0.0';
      const first = certs.current();
      controlPlane = await startControlPlane({
        address: `${host.includes(':') ? `[${host}]` : host}:${options.controlPlane.port ?? 9444}`,
        tls: {
          cert: Buffer.from(first.cert),
          key: Buffer.from(first.key),
          watch: (listener) => certs.onRotate((next) => listener({ cert: Buffer.from(next.cert), key: Buffer.from(next.key) })),
        },
        ports: { tokens: tokenVerifier, pods: podLookup, policies: controller.policySource, rejections: controller.rejectionSink, accessRequests },
        log: controlPlaneLogger(log),
      });
      const cp = controlPlane;
      // Pushed last, so stopped first: sidecars get UNAVAILABLE and reconnect to another replica.
      stops.push(() => cp.close());
    }
    log.info({ identity, namespace, webhookPort: webhook.port, ...(controlPlane !== undefined ? { controlPlanePort: controlPlane.port } : {}) }, 'operator started');
    return {
      client,
      controller,
      policySource: controller.policySource,
      rejectionSink: controller.rejectionSink,
      tokenVerifier,
      podLookup,
      accessRequests,
      certs,
      webhook,
      controlPlane,
      servingCertificate: () => certs.current(),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function controlPlaneLogger(log: Logger): ControlPlaneLogger {
  return {
    debug: (obj, msg) => log.debug?.(obj, msg),
    info: (obj, msg) => log.info(obj, msg),
    warn: (obj, msg) => log.warn(obj, msg),
    error: (obj, msg) => log.error(obj, msg),
  };
}
