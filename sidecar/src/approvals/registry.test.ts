import { describe, expect, it } from 'vitest';
import { ApprovalError, ApprovalRegistry, newApprovalId } from './registry.js';

const input = { rule: 'hold-deletes', statement: 'DELETE FROM orders WHERE id = $1', identity: { serviceAccount: 'agent' }, sessionId: 7, timeoutMs: 60_000 };

describe('ApprovalRegistry', () => {
  it('issues readable, unique ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newApprovalId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^apr-[0-9a-hjkmnp-tv-z]{8}$/);
  });

  it('resolves the held statement when approved, recording who decided', async () => {
    const registry = new ApprovalRegistry();
    const { id, outcome } = registry.request(input);
    expect(registry.get(id)?.state).toBe('pending');
    registry.approve(id, 'alice@ops', 'ticket 42');
    const result = await outcome;
    expect(result.state).toBe('approved');
    expect(result.request).toMatchObject({ decidedBy: 'alice@ops', reason: 'ticket 42', rule: 'hold-deletes' });
  });

  it('resolves as denied, and refuses a second decision', async () => {
    const registry = new ApprovalRegistry();
    const { id, outcome } = registry.request(input);
    registry.deny(id, 'bob');
    expect((await outcome).state).toBe('denied');
    expect(() => registry.approve(id, 'mallory')).toThrow(ApprovalError);
    expect(() => registry.approve(id, 'mallory')).toThrow(/already denied/);
  });

  it('expires after the timeout', async () => {
    const registry = new ApprovalRegistry();
    const { outcome } = registry.request({ ...input, timeoutMs: 30 });
    const result = await outcome;
    expect(result.state).toBe('expired');
    expect(result.request.decidedBy).toBe('dbward');
  });

  it('cancels when the client goes away', async () => {
    const registry = new ApprovalRegistry();
    const { id, outcome } = registry.request(input);
    registry.cancel(id);
    expect((await outcome).state).toBe('cancelled');
  });

  it('reports unknown ids', () => {
    const registry = new ApprovalRegistry();
    expect(() => registry.deny('apr-nope', 'x')).toThrow(/no approval request apr-nope/);
  });

  it('lists pending requests first, oldest first, and notifies listeners', () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const registry = new ApprovalRegistry(() => new Date(clock));
    const seen: string[] = [];
    registry.onChange((r) => seen.push(`${r.id}:${r.state}`));
    const a = registry.request(input).id;
    clock += 1000;
    const b = registry.request(input).id;
    clock += 1000;
    const c = registry.request(input).id;
    registry.approve(a, 'x');
    expect(registry.list().map((r) => r.id)).toEqual([b, c, a]);
    expect(seen).toEqual([`${a}:pending`, `${b}:pending`, `${c}:pending`, `${a}:approved`]);
  });
});
