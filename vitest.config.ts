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

const NO_IO_URING_SUITES = [
  'sidecar/test/compat-node.test.ts',
  'sidecar/test/compat-pipeline.test.ts',
  'sidecar/test/backpressure.test.ts',
  'sidecar/test/lifecycle.test.ts',
];

/** A project that reruns `suites` with `env` set, after the other projects. */
function rerun(name: string, suites: string[], env: Record<string, string>) {
  return {
    test: {
      name,
      include: suites,
      env,
      testTimeout: 120_000,
      hookTimeout: 120_000,
      fileParallelism: false,
      maxWorkers: 1,
      // After the other projects, not beside them: two PostgreSQL clusters at once on two cores.
      sequence: { groupOrder: 1 },
    },
  };
}

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
      // The sidecar uses the C addon for plain-TCP sessions by default (ADR 0022), batching their
      // fast-mode reads and writes into io_uring where the kernel allows it (ADR 0023). These
      // suites run again on the fallbacks: Node sockets (the addon not built or not wanted), and
      // the addon with one read()/write() per operation (io_uring denied, e.g. by seccomp).
      rerun('integration-node-io', NODE_IO_SUITES, { DBWARD_NATIVE_IO: '0' }),
      rerun('integration-no-io-uring', NO_IO_URING_SUITES, { DBWARD_IO_URING: 'off' }),
    ],
  },
});
