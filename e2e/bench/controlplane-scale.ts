import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataAccessPolicyInput } from '@dbward/sidecar/api';
import { makeCertificates, spawnProcess, type ManagedProcess } from '../harness/index.js';
import { memoryPorts, startControlPlane, type ControlPlane } from '../../operator/src/controlplane/index.js';

/**
 * The control-plane scale run shared by the integration test (operator/test/controlplane-scale.test.ts)
 * and `make bench-controlplane` (e2e/bench/controlplane.ts): the in-process server with in-memory
 * ports, `streams` simulated sidecars in `processes` child processes (e2e/bench/controlplane-clients.ts),
 * pods spread over `deployments` label sets, one policy selecting every pod plus one per
 * deployment. Each edit changes the every-pod policy (so every stream gets a new snapshot) and
 * measures, per stream, the time from the edit to the snapshot's arrival.
 */

const CLIENTS = fileURLToPath(new URL('./controlplane-clients.ts', import.meta.url));
const NS = 'bench';

export interface ScaleOptions {
  streams: number;
  edits: number;
  deployments: number;
  processes: number;
  tls: boolean;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface ScaleResult {
  options: ScaleOptions;
  /** Per stream: from opening the stream to its first snapshot. */
  connect: Percentiles;
  /** From the first stream opened to the last first snapshot. */
  allConnectedMs: number;
  /** Every stream of every edit: from the PolicySource change to the snapshot's arrival. */
  delivery: Percentiles;
  perEdit: Array<Percentiles & { deliveries: number }>;
  /** Control-plane process CPU per edit (user + system), ms. */
  serverCpuMsPerEdit: number;
  snapshotsSent: number;
  acks: number;
  errors: string[];
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

function basePolicy(edit: number): DataAccessPolicyInput {
  return {
    apiVersion: 'dbward.io/v1alpha1',
    kind: 'DataAccessPolicy',
    metadata: { name: 'baseline', namespace: NS },
    spec: {
      workloadSelector: {},
      guardrails: [
        { name: 'no-deletes-without-where', when: 'query.command == "DELETE" && !query.hasWhere', action: 'deny', message: `edit ${edit}` },
        { name: 'hold-ddl', when: 'query.kind == "ddl"', action: 'requireApproval' },
      ],
      masking: { default: 'mask', rules: [{ name: 'emails', when: '"email" in column.classes', action: 'mask', mask: 'email' }] },
    },
  } as DataAccessPolicyInput;
}

function deploymentPolicy(k: number): DataAccessPolicyInput {
  return {
    apiVersion: 'dbward.io/v1alpha1',
    kind: 'DataAccessPolicy',
    metadata: { name: `svc-${k}`, namespace: NS },
    spec: {
      workloadSelector: { matchLabels: { app: `svc-${k}` } },
      guardrails: [{ name: `svc-${k}-read-only`, when: `identity.labels["app"] == "svc-${k}" && query.kind != "read"`, action: 'deny' }],
    },
  } as DataAccessPolicyInput;
}

export async function runScale(options: ScaleOptions, log: (line: string) => void = () => undefined): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dbward-cp-scale-'));
  const ports = memoryPorts();
  const children: ManagedProcess[] = [];
  let cp: ControlPlane | undefined;
  try {
    const pods = Array.from({ length: options.streams }, (_, i) => {
      const pod = `svc-${i % options.deployments}-${i.toString(36).padStart(5, '0')}`;
      ports.pods.set(NS, pod, { app: `svc-${i % options.deployments}`, 'pod-template-hash': 'abc12' });
      return { pod, token: ports.tokens.issue({ namespace: NS, serviceAccount: `svc-${i % options.deployments}`, pod, podUid: `uid-${i}` }) };
    });
    ports.policies.apply(basePolicy(0));
    for (let k = 0; k < options.deployments; k++) ports.policies.apply(deploymentPolicy(k));

    let tls: { cert: Buffer; key: Buffer } | undefined;
    let caFile: string | undefined;
    if (options.tls) {
      const certs = await makeCertificates(join(dir, 'certs'));
      tls = { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) };
      caFile = certs.caCert;
    }
    cp = await startControlPlane({ address: '127.0.0.1:0', ports, ...(tls !== undefined ? { tls } : {}) });
    const target = `${options.tls ? 'localhost' : '127.0.0.1'}:${cp.port}`;

    const per = Math.ceil(pods.length / options.processes);
    const startedAt = performance.timeOrigin + performance.now();
    for (let p = 0; p < options.processes; p++) {
      const slice = pods.slice(p * per, (p + 1) * per);
      if (slice.length === 0) continue;
      const tokensFile = join(dir, `tokens-${p}.json`);
      writeFileSync(tokensFile, JSON.stringify(slice));
      children.push(
        spawnProcess(process.execPath, ['--import', 'tsx', CLIENTS], {
          env: { CP_TARGET: target, CP_TOKENS: tokensFile, ...(caFile !== undefined ? { CP_CA: caFile } : {}) },
          name: `cp-clients-${p}`,
        }),
      );
    }
    const connectMs: number[] = [];
    let lastReady = 0;
    for (const child of children) {
      const line = await child.waitFor(/\{"type":"ready"[^\n]*\}\n/, { stream: 'stdout', timeoutMs: 90_000 });
      connectMs.push(...(JSON.parse(line[0]) as { connectMs: number[] }).connectMs);
      lastReady = Math.max(lastReady, performance.timeOrigin + performance.now());
    }
    const allConnectedMs = lastReady - startedAt;
    log(`${connectMs.length} streams subscribed in ${allConnectedMs.toFixed(0)} ms`);

    const delivery: number[] = [];
    const perEdit: ScaleResult['perEdit'] = [];
    let cpu = 0;
    for (let edit = 1; edit <= options.edits; edit++) {
      const since = children.map((c) => c.stdout.length);
      for (const child of children) child.write('arm\n');
      await Promise.all(children.map((c, i) => c.waitFor(/\{"type":"armed"\}\n/, { stream: 'stdout', since: since[i]! })));
      const after = children.map((c) => c.stdout.length);
      const cpuBefore = process.cpuUsage();
      const t0 = performance.timeOrigin + performance.now();
      ports.policies.apply(basePolicy(edit));
      const lines = await Promise.all(children.map((c, i) => c.waitFor(/\{"type":"updated"[^\n]*\}\n/, { stream: 'stdout', since: after[i]!, timeoutMs: 60_000 })));
      const used = process.cpuUsage(cpuBefore);
      cpu += (used.user + used.system) / 1000;
      const latencies = lines.flatMap((line) => (JSON.parse(line[0]) as { at: number[] }).at.map((at) => at - t0));
      delivery.push(...latencies);
      perEdit.push({ ...percentiles(latencies), deliveries: latencies.length });
      log(`edit ${edit}: p50 ${percentiles(latencies).p50.toFixed(1)} ms, p99 ${percentiles(latencies).p99.toFixed(1)} ms, max ${percentiles(latencies).max.toFixed(1)} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const errors = children.flatMap((c) =>
      c.stdout
        .split('\n')
        .filter((l) => l.startsWith('{"type":"error"'))
        .slice(0, 5),
    );
    return {
      options,
      connect: percentiles(connectMs),
      allConnectedMs,
      delivery: percentiles(delivery),
      perEdit,
      serverCpuMsPerEdit: cpu / Math.max(1, options.edits),
      snapshotsSent: cp.metrics.snapshotsSent,
      acks: cp.metrics.acks,
      errors,
    };
  } finally {
    for (const child of children) {
      child.write('quit\n');
      await child.kill('SIGTERM', 2_000);
    }
    await cp?.close(2_000);
    rmSync(dir, { recursive: true, force: true });
  }
}
