/**
 * The native I/O experiment of docs/adr/0010-node-data-plane-floor.md: pgbench -S against
 * PostgreSQL directly, pgbouncer (session pooling, configured as `make bench` does), and the
 * relays of native-relay.mjs (Node sockets, the C splice, the JS-callback transport), interleaved
 * in rounds; TPS, the proxy's CPU µs per transaction (/proc/<pid>/stat, all threads) and its
 * main thread's preemptions per 1,000 transactions.
 *
 *   make native && flock /work/bench.lock node --import tsx e2e/bench/experiments/native-relay-bench.ts
 *
 * Environment: NR_ROUNDS (3), NR_SECONDS (8), NR_WARMUP (2, first round only), NR_MODES
 * (simple,prepared), NR_TARGETS (direct,pgbouncer,node-data,c-splice,js-callback,js-call;
 * also js-batch, node-onread, sidecar and sidecar-native: the sidecar with --native-io), NR_SCALE (10). Prints one line per run and a summary table in
 * Markdown.
 */
import { fileURLToPath } from 'node:url';
import { freePort, runChecked, spawnProcess, startPostgres, type ManagedProcess } from '../../harness/index.js';
import { runPgbench, startSidecar, type Endpoint, type QueryMode } from '../clients.js';
import { startPgbouncer } from '../pgbouncer.js';
import { CpuMeter } from '../procfs.js';

const RELAY = fileURLToPath(new URL('./native-relay.mjs', import.meta.url));
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

interface Proxy {
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

interface Sample {
  round: number;
  mode: QueryMode;
  target: string;
  tps: number;
  usPerTx: number;
  preemptPer1k: number;
}

const stops: (() => Promise<void>)[] = [];

async function startRelay(mode: string, upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const proc: ManagedProcess = spawnProcess(process.execPath, [RELAY, mode, String(upstreamPort), String(port)], { name: `relay-${mode}` });
  await proc.waitFor(/listening/, { timeoutMs: 15_000 });
  return { port, pid: proc.pid, stop: () => proc.kill('SIGKILL', 5_000).then(() => undefined) };
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

  const proxies = new Map<string, Proxy>();
  for (const target of targets) {
    if (target === 'direct') proxies.set(target, { port: db.port, pid: undefined, stop: async () => undefined });
    else if (target === 'pgbouncer') {
      const b = await startPgbouncer({ upstreamHost: db.host, upstreamPort: db.port, database: DATABASE, user: USER, poolSize: 20 });
      proxies.set(target, { port: b.port, pid: b.pid, stop: () => b.stop() });
    } else if (target === 'sidecar' || target === 'sidecar-native') {
      const s = await startSidecar(`postgres://${db.host}:${db.port}/${DATABASE}?sslmode=disable`, [], target === 'sidecar' ? [] : ['--native-io'], target);
      proxies.set(target, { port: s.port, pid: s.pid, stop: () => s.stop() });
    } else {
      const mode = RELAY_MODES[target];
      if (mode === undefined) throw new Error(`unknown target ${target}; known: direct, pgbouncer, sidecar, sidecar-native, ${Object.keys(RELAY_MODES).join(', ')}`);
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
        const meter = new CpuMeter(proxy.pid);
        meter.start();
        const r = await runPgbench(endpoint, { clients: 8, threads: 2, seconds, mode });
        const cpu = meter.stop();
        const sample: Sample = {
          round,
          mode,
          target,
          tps: r.tps,
          usPerTx: (cpu.processCpuSeconds * 1e6) / r.transactions,
          preemptPer1k: (cpu.processPreemptions * 1000) / r.transactions,
        };
        samples.push(sample);
        process.stdout.write(
          `round=${round} mode=${mode} target=${target} tps=${r.tps.toFixed(0)} cpu_us_per_tx=${sample.usPerTx.toFixed(1)} preempt_per_1k_tx=${sample.preemptPer1k.toFixed(2)} host_busy=${(cpu.hostBusy * 100).toFixed(0)}%\n`,
        );
      }
    }
  }

  process.stdout.write('\n| mode | target | TPS (median) | / pgbouncer (median of per-round ratios, min–max) | proxy CPU µs/tx | preemptions / 1k tx |\n|---|---|---|---|---|---|\n');
  for (const mode of modes) {
    for (const target of targets) {
      const mine = samples.filter((s) => s.mode === mode && s.target === target);
      const ratios = mine.map((s) => {
        const b = samples.find((x) => x.mode === mode && x.round === s.round && x.target === 'pgbouncer');
        return b === undefined ? Number.NaN : s.tps / b.tps;
      });
      const fmt = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '—');
      process.stdout.write(
        `| ${mode} | ${target} | ${fmt(median(mine.map((s) => s.tps)), 0)} | ${fmt(median(ratios))} (${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}) | ${fmt(median(mine.map((s) => s.usPerTx)), 1)} | ${fmt(median(mine.map((s) => s.preemptPer1k)), 1)} |\n`,
      );
    }
  }
}

try {
  await main();
} finally {
  for (const stop of stops.reverse()) await stop().catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
}
