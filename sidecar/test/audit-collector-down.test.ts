import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pgBinDir, run, startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * A collector that is down or never answers must cost the queries nothing (issue #5): the audit
 * trail drops spans (counted, logged at a bounded rate) instead of blocking statements or growing
 * memory. pgbench -S runs 4 × 24,000 statements through a sidecar exporting to a port where nothing
 * listens (OTLP/HTTP) and through one exporting to a TCP server that accepts and stays silent
 * (OTLP/gRPC and OTLP/HTTP), next to a sidecar without export; all statements succeed, throughput
 * stays near the no-export sidecar's, the dropped-span counter grows, and RSS stops growing
 * once the export queue (8 MiB) is full.
 */

const CLIENTS = 4;
const PER_CLIENT = 6_000; // per batch: 24,000 statements, more spans than the queue holds
const BATCHES = 4;

let db: PgCluster;
let silent: Server;
let silentPort: number;
const silentSockets: Socket[] = [];

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  const init = await run(join(pgBinDir(), 'pgbench'), ['-i', '-s', '1', '-q', '-h', db.host, '-p', String(db.port), '-U', 'app', 'app'], { timeoutMs: 120_000 });
  expect(init.code, init.stderr).toBe(0);
  // Accepts connections and reads everything, answers nothing.
  silent = createServer((socket) => {
    silentSockets.push(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
  });
  silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)));
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await db?.stop();
});

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

interface Batch {
  tps: number;
  failed: number;
  rss: number;
}

async function pgbench(sidecar: RunningSidecar): Promise<Batch> {
  const r = await run(
    join(pgBinDir(), 'pgbench'),
    ['-S', '-n', '-M', 'simple', '-c', String(CLIENTS), '-j', '2', '-t', String(PER_CLIENT), '-h', sidecar.host, '-p', String(sidecar.port), '-U', 'app', 'app'],
    { timeoutMs: 110_000 },
  );
  expect(r.code, r.stderr).toBe(0);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  expect(processed).toBe(CLIENTS * PER_CLIENT);
  return { tps: Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]), failed, rss: rssMiB(sidecar.process.pid!) };
}

async function metric(admin: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m !== null) sum += Number(m[1]);
  }
  return sum;
}

describe('audit export to a collector that is down or silent', () => {
  let baseline: RunningSidecar;
  let baselineTps: number;

  beforeAll(async () => {
    baseline = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), name: 'no-export' });
    await pgbench(baseline); // warm-up
    baselineTps = (await pgbench(baseline)).tps;
  });

  afterAll(async () => {
    await baseline?.stop();
  });

  it.each([
    { collector: 'nothing listening (OTLP/HTTP)', protocol: 'http/protobuf', endpoint: async () => `http://127.0.0.1:${await freePort()}` },
    { collector: 'accepts and never answers (OTLP/gRPC)', protocol: 'grpc', endpoint: () => Promise.resolve(`http://127.0.0.1:${silentPort}`) },
    { collector: 'accepts and never answers (OTLP/HTTP)', protocol: 'http/protobuf', endpoint: () => Promise.resolve(`http://127.0.0.1:${silentPort}`) },
  ])('$collector: every statement succeeds at normal speed, spans are dropped and counted, memory stays bounded', async ({ protocol, endpoint }) => {
    const admin = `127.0.0.1:${await freePort()}`;
    const sidecar = await startSidecar({
      upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }),
      args: ['--otlp-endpoint', await endpoint(), '--admin', admin],
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_METRICS_EXPORTER: 'none' },
      name: `sidecar-${protocol}`,
    });
    try {
      const batches: Batch[] = [];
      for (let i = 0; i < BATCHES; i++) batches.push(await pgbench(sidecar));
      const dropped = await metric(admin, /^dbward_audit_spans_dropped_total\{[^}]*\} (\d+)/);
      const exported = await metric(admin, /^dbward_audit_spans_exported_total\{[^}]*\} (\d+)/);
      const queued = await metric(admin, /^dbward_audit_spans_queued\{[^}]*\} (\d+)/);
      const tps = Math.max(...batches.slice(1).map((b) => b.tps));
      const rss = batches.map((b) => b.rss.toFixed(0)).join(' → ');
      process.stdout.write(
        `[audit-collector-down] ${protocol} ${await endpoint()}: tps ${batches.map((b) => b.tps.toFixed(0)).join(', ')} (no export: ${baselineTps.toFixed(0)}), ` +
          `RSS MiB ${rss}, spans dropped ${dropped}, queued ${queued}, exported ${exported}\n`,
      );
      expect(batches.every((b) => b.failed === 0)).toBe(true);
      expect(exported).toBe(0);
      // every statement's span was either dropped or still waits in the bounded queue (or in the one export in flight)
      expect(dropped).toBeGreaterThan(CLIENTS * PER_CLIENT);
      expect(dropped + queued).toBeGreaterThanOrEqual(BATCHES * CLIENTS * PER_CLIENT);
      // normal speed: within the noise of a shared 2-core machine (the best batch against the
      // baseline's run, both after a warm-up)
      expect(tps).toBeGreaterThan(0.6 * baselineTps);
      // bounded memory: once the 8 MiB queue is full, further statements add nothing
      const grown = batches[BATCHES - 1]!.rss - batches[1]!.rss;
      expect(grown, `RSS ${rss}`).toBeLessThan(32);
      expect(batches[BATCHES - 1]!.rss, `RSS ${rss}`).toBeLessThan(256);
      // a handful of log lines, not one per failed batch
      const warnings = sidecar.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('audit export'));
      expect(warnings.length).toBeGreaterThan(0);
      expect(warnings.length).toBeLessThanOrEqual(6);
    } finally {
      await sidecar.stop();
    }
  });
});
