/**
 * Masking throughput (issue 4), all targets in one run, rounds interleaved so that they share the
 * machine's noise:
 *
 *   make bench-masking        (node --import tsx e2e/bench/masking.ts)
 *
 * - Streaming 1,000,000 rows of 5 columns, 2 of them masked (`email` keeps the domain, the card
 *   number keeps its last 4 digits: both per-value masks, the costly kind), through the masking
 *   sidecar vs direct PostgreSQL, pgbouncer and the sidecar without a policy. Target ≥ 0.7 × direct.
 * - The same read of a table with no sensitive column through the masking sidecar (the rows are
 *   forwarded byte for byte). Target ≥ 0.9 × direct.
 * - pgbench -S on pgbench_accounts with a masked column (filler, classified `secret` by the policy;
 *   -S reads abalance, so nothing is rewritten: the decision per statement is the cost).
 *
 * Environment: BENCH_ROUNDS (5), BENCH_READ_ROWS (1000000), BENCH_SECONDS (8), BENCH_SCALE (10),
 * BENCH_CLIENTS (8), BENCH_DOCS=0 (print only). Writes docs/benchmarks.md between the
 * `masking:begin` / `masking:end` markers and .cache/bench/masking.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChecked, startPostgres, type PgCluster } from '../harness/index.js';
import { psqlStatement, runPgbench, startSidecar, type Endpoint, type QueryMode, type RunningSidecar } from './clients.js';
import { pgbouncerVersion, startPgbouncer, type RunningPgbouncer } from './pgbouncer.js';
import { rawQuery } from './rawclient.js';
import { pairedRatio, summarize, type Summary } from './stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = join(ROOT, 'docs/benchmarks.md');
const JSON_OUT = join(ROOT, '.cache/bench/masking.json');
const BEGIN = '<!-- masking:begin -->';
const END = '<!-- masking:end -->';
const DATABASE = 'bench';
const USER = 'postgres';

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: bench-masking }
spec:
  classification:
    columns:
      - { table: public.pgbench_accounts, column: filler, classes: [secret] }
  masking:
    rules:
      - name: emails-keep-domain
        when: '"email" in column.classes'
        action: mask
        mask: email
      - name: cards-keep-last-4
        when: '"credit_card" in column.classes'
        action: mask
        mask: partial
`;

const TARGETS = ['direct', 'pgbouncer', 'sidecar', 'sidecar+masking'] as const;
type Target = (typeof TARGETS)[number];

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const CONFIG = {
  rounds: intEnv('BENCH_ROUNDS', 5),
  rows: intEnv('BENCH_READ_ROWS', 1_000_000),
  seconds: intEnv('BENCH_SECONDS', 8),
  scale: intEnv('BENCH_SCALE', 10),
  clients: intEnv('BENCH_CLIENTS', 8),
  writeDocs: process.env['BENCH_DOCS'] !== '0',
};

function log(message: string): void {
  process.stderr.write(`[bench-masking ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Each round starts with a different target, so no target always runs first or last. */
function rotation<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function createTables(db: PgCluster, rows: number): Promise<void> {
  log(`creating people (masked: email, card_number) and events (nothing sensitive), ${rows.toLocaleString('en-US')} rows each`);
  await db.sql(
    [
      'create table people (id int not null, email text not null, card_number text not null, amount numeric(12,2) not null, created_at timestamptz not null);',
      `insert into people select i, 'customer' || i || '@example.com', '4' || lpad((i::bigint * 7919 % 1000000000000000)::text, 15, '0'),`,
      `  round((i * 1.37)::numeric, 2), timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' from generate_series(1, ${rows}) as i;`,
      'create table events (id int not null, kind text not null, ref text not null, amount numeric(12,2) not null, created_at timestamptz not null);',
      `insert into events select i, 'event-kind-' || (i % 97) || '-ok', 'ref:' || lpad(to_hex(i::bigint * 7919), 12, 'x'),`,
      `  round((i * 1.37)::numeric, 2), timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' from generate_series(1, ${rows}) as i;`,
      'vacuum (freeze, analyze) people, events;',
      "select pg_prewarm('people'), pg_prewarm('events');",
    ].join('\n'),
    { database: DATABASE, user: USER },
  );
}


