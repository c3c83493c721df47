/** The gRPC control plane: what the operator's main (and the end-to-end tests) wire together. */
export { startControlPlane, ControlPlaneConfigError, type ControlPlane, type ControlPlaneOptions, type ControlPlanePorts, type ControlPlaneTls, type SidecarStatus } from './server.js';
export type { ControlPlaneMetrics } from './metrics.js';
export * from './memory.js';
export * from './ports.js';
export { buildSnapshot, canonicalJson, type SnapshotContent } from './snapshot.js';
export { selects } from '../selector.js';
