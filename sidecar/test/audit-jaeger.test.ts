import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pgBinDir, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { HAVE_JAEGER, JAEGER_BIN, startJaeger, type JaegerSpan, type RunningJaeger } from '../../e2e/harness/jaeger.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * The audit trail in a real Jaeger v2 (issue #5, SPEC §8): statements through the built sidecar
 * (masked, denied, held and approved, held and rejected, failing, continuing a client trace; from
 * node-postgres in the simple and the extended protocol, and from psql) arrive as spans with the
 * identity, decision, rule, tables, masked columns and status codes, each a child of its
 * connection's session span, over OTLP gRPC and OTLP HTTP. Checked through Jaeger's query API.
 */

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: audit, namespace: shop }
spec:
  classification:
    columns:
      - { table: public.customers, column: email, classes: [email] }
  guardrails:
    - name: no-truncate
      when: 'query.command == "TRUNCATE TABLE"'
      action: deny
      message: truncating is not allowed
    - name: hold-deletes
      when: 'query.command == "DELETE"'
      action: requireApproval
      message: deletes are reviewed
  approvals: { timeout: 20s }
`;

const CLIENT_SPAN = '00f067aa0ba902b7';
/** Shown in the test name when skipped: the only reason to skip is a Jaeger that was not built. */
const SKIP_REASON = HAVE_JAEGER ? '' : ` [skipped: no Jaeger binary at ${JAEGER_BIN}; build it with make tools-jaeger]`;

let db: PgCluster;
let jaeger: RunningJaeger;
let policyFile: string;

beforeAll(async () => {
  if (!HAVE_JAEGER) return;
  [db, jaeger] = await Promise.all([startPostgres({ auth: 'trust' }), startJaeger()]);
  await db.sql(
    `create table customers (id int primary key, email text);
     insert into customers values (1, 'ada@analytical.example'), (2, 'grace@cobol.example');
     create table orders (id int primary key, customer_id int, total int);
     insert into orders select g, 1 + g % 2, g * 10 from generate_series(1, 20) g;`,
    { database: 'app', user: 'app' },
  );
  const dir = mkdtempSync(join(tmpdir(), 'dbward-audit-'));
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
});

afterAll(async () => {
  await jaeger?.stop();
  await db?.stop();
});

/** Polls Jaeger until `ready` holds for the service's spans (spans arrive within a second or two). */
async function spansOf(service: string, ready: (spans: JaegerSpan[]) => boolean): Promise<JaegerSpan[]> {
  let spans: JaegerSpan[] = [];
  for (let i = 0; i < 100; i++) {
    spans = await jaeger.spans(service);
    if (ready(spans)) return spans;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`spans of ${service} never became complete; got:\n${spans.map((s) => `${s.operationName} ${JSON.stringify(s.tags)}`).join('\n')}`);
}

async function waitForHold(notices: string[]): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const id = notices.map((n) => /waiting for approval (apr-[0-9a-z]+)/.exec(n)?.[1]).find((m) => m !== undefined);
    if (id !== undefined) return id;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no approval notice: ${JSON.stringify(notices)}`);
}

function one(spans: JaegerSpan[], predicate: (s: JaegerSpan) => boolean, what: string): JaegerSpan {
  const found = spans.filter(predicate);
  if (found.length !== 1) throw new Error(`expected one span ${what}, found ${found.length}:\n${spans.map((s) => `${s.operationName} ${JSON.stringify(s.tags)}`).join('\n')}`);
  return found[0]!;
}

