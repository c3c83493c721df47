/**
 * Cost of the policy engine's hot paths with a realistic 20-rule policy (14 guardrails + the 2
 * built-ins, 6 masking rules).
 *
 *   node --import tsx sidecar/bench/policy.ts [--calls 200000] [--rounds 5]
 *
 * Cases:
 *   statement/miss-walk   decideStatement, no rule matches (all 16 guardrails evaluated), a new
 *                         StatementFacts object per call as the SQL facts cache hands out on a hit
 *                         ({...cached, text}): conversion + evaluation, no memo hit
 *   statement/miss-early  same, but the 2nd guardrail matches (deny)
 *   statement/memo        decideStatement with the same facts and identity objects (extended
 *                         protocol: one Parse, many Executes): memo hit
 *   statement/keyed       a new facts object per call with the same cacheKey (simple protocol,
 *                         facts cache hit): memo hit by key; the policy minus its one rule that
 *                         reads query.text (such a rule turns keyed memoisation off)
 *   column/miss-walk      decideColumn on a classified column no rule matches (all 6 rules, then
 *                         the default), a new column object per call
 *   column/memo           decideColumn, same column and identity objects: memo hit
 *   cel/single            one compiled expression called directly (the library's own cost)
 * Per-call latencies are measured one call at a time with process.hrtime.bigint (which itself
 * costs ~40-60 ns, included); throughput is measured separately over tight loops and reported
 * per CPU-second (process.cpuUsage). Prints a markdown table and one JSON line.
 */
import { availableParallelism, loadavg } from 'node:os';
import { DataAccessPolicySchema } from '../src/api/index.js';
import { compilePolicies, decideColumn, decideStatement, isPolicyErrors, type ColumnFacts, type PolicyIdentity } from '../src/policy/index.js';
import type { StatementFacts } from '../src/sql/facts.js';
import { celEnvironment } from '../src/policy/cel-env.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const CALLS = arg('calls', 200_000);
const ROUNDS = arg('rounds', 5);

const POLICY = {
  apiVersion: 'dbward.io/v1alpha1',
  kind: 'DataAccessPolicy',
  metadata: { name: 'orders', namespace: 'shop' },
  spec: {
    guardrails: [
      { name: 'allow-migrations', when: 'identity.serviceAccount == "migrator" && query.kind == "ddl"', action: 'allow' },
      { name: 'ai-no-pii', when: 'identity.labels[?"dbward.io/kind"].orValue("") == "ai-agent" && query.tables.exists(t, t.startsWith("pii."))', action: 'deny' },
      { name: 'approve-order-deletes', when: 'environment == "production" && query.command == "DELETE" && "public.orders" in query.writeTables', action: 'requireApproval' },
      { name: 'no-copy-outside-ops', when: 'query.command == "COPY" && identity.namespace != "ops"', action: 'deny' },
      { name: 'analytics-read-only', when: 'identity.serviceAccount == "analytics" && query.kind != "read"', action: 'deny' },
      { name: 'no-file-functions', when: 'query.functions.exists(f, f in ["pg_read_file", "pg_catalog.pg_read_file", "lo_export", "lo_import"])', action: 'deny' },
      { name: 'hold-grants-in-prod', when: 'environment == "production" && query.kind == "dcl"', action: 'requireApproval' },
      { name: 'no-superuser-in-prod', when: 'identity.user == "postgres" && environment == "production"', action: 'deny' },
      { name: 'no-secrets-schema', when: 'query.tables.exists(t, t.startsWith("vault."))', action: 'deny' },
      { name: 'batch-writes-need-approval', when: 'identity.labels[?"tier"].orValue("") == "batch" && size(query.writeTables) > 3', action: 'requireApproval' },
      { name: 'no-do-blocks-in-prod', when: 'environment == "production" && query.command == "DO"', action: 'deny' },
      { name: 'no-set-role', when: 'query.command == "SET" && query.text.matches("^\\\\s*(?i:set)\\\\s+(?i:role)")', action: 'deny' },
      { name: 'reporting-app-read-only', when: 'identity.application == "metabase" && query.kind != "read"', action: 'deny' },
      { name: 'no-cross-tenant', when: '"tenant" in identity.labels && query.tables.exists(t, t.startsWith("tenant_") && !t.startsWith("tenant_" + identity.labels["tenant"] + "."))', action: 'deny' },
    ],
    masking: {
      rules: [
        { name: 'support-reads-emails', when: '"email" in column.classes && identity.serviceAccount == "support"', action: 'reveal' },
        { name: 'hash-customer-ids', when: 'column.name == "customer_id" && identity.labels[?"dbward.io/kind"].orValue("") == "ai-agent"', action: 'mask', mask: 'hash' },
        { name: 'partial-cards', when: '"credit_card" in column.classes', action: 'mask', mask: 'partial' },
        { name: 'email-domain-for-analytics', when: '"email" in column.classes && identity.serviceAccount == "analytics"', action: 'mask', mask: 'email' },
        { name: 'reveal-counts', when: 'column.derived && column.type == "int8"', action: 'reveal' },
        { name: 'ops-sees-all-outside-prod', when: 'environment != "production" && identity.namespace == "ops"', action: 'reveal' },
      ],
    },
  },
};

