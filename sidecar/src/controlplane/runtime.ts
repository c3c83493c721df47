import type { SidecarConfig } from '../config/cli.js';
import type { Logger } from '../log/logger.js';
import { createPolicyRuntime } from '../runtime/policy-runtime.js';
import type { PolicyRuntime } from '../session/enforcer.js';
import { initSqlAnalysis } from '../sql/index.js';
import { ControlPlaneClient } from './client.js';

/**
 * Wiring for `--control-plane`: the client, the policy runtime reading the client's policy in
 * force (sessions keep their connection; each statement sees the set in force when it is judged),
 * approvals through AccessRequests, and the verified identity replacing the one from flags/env:
 * `config.identity` is updated in place, so sessions started from then on use it.
 */
export async function startControlPlanePolicy(config: SidecarConfig, log: Logger, sidecarVersion: string): Promise<{ runtime: PolicyRuntime; client: ControlPlaneClient }> {
  const cp = config.controlPlane;
  if (cp === undefined) throw new Error('startControlPlanePolicy needs --control-plane');
  await initSqlAnalysis();
  const client = new ControlPlaneClient({
    target: cp.target,
    tokenFile: cp.tokenFile,
    ca: cp.ca,
    cacheDir: cp.cacheDir,
    sidecarVersion,
    hints: { node: process.env.DBWARD_NODE_NAME ?? '', pod: config.identity.fields.pod ?? '', namespace: config.identity.fields.namespace ?? '' },
    log: log.child({ module: 'controlplane' }),
  });
  client.onPolicy(({ identity }) => {
    // Trusted over flags and env: verified from the token and the API server.
    config.identity.fields = { ...config.identity.fields, namespace: identity.namespace, serviceAccount: identity.serviceAccount, pod: identity.pod };
    config.identity.labels = { ...identity.labels };
  });
  const maskKey = process.env.DBWARD_MASK_KEY;
  const runtime = createPolicyRuntime({
    current: () => client.current,
    approvals: client.approvals,
    environment: config.environment,
    ...(maskKey !== undefined && maskKey !== '' ? { maskKey: Buffer.from(maskKey, 'utf8') } : {}),
  });
  client.start();
  return { runtime, client };
}