describe.each([
  { protocol: 'grpc', endpoint: () => jaeger.otlpGrpc, rows: [1, 2], TRACE_ID: '4bf92f3577b34da6a3ce929d0e0e4736' },
  { protocol: 'http/protobuf', endpoint: () => jaeger.otlpHttp, rows: [3, 4], TRACE_ID: '5c0a3f3577b34da6a3ce929d0e0e4737' },
])('audit spans in Jaeger over OTLP $protocol', ({ protocol, endpoint, rows, TRACE_ID }) => {
  const service = `dbward-audit-${protocol.replace(/\W/g, '-')}`;
  let sidecar: RunningSidecar;
  let admin: string;

  beforeAll(async () => {
    if (!HAVE_JAEGER) return;
    admin = `127.0.0.1:${await freePort()}`;
    sidecar = await startSidecar({
      upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }),
      args: [
        '--policy', policyFile,
        '--admin', admin,
        '--otlp-endpoint', endpoint(),
        '--identity', 'serviceAccount=agent',
        '--identity', 'namespace=shop',
        '--identity', 'labels.team=data',
      ],
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_SERVICE_NAME: service, OTEL_METRICS_EXPORTER: 'none' },
      name: `sidecar-${protocol}`,
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
  });

  it.skipIf(!HAVE_JAEGER)(`sends every statement with identity, decision, rule, tables, masked columns and status${SKIP_REASON}`, async () => {
    const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app', application_name: 'audit-test' });
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    client.on('error', () => undefined);
    await client.connect();
    const before = Number(await db.sql('select count(*) from orders', { database: 'app' }));

    // masked, extended protocol (first, while the sidecar still reads the catalog), then simple
    const extended = await client.query('select id, email from customers where id = $1', [2]);
    expect(extended.rows[0].email).not.toBe('grace@cobol.example');
    const simple = await client.query('select id, email from customers where id = 1');
    expect(simple.rows[0].email).not.toBe('ada@analytical.example');
    // denied
    await expect(client.query('truncate orders')).rejects.toMatchObject({ code: '42501' });
    // held, then approved
    const approved = client.query(`delete from orders where id = ${rows[0]}`);
    const id1 = await waitForHold(notices);
    const a = await fetch(`http://${admin}/approvals/${id1}/approve`, { method: 'POST', body: JSON.stringify({ by: 'alice' }) });
    expect(a.status).toBe(200);
    expect((await approved).rowCount).toBe(1);
    // held, then rejected
    notices.length = 0;
    const rejected = client.query(`delete from orders where id = ${rows[1]}`).catch((e: Error & { code?: string }) => e);
    const id2 = await waitForHold(notices);
    await fetch(`http://${admin}/approvals/${id2}/deny`, { method: 'POST', body: JSON.stringify({ by: 'bob' }) });
    expect(((await rejected) as Error & { code?: string }).code).toBe('42501');
    // a server error
    await expect(client.query('select * from no_such_table')).rejects.toMatchObject({ code: '42P01' });
    // continues the client's trace (sqlcommenter)
    const traced = await client.query(`select count(*) as n from orders /*traceparent='00-${TRACE_ID}-${CLIENT_SPAN}-01'*/`);
    expect(Number(traced.rows[0].n)).toBe(before - 1);
    await client.end();

    // psql through the sidecar
    const psql = await run(join(pgBinDir(), 'psql'), ['-X', '-At', '-h', sidecar.host, '-p', String(sidecar.port), '-U', 'app', '-d', 'app', '-c', 'select sum(total) from orders'], {
      env: { PGAPPNAME: 'psql' },
    });
    expect(psql.code).toBe(0);

    const isStatement = (s: JaegerSpan): boolean => s.operationName !== 'dbward session';
    const spans = await spansOf(service, (all) => all.filter((s) => s.operationName === 'dbward session').length >= 2 && all.filter(isStatement).length >= 8);
    const sessions = spans.filter((s) => s.operationName === 'dbward session');
    const nodeSession = one(sessions, (s) => s.tags['dbward.identity.application'] === 'audit-test', 'for the node-postgres session');
    const psqlSession = one(sessions, (s) => s.tags['dbward.identity.application'] === 'psql', 'for the psql session');
    for (const session of [nodeSession, psqlSession]) {
      expect(session.parent).toBeUndefined();
      expect(session.tags).toMatchObject({
        'span.kind': 'server',
        'db.system.name': 'postgresql',
        'db.namespace': 'app',
        'server.address': '127.0.0.1',
        'server.port': db.port,
        'dbward.identity.user': 'app',
        'dbward.identity.database': 'app',
        'dbward.identity.service_account': 'agent',
        'dbward.identity.namespace': 'shop',
        'dbward.identity.labels.team': 'data',
      });
    }
    const childOf = (session: JaegerSpan) => (s: JaegerSpan) => s.parent?.spanID === session.spanID && s.traceID === session.traceID;

    const masked = spans.filter((s) => s.operationName === 'SELECT public.customers');
    expect(masked).toHaveLength(2);
    for (const s of masked) {
      expect(childOf(nodeSession)(s)).toBe(true);
      expect(s.tags).toMatchObject({
        'span.kind': 'client',
        'db.system.name': 'postgresql',
        'db.namespace': 'app',
        'db.operation.name': 'SELECT',
        'db.collection.name': 'public.customers',
        'db.query.summary': 'SELECT public.customers',
        'db.query.text': 'select id, email from customers where id = $1',
        'db.response.returned_rows': 1,
        'dbward.decision': 'mask',
        'dbward.identity.service_account': 'agent',
        'dbward.identity.application': 'audit-test',
      });
      expect(JSON.parse(String(s.tags['dbward.masked_columns']))).toEqual(['public.customers.email']);
      expect(JSON.parse(String(s.tags['dbward.tables.read']))).toEqual(['public.customers']);
      expect(String(s.tags['dbward.policy.version'])).not.toBe('');
    }
    // literals never reach the trail in normalized mode
    expect(JSON.stringify(spans)).not.toContain('analytical.example');

    const denied = one(spans, (s) => s.operationName === 'TRUNCATE TABLE public.orders', 'for the TRUNCATE');
    expect(childOf(nodeSession)(denied)).toBe(true);
    expect(denied.tags).toMatchObject({ 'dbward.decision': 'deny', 'dbward.rule': 'no-truncate', 'db.response.status_code': '42501', 'error': true, 'otel.status_code': 'ERROR' });
    expect(JSON.parse(String(denied.tags['dbward.tables.written']))).toEqual(['public.orders']);

    const deletes = spans.filter((s) => s.operationName === 'DELETE public.orders');
    const ok = one(deletes, (s) => s.tags['dbward.decision'] === 'approved', 'approved');
    expect(ok.tags).toMatchObject({ 'dbward.rule': 'hold-deletes', 'db.response.returned_rows': 1, 'db.query.text': 'delete from orders where id = $1' });
    expect(ok.tags['db.response.status_code']).toBeUndefined();
    const no = one(deletes, (s) => s.tags['dbward.decision'] === 'rejected', 'rejected');
    expect(no.tags).toMatchObject({ 'dbward.rule': 'hold-deletes', 'db.response.status_code': '42501' });

    const failed = one(spans, (s) => s.tags['db.response.status_code'] === '42P01', 'with 42P01');
    expect(failed.tags).toMatchObject({ 'dbward.decision': 'allow', 'db.operation.name': 'SELECT' });

    // the client's trace continues: parent is the client's span, with a link to the session
    const continued = await jaeger.trace(TRACE_ID);
    const tracedSpan = one(continued, (s) => s.operationName === 'SELECT public.orders' && s.tags['dbward.identity.application'] === 'audit-test', 'in the client trace');
    expect(tracedSpan.traceID).toBe(TRACE_ID);
    expect(tracedSpan.parent).toEqual({ traceID: TRACE_ID, spanID: CLIENT_SPAN });
    expect(tracedSpan.references).toContainEqual(expect.objectContaining({ traceID: nodeSession.traceID, spanID: nodeSession.spanID }));
    expect(tracedSpan.tags['db.query.text']).toBe('select count(*) as n from orders');

    const fromPsql = one(spans, (s) => s.tags['dbward.identity.application'] === 'psql' && s.operationName === 'SELECT public.orders', 'from psql');
    expect(childOf(psqlSession)(fromPsql)).toBe(true);
    expect(fromPsql.tags).toMatchObject({ 'dbward.decision': 'allow', 'db.response.returned_rows': 1 });

    // the Prometheus endpoint on the admin port counts the same statements
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    expect(metrics).toMatch(/db_client_operation_duration_count\{[^}]*db_operation_name="SELECT",dbward_decision="mask"[^}]*\} 2\n/);
    expect(metrics).toMatch(/dbward_decisions_total\{dbward_decision="deny",dbward_rule="no-truncate"[^}]*\} 1\n/);
    expect(metrics).toMatch(/dbward_decisions_total\{dbward_decision="approved",dbward_rule="hold-deletes"[^}]*\} 1\n/);
    expect(metrics).toMatch(/dbward_masked_values_total\{[^}]*\} 2\n/);
    expect(metrics).toMatch(/dbward_audit_spans_exported_total\{[^}]*\} \d+\n/);
    // every series the Grafana dashboard queries exists (upstream errors only once one happened)
    const dashboard = readFileSync(new URL('../../charts/dbward/dashboards/dbward-sidecar.json', import.meta.url), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b(dbward_[a-z_]+|db_client_operation_duration_bucket)\{/g)].map((m) => m[1]!));
    expect(queried.size).toBeGreaterThanOrEqual(8);
    for (const name of queried) if (name !== 'dbward_upstream_errors_total') expect(metrics, name).toMatch(new RegExp(`^${name}\\{`, 'm'));
  });
});