const compileStarted = process.hrtime.bigint();
const set = compilePolicies([DataAccessPolicySchema.parse(POLICY)]);
const compileMs = Number(process.hrtime.bigint() - compileStarted) / 1e6;
if (isPolicyErrors(set)) throw set;
const withoutText = structuredClone(POLICY);
withoutText.spec.guardrails = withoutText.spec.guardrails.filter((g) => !g.when.includes('query.text'));
const keyedSet = compilePolicies([DataAccessPolicySchema.parse(withoutText)]);
if (isPolicyErrors(keyedSet)) throw keyedSet;

const identity: PolicyIdentity = {
  user: 'app',
  database: 'shop',
  application: 'checkout',
  namespace: 'shop',
  serviceAccount: 'checkout',
  pod: 'checkout-7d9f-x2',
  labels: { app: 'checkout', 'pod-template-hash': '7d9f', team: 'payments' },
};
const aiIdentity: PolicyIdentity = { ...identity, labels: { app: 'agent', 'dbward.io/kind': 'ai-agent' } };

const select: StatementFacts = {
  command: 'SELECT',
  kind: 'read',
  tables: ['public.customers', 'public.orders'],
  readTables: ['public.customers', 'public.orders'],
  writeTables: [],
  columns: ['public.customers.email', 'public.customers.id', 'public.orders.customer_id', 'public.orders.total'],
  hasWhere: true,
  functions: ['lower', 'sum'],
  text: 'SELECT c.email, sum(o.total) FROM public.customers c JOIN public.orders o ON o.customer_id = c.id WHERE c.id = 42 GROUP BY 1',
  effectUnknown: false,
  output: [],
  predicateColumns: [],
};
const piiSelect: StatementFacts = { ...select, tables: ['pii.people', 'public.orders'], readTables: ['pii.people', 'public.orders'] };
const emailColumn: ColumnFacts = { table: 'public.customers', name: 'email', type: 'text', classes: ['email'], derived: false };

interface Case {
  name: string;
  /** One call; returns something so the call cannot be optimised away. */
  run: (i: number) => unknown;
}

let texts = 0;
const cases: Case[] = [
  { name: 'statement/miss-walk', run: () => decideStatement(set, { identity, environment: 'production', facts: { ...select, text: select.text + String(texts++ & 7) } }) },
  { name: 'statement/miss-early', run: () => decideStatement(set, { identity: aiIdentity, environment: 'production', facts: { ...piiSelect, text: select.text } }) },
  { name: 'statement/memo', run: () => decideStatement(set, { identity, environment: 'production', facts: select }) },
  { name: 'statement/keyed', run: () => decideStatement(keyedSet, { identity, environment: 'production', facts: { ...select, text: select.text + String(texts++ & 7) }, cacheKey: 'q1#0' }) },
  { name: 'column/miss-walk', run: () => decideColumn(set, { identity, environment: 'production', column: { ...emailColumn }, query: select }) },
  { name: 'column/memo', run: () => decideColumn(set, { identity, environment: 'production', column: emailColumn, query: select }) },
];

// The library alone: one typical expression, evaluated against a prepared activation.
const single = celEnvironment('guardrail').parse('environment == "production" && query.command == "DELETE" && "public.orders" in query.writeTables');
single.check();
const activation = set.runtime.activation;
cases.push({
  name: 'cel/single',
  run: () => single(activation),
});

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

interface Result {
  case: string;
  medianPerSec: number;
  p50us: number;
  p99us: number;
}

let sink: unknown;
function measure(c: Case): Result {
  for (let i = 0; i < 20_000; i++) sink = c.run(i); // warm-up: let V8 optimise
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) sink = c.run(i);
    const used = process.cpuUsage(cpu);
    rates.push(CALLS / ((used.user + used.system) / 1e6));
  }
  rates.sort((a, b) => a - b);
  const samples = new Float64Array(Math.min(CALLS, 100_000));
  for (let i = 0; i < samples.length; i++) {
    const t = process.hrtime.bigint();
    sink = c.run(i);
    samples[i] = Number(process.hrtime.bigint() - t) / 1e3;
  }
  samples.sort();
  return { case: c.name, medianPerSec: Math.round(rates[Math.floor(rates.length / 2)] ?? 0), p50us: percentile(samples, 0.5), p99us: percentile(samples, 0.99) };
}

const results = cases.map(measure);
if (sink === undefined) throw new Error('unreachable');

const overhead = new Float64Array(100_000);
for (let i = 0; i < overhead.length; i++) {
  const t = process.hrtime.bigint();
  overhead[i] = Number(process.hrtime.bigint() - t) / 1e3;
}
overhead.sort();

console.log(`Node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0]?.toFixed(2)}; compile of the policy: ${compileMs.toFixed(1)} ms (cold, first compile of the process)`);
console.log(`timer overhead per sample: p50 ${percentile(overhead, 0.5).toFixed(3)} µs\n`);
console.log('| case | decisions/s (CPU, median) | p50 µs | p99 µs |');
console.log('|---|---:|---:|---:|');
for (const r of results) console.log(`| ${r.case} | ${r.medianPerSec.toLocaleString('en-US')} | ${r.p50us.toFixed(2)} | ${r.p99us.toFixed(2)} |`);
console.log(
  JSON.stringify({
    bench: 'policy',
    node: process.version,
    calls: CALLS,
    rounds: ROUNDS,
    loadAverage: Number(loadavg()[0]?.toFixed(2)),
    compileMs: Number(compileMs.toFixed(2)),
    guardrails: set.guardrails.length,
    maskingRules: set.maskingRules.length,
    results,
  }),
);
