/**
 * The audit trail's cost per statement, in process: a session tracker fed the messages of a
 * pgbench -S transaction (Query, RowDescription, DataRow, CommandComplete, ReadyForQuery) and the
 * enforcer's verdict, with spans encoded into the export queue (the transport discards the
 * batches) and metrics recorded. `node --import tsx e2e/bench/experiments/audit-path.ts`
 */
import { createAudit, resolveAuditConfig } from '../../../sidecar/src/audit/index.js';
import { createLogger } from '../../../sidecar/src/log/logger.js';
import type { Verdict } from '../../../sidecar/src/session/policy-gate.js';
import { FactsCache, initSqlAnalysis } from '../../../sidecar/src/sql/index.js';
import { commandComplete, dataRow, query, readyForQuery, rowDescription } from '../../../sidecar/src/wire/writers.js';

await initSqlAnalysis();
const facts = new FactsCache();
const log = createLogger('error');
const identity = { user: 'postgres', database: 'bench', application: 'pgbench', namespace: 'shop', serviceAccount: 'checkout', pod: '', labels: { app: 'checkout' } };
const decision = Object.freeze({ action: 'allow' as const, rule: undefined, message: undefined, auditOnly: false });
let sentBytes = 0;
const endpoint = process.env['AUDIT_PATH_ENDPOINT'] || undefined;

async function run(spans: boolean, n: number): Promise<number> {
  const audit = createAudit({
    // AUDIT_PATH_ENDPOINT: export over real OTLP/HTTP (e.g. to a collector answering at once) instead of discarding
    config: endpoint !== undefined && spans ? resolveAuditConfig(endpoint, { OTEL_METRICS_EXPORTER: 'none' }) : { serviceName: 'bench', resource: { 'service.name': 'bench' }, export: undefined },
    metrics: true,
    upstream: { host: '127.0.0.1', port: 5432 },
    log,
    version: 'bench',
    policyVersion: () => 'v1',
    queryText: () => 'normalized',
    ...(spans && endpoint === undefined ? { transport: { send: async (b: Buffer) => void (sentBytes += b.length), close: () => undefined } } : {}),
  });
  const session = audit.openSession(identity, 1, true);
  const rd = rowDescription([{ name: 'abalance', tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]);
  const row = dataRow([Buffer.from('0')]);
  const cc = commandComplete('SELECT 1');
  const rfq = readyForQuery('I');
  const t0 = cpuNs();
  for (let i = 0; i < n; i++) {
    // let the export queue send its batches, as the event loop does between client messages
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    const text = `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 1_000_000};`;
    const q = query(text);
    const analysis = facts.analyze(text, { searchPath: ['public'], standardConformingStrings: true });
    const verdict: Verdict = { kind: 'forward', facts: 'statements' in analysis ? analysis.statements : [], decisions: [decision] };
    session.clientMessage(q[0]!, q, 0, q.length);
    session.decisions.decided(verdict);
    session.serverMessage(rd[0]!, rd, 0, rd.length);
    session.serverMessage(row[0]!, row, 0, row.length);
    session.serverMessage(cc[0]!, cc, 0, cc.length);
    session.serverMessage(rfq[0]!, rfq, 0, rfq.length);
  }
  const ns = (cpuNs() - t0) / n;
  session.close();
  const stats = audit.stats();
  if (stats !== undefined && stats.droppedQueueFull + stats.droppedExportFailed > 0) process.stdout.write(`  dropped: ${JSON.stringify(stats)}\n`);
  await audit.shutdown(1000);
  return ns;
}

async function baseline(n: number): Promise<number> {
  const t0 = cpuNs();
  for (let i = 0; i < n; i++) {
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    const text = `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 1_000_000};`;
    query(text);
    facts.analyze(text, { searchPath: ['public'], standardConformingStrings: true });
  }
  return (cpuNs() - t0) / n;
}

/** CPU time of this process (user + system), in ns: less sensitive than wall time to other jobs on the machine. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

for (let k = 0; k < 5; k++) {
  const b = await baseline(100_000);
  const m = await run(false, 100_000);
  const s = await run(true, 100_000);
  process.stdout.write(`round ${k + 1}: baseline (message + analysis) ${(b / 1000).toFixed(2)} µs; + audit metrics ${((m - b) / 1000).toFixed(2)} µs; + spans and metrics ${((s - b) / 1000).toFixed(2)} µs per statement\n`);
}
process.stdout.write(`encoded ${(sentBytes / 1e6).toFixed(1)} MB of OTLP requests\n`);
process.exit(0);
