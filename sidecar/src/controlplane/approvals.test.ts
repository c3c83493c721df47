import { describe, expect, it } from 'vitest';
import { ControlPlaneApprovals } from './approvals.js';
import type { SidecarMessage } from './proto.js';

function setup(connected = true) {
  const sent: SidecarMessage[] = [];
  const link = { connected, send: (m: SidecarMessage) => (link.connected ? (sent.push(m), true) : false) };
  const approvals = new ControlPlaneApprovals(link);
  const input = { rule: 'hold-deletes', statement: 'delete from t where id = $1', identity: { user: 'app', database: 'app', pod: 'spoofed' }, sessionId: 1, timeoutMs: 60_000 };
  return { sent, link, approvals, input };
}

function requestIdOf(message: SidecarMessage | undefined): string {
  if (message === undefined || !('approvalRequest' in message)) throw new Error('not an approval request');
  return message.approvalRequest.requestId!;
}

describe('ControlPlaneApprovals', () => {
  it('sends the request with the session fields only, resolves the name, then the decision', async () => {
    const { sent, approvals, input } = setup();
    const hold = approvals.request(input);
    expect(sent[0]).toEqual({ approvalRequest: { requestId: expect.stringMatching(/^apr-/) as unknown, rule: 'hold-deletes', statement: input.statement, identity: { user: 'app', database: 'app', application: '' }, timeoutMs: 60_000 } });
    approvals.onCreated({ requestId: requestIdOf(sent[0]), name: 'hold-deletes-x1', error: '' });
    expect(await hold.id).toBe('hold-deletes-x1');
    approvals.onDecision({ name: 'hold-deletes-x1', phase: 'Approved', decidedBy: 'alice', reason: 'INC-1', decidedAt: '' });
    const outcome = await hold.outcome;
    expect(outcome).toMatchObject({ state: 'approved', request: { id: 'hold-deletes-x1', decidedBy: 'alice', reason: 'INC-1' } });
    expect(approvals.pending).toBe(0);
  });

  it.each([
    ['Denied', 'denied'],
    ['Expired', 'expired'],
  ])('maps %s', async (phase, state) => {
    const { sent, approvals, input } = setup();
    const hold = approvals.request(input);
    approvals.onCreated({ requestId: requestIdOf(sent[0]), name: 'n', error: '' });
    approvals.onDecision({ name: 'n', phase, decidedBy: 'bob', reason: '', decidedAt: '' });
    expect((await hold.outcome).state).toBe(state);
    // A decision from the control plane is not withdrawn back to it.
    expect(sent.filter((m) => 'approvalWithdraw' in m)).toEqual([]);
  });

  it('fails closed without a stream: denied at once, with the reason', async () => {
    const { approvals, input } = setup(false);
    const hold = approvals.request(input);
    const outcome = await hold.outcome;
    expect(outcome.state).toBe('denied');
    expect(outcome.request.reason).toMatch(/control plane is unreachable/);
    await expect(hold.id).rejects.toThrow();
  });

  it('the control plane could not create it: denied with its error', async () => {
    const { sent, approvals, input } = setup();
    const hold = approvals.request(input);
    approvals.onCreated({ requestId: requestIdOf(sent[0]), name: '', error: 'forbidden' });
    expect(await hold.outcome).toMatchObject({ state: 'denied', request: { reason: 'the AccessRequest could not be created: forbidden' } });
  });

  it('the stream is lost before the name: denied; after the name: watched again on reconnect', async () => {
    const { sent, link, approvals, input } = setup();
    const early = approvals.request(input);
    const named = approvals.request(input);
    approvals.onCreated({ requestId: requestIdOf(sent[1]), name: 'named-1', error: '' });
    link.connected = false;
    approvals.onDisconnected();
    expect((await early.outcome).state).toBe('denied');
    link.connected = true;
    approvals.onConnected();
    expect(sent.at(-1)).toEqual({ approvalWatch: { name: 'named-1' } });
    approvals.onDecision({ name: 'named-1', phase: 'Approved', decidedBy: 'alice', reason: '', decidedAt: '' });
    expect((await named.outcome).state).toBe('approved');
  });

  it('timeout: expired, and the AccessRequest is withdrawn (queued while disconnected)', async () => {
    const { sent, link, approvals, input } = setup();
    const hold = approvals.request({ ...input, timeoutMs: 20 });
    approvals.onCreated({ requestId: requestIdOf(sent[0]), name: 'n-1', error: '' });
    link.connected = false;
    const outcome = await hold.outcome;
    expect(outcome.state).toBe('expired');
    expect(sent.some((m) => 'approvalWithdraw' in m)).toBe(false);
    link.connected = true;
    approvals.onConnected();
    expect(sent.at(-1)).toEqual({ approvalWithdraw: { name: 'n-1', reason: 'approval timeout reached' } });
  });

  it('cancel before the name: withdrawn as soon as the name arrives; the client is never announced', async () => {
    const { sent, approvals, input } = setup();
    const hold = approvals.request(input);
    hold.cancel();
    expect((await hold.outcome).state).toBe('cancelled');
    await expect(hold.id).rejects.toThrow();
    approvals.onCreated({ requestId: requestIdOf(sent[0]), name: 'late-1', error: '' });
    expect(sent.at(-1)).toEqual({ approvalWithdraw: { name: 'late-1', reason: 'the client disconnected' } });
  });
});
