import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeCluster } from '../../e2e/harness/index.js';
import { PolicyController } from '../src/controller/controller.js';
import type { KubeClient, KubeList, KubeObject } from '../src/kube/rest.js';
import { eventually, startKubeWithCrds, testLogger } from './support/kube.js';

// The controller against a real kube-apiserver: status conditions, Events, leader election between
// two replicas, PolicySource/RejectionSink, and the 410 Gone relist path of the informer.
let kube: KubeCluster;
let client: KubeClient;
const controllers: PolicyController[] = [];
const NS = 'team-a';

interface Dap extends KubeObject {
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason?: string; message?: string; observedGeneration?: number }[] };
}

const start = async (identity: string): Promise<PolicyController> => {
  const c = new PolicyController({ client, namespace: 'dbward-system', leaseName: 'dbward-operator', identity, log: testLogger(identity), leaseDurationSeconds: 3, renewMs: 500, retryMs: 300 });
  controllers.push(c);
  await c.start();
  return c;
};

const apply = (name: string, spec: string): Promise<string> =>
  kube.kubectlOk(['apply', '-f', '-'], { input: `apiVersion: dbward.io/v1alpha1\nkind: DataAccessPolicy\nmetadata: {name: ${name}, namespace: ${NS}}\nspec: ${spec}\n` });

const get = (name: string): Promise<Dap> => client.get<Dap>(`/apis/dbward.io/v1alpha1/namespaces/${NS}/dataaccesspolicies/${name}`);

const readyOf = async (name: string, generation?: number): Promise<NonNullable<Dap['status']>['conditions'] extends (infer C)[] | undefined ? C | undefined : never> => {
  const obj = await get(name);
  const cond = obj.status?.conditions?.find((c) => c.type === 'Ready');
  if (cond === undefined || obj.status?.observedGeneration !== (generation ?? obj.metadata.generation)) return undefined;
  return cond;
};

const eventsFor = async (name: string): Promise<{ reason: string; type: string; note: string }[]> =>
  (await client.get<KubeList<{ reason: string; type: string; note: string; regarding: { name: string } }>>(`/apis/events.k8s.io/v1/namespaces/${NS}/events`)).items.filter((e) => e.regarding.name === name);

let a: PolicyController;
let b: PolicyController;

beforeAll(async () => {
  ({ kube, client } = await startKubeWithCrds({ name: 'controller' }));
  await kube.kubectlOk(['create', 'namespace', NS]);
  await kube.kubectlOk(['create', 'namespace', 'dbward-system']);
  a = await start('replica-a');
  await eventually('replica-a leads', () => (a.leader.isLeader ? true : undefined));
  b = await start('replica-b');
});

afterAll(async () => {
  for (const c of controllers) await c.stop();
  await kube?.stop();
});

describe('DataAccessPolicy status', () => {
  it('Ready=True/Compiled with observedGeneration, and a Ready Event', async () => {
    await apply('good', "{guardrails: [{name: no-drop, when: \"query.command == 'DROP TABLE'\", action: deny}]}");
    const cond = await eventually('good Ready', () => readyOf('good'));
    expect(cond).toMatchObject({ status: 'True', reason: 'Compiled', observedGeneration: 1 });
    const events = await eventually('Ready event', async () => ((await eventsFor('good')).length > 0 ? eventsFor('good') : undefined));
    expect(events[0]).toMatchObject({ type: 'Normal', reason: 'Ready' });
    const printed = await kube.kubectlOk(['get', 'dap', 'good', '-n', NS]);
    expect(printed).toMatch(/good\s+True\s+enforce/);
  });

  it('a CEL type error gives Ready=False/Invalid with the rule and position, and a Warning Event', async () => {
    await apply('typo', "{guardrails: [{name: ok, when: 'true', action: allow}, {name: bad-type, when: \"query.command == 'DELETE' && query.tables == 3\", action: deny}]}");
    const cond = await eventually('typo Invalid', () => readyOf('typo'));
    expect(cond.status).toBe('False');
    expect(cond.reason).toBe('Invalid');
    expect(cond.message).toMatch(/guardrail "bad-type" \(spec\.guardrails\[1\]\.when\) at 1:\d+/);
    const events = await eventually('Invalid event', async () => {
      const list = await eventsFor('typo');
      return list.find((e) => e.reason === 'Invalid');
    });
    expect(events.type).toBe('Warning');
    expect(events.note).toMatch(/bad-type/);
  });

  it('a fixed policy goes back to Ready at its new generation', async () => {
    await apply('typo', "{guardrails: [{name: ok, when: 'true', action: allow}, {name: bad-type, when: \"query.command == 'DELETE' && size(query.tables) == 3\", action: deny}]}");
    const cond = await eventually('typo Ready at generation 2', () => readyOf('typo', 2));
    expect(cond.status).toBe('True');
  });

  it('only the leader writes status', () => {
    expect(a.leader.isLeader).toBe(true);
    expect(b.leader.isLeader).toBe(false);
    expect(a.writes).toBeGreaterThanOrEqual(3);
    expect(b.writes).toBe(0);
  });
});

