#!/usr/bin/env node
import { createSecureContext, type SecureContext } from 'node:tls';
import { getSystemErrorName } from 'node:util';
import { parseCli, USAGE, type NativeIoMode, type SidecarConfig } from './config/cli.js';
import { ConfigError } from './config/errors.js';
import { AdminServer } from './admin/server.js';
import { createAudit, resolveAuditConfig, type Audit, type AuditConfig } from './audit/index.js';
import { ApprovalRegistry } from './approvals/registry.js';
import { createLogger, type Logger } from './log/logger.js';
import { FdioUnavailable, loadFdio, type Fdio } from './net/fdio.js';
import type { ControlPlaneClient } from './controlplane/client.js';
import { PolicyWatcher, reloadOnSighup } from './policy/watch.js';
import { createPolicyRuntime } from './runtime/policy-runtime.js';
import type { PolicyRuntime } from './session/enforcer.js';
import { initSqlAnalysis } from './sql/index.js';
import { CancelKeys } from './session/cancel-keys.js';
import { ProxyServer } from './session/server.js';
import { addonMayRelay } from './session/session.js';

const VERSION = '0.1.0';

/**
 * The C addon for plain-TCP sessions (ADR 0022): `auto` loads it on Linux and quietly uses Node
 * sockets when it is not built; `on` (--native-io) warns when it cannot be loaded; `off` never loads it.
 */
function loadNativeIo(mode: NativeIoMode, log: Logger): Fdio | undefined {
  if (mode === 'off' || (mode === 'auto' && process.platform !== 'linux')) return undefined;
  try {
    return loadFdio();
  } catch (error) {
    if (!(error instanceof FdioUnavailable)) throw error;
    if (mode === 'on') log.warn({ err: error.message }, '--native-io: falling back to Node sockets');
    else log.info({ err: error.message }, 'native I/O addon not built: sessions use Node sockets');
    return undefined;
  }
}

/** How sessions do their socket I/O, for the start-up line. */
function nativeIoState(mode: NativeIoMode, loaded: boolean): string {
  if (loaded) return 'on (sessions with plain TCP on both legs)';
  return mode === 'off' ? 'off (Node sockets)' : 'unavailable (Node sockets)';
}

/** Whether the addon batches socket operations into io_uring, for the start-up line. */
function ringState(fdio: Fdio): string {
  const ring = fdio.ring();
  if (ring.on) return 'on';
  return ring.available ? 'off' : `unavailable (${getSystemErrorName(-ring.error)})`;
}

/** Whether pass-through pairs are relayed by the addon's own thread, for the start-up line. */
function relayThreadState(fdio: Fdio, config: SidecarConfig, relays: boolean): string {
  const thread = fdio.relayThread();
  if (thread.on) return 'on';
  if (!relays) return 'not used (every session goes through the policy or the audit)';
  if (!config.ioUring || !config.relayThread) return 'off';
  return `unavailable (${getSystemErrorName(-thread.error)})`;
}

