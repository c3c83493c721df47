/**
 * The native I/O experiment of docs/adr/0010-node-data-plane-floor.md: pgbench -S against
 * PostgreSQL directly, pgbouncer (session pooling, configured as `make bench` does), and the
 * relays of native-relay.mjs (Node sockets, the C splice, the JS-callback transport), interleaved
 * in rounds; TPS, the proxy's CPU µs per transaction (/proc/<pid>/stat, all threads) and its
 * main thread's preemptions per 1,000 transactions. Also the standalone relay uring-relay.c (the
 * io_uring experiment: `epoll` and io_uring variants, compiled with gcc into .cache/experiments on
 * first use) and, for every target, its main thread's voluntary context switches (sleeps in its
 * event wait, i.e. wake-ups) per transaction; uring-relay targets also report their loop's
 * system calls per transaction (counters printed on SIGUSR1), and the CPU per transaction of the
 * whole benchmark (PostgreSQL's processes, pgbench and the proxy): on a 2-core machine TPS follows
 * it, and unlike TPS it is not moved by other load on the host.
 *
 *   make native && flock /work/bench.lock node --import tsx e2e/bench/experiments/native-relay-bench.ts
 *
 * Environment: NR_ROUNDS (3), NR_SECONDS (8), NR_WARMUP (2, first round only), NR_MODES
 * (simple,prepared), NR_TARGETS (direct,pgbouncer,node-data,c-splice,js-callback,js-call;
 * also js-batch, node-onread, sidecar and sidecar-native: the sidecar with --native-io; c-epoll,
 * uring, uring-count, uring-coop and uring-batch-N-U: uring-relay.c in mode epoll, uring,
 * uring-count, uring-coop, uring-batch:N:U), NR_SCALE (10). Prints one line per run and a summary
 * table in Markdown.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, runChecked, spawnProcess, startPostgres, type ManagedProcess } from '../../harness/index.js';
import { runPgbench, startSidecar, type Endpoint, type QueryMode } from '../clients.js';
import { startPgbouncer } from '../pgbouncer.js';
import { clkTck, CpuMeter } from '../procfs.js';

const RELAY = fileURLToPath(new URL('./native-relay.mjs', import.meta.url));
const URING_SOURCE = fileURLToPath(new URL('./uring-relay.c', import.meta.url));
const URING_BINARY = fileURLToPath(new URL('../../../.cache/experiments/uring-relay', import.meta.url));
const DATABASE = 'bench';
const USER = 'postgres';
const RELAY_MODES: Record<string, string> = {
  'node-data': 'data',
  'node-onread': 'onread',
  'c-splice': 'c-splice',
  'js-callback': 'js-callback',
  'js-call': 'js-call',
  'js-batch': 'js-batch',
};

function env(name: string, fallback: string): string {
  return process.env[name] ?? fallback;
}
const rounds = Number(env('NR_ROUNDS', '3'));
const seconds = Number(env('NR_SECONDS', '8'));
const warmup = Number(env('NR_WARMUP', '2'));
const modes = env('NR_MODES', 'simple,prepared').split(',') as QueryMode[];
const targets = env('NR_TARGETS', 'direct,pgbouncer,node-data,c-splice,js-callback,js-call').split(',');
const scale = Number(env('NR_SCALE', '10'));

interface LoopCounters {
  waits: number;
  syscalls: number;
  events: number;
}

interface Proxy {
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
  /** uring-relay only: its cumulative loop counters. */
  counters?: () => Promise<LoopCounters>;
}

interface Sample {
  round: number;
  mode: QueryMode;
  target: string;
  tps: number;
  usPerTx: number;
  preemptPer1k: number;
  wakeupsPerTx: number;
  syscallsPerTx: number;
  benchUsPerTx: number;
}

const stops: (() => Promise<void>)[] = [];

async function startRelay(mode: string, upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const proc: ManagedProcess = spawnProcess(process.execPath, [RELAY, mode, String(upstreamPort), String(port)], { name: `relay-${mode}` });
  await proc.waitFor(/listening/, { timeoutMs: 15_000 });
  return { port, pid: proc.pid, stop: () => proc.kill('SIGKILL', 5_000).then(() => undefined) };
}

