import { hostname, userInfo } from 'node:os';
import type { ApprovalRequest } from '../approvals/registry.js';

/**
 * `dbward approvals list|approve|deny` against a standalone sidecar's admin endpoint (SPEC §7).
 * Prints to the given writer; returns the process exit status (0 ok, 1 refused, 2 usage).
 */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface ApprovalsOptions {
  admin: string;
  output: 'table' | 'json';
  reason: string | undefined;
  by: string | undefined;
}

export async function approvalsCommand(args: string[], options: ApprovalsOptions, io: CliIO): Promise<number> {
  const [verb, id] = args;
  const base = `http://${options.admin}`;
  try {
    if (verb === 'list' && id === undefined) {
      const body = (await call(`${base}/approvals`, 'GET')) as { items: ApprovalRequest[] };
      io.out(options.output === 'json' ? JSON.stringify(body.items, null, 2) : renderTable(body.items, new Date()));
      return 0;
    }
    if ((verb === 'approve' || verb === 'deny') && id !== undefined) {
      const by = options.by ?? defaultDecider();
      const result = (await call(`${base}/approvals/${encodeURIComponent(id)}/${verb}`, 'POST', { by, reason: options.reason })) as ApprovalRequest;
      io.out(options.output === 'json' ? JSON.stringify(result, null, 2) : `approval ${result.id} ${result.state} by ${result.decidedBy}`);
      return 0;
    }
  } catch (error) {
    io.err(`dbward: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  io.err('dbward: usage: dbward approvals list | approve <id> | deny <id> [--reason text] [--admin host:port]');
  return 2;
}

/** `user@host`, as recorded for the decision. */
export function defaultDecider(): string {
  let user = process.env.USER ?? '';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (e.g. an arbitrary uid in a container): keep $USER.
  }
  return `${user || 'unknown'}@${hostname()}`;
}

async function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (cause) {
    const reason = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
    throw new Error(`cannot reach the sidecar admin endpoint at ${new URL(url).host}: ${reason}`, { cause });
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`unexpected answer from ${url}: ${response.status} ${text.slice(0, 200)}`);
  }
  if (!response.ok) throw new Error((parsed as { error?: string }).error ?? `HTTP ${response.status}`);
  return parsed;
}

function renderTable(items: ApprovalRequest[], now: Date): string {
  if (items.length === 0) return 'No approval requests.';
  const rows = items.map((r) => [
    r.id,
    r.state.toUpperCase(),
    r.rule,
    ago(now, r.createdAt),
    r.state === 'pending' ? `in ${until(now, r.expiresAt)}` : (r.decidedBy ?? ''),
    [r.identity.serviceAccount, r.identity.user].filter(Boolean).join('/') || '-',
    r.statement.length > 60 ? `${r.statement.slice(0, 57)}...` : r.statement,
  ]);
  const header = ['ID', 'STATE', 'RULE', 'AGE', 'EXPIRES/DECIDED BY', 'WHO', 'STATEMENT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function ago(now: Date, iso: string): string {
  return duration(now.getTime() - Date.parse(iso));
}

function until(now: Date, iso: string): string {
  return duration(Math.max(0, Date.parse(iso) - now.getTime()));
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