async function main(): Promise<void> {
  let config: SidecarConfig;
  let clientTls: SecureContext | undefined;
  let auditConfig: AuditConfig;
  try {
    const command = parseCli(process.argv.slice(2), process.env);
    if (command.kind === 'help') return void process.stdout.write(`${USAGE}\n`);
    if (command.kind === 'version') return void process.stdout.write(`dbward-sidecar ${VERSION}\n`);
    config = command.config;
    clientTls = makeClientTls(config);
    auditConfig = resolveAuditConfig(config.otlpEndpoint, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dbward-sidecar: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  const log = createLogger(config.logLevel);
  const approvals = new ApprovalRegistry();
  const policy = config.policyFiles.length > 0 ? await startPolicy(config, approvals, log) : undefined;
  const controlPlane: { runtime: PolicyRuntime; client: ControlPlaneClient } | undefined =
    // Loaded only when used: standalone sidecars do not pay for gRPC at start.
    config.controlPlane !== undefined ? await (await import('./controlplane/runtime.js')).startControlPlanePolicy(config, log, VERSION) : undefined;
  const runtime = policy?.runtime ?? controlPlane?.runtime;
  const policyVersion = (): string | undefined => policy?.watcher.current?.version ?? controlPlane?.client.inForce?.version;
  const audit = await startAudit(config, auditConfig, runtime, policyVersion, log);
  const nativeIo = loadNativeIo(config.nativeIo, log);
  if (nativeIo !== undefined && !config.ioUring) nativeIo.setRing(false);
  // The relay thread serves only sessions the addon relays itself: none when every session is judged or recorded.
  const relays = addonMayRelay({ policy: runtime, audit, fastRelay: config.fastRelay });
  if (nativeIo !== undefined && config.ioUring && config.relayThread && relays) nativeIo.setRelayThread(true);
  const server = new ProxyServer(
    {
      upstream: config.upstream,
      clientTls,
      connectTimeoutMs: config.connectTimeoutMs,
      startupTimeoutMs: config.startupTimeoutMs,
      maxClientMessageBytes: config.maxClientMessageBytes,
      cancelKeys: new CancelKeys(),
      log,
      policy: runtime,
      identity: config.identity,
      ...(audit !== undefined ? { audit } : {}),
      ...(nativeIo !== undefined ? { nativeIo, fastRelay: config.fastRelay } : {}),
    },
    log,
  );
  // One bad connection must never take the others down: log what escaped and keep serving.
  process.on('uncaughtException', (error) => log.error({ err: error }, 'uncaught exception'));
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unhandled rejection'));

  let address: { host: string; port: number };
  try {
    address = await server.listen(config.listen.host, config.listen.port);
  } catch (error) {
    process.stderr.write(`dbward-sidecar: --listen: cannot listen on ${config.listen.host}:${config.listen.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
    process.exit(2);
  }
  let admin: AdminServer | undefined;
  let adminAddress: string | undefined;
  if (config.admin !== undefined) {
    admin = new AdminServer({
      approvals,
      log,
      ready: () => {
        if (controlPlane !== undefined) {
          const reason = controlPlane.client.notReadyReason;
          return reason === undefined ? { ready: true } : { ready: false, reason };
        }
        return policy === undefined || policy.watcher.current !== undefined ? { ready: true } : { ready: false, reason: 'no policy loaded' };
      },
      extra: (req, res) => audit?.serveMetrics(req, res) ?? false,
    });
    try {
      const bound = await admin.listen(config.admin.host, config.admin.port);
      adminAddress = `${bound.host}:${bound.port}`;
    } catch (error) {
      process.stderr.write(`dbward-sidecar: --admin: cannot listen on ${config.admin.host}:${config.admin.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
      process.exit(2);
    }
  }
  log.info(
    {
      listen: `${address.host}:${address.port}`,
      admin: adminAddress,
      upstream: config.upstream.redacted,
      sslmode: config.upstream.sslmode,
      auth: config.upstream.credentials === undefined ? 'pass-through' : 'credential-injection',
      clientTls: clientTls !== undefined,
      nativeIo: nativeIoState(config.nativeIo, nativeIo !== undefined),
      fastRelay: nativeIo !== undefined && !config.fastRelay ? 'off' : undefined,
      ioUring: nativeIo !== undefined ? ringState(nativeIo) : undefined,
      relayThread: nativeIo !== undefined ? relayThreadState(nativeIo, config, relays) : undefined,
      mode: controlPlane !== undefined ? 'enforcing (control plane)' : policy === undefined ? 'pass-through (no policy)' : 'enforcing',
      controlPlane: config.controlPlane?.target,
      policyVersion: policyVersion(),
      environment: policy?.runtime.environment,
      audit: auditConfig.export === undefined ? (audit === undefined ? 'off' : 'metrics only (admin /metrics)') : `${auditConfig.export.protocol} ${auditConfig.export.tracesTarget}`,
      serviceName: auditConfig.export === undefined ? undefined : auditConfig.serviceName,
    },
    'listening',
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.shutdown(config.drainTimeoutMs).then(async () => {
      await admin?.close();
      await controlPlane?.client.close();
      await audit?.shutdown(2_000);
      const spans = audit?.stats();
      const thread = nativeIo?.relayThread();
      log.info(
        {
          ...(spans === undefined ? {} : { auditSpans: spans }),
          ...(thread?.running === true
            ? { relayThread: { offloads: thread.offloads, returns: thread.returns, recalls: thread.recalls, wakeUps: thread.waits, enters: thread.enters, sends: thread.sends, starvations: thread.starvations } }
            : {}),
        },
        'stopped',
      );
      process.exit(0);
    }, () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * Loads the policy files (exit 2 with the first error when they do not load or compile), then
 * watches them and reloads on SIGHUP; a bad edit later keeps the last good policy and is logged.
 */
async function startPolicy(config: SidecarConfig, approvals: ApprovalRegistry, log: Logger): Promise<{ runtime: PolicyRuntime; watcher: PolicyWatcher }> {
  await initSqlAnalysis();
  const watcher = new PolicyWatcher({ paths: config.policyFiles });
  const first = await watcher.reload('initial');
  if (!('kind' in first)) {
    const lines = first.errors.map((e) => ('headline' in e && typeof e.headline === 'string' ? e.headline : e.message));
    process.stderr.write(`dbward-sidecar: --policy: ${lines[0] ?? 'the policy did not load'}\n`);
    for (const line of lines.slice(1, 20)) process.stderr.write(`  ${line}\n`);
    process.exit(2);
  }
  log.info({ policyVersion: first.version, policies: first.policies, reason: 'initial' }, 'policy loaded');
  watcher.on('loaded', (event) =>
    log.info({ policyVersion: event.set.version, previousVersion: event.previousVersion, policies: event.set.policies, reason: event.reason }, 'policy loaded'),
  );
  watcher.on('rejected', (event) =>
    log.warn({ errors: event.errors.map((e) => e.message), keptVersion: event.keptVersion, reason: event.reason }, 'policy rejected; keeping the last good one'),
  );
  watcher.watch();
  reloadOnSighup(watcher);
  const maskKey = process.env.DBWARD_MASK_KEY;
  const runtime = createPolicyRuntime({
    current: () => watcher.current,
    approvals,
    environment: config.environment,
    ...(maskKey !== undefined && maskKey !== '' ? { maskKey: Buffer.from(maskKey, 'utf8') } : {}),
  });
  return { runtime, watcher };
}

/**
 * The audit trail: spans when an OTLP endpoint is configured, metrics when spans are exported or
 * the admin endpoint can serve /metrics. Neither: undefined, and sessions record nothing.
 */
async function startAudit(
  config: SidecarConfig,
  auditConfig: AuditConfig,
  runtime: PolicyRuntime | undefined,
  policyVersion: () => string | undefined,
  log: Logger,
): Promise<Audit | undefined> {
  if (auditConfig.export === undefined && config.admin === undefined) return undefined;
  // Statement shapes and normalized text come from libpg_query, also in pass-through mode.
  await initSqlAnalysis();
  const fields = config.identity.fields;
  return createAudit({
    config: auditConfig,
    metrics: true,
    upstream: { host: config.upstream.host, port: config.upstream.port },
    log,
    version: VERSION,
    policyVersion,
    queryText: () => runtime?.compiled()?.audit.queryText ?? 'normalized',
    resource: {
      ...(fields.namespace !== undefined ? { 'k8s.namespace.name': fields.namespace } : {}),
      ...(fields.pod !== undefined ? { 'k8s.pod.name': fields.pod } : {}),
    },
  });
}

function makeClientTls(config: SidecarConfig): SecureContext | undefined {
  if (config.clientTls === undefined) return undefined;
  try {
    return createSecureContext({ cert: config.clientTls.cert, key: config.clientTls.key, minVersion: 'TLSv1.2' });
  } catch (cause) {
    throw new ConfigError('--tls-cert', `certificate or key is not usable: ${(cause as Error).message}`, { cause });
  }
}

await main();
