import { EventEmitter } from 'node:events';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { DataAccessPolicySchema, type DataAccessPolicyInput } from '@dbward/sidecar/api';
import type { ControlPlaneMessage, DecodedSidecarMessage } from '@dbward/sidecar/controlplane';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { memoryPorts } from './memory.js';
import { newMetrics } from './metrics.js';
import { buildSnapshot } from './snapshot.js';
import { SidecarStream, type SubscribeCall } from './stream.js';

/**
 * The per-stream state machine against a scripted call (a real slow gRPC reader cannot be made to
 * fill its window on cue): authentication, Hello, dedupe, backpressure, NACK records, approvals.
 */
class ScriptedCall extends EventEmitter {
  readonly metadata = new Metadata();
  readonly written: ControlPlaneMessage[] = [];
  writableEnded = false;
  /** write() returns false while this is true (the transport is full). */
  full = false;
  ended: { code: number; details: string } | undefined;

  constructor(token?: string) {
    super();
    if (token !== undefined) this.metadata.set('authorization', `Bearer ${token}`);
    this.on('error', (status: { code: number; details: string }) => {
      this.ended = status;
      this.writableEnded = true;
    });
  }

  write(message: ControlPlaneMessage): boolean {
    this.written.push(message);
    return !this.full;
  }

  end(): void {
    this.ended = { code: Status.OK, details: '' };
    this.writableEnded = true;
  }

  getPeer(): string {
    return 'test';
  }

  send(message: DecodedSidecarMessage): void {
    this.emit('data', message);
  }
}

const NS = 'shop';
const IDENTITY = { namespace: NS, serviceAccount: 'checkout', pod: 'p-1', podUid: 'u-1' };

function policy(name: string, rule: string): DataAccessPolicyInput {
  return {
    apiVersion: 'dbward.io/v1alpha1',
    kind: 'DataAccessPolicy',
    metadata: { name, namespace: NS },
    spec: { workloadSelector: {}, guardrails: [{ name: rule, when: 'query.command == "DELETE"', action: 'requireApproval' }] },
  } as DataAccessPolicyInput;
}