/** uring-relay target name -> its mode argument (c-epoll, uring*, uring-batch-N-U). */
function uringMode(target: string): string | undefined {
  if (target === 'c-epoll') return 'epoll';
  if (target === 'uring' || target === 'uring-count' || target === 'uring-coop') return target;
  const m = /^uring-batch-(\d+)-(\d+)$/.exec(target);
  return m === null ? undefined : `uring-batch:${m[1] ?? ''}:${m[2] ?? ''}`;
}

async function buildUringRelay(): Promise<void> {
  if (existsSync(URING_BINARY) && statSync(URING_BINARY).mtimeMs >= statSync(URING_SOURCE).mtimeMs) return;
  mkdirSync(dirname(URING_BINARY), { recursive: true });
  await runChecked('gcc', ['-O2', '-Wall', '-Wextra', '-o', URING_BINARY, URING_SOURCE], { timeoutMs: 120_000 });
}

async function startUringRelay(mode: string, upstreamHost: string, upstreamPort: number): Promise<Proxy> {
  await buildUringRelay();
  const port = await freePort();
  const proc = spawnProcess(URING_BINARY, [mode, String(port), upstreamHost, String(upstreamPort)], { name: `uring-relay-${mode}` });
  await proc.waitFor(/listening/, { timeoutMs: 15_000 });
  const counters = async (): Promise<LoopCounters> => {
    const since = proc.outputLength;
    proc.child.kill('SIGUSR1');
    const m = await proc.waitFor(/stats waits=(\d+) syscalls=(\d+) events=(\d+)/, { since, timeoutMs: 5_000 });
    return { waits: Number(m[1]), syscalls: Number(m[2]), events: Number(m[3]) };
  };
  return { port, pid: proc.pid, stop: () => proc.kill('SIGTERM', 5_000).then(() => undefined), counters };
}

