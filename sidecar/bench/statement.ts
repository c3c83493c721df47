/**
 * Per-statement cost of policy enforcement, measured in process: exactly what a session does for a
 * Query message (or the SQL of a Parse) — `judgeSql` with the runtime's `analyze` (the database's
 * `FactsCache.analyze`, with a catalog snapshot of the tables used) and the active policy's
 * `decide` — with the 20-rule policy of the end-to-end benchmark
 * (e2e/bench/policy-20-rules.yaml), loaded by PolicyWatcher and joined by createPolicyRuntime as
 * sidecar/src/main.ts does, in environment `production`.
 *
 *   node --import tsx sidecar/bench/statement.ts [--iterations 20000] [--cold 2000] [--docs]
 *
 * For pgbench -S's statement, the tpcb-like statements and five application statements, each call
 * sends a different literal (as pgbench's simple protocol and interpolating clients do), and
 * measures, one call at a time (process.hrtime.bigint, ~40 ns, included):
 *   cold      judgeSql, the shape not in the facts cache (emptied before each call, outside the
 *             timing, by storing a new catalog snapshot as a refresh does): lexer + libpg_query
 *             parse + facts + cache insert + the guardrail walk
 *   warm      judgeSql, the shape cached: lexer + cache hit + decision (per transaction of pgbench -S)
 *   analysis  the facts cache hit alone (the runtime's analyze)
 *   walk      ActivePolicy.decide alone on facts no decision memo knows (new arrays): the guardrail
 *             walk, what a shape pays the first time (cold) and for each new identity
 *   memo      ActivePolicy.decide alone on a new facts object per call as a cache hit hands out
 *             ({...cached, text}): the runtime's shape memo hit, what warm pays
 * Every verdict is checked: no rule matches these statements, so each one walks the whole chain.
 * Prints a markdown table and one JSON line; --docs also writes the table between the
 * bench:policy:statement markers of docs/benchmarks.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ApprovalRegistry } from '../src/approvals/registry.js';
import type { CompiledPolicySet } from '../src/policy/index.js';
import { PolicyWatcher } from '../src/policy/watch.js';
import { createPolicyRuntime } from '../src/runtime/policy-runtime.js';
import type { SessionSql } from '../src/session/enforcer.js';
import { judgeSql, type ActivePolicy, type GateContext, type Identity, type StatementDecision } from '../src/session/policy-gate.js';
import { initSqlAnalysis, isUnparseable, type CatalogRelation, type CatalogSnapshot, type StatementFacts } from '../src/sql/index.js';
import { lcg } from './lcg.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const ITERATIONS = arg('iterations', 20_000);
const COLD = arg('cold', 2_000);
const WRITE_DOCS = process.argv.includes('--docs');
const POLICY_FILE = fileURLToPath(new URL('../../e2e/bench/policy-20-rules.yaml', import.meta.url));
const DOCS = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
const ENVIRONMENT = 'production';

/** The block of docs/benchmarks.md this benchmark owns, inside the bench:policy section. */
const STATEMENT_START = '<!-- bench:policy:statement:start -->';
const STATEMENT_END = '<!-- bench:policy:statement:end -->';

/**
 * Replaces the bench:policy:statement block inside the bench:policy section of `path` (creating
 * the section after the rest of the file when missing), keeping the rest of the section, including
 * the end-to-end block e2e/bench/run.ts writes.
 */
function writeStatementBlock(path: string, block: string): void {
  const sectionStart = '<!-- bench:policy:start -->';
  const sectionEnd = '<!-- bench:policy:end -->';
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '# dbward benchmarks\n';
  if (!text.includes(sectionStart) || !text.includes(sectionEnd)) {
    text = `${text.trimEnd()}\n\n${[sectionStart, '## Policy enforcement cost', '', '<!-- bench:policy:pgbench:start -->', '<!-- bench:policy:pgbench:end -->', '', STATEMENT_START, STATEMENT_END, sectionEnd].join('\n')}\n`;
  }
  const from = text.indexOf(sectionStart);
  const to = text.indexOf(sectionEnd, from);
  const start = text.indexOf(STATEMENT_START, from);
  const end = text.indexOf(STATEMENT_END, from);
  if (start >= 0 && end > start && end < to) text = text.slice(0, start) + block + text.slice(end + STATEMENT_END.length);
  else text = `${text.slice(0, to)}${block}\n${text.slice(to)}`;
  writeFileSync(path, text);
}

