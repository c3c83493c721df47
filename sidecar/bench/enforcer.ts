/**
 * Per-transaction cost of the session's policy half, in process: a PolicyEnforcer (the 20-rule
 * bench policy, production) fed exactly what pgbench -S simple exchanges per transaction — one
 * Query from the client, then RowDescription, DataRow, CommandComplete and ReadyForQuery from the
 * server — with an outlet that only counts bytes. No sockets: what is left is the enforcer's own
 * CPU per statement (decode, judge, expected replies, result planning, the server-side walk).
 *
 *   node --import tsx sidecar/bench/enforcer.ts [--transactions 200000] [--rounds 5]
 *
 * Prints µs per transaction (median of rounds, CPU time), for: the full path, the client half
 * (onClientMessage) and the server half (onServerMessage of the four replies).
 */
import { fileURLToPath } from 'node:url';
import { ApprovalRegistry } from '../src/approvals/registry.js';
import { createLogger } from '../src/log/logger.js';
import { PolicyWatcher } from '../src/policy/watch.js';
import { createPolicyRuntime } from '../src/runtime/policy-runtime.js';
import { PolicyEnforcer, type EnforcerOutlet } from '../src/session/enforcer.js';
import type { Identity } from '../src/session/policy-gate.js';
import { initSqlAnalysis, type CatalogSnapshot } from '../src/sql/index.js';
import { writers } from '../src/wire/index.js';
import { lcg } from './lcg.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const TRANSACTIONS = arg('transactions', 200_000);
const ROUNDS = arg('rounds', 5);
const POLICY_FILE = fileURLToPath(new URL('../../e2e/bench/policy-20-rules.yaml', import.meta.url));

const CATALOG: CatalogSnapshot = {
  searchPath: ['public'],
  relations: {
    public: {
      pgbench_accounts: { kind: 'table', oid: 16400, columns: [{ name: 'aid', type: 'integer', attnum: 1 }, { name: 'bid', type: 'integer', attnum: 2 }, { name: 'abalance', type: 'integer', attnum: 3 }, { name: 'filler', type: 'character(84)', attnum: 4 }] },
    },
  },
  functions: {},
};

await initSqlAnalysis();
const watcher = new PolicyWatcher({ paths: [POLICY_FILE] });
const loaded = await watcher.reload('initial');
if ('errors' in loaded) throw new Error('policy did not load');
const runtime = createPolicyRuntime({ current: () => watcher.current, approvals: new ApprovalRegistry(), environment: 'production' });
runtime.catalogs.store('bench', CATALOG);

const identity: Identity = { user: 'postgres', database: 'bench', application: 'pgbench', namespace: '', serviceAccount: 'bench', pod: '', labels: {} };
let bytes = 0;
const chunk = Buffer.alloc(1 << 20);
let used = 0;
const outlet: EnforcerOutlet = {
  forward: (_buf, start, end) => void (bytes += end - start),
  sendToServer: (b) => void (bytes += b.length),
  sendToClient: (b) => void (bytes += b.length),
  clientFrames: {
    chunk,
    reserve: (size: number) => {
      if (used + size > chunk.length) used = 0;
      const at = used;
      used += size;
      return at;
    },
  },
  flush: () => undefined,
};
const log = createLogger('error');
const params = new Map([['client_encoding', 'UTF8'], ['standard_conforming_strings', 'on']]);
const enforcer = new PolicyEnforcer(runtime, identity, 1, outlet, log, params);

// The session start: the search_path query and its answer.
enforcer.start();
const feed = (frame: Buffer): void => {
  enforcer.onServerMessage(frame[0]!, frame, 0, frame.length);
};
const rfq = writers.readyForQuery('I');
feed(writers.rowDescription([{ name: 'to_json', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]));
feed(writers.dataRow(['["public"]']));
feed(writers.commandComplete('SELECT 1'));
feed(rfq);

const rand = lcg(7);
const queries = Array.from({ length: 4096 }, () => writers.query(`SELECT abalance FROM pgbench_accounts WHERE aid = ${1 + Math.floor(rand() * 1_000_000)};`));
const replies = [
  writers.rowDescription([{ name: 'abalance', tableOid: 16400, columnAttr: 3, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]),
  writers.dataRow(['0']),
  writers.commandComplete('SELECT 1'),
  rfq,
];

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function round(): number {
  const t0 = cpuUs();
  for (let i = 0; i < TRANSACTIONS; i++) {
    const q = queries[i & 4095]!;
    enforcer.onClientMessage(q[0]!, q, 0, q.length);
    for (const r of replies) enforcer.onServerMessage(r[0]!, r, 0, r.length);
  }
  return (cpuUs() - t0) / TRANSACTIONS;
}

/** The two halves, timed call by call (the replies need their query, so they cannot run alone). */
function split(): { client: number; server: number } {
  let client = 0;
  let server = 0;
  for (let i = 0; i < TRANSACTIONS; i++) {
    const q = queries[i & 4095]!;
    const a = process.hrtime.bigint();
    enforcer.onClientMessage(q[0]!, q, 0, q.length);
    const b = process.hrtime.bigint();
    for (const r of replies) enforcer.onServerMessage(r[0]!, r, 0, r.length);
    const c = process.hrtime.bigint();
    client += Number(b - a);
    server += Number(c - b);
  }
  return { client: client / TRANSACTIONS / 1000, server: server / TRANSACTIONS / 1000 };
}

const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
round();
const full: number[] = [];
const clients: number[] = [];
const servers: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  full.push(round());
  const s = split();
  clients.push(s.client);
  servers.push(s.server);
}
console.log(`pgbench -S transaction through PolicyEnforcer (20-rule policy), ${TRANSACTIONS} per round, median of ${ROUNDS}:`);
console.log(`  full     ${med(full).toFixed(2)} µs CPU per transaction`);
console.log(`  client   ${med(clients).toFixed(2)} µs (onClientMessage: decode, judge, act)`);
console.log(`  server   ${med(servers).toFixed(2)} µs (onServerMessage × 4: T, D, C, Z)`);
console.log(JSON.stringify({ bench: 'enforcer', full: med(full), client: med(clients), server: med(servers), bytes }));
