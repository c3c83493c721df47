/**
 * `make bench`: pgbench -S (simple and prepared protocol) and a 1,000,000-row read, each against
 * PostgreSQL directly, through pgbouncer (session pooling), through the sidecar (no policy) and
 * through a second sidecar enforcing a 20-rule policy (e2e/bench/policy-20-rules.yaml),
 * interleaved in rounds so that the targets share the machine's noise. Writes docs/benchmarks.md
 * (between the bench:proxy markers, and the end-to-end figures between the bench:policy:pgbench
 * markers inside the bench:policy section) and .cache/bench/proxy.json.
 *
 * Environment: BENCH_ROUNDS (9), BENCH_READ_ROUNDS (9), BENCH_SECONDS (8), BENCH_SCALE (10),
 * BENCH_ONLY=pgbench|read, BENCH_MODES (simple,prepared), BENCH_READ_ROWS (1000000),
 * BENCH_TARGETS (default direct,pgbouncer,sidecar,sidecar+js,sidecar+policy,sidecar+policy+otel; `all` adds
 * sidecar+loop,sidecar+epoll,sidecar+node-io; or any subset of these), BENCH_DOCS=0 (no docs),
 * BENCH_COLLECTOR=sink|jaeger (where sidecar+policy+otel exports: a discarding OTLP sink, the default, or a Jaeger
 * on the same cores; see collector.ts), BENCH_OTLP_ENDPOINT (a collector elsewhere instead),
 * BENCH_CPU_PROF=DIR (run the sidecars under --cpu-prof; writes no docs, prints a profile summary per sidecar).
 * `run.ts --render [FILE]` only rewrites the docs sections from a saved proxy.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres, runChecked, type PgCluster } from '../harness/index.js';
import { pgbenchArgs, psqlRead, psqlReadArgs, runPgbench, SIDECAR_MAIN, verifyPolicyEnforced, type Endpoint, type QueryMode, type RunningSidecar } from './clients.js';
import {
  DEFAULT_TARGETS,
  LEGACY_TARGETS,
  RATIOS,
  TARGETS,
  type BenchResult,
  type Config,
  type Environment,
  type PgbenchMode,
  type PgbenchRun,
  type RatioKey,
  type RatioSummary,
  type ReadClient,
  type ReadClientResult,
  type ReadResult,
  type ReadRun,
  type Target,
  type TargetCheck,
} from './model.js';
import { pgbouncerVersion } from './pgbouncer.js';
import { CpuMeter, loadAverage } from './procfs.js';
import { summarizeProfile } from './profile.js';
import { rawQuery } from './rawclient.js';
import { renderPolicySummary, renderSection, writePolicySummary, writeSection } from './report.js';
import { BenchStack } from './stack.js';
import { collectorKind, startCollector, type Collector } from './collector.js';
import { pairedRatio, summarize, type Summary } from './stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = join(ROOT, 'docs/benchmarks.md');
const JSON_OUT = join(ROOT, '.cache/bench/proxy.json');
const SIDECAR_LOG = join(ROOT, '.cache/bench/sidecar.log');
const NATIVE_ADDON = join(ROOT, 'sidecar/native/build/fdio.node');
/** The policy of the sidecar+policy target, and how that sidecar runs (identity, environment). */
const POLICY_FILE = join(ROOT, 'e2e/bench/policy-20-rules.yaml');
const POLICY_ARGS = [
  '--policy', POLICY_FILE, '--environment', 'production',
  '--identity', 'namespace=shop', '--identity', 'serviceAccount=checkout', '--identity', 'labels.app=checkout', '--identity', 'labels.team=payments',
];
/** A statement the policy refuses, checked through sidecar+policy before anything is measured. */
const POLICY_PROBE = { sql: "SELECT pg_ls_dir('.')", rule: 'no-file-access' };
const DATABASE = 'bench';
const USER = 'postgres';

const PG_SETTINGS: Record<string, string> = {
  shared_buffers: '256MB',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  autovacuum: 'off',
  max_connections: '200',
};

