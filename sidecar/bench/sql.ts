/**
 * Cost of SQL analysis per statement, cold (libpg_query parse + walk) and through the facts cache
 * (hand-written lexer + cache lookup).
 *
 *   node --import tsx sidecar/bench/sql.ts [--iterations 20000]
 *
 * For pgbench -S's statement and five typical application statements, each iteration sends a
 * different literal (as pgbench and interpolating clients do), and measures:
 *   parse      libpg_query's parseSync alone
 *   analyze    analyzeQuery (parse + facts), no cache: p50 and p99
 *   analyze/s  the same as CPU nanoseconds per call (median of 1,000-call batches)
 *   cacheKey   the lexer alone (CPU ns per call, the same way)
 *   hit        FactsCache.analyze when the shape is cached (CPU ns per call the same way; p99
 *              from single wall-clock-timed calls, which include ~0.1 µs of clock overhead)
 * p50/p99 columns are wall-clock per call and suffer from other load on the machine.
 * Prints a markdown table and one JSON line.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseSync } from 'libpg-query';
import { analyzeQuery, cacheKey, FactsCache, initSqlAnalysis } from '../src/sql/index.js';
import { lcg } from './lcg.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const ITERATIONS = arg('iterations', 20_000);
const WARMUP = Math.min(2_000, ITERATIONS);

const rand = lcg(42);
const int = (max: number): number => 1 + Math.floor(rand() * max);

const QUERIES: Array<{ name: string; make: () => string }> = [
  { name: 'pgbench -S select', make: () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${int(1_000_000)};` },
  { name: 'pgbench update', make: () => `UPDATE pgbench_accounts SET abalance = abalance + ${int(5000) - 2500} WHERE aid = ${int(1_000_000)};` },
  {
    name: 'pgbench insert',
    make: () => `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${int(10)}, 1, ${int(1_000_000)}, ${int(5000)}, CURRENT_TIMESTAMP);`,
  },
  {
    name: 'join + group by',
    make: () =>
      `SELECT c.id, c.email, count(o.id) AS orders, sum(o.total) AS spent FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.created_at > '2024-0${int(9)}-01' GROUP BY c.id, c.email ORDER BY spent DESC LIMIT ${int(50)}`,
  },
  {
    name: 'CTE + window',
    make: () =>
      `WITH recent AS (SELECT customer_id, total, created_at FROM orders WHERE created_at > now() - interval '${int(30)} days') SELECT customer_id, total, row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn FROM recent WHERE total > ${int(500)}`,
  },
  {
    name: 'ORM select',
    make: () =>
      `SELECT "users"."id", "users"."email", "users"."name", "users"."created_at", "users"."updated_at" FROM "users" WHERE "users"."id" = ${int(100_000)} AND "users"."deleted_at" IS NULL LIMIT 1`,
  },
];

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** Microseconds per call of `fn` over `texts`: p50 and p99. */
function timeEach(texts: string[], fn: (t: string) => unknown): { p50: number; p99: number } {
  for (let i = 0; i < WARMUP; i++) fn(texts[i % texts.length] ?? '');
  const us = new Float64Array(texts.length);
  for (let i = 0; i < texts.length; i++) {
    const t = texts[i] ?? '';
    const start = process.hrtime.bigint();
    fn(t);
    us[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  us.sort();
  return { p50: percentile(us, 0.5), p99: percentile(us, 0.99) };
}

/**
 * Nanoseconds per call of `fn`: the median over batches of 1,000 calls of the process's CPU time
 * (user + system), which other jobs on a shared machine do not inflate the way they inflate
 * wall-clock time.
 */
function nsPerCall(texts: string[], fn: (t: string) => unknown): number {
  const batch = 1000;
  const perBatch: number[] = [];
  let sink = 0;
  for (let round = 0; round < 3; round++) {
    perBatch.length = 0;
    for (let b = 0; b + batch <= texts.length; b += batch) {
      const start = process.cpuUsage();
      for (let i = b; i < b + batch; i++) if (fn(texts[i] ?? '') !== null) sink++;
      const used = process.cpuUsage(start);
      perBatch.push(((used.user + used.system) * 1000) / batch);
    }
  }
  if (sink < 0) console.log(sink);
  perBatch.sort((x, y) => x - y);
  return perBatch[Math.floor(perBatch.length / 2)] ?? NaN;
}

await initSqlAnalysis();
const ctx = { searchPath: ['public'] };
const rows: Array<Record<string, number | string>> = [];
for (const q of QUERIES) {
  const texts = Array.from({ length: ITERATIONS }, q.make);
  const firstStart = process.hrtime.bigint();
  analyzeQuery(q.make(), ctx);
  const first = Number(process.hrtime.bigint() - firstStart) / 1000;
  const parse = timeEach(texts, (t) => parseSync(t));
  const analyze = timeEach(texts, (t) => analyzeQuery(t, ctx));
  const analyzeCpu = nsPerCall(texts, (t) => analyzeQuery(t, ctx));
  const key = nsPerCall(texts, (t) => cacheKey(t, { standardConformingStrings: true }));
  const cache = new FactsCache();
  cache.analyze(q.make(), ctx);
  const hit = timeEach(texts, (t) => cache.analyze(t, ctx));
  const hitBatch = nsPerCall(texts, (t) => cache.analyze(t, ctx));
  const stats = cache.stats();
  // A negative number is `-` then a literal: `+ -5` and `+ 5` are two shapes, hence up to 2 misses.
  if (stats.misses > 2) throw new Error(`${q.name}: expected every call after the first to hit, got ${JSON.stringify(stats)}`);
  rows.push({
    query: q.name,
    firstCallUs: first,
    parseP50Us: parse.p50,
    analyzeP50Us: analyze.p50,
    analyzeP99Us: analyze.p99,
    cacheKeyNs: key,
    hitP50Us: hit.p50,
    hitP99Us: hit.p99,
    hitNs: hitBatch,
    analyzeNs: analyzeCpu,
    chars: texts[0]?.length ?? 0,
  });
}

const f = (n: number | string, digits = 1): string => (typeof n === 'number' ? n.toFixed(digits) : n);
const n0 = (v: number | string | undefined): number => (typeof v === 'number' ? v : NaN);
console.log(`Node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0]?.toFixed(2) ?? '?'}, ${ITERATIONS} iterations per case\n`);
console.log('| statement | chars | parse p50 µs | analyzeQuery p50 µs | analyzeQuery p99 µs | analyzeQuery CPU µs | cacheKey CPU ns | cache hit CPU ns | cache hit p99 µs | hit vs analyze |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const n = (k: string): number => Number(r[k] ?? NaN);
  console.log(
    `| ${r.query} | ${n('chars')} | ${f(n('parseP50Us'))} | ${f(n('analyzeP50Us'))} | ${f(n('analyzeP99Us'))} | ${f(n('analyzeNs') / 1000)} | ${f(n('cacheKeyNs'), 0)} | ${f(n('hitNs'), 0)} | ${f(n('hitP99Us'), 2)} | ${f(n('analyzeNs') / n('hitNs'), 0)}x |`,
  );
}
console.log(`\nFirst analyzeQuery after initSqlAnalysis (cold JIT): ${f(n0(rows[0]?.firstCallUs), 0)} µs.`);
console.log(`\n${JSON.stringify({ bench: 'sql-analysis', node: process.version, iterations: ITERATIONS, loadAverage: loadavg()[0], results: rows })}`);