async function setup(token?: string | null) {
  const ports = memoryPorts();
  const issued = ports.tokens.issue(IDENTITY);
  ports.pods.set(NS, 'p-1', { app: 'checkout' });
  const call = new ScriptedCall(token === null ? undefined : (token ?? issued));
  const metrics = newMetrics();
  const subscribed: SidecarStream[] = [];
  const stream = new SidecarStream(call as unknown as SubscribeCall, {
    ...ports,
    metrics,
    log: pino({ level: 'silent' }),
    helloTimeoutMs: 5_000,
    subscribe: (s) => subscribed.push(s),
    unsubscribe: () => undefined,
  });
  stream.start();
  return { ports, call, metrics, stream, subscribed };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const hello = { message: 'hello', hello: { sidecarVersion: 't', node: '', pod: 'claimed', namespace: 'claimed', currentVersion: '' } } as DecodedSidecarMessage;

function content(...names: Array<[string, string]>) {
  return buildSnapshot(NS, names.map(([n, r]) => ({ policy: DataAccessPolicySchema.parse(policy(n, r)), generation: 1, resourceVersion: '1' })), { app: 'checkout' });
}

describe('SidecarStream', () => {
  it.each([
    ['no token', '', Status.UNAUTHENTICATED, /missing "authorization: Bearer <token>"/],
    ['an unknown token', 'forged', Status.UNAUTHENTICATED, /token rejected: the token is not valid/],
  ])('refuses %s', async (_name, token, code, details) => {
    const { call, metrics, subscribed } = await setup(token === '' ? null : token);
    call.send(hello);
    await tick();
    expect(call.ended?.code).toBe(code);
    expect(call.ended?.details).toMatch(details);
    expect(subscribed).toHaveLength(0);
    expect(metrics).toMatchObject({ refused: 1, open: 0, connected: 0 });
  });

  it('requires Hello first, then subscribes with the verified identity and the API server labels', async () => {
    const bad = await setup();
    bad.call.send({ message: 'ack', ack: { version: 'x' } });
    await tick();
    expect(bad.call.ended).toEqual({ code: Status.INVALID_ARGUMENT, details: 'the first message must be Hello' });

    const { call, stream, subscribed, metrics } = await setup();
    call.send(hello);
    await tick();
    expect(subscribed).toEqual([stream]);
    expect(stream.identity).toEqual(IDENTITY);
    expect(stream.labels).toEqual({ app: 'checkout' });
    expect(metrics).toMatchObject({ connected: 1, open: 1 });
  });

  it('writes a snapshot only when the version changes, with the verified identity', async () => {
    const { call, stream } = await setup();
    call.send(hello);
    await tick();
    const a = content(['a', 'r1']);
    stream.offer(a);
    stream.offer(a);
    stream.offer(content(['a', 'r1']));
    expect(call.written).toHaveLength(1);
    expect(call.written[0]).toMatchObject({ snapshot: { version: a.version, identity: { ...IDENTITY, labels: { app: 'checkout' } } } });
    stream.offer(content(['a', 'r2']));
    expect(call.written).toHaveLength(2);
  });

  it('backpressure: while the transport is full only the newest snapshot waits, written on drain', async () => {
    const { call, stream, metrics } = await setup();
    call.send(hello);
    await tick();
    call.full = true;
    stream.offer(content(['a', 'r1'])); // written; the transport reports full
    const v2 = content(['a', 'r2']);
    const v3 = content(['a', 'r3']);
    stream.offer(v2);
    stream.offer(v3);
    expect(call.written).toHaveLength(1);
    call.full = false;
    call.emit('drain');
    expect(call.written).toHaveLength(2);
    expect(call.written[1]).toMatchObject({ snapshot: { version: v3.version } });
    expect(metrics.snapshotsSent).toBe(2);
  });

  it('a NACK is recorded with the policy names of that version', async () => {
    const { call, stream, ports, metrics } = await setup();
    call.send(hello);
    await tick();
    const v = content(['a', 'r1'], ['b', 'r2']);
    stream.offer(v);
    call.send({ message: 'nack', nack: { version: v.version, error: 'shop/b: spec.guardrails[0].when: no such field' } });
    expect(ports.rejections.records).toEqual([{ namespace: NS, policies: ['a', 'b'], version: v.version, error: 'shop/b: spec.guardrails[0].when: no such field', sidecar: IDENTITY }]);
    expect(stream.nackedVersion).toBe(v.version);
    expect(metrics.nacks).toBe(1);
  });

  it('approvals: the AccessRequest carries the verified identity and the policy of the rule; the decision comes back', async () => {
    const { call, stream, ports } = await setup();
    call.send(hello);
    await tick();
    stream.offer(content(['a', 'r1'], ['b', 'hold-deletes']));
    call.send({ message: 'approvalRequest', approvalRequest: { requestId: 'q1', rule: 'hold-deletes', statement: 'delete from t where id = $1', identity: { user: 'app', database: 'db', application: 'psql' }, timeoutMs: 60_000 } });
    await tick();
    const [request] = ports.accessRequests.list();
    expect(request?.spec).toMatchObject({ policy: 'b', rule: 'hold-deletes', identity: { user: 'app', database: 'db', application: 'psql', namespace: NS, serviceAccount: 'checkout', pod: 'p-1', labels: { app: 'checkout' } } });
    expect(Date.parse(request!.spec.expiresAt!) - Date.parse(request!.spec.requestedAt)).toBe(60_000);
    expect(call.written.at(-1)).toEqual({ approvalCreated: { requestId: 'q1', name: request!.name, error: '' } });
    ports.accessRequests.deny(NS, request!.name, 'bob', 'no');
    expect(call.written.at(-1)).toMatchObject({ approvalDecision: { name: request!.name, phase: 'Denied', decidedBy: 'bob', reason: 'no' } });

    call.send({ message: 'approvalRequest', approvalRequest: { requestId: 'q2', rule: 'not-delivered', statement: 'x', identity: null, timeoutMs: 0 } });
    await tick();
    expect(call.written.at(-1)).toEqual({ approvalCreated: { requestId: 'q2', name: '', error: 'rule "not-delivered" is not a guardrail of a policy delivered to this sidecar' } });
  });

  it('a withdrawal expires the AccessRequest; a watch after a reconnect gets a decision already made', async () => {
    const { call, stream, ports } = await setup();
    call.send(hello);
    await tick();
    stream.offer(content(['b', 'hold-deletes']));
    call.send({ message: 'approvalRequest', approvalRequest: { requestId: 'q1', rule: 'hold-deletes', statement: 's', identity: null, timeoutMs: 1_000 } });
    await tick();
    const name = ports.accessRequests.list()[0]!.name;
    call.send({ message: 'approvalWithdraw', approvalWithdraw: { name, reason: 'approval timeout reached' } });
    await tick();
    expect(ports.accessRequests.get(NS, name)?.status).toMatchObject({ phase: 'Expired', reason: 'approval timeout reached' });

    const again = await setup();
    const other = await again.ports.accessRequests.create(NS, { policy: 'b', rule: 'hold-deletes', statement: 's', identity: { user: '', database: '', application: '', namespace: NS, serviceAccount: '', pod: '', labels: {} }, requestedAt: new Date().toISOString() });
    again.ports.accessRequests.approve(NS, other, 'alice');
    again.call.send(hello);
    await tick();
    again.call.send({ message: 'approvalWatch', approvalWatch: { name: other } });
    await tick();
    expect(again.call.written.at(-1)).toMatchObject({ approvalDecision: { name: other, phase: 'Approved', decidedBy: 'alice' } });
  });
});
