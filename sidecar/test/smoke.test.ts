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
