/**
 * Latency of one query returning 0.5, 2 or 8 MB, median of 30, through node-postgres: directly,
 * through the sidecar as shipped (fast relay on the C addon, read coalescing: ADR 0023) and
 * through the sidecar on Node sockets (--no-native-io). docs/benchmarks.md reports it.
 *
 *   make native && flock /work/bench.lock node --import tsx e2e/bench/experiments/result-latency.ts
 *
 * For the column "coalescing compiled out", rebuild the addon first with
 *   gcc -O2 -Wall -Wextra -Wno-unused-parameter -shared -fPIC -DCOALESCE_AFTER=0xffffffffu \
 *     -I.tools/node/include/node -o sidecar/native/build/fdio.node sidecar/native/fdio.c
 * and `make native` again afterwards (touch sidecar/native/fdio.c).
 */
import pg from 'pg';
import { startPostgres } from '../../harness/index.js';
import { startSidecar } from '../clients.js';
const db = await startPostgres({ auth: 'trust', name: 'lat' });
try {
  const url = db.url({ password: null, sslmode: 'disable' } as never);
  const sc = await startSidecar(url, [], [], 'sidecar', {});
  const nio = await startSidecar(url, [], ['--no-native-io'], 'node-io', {});
  const targets = { direct: db.port, sidecar: sc.port, 'node-io': nio.port } as Record<string, number>;
  const clients: Record<string, pg.Client> = {};
  for (const [k, port] of Object.entries(targets)) {
    clients[k] = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await clients[k]!.connect();
  }
  for (const mb of [0.5, 2, 8]) {
    const n = Math.round((mb * 1048576) / 110);
    const sql = `select i, repeat('x', 90) from generate_series(1, ${n}) i`;
    const res: Record<string, number[]> = {};
    for (let r = 0; r < 30; r++) {
      for (const k of Object.keys(targets)) {
        const t0 = performance.now();
        await clients[k]!.query({ text: sql, rowMode: 'array' });
        (res[k] ??= []).push(performance.now() - t0);
      }
    }
    const med = (a: number[]): number => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    console.log(`${mb} MB`, Object.entries(res).map(([k, v]) => `${k} ${med(v).toFixed(2)} ms`).join('  '));
  }
  for (const c of Object.values(clients)) await c.end();
  await sc.stop();
  await nio.stop();
} finally {
  await db.stop();
}
