/**
 * Throughput of the wire codec's hot paths on a realistic result stream.
 *
 *   node --import tsx sidecar/bench/frames.ts [--mib 64] [--rounds 7] [--chunk 65536] [--only splitter,scanner]
 *
 * Builds ~64 MiB of backend traffic shaped like `SELECT * FROM pgbench_accounts`-style results
 * (RowDescription, 10,000 DataRows of 5 text columns and ~80 bytes each, CommandComplete,
 * ReadyForQuery, repeated), cuts it into 64 KiB chunks as a socket would deliver it, and measures
 * rows per second for:
 *   splitter   FrameSplitter with a handler that only counts frames
 *   pg-parser  pg-protocol's Parser (node-postgres), which decodes every message
 *   decode     FrameSplitter + decodeBackend of every DataRow
 *   scanner    FrameSplitter + DataRowScanner.scan of every DataRow (field offsets only)
 *   fields     FrameSplitter + forEachDataRowField of every DataRow
 * Rates are rows per CPU-second of the process (user + system, from process.cpuUsage), which is
 * steadier than wall-clock time on a shared machine; the wall-clock median is printed beside it.
 * Each case runs in its own process (`--only a,b` runs the named ones in this process).
 * Prints a markdown table and one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { Parser } from 'pg-protocol/dist/parser.js';
import { Backend, DataRowScanner, decodeBackend, forEachDataRowField, FrameSplitter, writers } from '../src/wire/index.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MIB = arg('mib', 64);
const ROUNDS = arg('rounds', 7);
const CHUNK = arg('chunk', 65536);
const ROWS_PER_RESULT = 10_000;

/** A deterministic generator, so every run measures the same bytes. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function buildStream(targetBytes: number): { stream: Buffer; rows: number; frames: number } {
  const rand = lcg(42);
  const columns = ['aid', 'bid', 'abalance', 'email', 'filler'];
  const header = writers.rowDescription(
    columns.map((name, i) => ({
      name,
      tableOid: 16398,
      columnAttr: i + 1,
      typeOid: i < 3 ? 23 : 25,
      typeSize: i < 3 ? 4 : -1,
      typeModifier: -1,
      format: 0,
    })),
  );
  const parts: Buffer[] = [];
  let size = 0;
  let rows = 0;
  let frames = 0;
  let aid = 1;
  while (size < targetBytes) {
    parts.push(header);
    size += header.length;
    frames++;
    for (let i = 0; i < ROWS_PER_RESULT; i++) {
      const row = writers.dataRow([
        String(aid++),
        String(1 + Math.floor(rand() * 10)),
        String(Math.floor(rand() * 20000) - 10000),
        `user${Math.floor(rand() * 1e6)}@example.com`,
        'x'.repeat(16 + Math.floor(rand() * 8)),
      ]);
      parts.push(row);
      size += row.length;
    }
    rows += ROWS_PER_RESULT;
    const done = writers.commandComplete(`SELECT ${ROWS_PER_RESULT}`);
    const ready = writers.readyForQuery('I');
    parts.push(done, ready);
    size += done.length + ready.length;
    frames += ROWS_PER_RESULT + 2;
  }
  return { stream: Buffer.concat(parts, size), rows, frames };
}

function chunksOf(stream: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let p = 0; p < stream.length; p += size) chunks.push(stream.subarray(p, Math.min(p + size, stream.length)));
  return chunks;
}

type Case = (chunks: Buffer[]) => number;

const D = Backend.DataRow;

const allCases: Partial<Record<string, Case>> = {
  splitter(chunks) {
    let rows = 0;
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 30 });
    const handler = {
      onFrame(code: number): void {
        if (code === D) rows++;
      },
    };
    for (const c of chunks) splitter.push(c, handler);
    return rows;
  },
  'pg-parser'(chunks) {
    let rows = 0;
    const parser = new Parser();
    const onMessage = (m: { name: string }): void => {
      if (m.name === 'dataRow') rows++;
    };
    for (const c of chunks) parser.parse(c, onMessage);
    return rows;
  },
  decode(chunks) {
    let rows = 0;
    let bytes = 0;
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 30 });
    const handler = {
      onFrame(code: number, buf: Buffer, start: number, end: number): void {
        if (code !== D) return;
        const m = decodeBackend(code, buf, start, end);
        if (m.type === 'DataRow') {
          rows++;
          bytes += m.values.length;
        }
      },
    };
    for (const c of chunks) splitter.push(c, handler);
    if (bytes === 0) throw new Error('nothing decoded');
    return rows;
  },
  scanner(chunks) {
    let rows = 0;
    let sum = 0;
    const scanner = new DataRowScanner();
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 30 });
    const handler = {
      onFrame(code: number, buf: Buffer, start: number, end: number): void {
        if (code !== D) return;
        scanner.scan(buf, start, end);
        sum += scanner.lengths[3]!; // e.g. locate the email column for masking
        rows++;
      },
    };
    for (const c of chunks) splitter.push(c, handler);
    if (sum === 0) throw new Error('nothing scanned');
    return rows;
  },
  fields(chunks) {
    let rows = 0;
    let sum = 0;
    const onField = (_i: number, _start: number, length: number): void => {
      sum += length;
    };
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 30 });
    const handler = {
      onFrame(code: number, buf: Buffer, start: number, end: number): void {
        if (code !== D) return;
        forEachDataRowField(buf, start, end, onField);
        rows++;
      },
    };
    for (const c of chunks) splitter.push(c, handler);
    if (sum === 0) throw new Error('nothing walked');
    return rows;
  },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Result {
  case: string;
  medianRowsPerSec: number;
  bestRowsPerSec: number;
  medianMiBPerSec: number;
  medianWallRowsPerSec: number;
}

interface Report {
  bench: 'wire-frames';
  node: string;
  streamBytes: number;
  rows: number;
  chunkBytes: number;
  rounds: number;
  loadAverage: number;
  results: Result[];
}

/** Runs the selected cases in this process. */
function measure(names: string[]): Report {
  const { stream, rows, frames } = buildStream(MIB * 1024 * 1024);
  const chunks = chunksOf(stream, CHUNK);
  console.log(
    `stream: ${(stream.length / 2 ** 20).toFixed(1)} MiB, ${frames} frames (${rows} DataRows, ` +
      `~${(stream.length / frames).toFixed(1)} bytes/frame), ${chunks.length} chunks of ${CHUNK} bytes; node ${process.version}; ` +
      `${ROUNDS} rounds after 1 warm-up; rates per CPU-second of the process`,
  );
  const results: Result[] = [];
  for (const name of names) {
    const run = allCases[name];
    if (run === undefined) throw new Error(`unknown case ${name}`);
    if (run(chunks) !== rows) throw new Error(`${name}: wrong row count`);
    const rates: number[] = [];
    const wallRates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const n = run(chunks);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const c = process.cpuUsage(c0);
      if (n !== rows) throw new Error(`${name}: wrong row count ${n}`);
      rates.push(rows / ((c.user + c.system) / 1e6));
      wallRates.push(rows / wall);
    }
    const med = median(rates);
    results.push({
      case: name,
      medianRowsPerSec: Math.round(med),
      bestRowsPerSec: Math.round(Math.max(...rates)),
      medianMiBPerSec: Math.round(((med / rows) * stream.length) / 2 ** 20),
      medianWallRowsPerSec: Math.round(median(wallRates)),
    });
  }
  return {
    bench: 'wire-frames',
    node: process.version,
    streamBytes: stream.length,
    rows,
    chunkBytes: CHUNK,
    rounds: ROUNDS,
    loadAverage: Number(loadavg()[0]!.toFixed(2)),
    results,
  };
}