describe('PolicySource and RejectionSink', () => {
  it('lists Ready policies per namespace and notifies on change; an invalid edit keeps the last good generation', async () => {
    const source = b.policySource; // any replica
    expect(source.list(NS).map((p) => p.policy.metadata.name)).toEqual(['good', 'typo']);
    expect(source.list('other')).toEqual([]);
    const changed: string[] = [];
    const off = source.onChange((ns) => changed.push(ns));
    await apply('good', "{guardrails: [{name: no-drop, when: \"query.command == 'DROP TABLE' || query.command == 'TRUNCATE TABLE'\", action: deny}]}");
    await eventually('change notification', () => (changed.includes(NS) ? true : undefined));
    expect(source.list(NS).find((p) => p.policy.metadata.name === 'good')?.generation).toBe(2);
    changed.length = 0;
    await apply('good', '{guardrails: [{name: no-drop, when: "query.command ==", action: deny}]}');
    await eventually('good Invalid at generation 3', () => readyOf('good', 3));
    expect(changed).toEqual([]);
    expect(source.list(NS).find((p) => p.policy.metadata.name === 'good')?.generation).toBe(2);
    off();
  });

  it('a NACK becomes Applied=False (leader) and a Rejected Event', async () => {
    const obj = await get('typo');
    b.rejected(NS, ['typo'], 'v-123', 'compile failed: boom', { namespace: NS, pod: 'app-1', podUid: 'u', serviceAccount: 'default' }); // non-leader: Event only
    a.rejected(NS, ['typo'], 'v-123', 'compile failed: boom', { namespace: NS, pod: 'app-1', podUid: 'u', serviceAccount: 'default' });
    const applied = await eventually('Applied=False', async () => (await get('typo')).status?.conditions?.find((c) => c.type === 'Applied'));
    expect(applied).toMatchObject({ status: 'False', reason: 'Rejected', observedGeneration: obj.metadata.generation });
    expect(applied.message).toMatch(/app-1 rejected policy version v-123: compile failed: boom/);
    const ev = await eventually('Rejected event', async () => (await eventsFor('typo')).find((e) => e.reason === 'Rejected'));
    expect(ev.type).toBe('Warning');
  });
});

describe('informer', () => {
  it('relists on 410 Gone (watch resumed from a compacted resourceVersion) and sees what changed meanwhile', async () => {
    const before = b.informer.relists;
    await kube.compactEtcd();
    b.informer.reconnect('1');
    await apply('late', '{}');
    await eventually('relist', () => (b.informer.relists > before ? true : undefined));
    await eventually('late in the cache', () => b.informer.get(NS, 'late'));
  });
});

describe('leader election', () => {
  it('the other replica takes over when the leader stops, and reconciles', async () => {
    await a.stop();
    expect(b.pending).toBeGreaterThan(0); // keys queued while following
    await eventually('replica-b leads', () => (b.leader.isLeader ? true : undefined), 10_000);
    await eventually('queue drained by the new leader without new events', () => (b.pending === 0 ? true : undefined), 10_000);
    await apply('after-failover', '{}');
    const cond = await eventually('after-failover Ready', () => readyOf('after-failover'));
    expect(cond.status).toBe('True');
    const lease = await client.get<{ spec: { holderIdentity: string; leaseTransitions: number } }>('/apis/coordination.k8s.io/v1/namespaces/dbward-system/leases/dbward-operator');
    expect(lease.spec.holderIdentity).toBe('replica-b');
    expect(lease.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
  });
});
