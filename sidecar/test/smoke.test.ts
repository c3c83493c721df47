import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

let db: PgCluster;
let sidecar: RunningSidecar;
beforeAll(async () => {
  db = await startPostgres({ auth: 'scram-sha-256' });
  sidecar = await startSidecar({ upstream: db.url({ password: null, sslmode: 'disable' }) });
});
afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

it('relays a query end to end (pass-through SCRAM)', async () => {
  const client = new pg.Client({ ...db.clientConfig(), host: sidecar.host, port: sidecar.port });
  await client.connect();
  const result = await client.query('select $1::int + 1 as n, current_user as u', [41]);
  expect(result.rows).toEqual([{ n: 42, u: 'app' }]);
  await client.end();
});

it('runs on the I/O its project asks for: the C addon by default, Node sockets with DBWARD_NATIVE_IO=0', () => {
  // The integration-node-io project (vitest.config.ts) runs this file again with DBWARD_NATIVE_IO=0.
  const expected = process.env['DBWARD_NATIVE_IO'] === '0' ? 'off (Node sockets)' : 'on (sessions with plain TCP on both legs)';
  expect(sidecar.logs().find((l) => typeof l.listen === 'string')?.nativeIo).toBe(expected);
});
