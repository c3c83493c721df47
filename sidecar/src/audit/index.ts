export { createAudit, type Audit, type AuditOptions, type QueryTextMode } from './audit.js';
export { resolveAuditConfig, type AuditConfig, type ExportConfig } from './config.js';
export type { AuditSink, EnforcerAudit, SessionAudit } from './types.js';
