import type { AccessRequestPhase, AccessRequestSpec, AccessRequestStatus } from '../api/v1alpha1/index.js';
import type { CliIO } from './approvals.js';
import { KubeCallError, kubeCall, loadKube, whoAmI } from './kube.js';

/**
 * `kubectl dbward list|approve|deny` (SPEC §7): AccessRequests in Kubernetes. approve/deny write the
 * status subresource with decidedBy = the caller as the API server authenticated them
 * (SelfSubjectReview) and decidedAt; the resourceVersion read is sent back, so a decision made
 * meanwhile (another approver, or expiry) is never overwritten.
 */

export interface AccessRequestOptions {
  kubeconfig: string | undefined;
  context: string | undefined;
  namespace: string | undefined;
  allNamespaces: boolean;
  reason: string | undefined;
  output: 'table' | 'json';
}

interface AccessRequestObject {
  metadata: { name: string; namespace: string; resourceVersion: string; creationTimestamp?: string };
  spec: AccessRequestSpec;
  status?: Partial<AccessRequestStatus>;
}

const BASE = '/apis/dbward.io/v1alpha1';

export async function accessRequestCommand(verb: string, args: string[], options: AccessRequestOptions, io: CliIO, now = () => new Date()): Promise<number> {
  try {
    const { config, namespace } = loadKube(options);
    if (verb === 'list') {
      if (args.length > 0) return usage(io, `unexpected argument "${args[0]}"`);
      const path = options.allNamespaces ? `${BASE}/accessrequests` : `${BASE}/namespaces/${namespace}/accessrequests`;
      const list = await kubeCall<{ items: AccessRequestObject[] }>(config, 'GET', path);
      const items = list.items.sort((a, b) => b.spec.requestedAt.localeCompare(a.spec.requestedAt));
      io.out(options.output === 'json' ? JSON.stringify(items, null, 2) : table(items, options.allNamespaces, now(), namespace));
      return 0;
    }
    const [name, extra] = args;
    if (name === undefined) return usage(io, `${verb} needs the AccessRequest name`);
    if (extra !== undefined) return usage(io, `unexpected argument "${extra}"`);
    const phase: AccessRequestPhase = verb === 'approve' ? 'Approved' : 'Denied';
    const user = await whoAmI(config);
    const path = `${BASE}/namespaces/${namespace}/accessrequests/${encodeURIComponent(name)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await kubeCall<AccessRequestObject>(config, 'GET', path);
      const was = current.status?.phase ?? 'Pending';
      if (was !== 'Pending') {
        io.err(`dbward: accessrequest ${namespace}/${name} is already ${was}${current.status?.decidedBy ? ` (by ${current.status.decidedBy})` : ''}`);
        return 1;
      }
      if (current.spec.expiresAt !== undefined && Date.parse(current.spec.expiresAt) <= now().getTime()) {
        io.err(`dbward: accessrequest ${namespace}/${name} expired at ${current.spec.expiresAt}; the statement is no longer waiting`);
        return 1;
      }
      const status: AccessRequestStatus = { phase, decidedBy: user, decidedAt: now().toISOString().replace(/\.\d+Z$/, 'Z'), ...(options.reason !== undefined ? { reason: options.reason } : {}) };
      try {
        const updated = await kubeCall<AccessRequestObject>(config, 'PATCH', `${path}/status`, { metadata: { resourceVersion: current.metadata.resourceVersion }, status }, 'application/merge-patch+json');
        io.out(options.output === 'json' ? JSON.stringify(updated, null, 2) : `accessrequest ${namespace}/${name} ${phase.toLowerCase()} by ${user}`);
        return 0;
      } catch (error) {
        if (error instanceof KubeCallError && error.status === 409) continue;
        throw error;
      }
    }
    io.err(`dbward: accessrequest ${namespace}/${name} kept changing; try again`);
    return 1;
  } catch (error) {
    if (error instanceof KubeCallError && error.status === 404) {
      io.err(`dbward: not found: ${error.message}`);
      return 1;
    }
    if (error instanceof KubeCallError && error.status === 403) {
      io.err(`dbward: forbidden: ${error.message}\n(approvers need get/list on accessrequests and patch on accessrequests/status: the dbward-approver ClusterRole)`);
      return 1;
    }
    io.err(`dbward: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

function usage(io: CliIO, message: string): number {
  io.err(`dbward: ${message}\nusage: kubectl dbward list [-n ns | -A] | approve <name> | deny <name> [-n ns] [--reason text]`);
  return 2;
}

function table(items: AccessRequestObject[], allNamespaces: boolean, now: Date, namespace: string): string {
  if (items.length === 0) return allNamespaces ? 'No AccessRequests.' : `No AccessRequests in ${namespace}.`;
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'PHASE', 'POLICY', 'RULE', 'AGE', 'WHO', 'DECIDED BY', 'STATEMENT'];
  const rows = items.map((r) => [
    ...(allNamespaces ? [r.metadata.namespace] : []),
    r.metadata.name,
    r.status?.phase ?? 'Pending',
    r.spec.policy,
    r.spec.rule,
    age(now.getTime() - Date.parse(r.spec.requestedAt)),
    [r.spec.identity.serviceAccount, r.spec.identity.user].filter(Boolean).join('/') || '-',
    r.status?.decidedBy ?? '',
    r.spec.statement.length > 60 ? `${r.spec.statement.slice(0, 57)}...` : r.spec.statement,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
