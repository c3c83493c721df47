/**
 * Throughput of the content detectors (detectContentBits) on realistic row values.
 *
 *   node --import tsx sidecar/bench/detect.ts [--mib 16] [--rounds 5]
 *
 * Values are a deterministic mix of what result columns hold: ids, amounts, timestamps, UUIDs,
 * names, emails, phone numbers, card numbers, IBANs, IP addresses, short labels, and free-text
 * notes (~200 bytes, a fifth of them with a phone number, email or card inside). Reports MB/s
 * and values/s per CPU-second (median of rounds), overall and per kind of value, plus one JSON line.
 */
import { detectContentBits } from '../src/masking/index.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MIB = arg('mib', 16);
const ROUNDS = arg('rounds', 5);

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const rand = lcg(11);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const digits = (n: number): string => Array.from({ length: n }, () => String(Math.floor(rand() * 10))).join('');
const WORDS = 'the order was shipped late customer asked for a refund and to update the delivery address please call back after five thanks support team ticket escalated billing question'.split(' ');
const sentence = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(' ');

const KINDS: Record<string, () => string> = {
  id: () => String(Math.floor(rand() * 1e9)),
  amount: () => (rand() * 1e5).toFixed(2),
  timestamp: () => new Date(1.7e12 + rand() * 3e10).toISOString(),
  uuid: () => crypto.randomUUID(),
  name: () => `${pick(['Jane', 'John', 'Ada', 'Linus', 'Grace'])} ${pick(['Doe', 'Smith', 'Lovelace', 'Hopper'])}`,
  label: () => pick(['pending', 'shipped', 'delivered', 'cancelled', 'refunded']),
  email: () => `user${digits(6)}@example.com`,
  phone: () => `+1 415 555 ${digits(4)}`,
  card: () => pick(['4111 1111 1111 1111', '5555555555554444', '378282246310005']),
  iban: () => 'DE89370400440532013000',
  ip: () => `10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`,
  note: () => {
    const inner = rand() < 0.2 ? ` ${pick([`call 415-555-${digits(4)}`, `mail jane${digits(3)}@example.org`, 'card 4111 1111 1111 1111'])} ` : ' ';
    return `${sentence(14)}${inner}${sentence(14)}`;
  },
};
// Column mix: mostly non-PII, as in real results.
const MIX = ['id', 'id', 'amount', 'timestamp', 'uuid', 'name', 'label', 'label', 'email', 'phone', 'card', 'iban', 'ip', 'note', 'note'];

const values: string[] = [];
const kinds: string[] = [];
let bytes = 0;
while (bytes < MIB * 1024 * 1024) {
  const kind = MIX[values.length % MIX.length] as string;
  const v = (KINDS[kind] as () => string)();
  values.push(v);
  kinds.push(kind);
  bytes += Buffer.byteLength(v);
}

function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function measure(subset: readonly string[]): { mbps: number; valuesPerSec: number; hits: number } {
  const size = subset.reduce((n, v) => n + Buffer.byteLength(v), 0);
  let hits = 0;
  for (const v of subset) hits += detectContentBits(v) !== 0 ? 1 : 0; // warm-up
  const secs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = cpu();
    for (const v of subset) detectContentBits(v);
    secs.push(cpu() - t);
  }
  const s = Math.max(median(secs), 1e-9);
  return { mbps: size / 1e6 / s, valuesPerSec: subset.length / s, hits: hits / subset.length };
}

const results: Record<string, { mbps: number; valuesPerSec: number; hits: number }> = { all: measure(values) };
for (const kind of Object.keys(KINDS)) results[kind] = measure(values.filter((_, i) => kinds[i] === kind));

console.log(`${values.length.toLocaleString('en-US')} values, ${(bytes / 1e6).toFixed(1)} MB; median of ${ROUNDS} rounds, CPU time\n`);
console.log('| values | MB/s | values/s | share with a finding |');
console.log('| --- | ---: | ---: | ---: |');
for (const [kind, r] of Object.entries(results)) {
  console.log(`| ${kind} | ${r.mbps.toFixed(1)} | ${Math.round(r.valuesPerSec).toLocaleString('en-US')} | ${(r.hits * 100).toFixed(0)}% |`);
}
console.log(JSON.stringify({ bench: 'detect', mib: MIB, rounds: ROUNDS, node: process.version, results }));