function intEnv(name: string, fallback: number, minimum = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < minimum) throw new Error(`${name} must be an integer >= ${minimum}, got ${JSON.stringify(raw)}`);
  return n;
}

function readConfig(): Config {
  const only = process.env['BENCH_ONLY'] || undefined;
  if (only !== undefined && only !== 'pgbench' && only !== 'read') throw new Error(`BENCH_ONLY must be pgbench or read, got ${JSON.stringify(only)}`);
  const modes = (process.env['BENCH_MODES'] || 'simple,prepared').split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'simple' && m !== 'prepared') throw new Error(`BENCH_MODES: unknown mode ${JSON.stringify(m)}`);
  const seconds = intEnv('BENCH_SECONDS', 8);
  const cpuProfileDir = process.env['BENCH_CPU_PROF'] || undefined;
  const listed = process.env['BENCH_TARGETS'] || DEFAULT_TARGETS.join(',');
  const wanted = (listed.trim() === 'all' ? TARGETS.join(',') : listed).split(',').map((t) => t.trim());
  for (const t of wanted) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`BENCH_TARGETS: unknown target ${JSON.stringify(t)} (known: ${TARGETS.join(', ')})`);
  const targets = TARGETS.filter((t) => wanted.includes(t));
  return {
    rounds: intEnv('BENCH_ROUNDS', 9),
    readRounds: intEnv('BENCH_READ_ROUNDS', 9),
    seconds,
    warmupSeconds: Math.min(3, seconds),
    scale: intEnv('BENCH_SCALE', 10),
    clients: 8,
    threads: 2,
    modes: modes as QueryMode[],
    readRows: intEnv('BENCH_READ_ROWS', 1_000_000),
    only,
    targets,
    order: 'alternating',
    collector: targets.includes('sidecar+policy+otel') ? collectorKind() : undefined,
    cpuProfileDir: cpuProfileDir === undefined ? undefined : resolve(cpuProfileDir),
    writeDocs: process.env['BENCH_DOCS'] !== '0' && cpuProfileDir === undefined,
  };
}