/** Fields 14-17 of /proc/<pid>/stat (utime, stime, cutime, cstime) in ticks, or undefined. */
function statTimes(pid: number | 'self'): [number, number, number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds so far of PostgreSQL (the postmaster with its reaped children, plus every live
 * child), of this process's reaped children (pgbench, run to completion by runPgbench) and of the
 * proxy. Differences over a run give the benchmark's own CPU, whatever else the host runs.
 */
function benchCpuSeconds(postmaster: number, proxy: number | undefined): number {
  let ticks = 0;
  const pm = statTimes(postmaster);
  if (pm !== undefined) ticks += pm[0] + pm[1] + pm[2] + pm[3];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  const self = statTimes('self');
  if (self !== undefined) ticks += self[2] + self[3];
  if (proxy !== undefined) {
    const p = statTimes(proxy);
    if (p !== undefined) ticks += p[0] + p[1];
  }
  return ticks / clkTck();
}

/** Voluntary context switches of a process's main thread (sleeps), or NaN. */
function voluntarySwitches(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]);
  } catch {
    return Number.NaN;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const db = await startPostgres({
    auth: 'trust',
    name: 'native-relay',
    settings: { shared_buffers: '256MB', fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', autovacuum: 'off', max_connections: '200' },
  });
  stops.push(() => db.stop());
  await db.createDatabase(DATABASE, USER);
  await db.sql('create extension if not exists pg_prewarm', { database: DATABASE, user: USER });
  await runChecked('pgbench', ['-i', '-s', String(scale), '-q', '-h', db.host, '-p', String(db.port), '-U', USER, DATABASE], { timeoutMs: 300_000 });
  await db.sql(`select pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')`, { database: DATABASE, user: USER });
  const postmaster = Number(readFileSync(join(db.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

  const proxies = new Map<string, Proxy>();
  for (const target of targets) {
    if (target === 'direct') proxies.set(target, { port: db.port, pid: undefined, stop: async () => undefined });
    else if (target === 'pgbouncer') {
      const b = await startPgbouncer({ upstreamHost: db.host, upstreamPort: db.port, database: DATABASE, user: USER, poolSize: 20 });
      proxies.set(target, { port: b.port, pid: b.pid, stop: () => b.stop() });
    } else if (target === 'sidecar' || target === 'sidecar-native') {
      const s = await startSidecar(`postgres://${db.host}:${db.port}/${DATABASE}?sslmode=disable`, [], target === 'sidecar' ? [] : ['--native-io'], target);
      proxies.set(target, { port: s.port, pid: s.pid, stop: () => s.stop() });
    } else if (uringMode(target) !== undefined) {
      proxies.set(target, await startUringRelay(uringMode(target) ?? '', db.host, db.port));
    } else {
      const mode = RELAY_MODES[target];
      if (mode === undefined) {
        throw new Error(
          `unknown target ${target}; known: direct, pgbouncer, sidecar, sidecar-native, c-epoll, uring, uring-count, uring-coop, uring-batch-N-U, ${Object.keys(RELAY_MODES).join(', ')}`,
        );
      }
      proxies.set(target, await startRelay(mode, db.port));
    }
    const p = proxies.get(target);
    if (p !== undefined) stops.push(() => p.stop());
  }

  const samples: Sample[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const mode of modes) {
      // Rotate the order each round so no target always follows the same one.
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length] ?? '');
      for (const target of order) {
        const proxy = proxies.get(target);
        if (proxy === undefined) continue;
        const endpoint: Endpoint = { host: '127.0.0.1', port: proxy.port, user: USER, database: DATABASE };
        if (round === 1 && warmup > 0) await runPgbench(endpoint, { clients: 8, threads: 2, seconds: warmup, mode });
        const before = await proxy.counters?.();
        const meter = new CpuMeter(proxy.pid);
        const vol0 = voluntarySwitches(proxy.pid);
        const bench0 = benchCpuSeconds(postmaster, proxy.pid);
        meter.start();
        const r = await runPgbench(endpoint, { clients: 8, threads: 2, seconds, mode });
        const cpu = meter.stop();
        const vol1 = voluntarySwitches(proxy.pid);
        // Let the backends of this run exit and be reaped, so their CPU is in the postmaster's.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const bench1 = benchCpuSeconds(postmaster, proxy.pid);
        const after = await proxy.counters?.();
        const sample: Sample = {
          round,
          mode,
          target,
          tps: r.tps,
          usPerTx: (cpu.processCpuSeconds * 1e6) / r.transactions,
          preemptPer1k: (cpu.processPreemptions * 1000) / r.transactions,
          wakeupsPerTx: (vol1 - vol0) / r.transactions,
          benchUsPerTx: ((bench1 - bench0) * 1e6) / r.transactions,
          syscallsPerTx: before !== undefined && after !== undefined ? (after.syscalls - before.syscalls) / r.transactions : Number.NaN,
        };
        samples.push(sample);
        process.stdout.write(
          `round=${round} mode=${mode} target=${target} tps=${r.tps.toFixed(0)} cpu_us_per_tx=${sample.usPerTx.toFixed(1)} preempt_per_1k_tx=${sample.preemptPer1k.toFixed(2)} wakeups_per_tx=${sample.wakeupsPerTx.toFixed(2)} loop_syscalls_per_tx=${sample.syscallsPerTx.toFixed(2)} bench_cpu_us_per_tx=${sample.benchUsPerTx.toFixed(1)} host_busy=${(cpu.hostBusy * 100).toFixed(0)}%\n`,
        );
      }
    }
  }

  process.stdout.write(
    '\n| mode | target | TPS (median) | / pgbouncer (median of per-round ratios, min–max) | / c-epoll (same) | proxy CPU µs/tx | preemptions / 1k tx | wake-ups / tx | loop syscalls / tx | bench CPU µs/tx |\n|---|---|---|---|---|---|---|---|---|---|\n',
  );
  const fmt = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '—');
  for (const mode of modes) {
    for (const target of targets) {
      const mine = samples.filter((s) => s.mode === mode && s.target === target);
      // TPS over the baseline's TPS in the same round: median (min–max) over the rounds.
      const versus = (baseline: string): string => {
        const ratios = mine.map((s) => {
          const b = samples.find((x) => x.mode === mode && x.round === s.round && x.target === baseline);
          return b === undefined ? Number.NaN : s.tps / b.tps;
        });
        return `${fmt(median(ratios))} (${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))})`;
      };
      process.stdout.write(
        `| ${mode} | ${target} | ${fmt(median(mine.map((s) => s.tps)), 0)} | ${versus('pgbouncer')} | ${versus('c-epoll')} | ${fmt(median(mine.map((s) => s.usPerTx)), 1)} | ${fmt(median(mine.map((s) => s.preemptPer1k)), 1)} | ${fmt(median(mine.map((s) => s.wakeupsPerTx)))} | ${fmt(median(mine.map((s) => s.syscallsPerTx)))} | ${fmt(median(mine.map((s) => s.benchUsPerTx)), 1)} |\n`,
      );
    }
  }
}

try {
  await main();
} finally {
  for (const stop of stops.reverse()) await stop().catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
}