const rand = lcg(42);
const int = (max: number): number => 1 + Math.floor(rand() * max);
/** pgbench's `random(-5000, 5000)`: negative deltas are printed `+ -123`, a second cache shape. */
const delta = (): number => int(10_001) - 5_001;

interface Statement {
  name: string;
  group: 'pgbench -S' | 'pgbench tpcb-like' | 'application';
  make: () => string;
}

/** pgbench's scripts at scale 10 (naccounts 100,000 per branch), as the simple protocol sends them. */
const STATEMENTS: Statement[] = [
  { group: 'pgbench -S', name: 'SELECT abalance ... WHERE aid = ?', make: () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${int(1_000_000)};` },
  { group: 'pgbench tpcb-like', name: 'BEGIN', make: () => 'BEGIN;' },
  {
    group: 'pgbench tpcb-like',
    name: 'UPDATE pgbench_accounts',
    make: () => `UPDATE pgbench_accounts SET abalance = abalance + ${delta()} WHERE aid = ${int(1_000_000)};`,
  },
  { group: 'pgbench tpcb-like', name: 'UPDATE pgbench_tellers', make: () => `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta()} WHERE tid = ${int(100)};` },
  { group: 'pgbench tpcb-like', name: 'UPDATE pgbench_branches', make: () => `UPDATE pgbench_branches SET bbalance = bbalance + ${delta()} WHERE bid = ${int(10)};` },
  {
    group: 'pgbench tpcb-like',
    name: 'INSERT INTO pgbench_history',
    make: () => `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${int(100)}, ${int(10)}, ${int(1_000_000)}, ${delta()}, CURRENT_TIMESTAMP);`,
  },
  { group: 'pgbench tpcb-like', name: 'END', make: () => 'END;' },
  {
    group: 'application',
    name: 'join + GROUP BY',
    make: () =>
      `SELECT c.id, c.email, count(o.id) AS orders, sum(o.total) AS spent FROM customers c LEFT JOIN orders o ON o.customer_id = c.id ` +
      `WHERE c.created_at > '2024-0${int(9)}-01' GROUP BY c.id, c.email ORDER BY spent DESC LIMIT ${int(50)}`,
  },
  {
    group: 'application',
    name: 'CTE + window',
    make: () =>
      `WITH recent AS (SELECT customer_id, total, created_at FROM orders WHERE created_at > now() - interval '${int(30)} days') ` +
      `SELECT customer_id, total, row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn FROM recent WHERE total > ${int(500)}`,
  },
  {
    group: 'application',
    name: 'ORM select by id',
    make: () =>
      `SELECT "users"."id", "users"."email", "users"."name", "users"."created_at", "users"."updated_at" FROM "users" ` +
      `WHERE "users"."id" = ${int(100_000)} AND "users"."deleted_at" IS NULL LIMIT 1`,
  },
  {
    group: 'application',
    name: '3-way join + EXISTS',
    make: () =>
      `SELECT o.id, o.total, c.name, a.city FROM orders o JOIN customers c ON c.id = o.customer_id JOIN addresses a ON a.id = o.shipping_address_id ` +
      `WHERE o.created_at >= '2024-0${int(9)}-01' AND o.status IN ('paid', 'shipped') ` +
      `AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.sku = 'SKU-${int(9999)}') ORDER BY o.created_at DESC LIMIT 20`,
  },
  {
    group: 'application',
    name: 'UPDATE ... WHERE',
    make: () => `UPDATE orders SET status = 'shipped', shipped_at = now(), updated_at = now() WHERE id = ${int(1_000_000)} AND status = 'paid'`,
  },
];

/** The identity the end-to-end benchmark's sidecar+policy judges pgbench with. */
const IDENTITY: Identity = {
  user: 'postgres',
  database: 'bench',
  application: 'pgbench',
  namespace: 'shop',
  serviceAccount: 'checkout',
  pod: '',
  labels: { app: 'checkout', team: 'payments' },
};
const SESSION: SessionSql = { database: 'bench', standardConformingStrings: true, searchPath: ['public'] };

const table = (...columns: Array<[string, string]>): CatalogRelation => ({ kind: 'table', columns: columns.map(([name, type]) => ({ name, type })) });
/** What the sidecar would load from the database (CATALOG_QUERY): the tables and functions used here. */
const CATALOG: CatalogSnapshot = {
  searchPath: ['public'],
  relations: {
    public: {
      pgbench_accounts: table(['aid', 'integer'], ['bid', 'integer'], ['abalance', 'integer'], ['filler', 'character(84)']),
      pgbench_branches: table(['bid', 'integer'], ['bbalance', 'integer'], ['filler', 'character(88)']),
      pgbench_tellers: table(['tid', 'integer'], ['bid', 'integer'], ['tbalance', 'integer'], ['filler', 'character(84)']),
      pgbench_history: table(['tid', 'integer'], ['bid', 'integer'], ['aid', 'integer'], ['delta', 'integer'], ['mtime', 'timestamp without time zone'], ['filler', 'character(22)']),
      customers: table(['id', 'bigint'], ['email', 'text'], ['name', 'text'], ['created_at', 'timestamp with time zone']),
      orders: table(
        ['id', 'bigint'], ['customer_id', 'bigint'], ['total', 'numeric(12,2)'], ['status', 'text'], ['shipping_address_id', 'bigint'],
        ['created_at', 'timestamp with time zone'], ['shipped_at', 'timestamp with time zone'], ['updated_at', 'timestamp with time zone'],
      ),
      order_items: table(['order_id', 'bigint'], ['sku', 'text'], ['quantity', 'integer']),
      addresses: table(['id', 'bigint'], ['street', 'text'], ['city', 'text'], ['country', 'text']),
      users: table(['id', 'bigint'], ['email', 'text'], ['name', 'text'], ['created_at', 'timestamp with time zone'], ['updated_at', 'timestamp with time zone'], ['deleted_at', 'timestamp with time zone']),
    },
  },
  functions: {
    'pg_catalog.now': { volatility: 's', languages: ['internal'] },
    'pg_catalog.count': { volatility: 'i', languages: ['internal'] },
    'pg_catalog.sum': { volatility: 'i', languages: ['internal'] },
    'pg_catalog.row_number': { volatility: 'i', languages: ['internal'] },
  },
};

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

interface Percentiles {
  p50: number;
  p99: number;
}

let sink = 0;

/**
 * Microseconds per call of `fn` over `inputs`, one call at a time; `before` runs ahead of each
 * call, outside the timing. A warm-up pass over the first inputs lets V8 optimise first.
 */
function timeEach<T>(inputs: readonly T[], fn: (input: T) => unknown, before?: () => void): Percentiles {
  const warmup = Math.min(2_000, inputs.length);
  for (let i = 0; i < warmup; i++) {
    before?.();
    if (fn(inputs[i] as T) !== undefined) sink++;
  }
  const us = new Float64Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    before?.();
    const input = inputs[i] as T;
    const start = process.hrtime.bigint();
    const out = fn(input);
    us[i] = Number(process.hrtime.bigint() - start) / 1000;
    if (out !== undefined) sink++;
  }
  us.sort();
  return { p50: percentile(us, 0.5), p99: percentile(us, 0.99) };
}

/** Guardrails CEL evaluates for these facts: the others are skipped by their command / environment guard. */
function celEvaluated(set: CompiledPolicySet, facts: StatementFacts): number {
  return set.guardrails.filter((g) => (g.commands === undefined || g.commands.has(facts.command)) && (g.environments === undefined || g.environments.has(ENVIRONMENT)))
    .length;
}

// The policy, as the sidecar loads it (--policy FILE --environment production).
await initSqlAnalysis();
const watcher = new PolicyWatcher({ paths: [POLICY_FILE] });
const loaded = await watcher.reload('initial');
if ('errors' in loaded) throw new Error(`${POLICY_FILE} did not load:\n${loaded.errors.map((e) => e.message).join('\n')}`);
const set = loaded;
const runtime = createPolicyRuntime({ current: () => watcher.current, approvals: new ApprovalRegistry(), environment: ENVIRONMENT });
runtime.catalogs.store(SESSION.database, CATALOG);
/** A catalog refresh: the database's facts cache starts empty (a new snapshot object, same content). */
const emptyFactsCache = (): void => runtime.catalogs.store(SESSION.database, { ...CATALOG });
const policy: ActivePolicy | null = runtime.current();
if (policy === null) throw new Error('no policy in force');
const ctx: GateContext = { identity: IDENTITY, environment: runtime.environment, analyze: (text) => runtime.analyze(text, SESSION), policy };

function checked(decision: StatementDecision): StatementDecision {
  if (decision.action !== 'allow' || decision.rule !== undefined) throw new Error(`expected no rule to match, got ${JSON.stringify(decision)}`);
  return decision;
}

/** judgeSql, checked: every statement here must be forwarded with no rule matched. */
function judge(text: string): number {
  const verdict = judgeSql(text, ctx);
  if (verdict.kind !== 'forward' || verdict.decisions.length !== 1 || verdict.decisions[0]?.rule !== undefined) {
    throw new Error(`${JSON.stringify(text)}: expected forward with no rule matched, got ${verdict.kind} ${JSON.stringify(verdict.decisions)}`);
  }
  return verdict.decisions.length;
}

interface Row {
  group: string;
  statement: string;
  command: string;
  /** Guardrails of the chain (the policy's + the built-ins). */
  guardrails: number;
  /** Of those, evaluated by CEL for this statement. */
  celEvaluated: number;
  cold: Percentiles;
  warm: Percentiles;
  analysis: Percentiles;
  walk: Percentiles;
  memo: Percentiles;
}

const rows: Row[] = [];
for (const s of STATEMENTS) {
  const texts = Array.from({ length: ITERATIONS }, s.make);
  const coldTexts = texts.slice(0, COLD);

  // cold: the shape is new to the facts cache every call.
  const cold = timeEach(coldTexts, judge, emptyFactsCache);

  // warm: the shape is cached (both shapes, for statements with a signed literal).
  emptyFactsCache();
  const warm = timeEach(texts, judge);
  const analysis = timeEach(texts, (t) => runtime.analyze(t, SESSION));

  // A cache hit shares the entry's frozen arrays: the same text with other literals, one `tables` array.
  const text = texts[0] ?? '';
  const first = runtime.analyze(text, SESSION);
  const second = runtime.analyze(text.replace(/\d+/g, (digits) => String(Number(digits) + 1)), SESSION);
  if (isUnparseable(first) || isUnparseable(second)) throw new Error(`${s.name}: not understood`);
  const cached = first.statements[0] as StatementFacts;
  if (second.statements[0]?.tables !== cached.tables) throw new Error(`${s.name}: a different literal missed the facts cache`);
  // decision alone, full walk: facts with arrays no memo has seen (copies, made outside the timing).
  const fresh = texts.map((text) => ({ ...cached, tables: [...cached.tables], text }));
  const walk = timeEach(fresh, (f) => checked(policy.decide(f, IDENTITY, ENVIRONMENT)));
  // decision alone, memo: a new facts object per call, as a cache hit hands out ({...cached, text}).
  const hits = texts.map((text) => ({ ...cached, text }));
  const memo = timeEach(hits, (f) => checked(policy.decide(f, IDENTITY, ENVIRONMENT)));

  rows.push({
    group: s.group,
    statement: s.name,
    command: cached.command,
    guardrails: set.guardrails.length,
    celEvaluated: celEvaluated(set, cached),
    cold,
    warm,
    analysis,
    walk,
    memo,
  });
}
if (sink < 0) console.log(sink);

const load = loadavg()[0] ?? Number.NaN;
const f = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const header =
  '| statement | command | guardrails run by CEL (of the chain) | cold p50 µs | cold p99 µs | warm p50 µs | warm p99 µs | analysis (cache hit) p50 / p99 µs | decision, walk p50 / p99 µs | decision, memo p50 / p99 µs |';
const lines = [
  header,
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.group}: ${r.statement} | ${r.command} | ${r.celEvaluated} of ${r.guardrails} | ${f(r.cold.p50)} | ${f(r.cold.p99)} | **${f(r.warm.p50, 2)}** | **${f(r.warm.p99, 2)}** | ` +
      `${f(r.analysis.p50, 2)} / ${f(r.analysis.p99, 2)} | ${f(r.walk.p50, 2)} / ${f(r.walk.p99, 2)} | ${f(r.memo.p50, 2)} / ${f(r.memo.p99, 2)} |`,
  ),
];
const machine = `Node ${process.version}, ${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${f(load, 2)}`;
const json = JSON.stringify({ bench: 'policy-statement', node: process.version, iterations: ITERATIONS, cold: COLD, loadAverage: load, policyVersion: set.version, results: rows });
console.log(`${machine}; ${ITERATIONS} calls per case (${COLD} for cold); policy ${set.version}\n`);
console.log(lines.join('\n'));
console.log(`\n${json}`);