function log(message: string): void {
  const [l1] = loadAverage();
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${l1.toFixed(2)}] ${message}\n`);
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: ROOT }).trim();
  } catch {
    return '';
  }
}

/**
 * Targets of round r: the fixed order in even rounds, reversed in odd ones. The checks compare
 * neighbours in the fixed order (sidecar and pgbouncer, sidecar+policy and sidecar+js, ...), so each
 * compared pair runs back to back in every round, and each of the two goes first in half of the
 * rounds: a drift of the machine's speed within a round cancels out over two rounds instead of
 * always favouring the same side, as a rotation (which keeps neighbours in the same order) would.
 */
function roundOrder(targets: readonly Target[], round: number): Target[] {
  return round % 2 === 0 ? [...targets] : [...targets].reverse();
}

/** One value per known target (targets not measured get summaries of nothing: NaN). */
function perTarget<T>(fn: (t: Target) => T): Record<Target, T> {
  return {
    direct: fn('direct'),
    pgbouncer: fn('pgbouncer'),
    sidecar: fn('sidecar'),
    'sidecar+loop': fn('sidecar+loop'),
    'sidecar+epoll': fn('sidecar+epoll'),
    'sidecar+node-io': fn('sidecar+node-io'),
    'sidecar+js': fn('sidecar+js'),
    'sidecar+policy': fn('sidecar+policy'),
    'sidecar+policy+otel': fn('sidecar+policy+otel'),
  };
}

function ratiosOf(series: Record<Target, number[]>): Record<RatioKey, RatioSummary> {
  const out = {} as Record<RatioKey, RatioSummary>;
  for (const r of RATIOS) out[r.key] = pairedRatio(series[r.num], series[r.den]);
  return out;
}

/** Values of one field per target, indexed by round (NaN where a round is missing). */
function byRound<R extends { round: number; target: Target }>(runs: readonly R[], rounds: number, value: (r: R) => number): Record<Target, number[]> {
  return perTarget((t) => {
    const out = new Array<number>(rounds).fill(Number.NaN);
    for (const r of runs) if (r.target === t) out[r.round] = value(r);
    return out;
  });
}

/**
 * What the collector received: the sink counts spans, and the benchmark refuses a run whose export
 * target sent none (or sent what the sink could not read): its ratio would measure nothing.
 */
async function collectorStats(collector: Collector | undefined, pgbench: PgbenchMode[]): Promise<BenchResult['collector']> {
  if (collector === undefined) return undefined;
  const stats = await collector.stats();
  const otelTransactions = pgbench.flatMap((m) => m.runs).filter((r) => r.target === 'sidecar+policy+otel').reduce((n, r) => n + r.transactions, 0);
  if (stats !== undefined && otelTransactions > 0) {
    if (stats.malformed > 0) throw new Error(`the OTLP sink could not read ${stats.malformed} export requests`);
    // Warm-up runs export too, and spans of the last ~500 ms may still be queued.
    if (stats.spans < otelTransactions * 0.95) throw new Error(`the OTLP sink received ${stats.spans} spans for ${otelTransactions} measured transactions`);
    log(`OTLP sink received ${stats.spans} spans in ${stats.requests} requests (${(stats.bytes / stats.spans).toFixed(0)} bytes per span)`);
  }
  return { kind: collector.kind, ...(stats ?? {}) };
}

async function pgbenchPhase(stack: BenchStack, config: Config, collectorPid: number | undefined): Promise<PgbenchMode[]> {
  const results: PgbenchMode[] = [];
  for (const mode of config.modes) {
    log(`pgbench -S -M ${mode}: warm-up ${config.warmupSeconds} s per target`);
    for (const target of config.targets) {
      await stack.measure(target, `${mode} warm-up`, (endpoint) =>
        runPgbench(endpoint, { clients: config.clients, threads: config.threads, seconds: config.warmupSeconds, mode }),
      );
    }
    const runs: PgbenchRun[] = [];
    for (let round = 0; round < config.rounds; round++) {
      const order = roundOrder(config.targets, round);
      for (const [slot, target] of order.entries()) {
        const startedAt = new Date().toISOString();
        const [load1] = loadAverage();
        const { r, cpu, collectorCpu } = await stack.measure(target, `${mode} round ${round + 1}`, async (endpoint, pid) => {
          const meter = new CpuMeter(pid);
          const collectorMeter = target === 'sidecar+policy+otel' && collectorPid !== undefined ? new CpuMeter(collectorPid) : undefined;
          meter.start();
          collectorMeter?.start();
          const r = await runPgbench(endpoint, { clients: config.clients, threads: config.threads, seconds: config.seconds, mode });
          const collectorCpu = collectorMeter?.stop().processCpuSeconds;
          return { r, cpu: meter.stop(), collectorCpu };
        });
        runs.push({
          round,
          slot,
          target,
          startedAt,
          load1,
          proxyCpuSeconds: cpu.processCpuSeconds,
          hostBusy: cpu.hostBusy,
          hostSteal: cpu.hostSteal,
          tps: r.tps,
          transactions: r.transactions,
          latencyMs: r.latencyMs,
          connectMs: r.connectMs,
          cpuPer1000: cpu.processCpuSeconds / (r.transactions / 1000),
          preemptionsPer1000: cpu.processPreemptions / (r.transactions / 1000),
          ...(collectorCpu === undefined ? {} : { collectorCpuPer1000: collectorCpu / (r.transactions / 1000) }),
        });
        log(`  ${mode} round ${round + 1}/${config.rounds} ${target.padEnd(14)} tps ${r.tps.toFixed(0).padStart(6)}${Number.isFinite(cpu.processCpuSeconds) ? `  proxy cpu ${cpu.processCpuSeconds.toFixed(2)} s, ${(cpu.processPreemptions / (r.transactions / 1000)).toFixed(0)} preemptions/1000 tx` : ''}  host busy ${(cpu.hostBusy * 100).toFixed(0)}%`);
      }
    }
    results.push(pgbenchMode(mode, runs, config.rounds));
  }
  return results;
}

/** The summaries of one protocol mode's runs (also used to re-render a saved proxy.json). */
function pgbenchMode(mode: QueryMode, runs: PgbenchRun[], rounds: number): PgbenchMode {
  const tps = byRound(runs, rounds, (r) => r.tps);
  return {
    mode,
    runs,
    tps: perTarget((t) => summarize(tps[t])),
    cpuPer1000: perTarget((t) => summarize(runs.filter((r) => r.target === t).map((r) => r.cpuPer1000))),
    preemptionsPer1000: perTarget((t) => summarize(runs.filter((r) => r.target === t).map((r) => r.preemptionsPer1000))),
    ratios: ratiosOf(tps),
  };
}

/** The summaries of one read client's runs (also used to re-render a saved proxy.json). */
function readClientResult(client: ReadClient, runs: ReadRun[], rounds: number): ReadClientResult {
  const rps = byRound(runs, rounds, (r) => r.rowsPerSecond);
  return {
    client,
    runs,
    rowsPerSecond: perTarget((t) => summarize(rps[t])),
    cpuPerMillionRows: perTarget((t) => summarize(runs.filter((r) => r.target === t).map((r) => r.cpuPerMillionRows))),
    ratios: ratiosOf(rps),
  };
}

const BIG_SQL = 'select * from big';

async function createBigTable(db: PgCluster, rows: number): Promise<number> {
  log(`creating table big (${rows.toLocaleString('en-US')} rows)`);
  await db.sql(
    [
      'drop table if exists big;',
      'create table big (id int not null, a text not null, b text not null, n numeric(12,2) not null, ts timestamptz not null);',
      `insert into big select i, md5(i::text), 'customer-' || lpad(i::text, 10, '0') || '-' || substr(md5((i * 7)::text), 1, 8),`,
      `  round((i * 1.37)::numeric, 2), timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'`,
      `  from generate_series(1, ${rows}) as i;`,
      'vacuum (freeze, analyze) big;',
    ].join('\n'),
    { database: DATABASE, user: USER },
  );
  const mib = Number(await db.sql(`select pg_table_size('big') / 1048576.0`, { database: DATABASE, user: USER }));
  await db.sql(`select pg_prewarm('big')`, { database: DATABASE, user: USER });
  return mib;
}

