import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalRegistry } from '../approvals/registry.js';
import { runCli } from '../cli/dbward.js';
import { AdminServer } from './server.js';

let registry: ApprovalRegistry;
let admin: AdminServer;
let address: string;
let ready = true;

beforeAll(async () => {
  registry = new ApprovalRegistry();
  admin = new AdminServer({ approvals: registry, log: pino({ level: 'silent' }), ready: () => (ready ? { ready: true } : { ready: false, reason: 'no policy loaded' }) });
  const bound = await admin.listen('127.0.0.1', 0);
  address = `127.0.0.1:${bound.port}`;
});

afterAll(async () => {
  await admin.close();
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli([...args, '--admin', address], {}, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('admin endpoint', () => {
  it('answers health and readiness probes', async () => {
    expect((await fetch(`http://${address}/healthz`)).status).toBe(200);
    expect(await (await fetch(`http://${address}/readyz`)).json()).toEqual({ status: 'ready' });
    ready = false;
    const notReady = await fetch(`http://${address}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not ready', reason: 'no policy loaded' });
    ready = true;
  });

  it('rejects bad requests clearly', async () => {
    expect((await fetch(`http://${address}/nope`)).status).toBe(404);
    expect((await fetch(`http://${address}/approvals/apr-x/approve`)).status).toBe(405);
    const noBy = await fetch(`http://${address}/approvals/apr-x/approve`, { method: 'POST', body: '{}' });
    expect(noBy.status).toBe(400);
    const badJson = await fetch(`http://${address}/approvals/apr-x/approve`, { method: 'POST', body: 'not json' });
    expect(badJson.status).toBe(400);
  });
});

describe('dbward approvals (CLI against the admin endpoint)', () => {
  it('lists, approves and denies held statements, recording who decided', async () => {
    expect((await cli('approvals', 'list')).out).toBe('No approval requests.');
    const first = registry.request({ rule: 'hold-deletes', statement: 'DELETE FROM orders WHERE id = $1', identity: { serviceAccount: 'agent', user: 'app' }, sessionId: 1, timeoutMs: 600_000 });
    const second = registry.request({ rule: 'hold-ddl', statement: 'ALTER TABLE orders ADD COLUMN x int', identity: { user: 'app' }, sessionId: 2, timeoutMs: 600_000 });

    const listed = await cli('approvals', 'list');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^ID\s+STATE\s+RULE/);
    expect(listed.out).toContain(`${first.id}  PENDING`);
    expect(listed.out).toContain('agent/app');
    expect(listed.out).toContain('DELETE FROM orders WHERE id = $1');

    const approved = await cli('approvals', 'approve', first.id, '--by', 'alice', '--reason', 'INC-7');
    expect(approved).toMatchObject({ code: 0, out: `approval ${first.id} approved by alice` });
    expect((await first.outcome).request).toMatchObject({ state: 'approved', decidedBy: 'alice', reason: 'INC-7' });

    const denied = await cli('approvals', 'deny', second.id);
    expect(denied.code).toBe(0);
    expect((await second.outcome).state).toBe('denied');
    expect((await second.outcome).request.decidedBy).toMatch(/@/); // user@host by default

    const json = JSON.parse((await cli('approvals', 'list', '-o', 'json')).out) as Array<{ id: string; state: string }>;
    expect(json.map((r) => r.state).sort()).toEqual(['approved', 'denied']);
  });

  it('fails with exit 1 and a clear message for unknown ids and unreachable endpoints', async () => {
    const unknown = await cli('approvals', 'approve', 'apr-00000000');
    expect(unknown).toMatchObject({ code: 1, err: 'dbward: no approval request apr-00000000' });
    const closed = await closedPort();
    const out: string[] = [];
    const code = await runCli(['approvals', 'list', '--admin', `127.0.0.1:${closed}`], {}, { out: (t) => out.push(t), err: (t) => out.push(t) });
    expect(code).toBe(1);
    expect(out.join('')).toBe(`dbward: cannot reach the sidecar admin endpoint at 127.0.0.1:${closed}: ECONNREFUSED`);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli('approvals', 'frobnicate')).code).toBe(2);
    expect((await cli('nonsense')).code).toBe(2);
    expect((await runCli(['approvals', 'list', '--bogus'], {}, { out: () => undefined, err: () => undefined }))).toBe(2);
  });
});
