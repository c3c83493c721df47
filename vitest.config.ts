import { defineConfig } from 'vitest/config';

// Two projects: fast pure unit tests beside the code, and integration tests that start real
// PostgreSQL clusters and the built sidecar. Integration tests run one file at a time: the
// machine has two cores and each file owns its own PostgreSQL cluster.
const NODE_IO_SUITES = [
  'sidecar/test/compat-node.test.ts',
  'sidecar/test/compat-pipeline.test.ts',
  'sidecar/test/compat-psql-pgbench.test.ts',
  'sidecar/test/backpressure.test.ts',
  'sidecar/test/lifecycle.test.ts',
  'sidecar/test/masking.test.ts',
  'sidecar/test/smoke.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['sidecar/src/**/*.test.ts', 'operator/src/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['sidecar/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'e2e/**/*.test.ts'],
          exclude: ['e2e/tools/**', '**/node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
      {
        // The sidecar uses the C addon for plain-TCP sessions by default (ADR 0022); these suites
        // run again with Node sockets, the fallback where the addon is not built or not wanted.
        test: {
          name: 'integration-node-io',
          include: NODE_IO_SUITES,
          env: { DBWARD_NATIVE_IO: '0' },
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          maxWorkers: 1,
          // After the other projects, not beside them: two PostgreSQL clusters at once on two cores.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
