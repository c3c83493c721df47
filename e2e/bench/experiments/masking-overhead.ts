/**
 * Where the masking policy's per-statement cost goes on pgbench -S (nothing is masked: the table
 * has a masked column that -S does not read). Sidecar CPU µs per transaction: no policy, the
 * 20-rule policy, a masking-only policy; with BENCH_CPU_PROF=DIR the masking sidecar is profiled.
 *
 *   node --import tsx e2e/bench/experiments/masking-overhead.ts
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runChecked, startPostgres } from '../../harness/index.js';
import { startSidecar } from '../clients.js';
import { readFileSync } from 'node:fs';

/** utime and stime of a process, in clock ticks. */
function ticks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [Number(f[11]), Number(f[12])];
}

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: masking-only }
spec:
  classification:
    columns:
      - { table: public.pgbench_accounts, column: filler, classes: [secret] }
`;

const db = await startPostgres({ auth: 'trust', name: 'masking-overhead', settings: { autovacuum: 'off' } });
try {
  await runChecked('pgbench', ['-i', '-s', '1', '-q', '-h', db.host, '-p', String(db.port), '-U', 'postgres', 'postgres'], { timeoutMs: 120_000 });
  const dir = mkdtempSync(join(tmpdir(), 'masking-overhead-'));
  writeFileSync(join(dir, 'masking.yaml'), POLICY);
  const variants: Record<string, string[]> = {
    plain: [],
    rules20: ['--policy', 'e2e/bench/policy-20-rules.yaml', '--environment', 'production', '--identity', 'serviceAccount=bench'],
    masking: ['--policy', join(dir, 'masking.yaml')],
  };
  const profDir = process.env['BENCH_CPU_PROF'];
  for (let round = 1; round <= 2; round++) {
    for (const [name, args] of Object.entries(variants)) {
      const node = profDir !== undefined && name === 'masking' && round === 2 ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
      const s = await startSidecar(`postgres://${db.host}:${db.port}/postgres?sslmode=disable`, node, args, name);
      const pg = ['-S', '-M', process.env['MODE'] ?? 'simple', '-c', '8', '-j', '2', '-h', s.host, '-p', String(s.port), '-U', 'postgres', 'postgres'];
      await run('pgbench', [...pg, '-T', '2'], { timeoutMs: 60_000 });
      const t0 = ticks(s.pid);
      const out = await run('pgbench', [...pg, '-T', '6'], { timeoutMs: 60_000 });
      const t1 = ticks(s.pid);
      const tx = Number(/processed: (\d+)/.exec(out.stdout)?.[1] ?? 'NaN');
      const us = (i: 0 | 1): string => (((t1[i] - t0[i]) * 1e4) / tx).toFixed(1);
      console.log(`round=${round} ${name.padEnd(8)} tps=${(tx / 6).toFixed(0)} user us/tx=${us(0)} sys us/tx=${us(1)}`);
      await s.stop();
    }
  }
} finally {
  await db.stop();
}