describe('audit spans without a policy (pass-through mode)', () => {
  it.skipIf(!HAVE_JAEGER)(`still sends a span per statement, decision allow, with the identity and the statement shape${SKIP_REASON}`, async () => {
    const service = 'dbward-audit-pass-through';
    const sidecar = await startSidecar({
      upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }),
      args: ['--otlp-endpoint', jaeger.otlpHttp, '--identity', 'pod=orders-7d9f', '--identity', 'namespace=shop'],
      env: { OTEL_SERVICE_NAME: service, OTEL_METRICS_EXPORTER: 'none' },
      name: 'sidecar-pass-through',
    });
    try {
      const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app', application_name: 'pt' });
      await client.connect();
      // the first statement of the session in the extended protocol, then a simple one
      expect((await client.query('select total from orders where id = $1', [10])).rows).toEqual([{ total: 100 }]);
      await client.query("update orders set total = total + 1 where id = 11 and 'x' = 'x'");
      await client.end();
      const spans = await spansOf(service, (all) => all.length >= 3);
      const select = one(spans, (s) => s.operationName === 'SELECT public.orders', 'SELECT');
      expect(select.tags).toMatchObject({
        'dbward.decision': 'allow',
        'db.query.text': 'select total from orders where id = $1',
        'db.response.returned_rows': 1,
        'dbward.identity.pod': 'orders-7d9f',
        'dbward.identity.application': 'pt',
      });
      expect(select.tags['dbward.policy.version']).toBeUndefined();
      const update = one(spans, (s) => s.operationName === 'UPDATE public.orders', 'UPDATE');
      expect(update.tags).toMatchObject({ 'dbward.decision': 'allow', 'db.query.text': 'update orders set total = total + $1 where id = $2 and $3 = $4', 'db.response.returned_rows': 1 });
      expect(JSON.parse(String(update.tags['dbward.tables.written']))).toEqual(['public.orders']);
    } finally {
      await sidecar.stop();
    }
  });
});
