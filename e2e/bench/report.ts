/**
 * Renders the benchmark result as the docs/benchmarks.md section between the bench:proxy
 * markers, and the end-to-end policy figures as the bench:policy:pgbench block inside the
 * bench:policy section (whose bench:policy:statement block sidecar/bench/statement.ts writes).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_TARGETS, isProxy, RATIOS, type BenchResult, type Config, type PgbenchMode, type ReadClientResult, type ReadResult, type Target } from './model.js';
import { median, type Summary } from './stats.js';

export const START = '<!-- bench:proxy:start -->';
export const END = '<!-- bench:proxy:end -->';
export const POLICY_START = '<!-- bench:policy:start -->';
export const POLICY_END = '<!-- bench:policy:end -->';
export const POLICY_PGBENCH_START = '<!-- bench:policy:pgbench:start -->';
export const POLICY_PGBENCH_END = '<!-- bench:policy:pgbench:end -->';
/** Written by sidecar/bench/statement.ts; only created empty here when the section is new. */
const POLICY_STATEMENT_START = '<!-- bench:policy:statement:start -->';
const POLICY_STATEMENT_END = '<!-- bench:policy:statement:end -->';

const TITLE = '# dbward benchmarks';
const INTRO =
  'Figures here are ratios against PostgreSQL reached directly and against pgbouncer, measured in the ' +
  'same run on the same machine. The machine is shared and noisy (2 cores, other jobs come and go), so ' +
  'absolute numbers vary from run to run; the ratios of runs interleaved in the same rounds are what ' +
  'carries over. Each section is rewritten by the benchmark that owns it.';

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}
function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}
function pct(n: number): string {
  return Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : '–';
}
function ratioCell(s: Summary): string {
  return `**${fixed(s.median, 2)}**`;
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** How the runs of a round were ordered, in words. */
function orderText(c: Config): string {
  return (c.order ?? 'rotated') === 'alternating' ? 'order reversed every other round' : 'order rotated per round';
}

/** The targets of a result: those measured (runs saved before BENCH_TARGETS: the first three). */
function targetsOf(result: BenchResult): readonly Target[] {
  return result.config.targets;
}

function ratioTable(ratios: PgbenchMode['ratios'], targets: readonly Target[]): string {
  return table(
    ['ratio (per round, then median)', 'median', 'min', 'max', 'per round'],
    RATIOS.filter((r) => targets.includes(r.num) && targets.includes(r.den)).map((r) => {
      const s = ratios[r.key];
      return [r.key, ratioCell(s), fixed(s.min, 2), fixed(s.max, 2), s.perRound.map((v) => fixed(v, 2)).join(' ')];
    }),
  );
}

function pgbenchSection(m: PgbenchMode, result: BenchResult): string {
  const c = result.config;
  const rows = targetsOf(result).map((t: Target) => [
    t,
    `**${int(m.tps[t].median)}**`,
    int(m.tps[t].min),
    int(m.tps[t].max),
    isProxy(t) ? fixed(m.cpuPer1000[t].median, 3) : '–',
    isProxy(t) ? fixed(m.preemptionsPer1000[t].median, 0) : '–',
  ]);
  return [
    `### pgbench -S, ${c.clients} clients, ${m.mode} protocol`,
    '',
    `${c.rounds} rounds × ${c.seconds} s per target, ${orderText(c)} (${m.runs.length} runs).`,
    '',
    table(['target', 'median TPS', 'min TPS', 'max TPS', 'proxy CPU s / 1,000 tx', 'proxy preemptions / 1,000 tx'], rows),
    '',
    ...collectorLine(m, result),
    ratioTable(m.ratios, targetsOf(result)),
  ].join('\n');
}

const COLLECTORS = {
  sink: 'a discarding OTLP/HTTP receiver (`e2e/bench/otlp-sink.ts`) that stands for a collector on another machine',
  jaeger: 'a Jaeger (memory storage) on the same two cores',
  external: 'the collector at `BENCH_OTLP_ENDPOINT`',
} as const;

/** Where sidecar+policy+otel exported, and what the collector cost the machine. */
function collectorLine(m: PgbenchMode, result: BenchResult): string[] {
  const collector = result.collector;
  if (collector === undefined || !targetsOf(result).includes('sidecar+policy+otel')) return [];
  const cpu = m.runs.filter((r) => r.target === 'sidecar+policy+otel' && r.collectorCpuPer1000 !== undefined).map((r) => r.collectorCpuPer1000!);
  cpu.sort((a, b) => a - b);
  const median = cpu.length === 0 ? undefined : cpu[Math.floor(cpu.length / 2)];
  const received = collector.spans === undefined ? '' : ` It received ${int(collector.spans)} spans in ${int(collector.requests ?? 0)} requests over the whole run (${fixed((collector.bytes ?? 0) / Math.max(1, collector.spans), 0)} bytes per span), none malformed.`;
  return [
    `\`sidecar+policy+otel\` exported to ${COLLECTORS[collector.kind]}${median === undefined ? '' : `, whose CPU was ${fixed(median, 3)} s per 1,000 transactions (median of runs)`}.${received}`,
    '',
  ];
}

function readClientSection(c: ReadClientResult, read: ReadResult, result: BenchResult): string {
  const title =
    c.client === 'raw'
      ? 'raw client (startup + one simple Query over a socket, counts DataRow frames, discards the bytes)'
      : 'psql (`-A -t`, output to /dev/null; psql buffers the whole result, then prints it)';
  const med = (t: Target, f: (r: ReadClientResult['runs'][number]) => number, digits: number): string =>
    fixed(median(c.runs.filter((r) => r.target === t).map(f)), digits);
  const raw = c.client === 'raw';
  const rows = targetsOf(result).map((t) => [
    t,
    `**${int(c.rowsPerSecond[t].median)}**`,
    int(c.rowsPerSecond[t].min),
    int(c.rowsPerSecond[t].max),
    ...(raw ? [med(t, (r) => r.mbPerSecond, 0), med(t, (r) => r.bytesPerRead, 0), med(t, (r) => r.clientCpuSeconds / (r.rows / 1e6), 2)] : []),
    isProxy(t) ? fixed(c.cpuPerMillionRows[t].median, 3) : '–',
  ]);
  const header = [
    'target',
    'median rows/s',
    'min rows/s',
    'max rows/s',
    ...(raw ? ['MB/s (protocol bytes)', 'bytes / socket read', 'client CPU s / 1M rows'] : []),
    'proxy CPU s / 1M rows',
  ];
  return [
    `#### ${title}`,
    '',
    `${result.config.readRounds} rounds, one read of ${int(read.rows)} rows per target per round, ${orderText(result.config)}.`,
    '',
    table(header, rows),
    '',
    ratioTable(c.ratios, targetsOf(result)),
  ].join('\n');
}

function rawTables(result: BenchResult): string {
  const parts: string[] = [];
  if (result.pgbench.length > 0) {
    const rows = result.pgbench.flatMap((m) =>
      m.runs.map((r) => [
        m.mode,
        String(r.round + 1),
        String(r.slot + 1),
        r.target,
        int(r.tps),
        int(r.transactions),
        fixed(r.latencyMs, 3),
        fixed(r.proxyCpuSeconds, 2),
        fixed(r.cpuPer1000, 3),
        fixed(r.preemptionsPer1000, 1),
        pct(r.hostBusy),
        pct(r.hostSteal),
        fixed(r.load1, 2),
        r.startedAt.slice(11, 19),
      ]),
    );
    parts.push(
      '<details>',
      '<summary>pgbench: every run</summary>',
      '',
      table(['mode', 'round', 'slot', 'target', 'TPS', 'transactions', 'latency ms', 'proxy CPU s', 'CPU s / 1,000 tx', 'preemptions / 1,000 tx', 'host busy', 'steal', 'load1', 'start (UTC)'], rows),
      '',
      '</details>',
      '',
    );
  }
  if (result.read !== undefined) {
    const rows = result.read.clients.flatMap((c) =>
      c.runs.map((r) => [
        c.client,
        String(r.round + 1),
        String(r.slot + 1),
        r.target,
        int(r.rowsPerSecond),
        fixed(r.seconds, 3),
        fixed(r.mbPerSecond, 0),
        int(r.bytesPerRead),
        fixed(r.clientCpuSeconds, 2),
        fixed(r.proxyCpuSeconds, 2),
        pct(r.hostBusy),
        fixed(r.load1, 2),
        r.startedAt.slice(11, 19),
      ]),
    );
    parts.push(
      '<details>',
      '<summary>large read: every run</summary>',
      '',
      table(['client', 'round', 'slot', 'target', 'rows/s', 'seconds', 'MB/s', 'bytes / socket read', 'client CPU s', 'proxy CPU s', 'host busy', 'load1', 'start (UTC)'], rows),
      '',
      '</details>',
      '',
    );
  }
  return parts.join('\n');
}

export function renderSection(result: BenchResult): string {
  const { config: c, environment: e, commands } = result;
  const targets = targetsOf(result);
  const defaults =
    c.rounds === 9 && c.readRounds === 9 && c.seconds === 8 && c.scale === 10 && c.readRows === 1_000_000 && c.only === undefined && c.modes.length === 2 &&
    targets.length === DEFAULT_TARGETS.length && DEFAULT_TARGETS.every((t) => targets.includes(t));
  const cpuRelative = (num: Target, den: Target): string =>
    result.pgbench.map((m) => `${fixed(m.cpuPer1000[num].median / m.cpuPer1000[den].median, 2)}× (${m.mode})`).join(', ');
  const out: string[] = [
    START,
    '## Proxy overhead: direct vs pgbouncer vs the sidecar (without and with a policy)',
    '',
    `_Generated by \`e2e/bench/run.ts\`, run started ${e.date.slice(0, 16).replace('T', ' ')} UTC and took ${Math.round(e.durationSeconds / 60)} min. ` +
      '`make bench` rewrites everything between the `bench:proxy` markers._',
    '',
  ];
  if (!defaults) {
    out.push(
      `> **Not the reference configuration** (rounds ${c.rounds}, read rounds ${c.readRounds}, ${c.seconds} s, scale ${c.scale}, read rows ${c.readRows}, modes ${c.modes.join('+')}, targets ${targets.join(', ')}${c.only === undefined ? '' : `, BENCH_ONLY=${c.only}`}).`,
      '',
    );
  }
  out.push(
    '### Targets',
    '',
    'Ratios are computed per round (runs of the same round share the machine\'s noise), then the median is taken. ' +
      'The result is the median against the threshold; "rounds meeting it" shows how clear-cut that is on this machine.',
    '',
    table(
      ['target', 'measured: median of per-round ratios', 'threshold', 'rounds meeting it', 'result'],
      result.targets.map((t) => [t.name, t.measured, t.threshold, `${t.roundsMeeting} of ${t.rounds}`, t.pass ? '**PASS**' : '**FAIL**']),
      ['l', 'l', 'l', 'r', 'l'],
    ),
    '',
    ...(result.pgbench.length === 0 || !targets.includes('sidecar')
      ? []
      : [
          'A view less sensitive to the load: proxy CPU seconds per 1,000 pgbench transactions' +
            (targets.includes('pgbouncer') ? `, sidecar relative to pgbouncer: ${cpuRelative('sidecar', 'pgbouncer')}` : '') +
            (targets.includes('sidecar+policy') ? `; sidecar+policy relative to sidecar: ${cpuRelative('sidecar+policy', 'sidecar')}` : '') +
            '.',
          '',
        ]),
    ...(result.incidents.length === 0
      ? []
      : [
          '### Incidents',
          '',
          `A proxy process exited during the run and was restarted (the run it broke was retried once):`,
          '',
          ...result.incidents.flatMap((i) => [
            `- ${i.at.slice(11, 19)} UTC, **${i.target}**, during ${i.during}: ${i.exit}. Last output:`,
            '',
            '  ```',
            ...i.outputTail.split('\n').map((l) => `  ${l}`),
            '  ```',
            '',
          ]),
        ]),
    '### How to run',
    '',
    '```sh',
    'make bench',
    '```',
    '',
    '`make bench` compiles the sidecar (`tsc -b sidecar operator`), installs pgbouncer from Debian when it is missing, then runs ' +
      '`node --import tsx e2e/bench/run.ts`. Shorter runs: `BENCH_ROUNDS` (default 9), `BENCH_READ_ROUNDS` (9), `BENCH_SECONDS` (8), `BENCH_SCALE` (10), ' +
      '`BENCH_ONLY=pgbench|read`, `BENCH_MODES=simple|prepared`, `BENCH_READ_ROWS` (1000000), ' +
      '`BENCH_TARGETS` (default `direct,pgbouncer,sidecar,sidecar+js,sidecar+policy,sidecar+policy+otel`; `all` adds the three diagnostic variants ' +
      '`sidecar+loop,sidecar+epoll,sidecar+node-io`; or any comma-separated subset of the nine, e.g. `BENCH_TARGETS=sidecar,sidecar+policy`; ' +
      '`sidecar` runs as shipped: plain-TCP sessions on the C addon, and with neither policy nor audit the addon relays whole messages without JavaScript (ADR 0022); ' +
      '`sidecar+js` is `sidecar` with `DBWARD_FAST_RELAY=off`: every message through the session as with a policy, the baseline for what the policy itself costs; ' +
      '`sidecar+loop` is `sidecar` with `DBWARD_RELAY_THREAD=off`: pass-through pairs relayed on Node\'s loop instead of the addon\'s relay thread (ADR 0024); ' +
      '`sidecar+epoll` is `sidecar` with `DBWARD_IO_URING=off`: one `read()`/`write()` per socket operation instead of io_uring batches (ADR 0023); ' +
      '`sidecar+node-io` is `sidecar` with `--no-native-io` (Node sockets instead of the C addon); ' +
      '`sidecar+policy+otel` is `sidecar+policy` exporting its audit trail over OTLP/HTTP to the collector of `BENCH_COLLECTOR`: `sink` (default), a discarding receiver ' +
      'that counts the spans (the run fails if they did not arrive) and stands for a collector on another machine, so that the ratio is what exporting costs the sidecar; ' +
      '`jaeger`, a Jaeger on the same two cores, whose ingest competes with the benchmark for CPU; or `BENCH_OTLP_ENDPOINT`, a collector you run); ' +
      '`BENCH_DOCS=0` leaves this file alone; `BENCH_CPU_PROF=DIR` runs both sidecars under `node --cpu-prof` and prints their hottest functions. ' +
      'All raw figures of the last run go to `.cache/bench/proxy.json`. ' +
      'The reference run (9 rounds × 8 s per target and mode, the 6 default targets, 9 read rounds) takes about 20 minutes; a run reaches its steady TPS within a second. ' +
      'Within a round the targets run in the order above, reversed every other round: each compared pair runs back to back, and each side goes first in half of the rounds (ADR 0025).',
    '',
    'One run starts one throw-away PostgreSQL cluster (trust authentication), one pgbouncer (session pooling), one sidecar ' +
      '(pass-through authentication, no policy) and a second sidecar, `sidecar+policy`, that enforces the 20-rule policy ' +
      `\`${commands.policyFile ?? 'e2e/bench/policy-20-rules.yaml'}\` in \`production\` (no rule matches pgbench's statements, so every statement walks the ` +
      'whole chain and runs; before measuring, the benchmark checks that this sidecar refuses a statement the policy denies), all on loopback TCP. ' +
      '`pgbench -i` loads the tables (and vacuums them); ' +
      'every pgbench run then uses `-n` (no vacuum before the run: `-S` never writes, and a per-run vacuum would go through the proxy ' +
      'under test). Each protocol mode starts with an unrecorded warm-up run per target. The pgbench tables are dropped before the large ' +
      'read, whose table is created, vacuumed and loaded into shared buffers (`pg_prewarm`) before an unrecorded warm-up read per target. ' +
      'Proxy CPU is user+system time of the pgbouncer or sidecar process (all threads) from `/proc/<pid>/stat` over each run, ' +
      'preemptions are the involuntary context switches of all its threads (`/proc/<pid>/task/*/status`: pgbouncer is one ' +
      'event loop, the sidecar relays pass-through sessions on a thread of its own, ADR 0024); CPU per transaction depends much less on the machine\'s load than TPS does. ' +
      '"host busy" is the share of all CPUs busy during a run, whatever ran on them.',
    '',
    '```sh',
    commands.pgbench,
    commands.psql,
    ...[commands.sidecar, commands.sidecarPolicy ?? ''].filter((line) => line !== ''),
    '```',
    '',
    '<details>',
    '<summary>pgbouncer.ini and PostgreSQL settings</summary>',
    '',
    '```ini',
    commands.pgbouncerConfig.trim() || '(pgbouncer was not a target of this run)',
    '```',
    '',
    `PostgreSQL: ${Object.entries(commands.postgresSettings).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`,
    '',
    '</details>',
    '',
    '### Environment',
    '',
    table(
      ['', ''],
      [
        ['CPUs (nproc)', `${e.nproc} × ${e.cpuModel}`],
        ['memory', `${e.memTotalGiB} GiB`],
        ['kernel', e.kernel],
        ['load average before', e.loadBefore.map((v) => v.toFixed(2)).join(' ')],
        ['load average after', e.loadAfter.map((v) => v.toFixed(2)).join(' ')],
        ['Node.js', e.node],
        ['PostgreSQL', e.postgres],
        ['pgbench', e.pgbench],
        ['psql', e.psql],
        ['pgbouncer', e.pgbouncer],
        ['dbward', `${e.gitHead}${e.sidecarDirtyFiles > 0 ? ` (+ ${e.sidecarDirtyFiles} uncommitted file(s) under sidecar/src)` : ''}`],
      ],
      ['l', 'l'],
    ),
    '',
  );
  for (const m of result.pgbench) out.push(pgbenchSection(m, result), '');
  if (result.read !== undefined) {
    const r = result.read;
    out.push(
      `### Large read: ${int(r.rows)} rows`,
      '',
      `\`${r.sql}\` from \`big (id int, a text, b text, n numeric(12,2), ts timestamptz)\`: ${fixed(r.tableMiB, 0)} MiB on disk, ` +
        `${fixed(r.bytesPerRow, 0)} protocol bytes per DataRow on average (text format). Rows/s counts from sending the query ` +
        '(raw client) or starting psql (psql) to the end of the result.',
      '',
    );
    for (const c of r.clients) out.push(readClientSection(c, r, result), '');
  }
  out.push('### Raw per-round numbers', '', rawTables(result), END);
  return out.join('\n');
}

/**
 * The end-to-end policy figures (bench:policy:pgbench block): pgbench -S through the sidecar with
 * the 20-rule policy against the sidecar without a policy, runs of the same rounds.
 */
export function renderPolicySummary(result: BenchResult): string {
  const { config: c, environment: e } = result;
  const out: string[] = [
    POLICY_PGBENCH_START,
    '### End to end: pgbench -S through the sidecar, 20-rule policy vs no policy',
    '',
    `_Generated by \`e2e/bench/run.ts\` (\`make bench\`), run started ${e.date.slice(0, 16).replace('T', ' ')} UTC, in the same rounds as the ` +
      '[proxy overhead](#proxy-overhead-direct-vs-pgbouncer-vs-the-sidecar-without-and-with-a-policy) figures, where the commands, the ' +
      'environment and every run are listed._',
    '',
    `\`sidecar+policy\` is the same build as \`sidecar\`, started with \`--policy ${result.commands.policyFile ?? 'e2e/bench/policy-20-rules.yaml'} ` +
      '--environment production` and a workload identity: 20 guardrails (identity and label conditions, `query.command in [...]`, `query.kind`, ' +
      '`readTables`/`writeTables` membership, `query.functions.exists(...)`, environment checks) + the 2 built-ins + 4 masking rules. ' +
      'No rule matches pgbench\'s statements: each is allowed after the whole chain (evaluated once per statement shape and identity, then memoised). ' +
      `${c.clients} clients, ${c.rounds} rounds × ${c.seconds} s per target, ${orderText(c)}; the ratio is taken per round, then the median.`,
    '',
  ];
  const checks = result.targets.filter((t) => t.name.includes('sidecar+policy'));
  out.push(
    table(
      ['target', 'measured: median of per-round ratios', 'threshold', 'rounds meeting it', 'result'],
      checks.map((t) => [t.name, t.measured, t.threshold, `${t.roundsMeeting} of ${t.rounds}`, t.pass ? '**PASS**' : '**FAIL**']),
      ['l', 'l', 'l', 'r', 'l'],
    ),
    '',
  );
  const rows = result.pgbench.flatMap((m) =>
    (['sidecar', 'sidecar+js', 'sidecar+policy'] as const).filter((t) => Number.isFinite(m.tps[t].median)).map((t) => [
      m.mode,
      t,
      `**${int(m.tps[t].median)}**`,
      int(m.tps[t].min),
      int(m.tps[t].max),
      fixed(m.cpuPer1000[t].median, 3),
      fixed(m.cpuPer1000[t].median * 1000, 1),
    ]),
  );
  out.push(
    table(['mode', 'target', 'median TPS', 'min TPS', 'max TPS', 'proxy CPU s / 1,000 tx', 'proxy CPU µs / tx'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    '',
    table(
      ['mode', 'baseline (no policy)', 'sidecar+policy / baseline, TPS', 'min', 'max', 'per round', 'CPU / tx, sidecar+policy / baseline (median of runs)'],
      result.pgbench.flatMap((m) =>
        (['sidecar+js', 'sidecar'] as const)
          .filter((base) => Number.isFinite(m.tps[base].median))
          .map((base) => {
            const r = m.ratios[base === 'sidecar' ? 'sidecar+policy/sidecar' : 'sidecar+policy/sidecar+js'];
            return [
              m.mode,
              base === 'sidecar' ? '`sidecar` (fast relay: no message reaches JavaScript)' : '`sidecar+js` (every message through the session, as with a policy)',
              `**${fixed(r.median, 2)}**`,
              fixed(r.min, 2),
              fixed(r.max, 2),
              r.perRound.map((v) => fixed(v, 2)).join(' '),
              `${fixed(m.cpuPer1000['sidecar+policy'].median / m.cpuPer1000[base].median, 2)}×`,
            ];
          }),
      ),
    ),
    '',
    'Two baselines, because the sidecar without policy and audit lets the C addon relay whole messages (ADR 0022): against ' +
      '`sidecar+js`, the same sidecar with that relay off, the ratio is what the policy itself costs (issue 3\'s target); against ' +
      '`sidecar`, it also includes handing every message to the session, which any policy needs.',
    '',
    'With the simple protocol every transaction is one Query message: the sidecar decodes it, lexes it to find its shape in the ' +
      'facts cache (a new literal every time), takes the decision from the runtime\'s memo for that shape (the 22-rule walk runs once ' +
      'per shape and identity) and plans the masking of its result. With the prepared protocol a statement is judged once, at Parse, ' +
      'and its executions (Bind/Execute) are not judged again. Where the CPU goes per statement: the next section, and the profile below it.',
    POLICY_PGBENCH_END,
  );
  return out.join('\n');
}

/** An empty bench:policy section (its intro is written by hand; the two blocks by the benchmarks). */
export const POLICY_SKELETON = [
  POLICY_START,
  '## Policy enforcement cost',
  '',
  POLICY_PGBENCH_START,
  POLICY_PGBENCH_END,
  '',
  POLICY_STATEMENT_START,
  POLICY_STATEMENT_END,
  POLICY_END,
].join('\n');

/**
 * Replaces the bench:policy:pgbench block of `path`, inside the bench:policy section (appended
 * after the rest of the file, with an empty statement block, when it is missing). Everything else
 * of the section — its intro, the statement block — is kept.
 */
export function writePolicySummary(path: string, block: string): void {
  let text = existsSync(path) ? readFileSync(path, 'utf8') : `${TITLE}\n\n${INTRO}\n`;
  if (!text.includes(POLICY_START) || !text.includes(POLICY_END)) text = `${text.trimEnd()}\n\n${POLICY_SKELETON}\n`;
  const sectionStart = text.indexOf(POLICY_START);
  const sectionEnd = text.indexOf(POLICY_END, sectionStart);
  const start = text.indexOf(POLICY_PGBENCH_START, sectionStart);
  const end = text.indexOf(POLICY_PGBENCH_END, sectionStart);
  if (start >= 0 && end > start && end < sectionEnd) {
    text = text.slice(0, start) + block + text.slice(end + POLICY_PGBENCH_END.length);
  } else {
    text = `${text.slice(0, sectionEnd)}${block}\n\n${text.slice(sectionEnd)}`;
  }
  writeFileSync(path, text);
}

/** Replaces the marked section of `path` (creating the file with a title and intro if needed). */
export function writeSection(path: string, section: string): void {
  let text = existsSync(path) ? readFileSync(path, 'utf8') : `${TITLE}\n\n${INTRO}\n`;
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + section + text.slice(end + END.length);
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`;
  }
  writeFileSync(path, text);
}
