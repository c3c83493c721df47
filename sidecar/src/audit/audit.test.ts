import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../log/logger.js';
import type { ColumnPlan } from '../masking/plan.js';
import type { Identity, StatementDecision } from '../session/policy-gate.js';
import { FactsCache, initSqlAnalysis, type StatementFacts } from '../sql/index.js';
import { commandComplete, query, readyForQuery } from '../wire/writers.js';
import { createAudit, type QueryTextMode } from './audit.js';
import { decodeTraceRequest, type DecodedSpan } from './otlp-decode.js';

/** createAudit end to end without a network: a capturing transport, spans decoded back. */

const identity: Identity = { user: 'app', database: 'shop', application: 'web', namespace: 'ns', serviceAccount: 'sa', pod: '', labels: { team: 'data' } };
const allow: StatementDecision = { action: 'allow', rule: undefined, message: undefined, auditOnly: false };
const facts = new FactsCache();

beforeAll(async () => {
  await initSqlAnalysis();
});

function analyse(text: string): StatementFacts[] {
  const r = facts.analyze(text, { searchPath: ['public'], standardConformingStrings: true });
  if ('error' in r) throw new Error(r.error);
  return r.statements;
}

async function run(mode: QueryTextMode, statements: { sql: string; masked?: boolean }[], policyMode = true): Promise<DecodedSpan[]> {
  const bodies: Buffer[] = [];
  const audit = createAudit({
    config: { serviceName: 't', resource: { 'service.name': 't' }, export: undefined },
    metrics: false,
    upstream: { host: 'db', port: 5432 },
    log: createLogger('error'),
    version: 'test',
    policyVersion: () => (policyMode ? 'v7' : undefined),
    queryText: () => mode,
    transport: { send: (body) => Promise.resolve(void bodies.push(body)), close: () => undefined },
  });
  const session = audit.openSession(identity, 42, policyMode);
  const plan: ColumnPlan[] = [{ action: 'pass' }, { action: 'mask', mask: 'redact', column: { typeOid: 25, typeModifier: -1, format: 0 }, fixed: undefined, inline: undefined }];
  for (const { sql, masked } of statements) {
    const q = query(sql);
    session.clientMessage(q[0]!, q, 0, q.length);
    if (policyMode) {
      const f = analyse(sql);
      session.decisions.decided({ kind: 'forward', facts: f, decisions: f.map(() => allow) });
    }
    if (masked === true) session.decisions.masked(plan);
    for (const frame of [commandComplete('SELECT 1'), readyForQuery('I')]) session.serverMessage(frame[0]!, frame, 0, frame.length);
  }
  session.close();
  await audit.shutdown(1000);
  return bodies.flatMap(decodeTraceRequest);
}

describe('createAudit', () => {
  it.each([
    ['normalized', "select email from customers where id = 7 and name = 'ada'", 'select email from customers where id = $1 and name = $2'],
    ['full', "select email from customers where id = 7 and name = 'ada'", "select email from customers where id = 7 and name = 'ada'"],
    ['none', "select email from customers where id = 7 and name = 'ada'", undefined],
  ] as const)('audit.queryText %s', async (mode, sql, text) => {
    const spans = await run(mode, [{ sql }]);
    const statement = spans.find((s) => s.name !== 'dbward session')!;
    expect(statement.attributes['db.query.text']).toBe(text);
  });

  it('statement spans are CLIENT children of the SERVER session span, with identity, shape, decision and masked columns', async () => {
    const spans = await run('normalized', [{ sql: 'select id, email from customers' , masked: true }, { sql: 'select 1' }]);
    const session = spans.find((s) => s.name === 'dbward session')!;
    expect(session).toMatchObject({ kind: 2, parentSpanId: undefined });
    expect(session.attributes).toMatchObject({ 'dbward.session.id': 42, 'dbward.session.statements': 2, 'dbward.identity.labels.team': 'data', 'server.address': 'db', 'server.port': 5432 });
    const [masked, plain] = spans.filter((s) => s.name !== 'dbward session');
    for (const s of [masked!, plain!]) expect(s).toMatchObject({ kind: 3, traceId: session.traceId, parentSpanId: session.spanId });
    expect(masked!.name).toBe('SELECT public.customers');
    expect(masked!.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.namespace': 'shop',
      'db.operation.name': 'SELECT',
      'db.collection.name': 'public.customers',
      'dbward.decision': 'mask',
      'dbward.masked_columns': ['public.customers.email'],
      'dbward.tables.read': ['public.customers'],
      'dbward.policy.version': 'v7',
      'dbward.identity.service_account': 'sa',
      'db.response.returned_rows': 1,
    });
    expect(plain!.attributes['dbward.decision']).toBe('allow');
    expect(plain!.attributes['dbward.masked_columns']).toBeUndefined();
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
  });

  it('pass-through mode: analysed by the audit itself, no policy version', async () => {
    const spans = await run('normalized', [{ sql: 'update orders set total = 0 where id = 3' }], false);
    const update = spans.find((s) => s.name !== 'dbward session')!;
    expect(update.name).toBe('UPDATE public.orders');
    expect(update.attributes).toMatchObject({ 'dbward.decision': 'allow', 'dbward.tables.written': ['public.orders'], 'db.query.text': 'update orders set total = $1 where id = $2' });
    expect(update.attributes['dbward.policy.version']).toBeUndefined();
  });
});
