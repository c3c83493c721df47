import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenTcp } from '../util/listen.js';
import { ApprovalError, type ApprovalRegistry } from '../approvals/registry.js';
import type { Logger } from '../log/logger.js';

/**
 * The admin endpoint (`--admin`, loopback only): health and readiness for probes, and the
 * approval queue for `dbward approvals list|approve|deny`.
 *
 *   GET  /healthz                       200 while the process runs
 *   GET  /readyz                        200 when ready to serve (listening, policy loaded), else 503
 *   GET  /approvals                     { items: ApprovalRequest[] }
 *   GET  /approvals/{id}                ApprovalRequest | 404
 *   POST /approvals/{id}/approve        body { by, reason? } → ApprovalRequest | 404 | 409
 *   POST /approvals/{id}/deny           body { by, reason? } → ApprovalRequest | 404 | 409
 */
export interface AdminDeps {
  approvals: ApprovalRegistry;
  ready: () => { ready: boolean; reason?: string };
  log: Logger;
  /** Extra routes (e.g. /metrics) added by other modules: return true when handled. */
  extra?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
}

const MAX_BODY = 16 * 1024;

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly deps: AdminDeps) {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        deps.log.error({ err: error }, 'admin request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
      });
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenTcp(this.server, host, port, 'the admin listener');
  }


  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const state = this.deps.ready();
      return send(res, state.ready ? 200 : 503, state.ready ? { status: 'ready' } : { status: 'not ready', reason: state.reason });
    }
    if (req.method === 'GET' && path === '/approvals') return send(res, 200, { items: this.deps.approvals.list() });
    const one = /^\/approvals\/([\w-]+)$/.exec(path);
    if (req.method === 'GET' && one !== null) {
      const request = this.deps.approvals.get(one[1]!);
      return request === undefined ? send(res, 404, { error: `no approval request ${one[1]}` }) : send(res, 200, request);
    }
    const decide = /^\/approvals\/([\w-]+)\/(approve|deny)$/.exec(path);
    if (decide !== null) {
      if (req.method !== 'POST') return send(res, 405, { error: 'use POST' });
      const body = await readJson(req);
      if (body === undefined) return send(res, 400, { error: 'body must be a JSON object like {"by": "alice", "reason": "..."}' });
      const by = typeof body.by === 'string' && body.by.trim() !== '' ? body.by.trim() : undefined;
      if (by === undefined) return send(res, 400, { error: '"by" (who decides) is required' });
      const reason = typeof body.reason === 'string' ? body.reason : undefined;
      try {
        const id = decide[1]!;
        const result = decide[2] === 'approve' ? this.deps.approvals.approve(id, by, reason) : this.deps.approvals.deny(id, by, reason);
        this.deps.log.info({ approval: id, state: result.state, by, reason }, 'approval decided');
        return send(res, 200, result);
      } catch (error) {
        if (error instanceof ApprovalError) return send(res, error.code === 'not-found' ? 404 : 409, { error: error.message });
        throw error;
      }
    }
    if (this.deps.extra !== undefined && (await this.deps.extra(req, res))) return;
    send(res, 404, { error: `no route ${req.method} ${path}` });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
