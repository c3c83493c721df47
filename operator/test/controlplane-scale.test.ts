import { describe, expect, it } from 'vitest';
import { runScale } from '../../e2e/bench/controlplane-scale.js';

/**
 * Issue #6, Done when: 1,000 simulated sidecar streams (real grpc-js clients in two child
 * processes, one TCP connection each) all receive a policy update within 2 s at the 99th
 * percentile. `make bench-controlplane` runs the same thing with more edits and writes the figures.
 */
describe('control plane at scale', () => {
  it('1,000 streams: every one receives each policy edit, p99 under 2 s', async () => {
    const result = await runScale({ streams: 1_000, edits: 3, deployments: 20, processes: 2, tls: false }, (line) => process.stderr.write(`${line}\n`));
    expect(result.errors).toEqual([]);
    expect(result.perEdit).toHaveLength(3);
    for (const edit of result.perEdit) expect(edit.deliveries).toBe(1_000);
    expect(result.delivery.p99).toBeLessThan(2_000);
    expect(result.delivery.max).toBeGreaterThan(0);
    // Each edit reached each stream exactly once (plus the initial snapshots), and was ACKed.
    expect(result.snapshotsSent).toBe(1_000 * 4);
    expect(result.acks).toBeGreaterThanOrEqual(1_000 * 4);
  });
});
