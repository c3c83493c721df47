/** Renders the benchmark result as the docs/benchmarks.md section between the bench:proxy markers. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { RATIOS, TARGETS, type BenchResult, type PgbenchMode, type ReadClientResult, type ReadResult, type Target } from './model.js';
import { median, type Summary } from './stats.js';

export const START = '<!-- bench:proxy:start -->';
export const END = '<!-- bench:proxy:end -->';

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

function ratioTable(ratios: PgbenchMode['ratios']): string {
  return table(
    ['ratio (per round, then median)', 'median', 'min', 'max', 'per round'],
    RATIOS.map((r) => {
      const s = ratios[r.key];
      return [r.key, ratioCell(s), fixed(s.min, 2), fixed(s.max, 2), s.perRound.map((v) => fixed(v, 2)).join(' ')];
    }),
  );
}

function pgbenchSection(m: PgbenchMode, result: BenchResult): string {
  const c = result.config;
  const rows = TARGETS.map((t: Target) => [
    t,
    `**${int(m.tps[t].median)}**`,
    int(m.tps[t].min),
    int(m.tps[t].max),
    t === 'direct' ? '–' : fixed(m.cpuPer1000[t].median, 3),
    t === 'direct' ? '–' : fixed(m.preemptionsPer1000[t].median, 0),
  ]);
  return [
    `### pgbench -S, ${c.clients} clients, ${m.mode} protocol`,
    '',
    `${c.rounds} rounds × ${c.seconds} s per target, order rotated per round (${m.runs.length} runs).`,
    '',
    table(['target', 'median TPS', 'min TPS', 'max TPS', 'proxy CPU s / 1,000 tx', 'proxy preemptions / 1,000 tx'], rows),
    '',
    ratioTable(m.ratios),
  ].join('\n');
}

function readClientSection(c: ReadClientResult, read: ReadResult, result: BenchResult): string {
  const title =
    c.client === 'raw'
      ? 'raw client (startup + one simple Query over a socket, counts DataRow frames, discards the bytes)'
      : 'psql (`-A -t`, output to /dev/null; psql buffers the whole result, then prints it)';
  const med = (t: Target, f: (r: ReadClientResult['runs'][number]) => number, digits: number): string =>
    fixed(median(c.runs.filter((r) => r.target === t).map(f)), digits);
  const raw = c.client === 'raw';
  const rows = TARGETS.map((t) => [
    t,
    `**${int(c.rowsPerSecond[t].median)}**`,
    int(c.rowsPerSecond[t].min),
    int(c.rowsPerSecond[t].max),
    ...(raw ? [med(t, (r) => r.mbPerSecond, 0), med(t, (r) => r.bytesPerRead, 0), med(t, (r) => r.clientCpuSeconds / (r.rows / 1e6), 2)] : []),
    t === 'direct' ? '–' : fixed(c.cpuPerMillionRows[t].median, 3),
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
    `${result.config.readRounds} rounds, one read of ${int(read.rows)} rows per target per round, order rotated per round.`,
    '',
    table(header, rows),
    '',
    ratioTable(c.ratios),
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
  const defaults = c.rounds === 5 && c.readRounds === 9 && c.seconds === 10 && c.scale === 10 && c.readRows === 1_000_000 && c.only === undefined && c.modes.length === 2;
  const out: string[] = [
    START,
    '## Proxy overhead: direct vs pgbouncer vs the sidecar',
    '',
    `_Generated by \`e2e/bench/run.ts\`, run started ${e.date.slice(0, 16).replace('T', ' ')} UTC and took ${Math.round(e.durationSeconds / 60)} min. ` +
      '`make bench` rewrites everything between the `bench:proxy` markers._',
    '',
  ];
  if (!defaults) {
    out.push(
      `> **Not the reference configuration** (rounds ${c.rounds}, read rounds ${c.readRounds}, ${c.seconds} s, scale ${c.scale}, read rows ${c.readRows}, modes ${c.modes.join('+')}${c.only === undefined ? '' : `, BENCH_ONLY=${c.only}`}).`,
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
    ...(result.pgbench.length === 0
      ? []
      : [
          'A view less sensitive to the load: proxy CPU seconds per 1,000 pgbench transactions, sidecar relative to pgbouncer: ' +
            result.pgbench.map((m) => `${fixed(m.cpuPer1000.sidecar.median / m.cpuPer1000.pgbouncer.median, 2)}× (${m.mode})`).join(', ') +
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
      '`node --import tsx e2e/bench/run.ts`. Shorter runs: `BENCH_ROUNDS` (default 5), `BENCH_READ_ROUNDS` (2 × rounds − 1), `BENCH_SECONDS` (10), `BENCH_SCALE` (10), ' +
      '`BENCH_ONLY=pgbench|read`, `BENCH_MODES=simple|prepared`, `BENCH_READ_ROWS` (1000000); `BENCH_DOCS=0` leaves this file alone. ' +
      'All raw figures of the last run go to `.cache/bench/proxy.json`.',
    '',
    'One run starts one throw-away PostgreSQL cluster (trust authentication), one pgbouncer (session pooling) and one sidecar ' +
      '(pass-through authentication, no policy), all on loopback TCP. `pgbench -i` loads the tables (and vacuums them); ' +
      'every pgbench run then uses `-n` (no vacuum before the run: `-S` never writes, and a per-run vacuum would go through the proxy ' +
      'under test). Each protocol mode starts with an unrecorded warm-up run per target. The pgbench tables are dropped before the large ' +
      'read, whose table is created, vacuumed and loaded into shared buffers (`pg_prewarm`) before an unrecorded warm-up read per target. ' +
      'Proxy CPU is user+system time of the pgbouncer or sidecar process (all threads) from `/proc/<pid>/stat` over each run, ' +
      'preemptions are its main thread\'s involuntary context switches (`/proc/<pid>/status`, both proxies are single-threaded ' +
      'event loops); CPU per transaction depends much less on the machine\'s load than TPS does. ' +
      '"host busy" is the share of all CPUs busy during a run, whatever ran on them.',
    '',
    '```sh',
    commands.pgbench,
    commands.psql,
    commands.sidecar,
    '```',
    '',
    '<details>',
    '<summary>pgbouncer.ini and PostgreSQL settings</summary>',
    '',
    '```ini',
    commands.pgbouncerConfig.trim(),
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
