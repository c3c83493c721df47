/**
 * Cost of masking DataRows: rows per CPU-second rewriting 2 of 5 columns vs forwarding.
 *
 *   node --import tsx sidecar/bench/mask.ts [--rows 1000000] [--rounds 7]
 *
 * Builds 1,000,000 DataRows shaped like the `make bench` large read (`id int, a text, b text,
 * n numeric, ts timestamptz`, ~110 bytes each; `a` an email, `b` a card number) in one buffer, as
 * a socket would deliver them, and measures per row:
 *   forward         walking the frames (what a pass-through relay does per row)
 *   scan            + DataRowScanner.scan (validation and field offsets)
 *   redact          rewriteDataRowTo (into 64 KiB chunks, as the session does), redact on a and b (fixed output, copied)
 *   email+partial   rewriteDataRowTo, email on a, partial on b (per-value masking)
 *   hash            rewriteDataRowTo, hash on a and b (two HMAC-SHA-256 per row)
 *   null            rewriteDataRowTo, null on a and b
 * Rates are rows per CPU-second (process.cpuUsage); medians over rounds. Prints a markdown table
 * and one JSON line. The target: streaming with 2 of 5 columns masked at >= 0.7 of direct,
 * i.e. the rewrite must cost well under 1 µs per row (direct reads ~1.26 M rows/s, docs/benchmarks.md).
 */
import { DataRowScanner, writers } from '../src/wire/index.js';
import { planColumns, rewriteDataRowTo, TypeOid, type ColumnPlan, type FrameSink, type PlanDecision } from '../src/masking/index.js';
import type { MaskName } from '../src/policy/types.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const ROWS = arg('rows', 1_000_000);
const ROUNDS = arg('rounds', 7);
const KEY = Buffer.from('bench-process-key-0123456789abcd');

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function buildRows(): { buf: Buffer; offsets: Int32Array } {
  const rand = lcg(7);
  const parts: Buffer[] = [];
  const offsets = new Int32Array(ROWS + 1);
  let size = 0;
  const ts = Date.UTC(2024, 0, 1);
  for (let i = 0; i < ROWS; i++) {
    const row = writers.dataRow([
      String(i + 1),
      `customer${Math.floor(rand() * 1e7)}@example.com`,
      `4${String(Math.floor(rand() * 1e15)).padStart(15, '0')}`,
      (rand() * 1e6).toFixed(2),
      new Date(ts + Math.floor(rand() * 3e10)).toISOString().replace('T', ' ').replace('Z', '+00'),
    ]);
    offsets[i] = size;
    parts.push(row);
    size += row.length;
  }
  offsets[ROWS] = size;
  return { buf: Buffer.concat(parts, size), offsets };
}

const FIELDS = [TypeOid.int4, TypeOid.text, TypeOid.text, TypeOid.numeric, TypeOid.timestamptz].map((typeOid) => ({ typeOid, typeModifier: -1, format: 0 }));

function plan(a: MaskName, b: MaskName): ColumnPlan[] {
  const m = (mask: MaskName): PlanDecision => ({ action: 'mask', mask });
  return planColumns(FIELDS, [undefined, m(a), m(b), undefined, undefined]);
}

type Case = (buf: Buffer, offsets: Int32Array) => number;

/** Like the session's relay: rewritten rows go back to back into 64 KiB chunks. */
class ChunkSink implements FrameSink {
  chunk = Buffer.allocUnsafe(64 * 1024);
  private end = 0;
  written = 0;
  reserve(size: number): number {
    if (this.chunk.length - this.end < size) {
      this.written += this.end;
      this.chunk = Buffer.allocUnsafe(Math.max(64 * 1024, size));
      this.end = 0;
    }
    const at = this.end;
    this.end += size;
    return at;
  }
}

function rewriting(p: ColumnPlan[]): Case {
  return (buf, offsets) => {
    const scanner = new DataRowScanner();
    const sink = new ChunkSink();
    for (let i = 0; i < ROWS; i++) rewriteDataRowTo(sink, buf, offsets[i]!, offsets[i + 1]!, p, scanner, KEY);
    return sink.written;
  };
}

const cases: Record<string, Case> = {
  forward(buf, offsets) {
    let bytes = 0;
    for (let i = 0; i < ROWS; i++) bytes += buf.readInt32BE(offsets[i]! + 1) + 1;
    return bytes;
  },
  scan(buf, offsets) {
    const scanner = new DataRowScanner();
    let columns = 0;
    for (let i = 0; i < ROWS; i++) columns += scanner.scan(buf, offsets[i]!, offsets[i + 1]!);
    return columns;
  },
  redact: rewriting(plan('redact', 'redact')),
  'email+partial': rewriting(plan('email', 'partial')),
  hash: rewriting(plan('hash', 'hash')),
  null: rewriting(plan('null', 'null')),
};

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { buf, offsets } = buildRows();
const results: Record<string, { rowsPerSec: number; nsPerRow: number }> = {};
for (const [name, run] of Object.entries(cases)) {
  run(buf, offsets); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = cpuSeconds();
    run(buf, offsets);
    rates.push(ROWS / Math.max(cpuSeconds() - t, 1e-9));
  }
  const rowsPerSec = median(rates);
  results[name] = { rowsPerSec: Math.round(rowsPerSec), nsPerRow: Math.round(1e9 / rowsPerSec) };
}

const forwardNs = results.forward!.nsPerRow;
console.log(`${ROWS.toLocaleString('en-US')} DataRows of 5 columns (${(buf.length / ROWS).toFixed(0)} bytes each), 2 masked; median of ${ROUNDS} rounds, CPU time\n`);
console.log('| case | rows/s | ns/row | extra ns/row vs forward |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, r] of Object.entries(results)) {
  console.log(`| ${name} | ${r.rowsPerSec.toLocaleString('en-US')} | ${r.nsPerRow} | ${r.nsPerRow - forwardNs} |`);
}
console.log(JSON.stringify({ bench: 'mask', rows: ROWS, rounds: ROUNDS, node: process.version, results }));
