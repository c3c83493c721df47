#!/usr/bin/env node
import { pino } from 'pino';
import { OPERATOR_USAGE, OperatorConfigError, parseOperatorConfig } from './config.js';
import { startOperator } from './operator.js';

/** dbward-operator: wiring only (flags → startOperator → signals). */

let config;
try {
  config = parseOperatorConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (error instanceof OperatorConfigError) {
    process.stderr.write(`dbward-operator: ${error.message}\n${OPERATOR_USAGE}\n`);
    process.exit(2);
  }
  throw error;
}
if (config === 'help') {
  process.stdout.write(`${OPERATOR_USAGE}\n`);
  process.exit(0);
}

const log = pino({ level: config.logLevel, base: { component: 'dbward-operator' } });
const operator = await startOperator({ ...config.options, log }).catch((error: unknown) => {
  log.error({ err: error }, 'operator failed to start');
  process.exit(1);
});

// The gRPC control plane (config.options.controlPlane, --control-plane-port, default 9444) is started
// by startOperator with the Kubernetes-backed ports and the operator's serving chain, and stopped
// first by operator.stop().

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: closing the control plane and the webhook, releasing the leader Lease');
  const force = setTimeout(() => process.exit(1), 20_000);
  force.unref();
  await operator.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