interface ReadOnce {
  seconds: number;
  rows: number;
  bytes: number;
  chunks: number;
  clientCpuSeconds: number;
}

async function readOnce(endpoint: Endpoint, client: ReadClient, target: Target, rows: number): Promise<ReadOnce> {
  if (client === 'raw') {
    const r = await rawQuery({ ...endpoint, sql: BIG_SQL });
    if (r.rows !== rows || r.tag !== `SELECT ${rows}`) throw new Error(`raw read via ${target}: got ${r.rows} rows, tag "${r.tag}"`);
    return r;
  }
  return { seconds: await psqlRead(endpoint, BIG_SQL), rows, bytes: Number.NaN, chunks: Number.NaN, clientCpuSeconds: Number.NaN };
}

async function readPhase(stack: BenchStack, config: Config): Promise<ReadResult> {
  const tableMiB = await createBigTable(stack.db, config.readRows);
  const clients: ReadClientResult[] = [];
  let bytesPerRow = Number.NaN;
  for (const client of ['raw', 'psql'] as const) {
    log(`large read (${client}): warm-up, one read per target`);
    for (const target of config.targets) {
      await stack.measure(target, `${client} read warm-up`, (endpoint) => readOnce(endpoint, client, target, config.readRows));
    }
    const runs: ReadRun[] = [];
    for (let round = 0; round < config.readRounds; round++) {
      for (const [slot, target] of roundOrder(config.targets, round).entries()) {
        const startedAt = new Date().toISOString();
        const [load1] = loadAverage();
        const { r, cpu } = await stack.measure(target, `${client} read round ${round + 1}`, async (endpoint, pid) => {
          const meter = new CpuMeter(pid);
          meter.start();
          const r = await readOnce(endpoint, client, target, config.readRows);
          return { r, cpu: meter.stop() };
        });
        if (client === 'raw' && Number.isNaN(bytesPerRow)) bytesPerRow = r.bytes / r.rows;
        runs.push({
          round,
          slot,
          target,
          startedAt,
          load1,
          client,
          proxyCpuSeconds: cpu.processCpuSeconds,
          hostBusy: cpu.hostBusy,
          hostSteal: cpu.hostSteal,
          rows: r.rows,
          seconds: r.seconds,
          rowsPerSecond: r.rows / r.seconds,
          mbPerSecond: r.bytes / r.seconds / 1e6,
          cpuPerMillionRows: cpu.processCpuSeconds / (r.rows / 1e6),
          bytesPerRead: r.bytes / r.chunks,
          clientCpuSeconds: r.clientCpuSeconds,
        });
        log(`  read ${client} round ${round + 1}/${config.readRounds} ${target.padEnd(14)} ${(r.rows / r.seconds).toFixed(0).padStart(8)} rows/s  ${r.seconds.toFixed(2)} s${client === 'raw' ? `  ${(r.bytes / r.chunks).toFixed(0)} B/read, client cpu ${r.clientCpuSeconds.toFixed(2)} s` : ''}`);
      }
    }
    clients.push(readClientResult(client, runs, config.readRounds));
  }
  return { rows: config.readRows, tableMiB, bytesPerRow, sql: BIG_SQL, clients };
}