async function read(endpoint: Endpoint, sql: string, rows: number): Promise<number> {
  const r = await rawQuery({ ...endpoint, sql, timeoutMs: 300_000 });
  if (r.rows !== rows) throw new Error(`${sql} via ${endpoint.port}: ${r.rows} rows, expected ${rows}`);
  return r.rows / r.seconds;
}

/** The masking sidecar really masks: the two columns come back masked, the rest as stored. */
async function verifyMasking(masking: Endpoint): Promise<string> {
  const r = await psqlStatement(masking, 'select id, email, card_number, amount from people order by id limit 1;');
  const expected = '1|***@example.com|************7919|1.37';
  if (r.code !== 0 || r.output !== expected) throw new Error(`the masking sidecar returned ${JSON.stringify(r.output)}, expected ${JSON.stringify(expected)}`);
  const plain = await psqlStatement(masking, 'select id, kind, ref from events order by id limit 1;');
  if (plain.code !== 0 || plain.output !== '1|event-kind-1-ok|ref:xxxxxxxx1eef') throw new Error(`events came back changed: ${plain.output}`);
  return expected;
}

interface Result {
  config: typeof CONFIG;
  environment: { cpus: number; model: string; loadBefore: number[]; loadAfter: number[]; node: string; pgbouncer: string; postgres: string };
  reads: { masked: Record<Target, Summary>; unmasked: { direct: Summary; masking: Summary } };
  ratios: Record<string, Summary>;
  pgbench: Record<QueryMode, { tps: Record<Target, Summary>; ratios: Record<string, Summary> }>;
  sample: string;
  seconds: number;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadBefore = loadavg();
  const stops: Array<() => Promise<void>> = [];
  try {
    log('starting PostgreSQL');
    const db = await startPostgres({ auth: 'trust', name: 'bench-masking', settings: { shared_buffers: '512MB', autovacuum: 'off', max_connections: '200' } });
    stops.push(() => db.stop());
    await db.createDatabase(DATABASE, USER);
    await db.sql('create extension if not exists pg_prewarm', { database: DATABASE, user: USER });
    await createTables(db, CONFIG.rows);
    log(`pgbench -i -s ${CONFIG.scale}`);
    await runChecked('pgbench', ['-i', '-s', String(CONFIG.scale), '-q', '-h', db.host, '-p', String(db.port), '-U', USER, DATABASE], { timeoutMs: 600_000 });
    await db.sql("select pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')", { database: DATABASE, user: USER });

    const dir = mkdtempSync(join(tmpdir(), 'dbward-bench-masking-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    const upstream = `postgres://${db.host}:${db.port}/${DATABASE}?sslmode=disable`;
    const pgbouncer: RunningPgbouncer = await startPgbouncer({ upstreamHost: db.host, upstreamPort: db.port, database: DATABASE, user: USER, poolSize: 20 });
    stops.push(() => pgbouncer.stop());
    const sidecar: RunningSidecar = await startSidecar(upstream, [], [], 'sidecar');
    stops.push(() => sidecar.stop());
    const masking: RunningSidecar = await startSidecar(upstream, [], ['--policy', join(dir, 'policy.yaml'), '--identity', 'serviceAccount=agent'], 'sidecar+masking');
    stops.push(() => masking.stop());
    const endpoints: Record<Target, Endpoint> = {
      direct: { host: db.host, port: db.port, user: USER, database: DATABASE },
      pgbouncer: { host: pgbouncer.host, port: pgbouncer.port, user: USER, database: DATABASE },
      sidecar: { host: sidecar.host, port: sidecar.port, user: USER, database: DATABASE },
      'sidecar+masking': { host: masking.host, port: masking.port, user: USER, database: DATABASE },
    };
    const sample = await verifyMasking(endpoints['sidecar+masking']);
    log(`masking verified: ${sample}`);

    log('warm-up: one read per target');
    for (const t of TARGETS) await read(endpoints[t], 'select * from people', CONFIG.rows);

    const masked: Record<Target, number[]> = { direct: [], pgbouncer: [], sidecar: [], 'sidecar+masking': [] };
    const unmasked = { direct: [] as number[], masking: [] as number[] };
    for (let round = 0; round < CONFIG.rounds; round++) {
      for (const t of rotation(TARGETS, round)) {
        const rps = await read(endpoints[t], 'select * from people', CONFIG.rows);
        masked[t].push(rps);
        log(`  round ${round + 1}/${CONFIG.rounds} people ${t.padEnd(16)} ${rps.toFixed(0).padStart(9)} rows/s`);
      }
      for (const which of rotation(['direct', 'masking'] as const, round)) {
        const rps = await read(endpoints[which === 'direct' ? 'direct' : 'sidecar+masking'], 'select * from events', CONFIG.rows);
        unmasked[which].push(rps);
        log(`  round ${round + 1}/${CONFIG.rounds} events ${which.padEnd(16)} ${rps.toFixed(0).padStart(9)} rows/s`);
      }
    }

    const pgbench = {} as Result['pgbench'];
    for (const mode of ['simple', 'prepared'] as const) {
      const tps: Record<Target, number[]> = { direct: [], pgbouncer: [], sidecar: [], 'sidecar+masking': [] };
      for (let round = 0; round < CONFIG.rounds; round++) {
        for (const t of rotation(TARGETS, round)) {
          const r = await runPgbench(endpoints[t], { clients: CONFIG.clients, threads: 2, seconds: CONFIG.seconds, mode });
          if (r.failed > 0) throw new Error(`pgbench via ${t}: ${r.failed} failed transactions`);
          tps[t].push(r.tps);
          log(`  pgbench -S -M ${mode} round ${round + 1}/${CONFIG.rounds} ${t.padEnd(16)} ${r.tps.toFixed(0).padStart(7)} tps`);
        }
      }
      pgbench[mode] = {
        tps: { direct: summarize(tps.direct), pgbouncer: summarize(tps.pgbouncer), sidecar: summarize(tps.sidecar), 'sidecar+masking': summarize(tps['sidecar+masking']) },
        ratios: {
          'sidecar+masking / direct': pairedRatio(tps['sidecar+masking'], tps.direct),
          'sidecar+masking / pgbouncer': pairedRatio(tps['sidecar+masking'], tps.pgbouncer),
          'sidecar+masking / sidecar': pairedRatio(tps['sidecar+masking'], tps.sidecar),
        },
      };
    }

    const result: Result = {
      config: CONFIG,
      environment: {
        cpus: cpus().length,
        model: cpus()[0]?.model ?? 'unknown',
        loadBefore,
        loadAfter: loadavg(),
        node: process.version,
        pgbouncer: await pgbouncerVersion(),
        postgres: await db.sql('show server_version', { database: DATABASE, user: USER }),
      },
      reads: {
        masked: { direct: summarize(masked.direct), pgbouncer: summarize(masked.pgbouncer), sidecar: summarize(masked.sidecar), 'sidecar+masking': summarize(masked['sidecar+masking']) },
        unmasked: { direct: summarize(unmasked.direct), masking: summarize(unmasked.masking) },
      },
      ratios: {
        'masked read: sidecar+masking / direct': pairedRatio(masked['sidecar+masking'], masked.direct),
        'masked read: sidecar+masking / pgbouncer': pairedRatio(masked['sidecar+masking'], masked.pgbouncer),
        'masked read: sidecar+masking / sidecar': pairedRatio(masked['sidecar+masking'], masked.sidecar),
        'unmasked read: sidecar+masking / direct': pairedRatio(unmasked.masking, unmasked.direct),
      },
      pgbench,
      sample,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
    mkdirSync(dirname(JSON_OUT), { recursive: true });
    writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`);
    const section = render(result);
    process.stdout.write(`${section}\n`);
    if (CONFIG.writeDocs) writeSection(section);
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => log(`stop failed: ${String(error)}`));
  }
}

const f0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const f2 = (n: number): string => n.toFixed(2);
const range = (s: Summary, f: (n: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

function verdict(s: Summary, target: number): string {
  return `${s.median >= target ? 'PASS' : 'FAIL'} (target ≥ ${target.toFixed(2)})`;
}

function render(r: Result): string {
  const lines: string[] = [];
  lines.push(BEGIN);
  lines.push('## Masking throughput (issue 4)');
  lines.push('');
  lines.push('Produced by `make bench-masking` (`node --import tsx e2e/bench/masking.ts`); all targets in one run, rounds interleaved, each ratio computed per round and then summarized: median (min–max).');
  lines.push(`Machine: ${r.environment.cpus} × ${r.environment.model}, load ${r.environment.loadBefore.map(f2).join(' ')} before, ${r.environment.loadAfter.map(f2).join(' ')} after; Node ${r.environment.node}, PostgreSQL ${r.environment.postgres}, ${r.environment.pgbouncer}; ${r.config.rounds} rounds, ${r.seconds} s in all.`);
  lines.push('');
  lines.push(`**Streaming ${f0(r.config.rows)} rows** (\`select * from people\`: id int, email text, card_number text, amount numeric, created_at timestamptz; email masked with \`email\`, card_number with \`partial\`; row 1 reads \`${r.sample}\`), raw protocol client counting rows:`);
  lines.push('');
  lines.push('| target | rows/s |');
  lines.push('| --- | ---: |');
  for (const t of TARGETS) lines.push(`| ${t}${t === 'sidecar+masking' ? ' (2 of 5 masked)' : ''} | ${range(r.reads.masked[t], f0)} |`);
  lines.push(`| direct, \`events\` (no sensitive column) | ${range(r.reads.unmasked.direct, f0)} |`);
  lines.push(`| sidecar+masking, \`events\` (no masked column) | ${range(r.reads.unmasked.masking, f0)} |`);
  lines.push('');
  lines.push('| ratio | median (min–max) | |');
  lines.push('| --- | ---: | --- |');
  for (const [name, s] of Object.entries(r.ratios)) {
    const target = name === 'masked read: sidecar+masking / direct' ? 0.7 : name === 'unmasked read: sidecar+masking / direct' ? 0.9 : undefined;
    lines.push(`| ${name} | ${range(s, f2)} | ${target === undefined ? '' : verdict(s, target)} |`);
  }
  lines.push('');
  lines.push(`**pgbench -S on a table with a masked column** (pgbench_accounts.filler classified \`secret\`; scale ${r.config.scale}, ${r.config.clients} clients, 2 threads, ${r.config.seconds} s per run):`);
  lines.push('');
  lines.push('| mode | direct tps | pgbouncer tps | sidecar tps | sidecar+masking tps | masking / direct | masking / pgbouncer | masking / sidecar |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const mode of ['simple', 'prepared'] as const) {
    const p = r.pgbench[mode];
    lines.push(
      `| ${mode} | ${f0(p.tps.direct.median)} | ${f0(p.tps.pgbouncer.median)} | ${f0(p.tps.sidecar.median)} | ${f0(p.tps['sidecar+masking'].median)} | ${range(p.ratios['sidecar+masking / direct']!, f2)} | ${range(p.ratios['sidecar+masking / pgbouncer']!, f2)} | ${range(p.ratios['sidecar+masking / sidecar']!, f2)} |`,
    );
  }
  lines.push(END);
  return lines.join('\n');
}

function writeSection(section: string): void {
  const current = readFileSync(DOCS, 'utf8');
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = begin >= 0 && end > begin ? current.slice(0, begin) + section + current.slice(end + END.length) : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOCS, next);
  log(`wrote ${DOCS}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-masking failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
