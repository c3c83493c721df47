import { defineConfig } from 'vitest/config';

// Two projects: fast pure unit tests beside the code, and integration tests that start real
// PostgreSQL clusters and the built sidecar. Integration tests run one file at a time: the
// machine has two cores and each file owns its own PostgreSQL cluster.
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
    ],
  },
});