/** Runs every case in a fresh process, so JIT feedback from one case's handler cannot slow another. */
function measureIsolated(): Report {
  let report: Report | undefined;
  for (const name of Object.keys(allCases)) {
    const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--only', name];
    const lines = execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n');
    if (report === undefined) console.log(lines[0]);
    const child = JSON.parse(lines[lines.length - 1]!) as Report;
    if (report === undefined) report = { ...child, results: [] };
    report.results.push(...child.results);
  }
  report!.loadAverage = Number(loadavg()[0]!.toFixed(2));
  return report!;
}

function M(x: number): string {
  return (x / 1e6).toFixed(2);
}

const onlyAt = process.argv.indexOf('--only');
const report = onlyAt >= 0 ? measure(process.argv[onlyAt + 1]!.split(',')) : measureIsolated();
console.log(`\n${availableParallelism()} CPUs, load average ${report.loadAverage}`);
console.log('\n| case | median rows/s (M) | best rows/s (M) | median MiB/s | median rows/s, wall clock (M) |');
console.log('|---|---:|---:|---:|---:|');
for (const r of report.results) {
  console.log(`| ${r.case} | ${M(r.medianRowsPerSec)} | ${M(r.bestRowsPerSec)} | ${r.medianMiBPerSec} | ${M(r.medianWallRowsPerSec)} |`);
}
console.log(`\n${JSON.stringify(report)}`);