if (WRITE_DOCS) {
  writeStatementBlock(
    DOCS,
    [
      STATEMENT_START,
      '### Per statement: SQL facts + decision, in process',
      '',
      `_Generated by \`node --import tsx sidecar/bench/statement.ts --docs\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${machine}; ` +
        `${ITERATIONS.toLocaleString('en-US')} calls per case, ${COLD.toLocaleString('en-US')} for cold; percentiles of single calls timed with \`process.hrtime.bigint()\` (~0.04 µs, included)._`,
      '',
      'What the session runs for each Query message (and the SQL of each Parse): `judgeSql` (sidecar/src/session/policy-gate.ts) with the ' +
        "runtime's analysis, `FactsCache.analyze` (sidecar/src/sql/cache.ts), and the active policy's `decide` (sidecar/src/runtime/policy-runtime.ts), " +
        `with \`e2e/bench/policy-20-rules.yaml\` loaded by \`PolicyWatcher\` as \`--policy\` does, \`--environment ${ENVIRONMENT}\`, the end-to-end ` +
        "benchmark's identity and a catalog snapshot of the tables used (as the sidecar loads one per database). Every call sends a different literal. " +
        'Every verdict is checked: no rule matches, so a decision that is not memoised walks the whole chain of 22 guardrails (those whose top-level ' +
        '`query.command` / `environment` conjunct cannot hold are skipped without calling CEL: the "run by CEL" column).',
      '',
      '- **cold**: the shape is not in the facts cache (emptied before each call, outside the timing, by storing a new catalog snapshot as a refresh does): ' +
        'lexer, libpg_query parse, facts, cache insert, guardrail walk;',
      '- **warm**: the shape is cached, as for every transaction after a shape\'s first: lexer, cache hit, decision from the shape memo;',
      '- **analysis**: the facts cache hit alone; **decision, walk**: `decide` alone on facts no memo knows (what a new shape, or a new identity, costs); ' +
        '**decision, memo**: `decide` alone on a new facts object per call as a cache hit hands out, answered by the runtime\'s memo per statement shape.',
      '',
      ...lines,
      '',
      '<details>',
      '<summary>raw figures (JSON)</summary>',
      '',
      '```json',
      json,
      '```',
      '',
      '</details>',
      STATEMENT_END,
    ].join('\n'),
  );
  console.log(`\nwrote ${DOCS}`);
}