function checkTargets(pgbench: PgbenchMode[], read: ReadResult | undefined, targets: readonly Target[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const rows = read?.rows ?? 0;
  const fmt = (s: Summary): string => `${s.median.toFixed(2)} (min ${s.min.toFixed(2)}, max ${s.max.toFixed(2)})`;
  const check = (name: string, ratio: string, r: RatioSummary, threshold: number): TargetCheck => {
    const rounds = r.perRound.filter((v) => Number.isFinite(v));
    return {
      name,
      measured: `${ratio} ${fmt(r)}`,
      threshold: `≥ ${threshold.toFixed(2)}`,
      value: r.median,
      pass: r.median >= threshold,
      roundsMeeting: rounds.filter((v) => v >= threshold).length,
      rounds: rounds.length,
    };
  };
  const has = (...ts: Target[]): boolean => ts.every((t) => targets.includes(t));
  for (const m of pgbench) {
    if (has('sidecar', 'pgbouncer')) checks.push(check(`pgbench -S ${m.mode}: sidecar TPS ≥ pgbouncer TPS`, 'sidecar/pgbouncer', m.ratios['sidecar/pgbouncer'], 1));
    // The policy's own cost: against the same sidecar without a policy whose messages all go
    // through the session too (sidecar+js). Against the fast relay (sidecar) it is reported beside.
    if (has('sidecar+js', 'sidecar+policy')) {
      checks.push(check(`pgbench -S ${m.mode}: sidecar+policy (20 rules) TPS ≥ 0.9 × sidecar without policy (every message through the session)`, 'sidecar+policy/sidecar+js', m.ratios['sidecar+policy/sidecar+js'], 0.9));
    }
    if (has('sidecar+policy', 'sidecar+policy+otel')) {
      checks.push(check(`pgbench -S ${m.mode}: audit export on (OTLP/HTTP) TPS ≥ 0.9 × export off`, 'sidecar+policy+otel/sidecar+policy', m.ratios['sidecar+policy+otel/sidecar+policy'], 0.9));
    }
  }
  for (const c of read?.clients ?? []) {
    if (!has('sidecar', 'direct')) continue;
    const name = `${rows.toLocaleString('en-US')}-row read (${c.client === 'raw' ? 'raw client' : 'psql'}): sidecar ≥ 0.9 × direct rows/s`;
    checks.push(check(name, 'sidecar/direct', c.ratios['sidecar/direct'], 0.9));
  }
  return checks;
}

async function environment(db: PgCluster, loadBefore: [number, number, number]): Promise<Environment> {
  const dirty = sh('git', ['status', '--porcelain', '--', 'sidecar/src']);
  return {
    date: new Date().toISOString(),
    host: hostname(),
    nproc: Number(sh('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memTotalGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    postgres: await db.sql('select version()'),
    pgbench: sh('pgbench', ['--version']),
    psql: sh('psql', ['--version']),
    pgbouncer: await pgbouncerVersion(),
    gitHead: sh('git', ['rev-parse', '--short', 'HEAD']),
    sidecarDirtyFiles: dirty === '' ? 0 : dirty.split('\n').length,
    loadBefore,
    loadAfter: loadBefore,
    durationSeconds: 0,
  };
}

/** `run.ts --render FILE`: rewrites the docs sections from a saved proxy.json (no measurement). */
function renderOnly(file: string): void {
  // NaN and undefined were saved as null; the renderer shows both as a dash.
  const saved = JSON.parse(readFileSync(file, 'utf8'), (_k, v: unknown) => (v === null ? Number.NaN : v)) as BenchResult;
  // Summaries are derived again from the runs, so files saved before a target existed render too.
  const config: Config = { ...saved.config, targets: (saved.config as Partial<Config>).targets ?? [...LEGACY_TARGETS] };
  const pgbench = saved.pgbench.map((m) => pgbenchMode(m.mode, m.runs, config.rounds));
  const read = saved.read === undefined ? undefined : { ...saved.read, clients: saved.read.clients.map((c) => readClientResult(c.client, c.runs, config.readRounds)) };
  const result: BenchResult = { ...saved, config, pgbench, read, incidents: saved.incidents ?? [], targets: checkTargets(pgbench, read, config.targets) };
  writeDocs(result);
  log(`wrote ${DOCS} from ${file}`);
}

function writeDocs(result: BenchResult): void {
  writeSection(DOCS, renderSection(result));
  if (result.config.targets.includes('sidecar+policy')) writePolicySummary(DOCS, renderPolicySummary(result));
}

/** `node sidecar/dist/main.js ...` as printed in the docs (ports and paths made generic). */
function sidecarCommand(sidecar: RunningSidecar): string {
  return `node ${sidecar.argv
    .map((a) => (a === SIDECAR_MAIN ? 'sidecar/dist/main.js' : a === POLICY_FILE ? 'e2e/bench/policy-20-rules.yaml' : a))
    .join(' ')
    .replace(/127\.0\.0\.1:\d+\/bench/, '127.0.0.1:<pgport>/bench')}`;
}

async function main(): Promise<void> {
  const renderIndex = process.argv.indexOf('--render');
  if (renderIndex >= 0) return renderOnly(process.argv[renderIndex + 1] ?? JSON_OUT);
  const config = readConfig();
  const t0 = Date.now();
  const loadBefore = loadAverage();
  log(`config ${JSON.stringify(config)}`);
  const stops: Array<() => Promise<void>> = [];
  let result: BenchResult | undefined;
  let profiledPids = new Map<number, string>();
  try {
    log('starting PostgreSQL');
    const db = await startPostgres({ auth: 'trust', name: 'bench', settings: PG_SETTINGS });
    stops.push(() => db.stop());
    await db.createDatabase(DATABASE, USER);
    await db.sql('create extension if not exists pg_prewarm', { database: DATABASE, user: USER });
    const env = await environment(db, loadBefore);

    const nodeArgs = config.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${config.cpuProfileDir}`];
    if (config.cpuProfileDir !== undefined) mkdirSync(config.cpuProfileDir, { recursive: true });
    // sidecar+policy+otel exports its audit trail over OTLP/HTTP (protobuf) to the collector of BENCH_COLLECTOR.
    let collector: Collector | undefined;
    if (config.collector !== undefined) {
      log(`starting the OTLP collector (${config.collector})`);
      const started = await startCollector(config.collector);
      stops.push(() => started.stop());
      collector = started;
    }
    const otelArgs = collector === undefined ? [] : ['--otlp-endpoint', collector.endpoint];
    const stack = new BenchStack(db, { database: DATABASE, user: USER, sidecarNodeArgs: nodeArgs, policyArgs: POLICY_ARGS, otelArgs });
    stops.push(async () => {
      profiledPids = stack.sidecarPids;
      await stack.stop();
      mkdirSync(dirname(SIDECAR_LOG), { recursive: true });
      writeFileSync(SIDECAR_LOG, stack.sidecarOutput());
    });
    const pgbouncer = config.targets.includes('pgbouncer') ? (log('starting pgbouncer'), await stack.startPgbouncer()) : undefined;
    // `make bench` builds the addon: without it every sidecar would quietly use Node sockets and
    // the report would measure something other than the default.
    if (!existsSync(NATIVE_ADDON)) throw new Error(`${NATIVE_ADDON} is missing: run \`make native\` (make bench does)`);
    const sidecar = config.targets.includes('sidecar') ? (log('starting sidecar'), await stack.startSidecar('sidecar')) : undefined;
    if (sidecar !== undefined && !sidecar.process.output.includes('"nativeIo":"on')) throw new Error(`the sidecar is not using the native I/O addon: ${sidecar.process.output.slice(-500)}`);
    if (config.targets.includes('sidecar+js')) {
      log('starting sidecar+js (DBWARD_FAST_RELAY=off)');
      const js = await stack.startSidecar('sidecar+js');
      if (!js.process.output.includes('"fastRelay":"off"')) throw new Error(`sidecar+js did not turn the fast relay off: ${js.process.output.slice(-500)}`);
    }
    if (sidecar !== undefined && !sidecar.process.output.includes('"ioUring":"on"')) log(`note: the sidecar does not batch into io_uring: ${/"ioUring":"[^"]*"/.exec(sidecar.process.output)?.[0] ?? 'no ioUring field'}`);
    if (sidecar !== undefined && !sidecar.process.output.includes('"relayThread":"on"')) log(`note: the sidecar does not use the relay thread: ${/"relayThread":"[^"]*"/.exec(sidecar.process.output)?.[0] ?? 'no relayThread field'}`);
    if (config.targets.includes('sidecar+loop')) {
      log('starting sidecar+loop (DBWARD_RELAY_THREAD=off)');
      const loop = await stack.startSidecar('sidecar+loop');
      if (!loop.process.output.includes('"relayThread":"off"')) throw new Error(`sidecar+loop did not turn the relay thread off: ${loop.process.output.slice(-500)}`);
    }
    if (config.targets.includes('sidecar+epoll')) {
      log('starting sidecar+epoll (DBWARD_IO_URING=off)');
      const epoll = await stack.startSidecar('sidecar+epoll');
      if (!epoll.process.output.includes('"ioUring":"off"')) throw new Error(`sidecar+epoll did not turn io_uring off: ${epoll.process.output.slice(-500)}`);
    }
    if (config.targets.includes('sidecar+node-io')) {
      log('starting sidecar+node-io (--no-native-io)');
      await stack.startSidecar('sidecar+node-io');
    }
    const sidecarPolicy = config.targets.includes('sidecar+policy')
      ? (log(`starting sidecar+policy (${POLICY_FILE})`), await stack.startSidecar('sidecar+policy'))
      : undefined;
    if (config.targets.includes('sidecar+policy+otel')) {
      log(`starting sidecar+policy+otel (OTLP/HTTP to ${collector?.kind ?? ''} ${collector?.endpoint ?? ''})`);
      await stack.startSidecar('sidecar+policy+otel');
    }

    let pgbench: PgbenchMode[] = [];
    if (config.only !== 'read') {
      log(`pgbench -i -s ${config.scale}`);
      await runChecked('pgbench', ['-i', '-s', String(config.scale), '-q', '-h', db.host, '-p', String(db.port), '-U', USER, DATABASE], { timeoutMs: 600_000 });
      await db.sql(`select pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')`, { database: DATABASE, user: USER });
      if (sidecarPolicy !== undefined) {
        await verifyPolicyEnforced(stack.endpoint('sidecar+policy'), POLICY_PROBE);
        log(`sidecar+policy enforces its policy: pgbench's SELECT passes, ${POLICY_PROBE.sql} is refused by ${POLICY_PROBE.rule}`);
      }
      pgbench = await pgbenchPhase(stack, config, collector?.pid);
    }
    const collected = await collectorStats(collector, pgbench);
    let read: ReadResult | undefined;
    if (config.only !== 'pgbench') {
      if (config.only !== 'read') await db.sql('drop table if exists pgbench_accounts, pgbench_history, pgbench_tellers, pgbench_branches', { database: DATABASE, user: USER });
      read = await readPhase(stack, config);
    }

    env.loadAfter = loadAverage();
    env.durationSeconds = Math.round((Date.now() - t0) / 1000);
    result = {
      version: 1,
      config,
      environment: env,
      commands: {
        pgbench: `pgbench ${pgbenchArgs({ host: '127.0.0.1', port: 0, user: USER, database: DATABASE }, { clients: config.clients, threads: config.threads, seconds: config.seconds, mode: 'simple' })
          .join(' ')
          .replace('-p 0', '-p <port>')
          .replace('-M simple', '-M simple|prepared')}`,
        psql: `psql ${psqlReadArgs({ host: '127.0.0.1', port: 0, user: USER, database: DATABASE }, BIG_SQL)
          .map((a) => (a.includes(' ') ? `'${a}'` : a))
          .join(' ')
          .replace('-p 0', '-p <port>')} > /dev/null`,
        sidecar: sidecar === undefined ? '' : sidecarCommand(sidecar),
        ...(sidecarPolicy === undefined ? {} : { sidecarPolicy: sidecarCommand(sidecarPolicy), policyFile: 'e2e/bench/policy-20-rules.yaml' }),
        pgbouncerConfig:
          pgbouncer?.config.replace(/port=\d+/, 'port=<pgport>').replace(/listen_port = \d+/, 'listen_port = <port>').replace(/auth_file = \S+/, 'auth_file = <tmp>/userlist.txt') ?? '',
        postgresSettings: PG_SETTINGS,
      },
      pgbench,
      read,
      collector: collected,
      targets: checkTargets(pgbench, read, config.targets),
      incidents: stack.incidents,
    };
  } finally {
    log('stopping sidecar, pgbouncer, PostgreSQL');
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        process.stderr.write(`cleanup: ${String(error)}\n`);
      }
    }
  }

  const jsonPath = config.cpuProfileDir === undefined ? JSON_OUT : join(config.cpuProfileDir, 'proxy.json');
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  log(`wrote ${jsonPath}`);
  if (config.writeDocs) {
    writeDocs(result);
    log(`wrote ${DOCS}`);
  } else {
    process.stdout.write(`\n${renderSection(result)}\n`);
    if (config.targets.includes('sidecar+policy')) process.stdout.write(`\n${renderPolicySummary(result)}\n`);
  }
  for (const t of result.targets) log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}`);
  if (config.cpuProfileDir !== undefined) {
    for (const file of readdirSync(config.cpuProfileDir).filter((f) => f.endsWith('.cpuprofile'))) {
      // node names profiles CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
      const pid = Number(file.split('.')[3]);
      const which = profiledPids.get(pid) ?? 'unknown process';
      process.stdout.write(`\nCPU profile of ${which}: ${join(config.cpuProfileDir, file)}\n${summarizeProfile(join(config.cpuProfileDir, file), 20)}\n`);
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
