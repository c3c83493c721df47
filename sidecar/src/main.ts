#!/usr/bin/env node
import { createSecureContext, type SecureContext } from 'node:tls';
import { parseCli, USAGE, type SidecarConfig } from './config/cli.js';
import { ConfigError } from './config/errors.js';
import { AdminServer } from './admin/server.js';
import { ApprovalRegistry } from './approvals/registry.js';
import { createLogger } from './log/logger.js';
import { CancelKeys } from './session/cancel-keys.js';
import { ProxyServer } from './session/server.js';

const VERSION = '0.1.0';

async function main(): Promise<void> {
  let config: SidecarConfig;
  let clientTls: SecureContext | undefined;
  try {
    const command = parseCli(process.argv.slice(2), process.env);
    if (command.kind === 'help') return void process.stdout.write(`${USAGE}\n`);
    if (command.kind === 'version') return void process.stdout.write(`dbward-sidecar ${VERSION}\n`);
    config = command.config;
    if (config.policyFiles.length > 0) {
      throw new ConfigError('--policy', 'policy enforcement is not available in this build yet; run without --policy for pass-through');
    }
    clientTls = makeClientTls(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dbward-sidecar: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  const log = createLogger(config.logLevel);
  const server = new ProxyServer(
    {
      upstream: config.upstream,
      clientTls,
      connectTimeoutMs: config.connectTimeoutMs,
      startupTimeoutMs: config.startupTimeoutMs,
      maxClientMessageBytes: config.maxClientMessageBytes,
      cancelKeys: new CancelKeys(),
      log,
      policy: undefined,
      identity: config.identity,
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
  const approvals = new ApprovalRegistry();
  let admin: AdminServer | undefined;
  let adminAddress: string | undefined;
  if (config.admin !== undefined) {
    admin = new AdminServer({ approvals, log, ready: () => ({ ready: true }) });
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
      mode: 'pass-through (no policy)',
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
      log.info('stopped');
      process.exit(0);
    }, () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
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
