import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { CATALOG_QUERY, columnByOid, parseCatalogSnapshot } from '../src/sql/index.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * Catalog awareness: the sidecar resolves unqualified names with the session's own search_path
 * and expands `*` with a catalog snapshot read on the session's connection, refreshed after DDL.
 */

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: catalog }
spec:
  guardrails:
    - name: shop-orders-read-only
      when: 'query.kind == "write" && "shop.orders" in query.writeTables'
      action: deny
      message: shop.orders is read-only
    - name: no-secret-column
      when: 'query.kind == "read" && query.columns.exists(c, c == "shop.orders.secret" || c == "shop.orders.token")'
      action: deny
      message: secret columns are not for you
`;

let db: PgCluster;
let sidecar: RunningSidecar;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  await db.sql(
    `create schema shop;
     create table shop.orders (id int primary key, total int, secret text);
     create table public.orders (id int primary key, total int);
     insert into shop.orders values (1, 10, 's1'); insert into public.orders values (1, 10);`,
    { database: 'app', user: 'app' },
  );
  const dir = mkdtempSync(join(tmpdir(), 'dbward-catalog-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), args: ['--policy', join(dir, 'policy.yaml'), '--log-level', 'debug'] });
});

afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function outcome(c: pg.Client, sql: string): Promise<string> {
  try {
    await c.query(sql);
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('catalog awareness', () => {
  it('resolves unqualified names with the session\u2019s search_path, as it changes', async () => {
    const c = await connect();
    expect(await outcome(c, 'update orders set total = 11 where id = 1')).toBe('ok'); // public.orders
    expect(await outcome(c, 'update shop.orders set total = 11 where id = 1')).toMatch(/^dbward: denied by shop-orders-read-only/);
    await c.query('set search_path = shop, public');
    expect(await outcome(c, 'update orders set total = 12 where id = 1')).toMatch(/^dbward: denied by shop-orders-read-only/);
    await c.query('reset search_path');
    expect(await outcome(c, 'update orders set total = 13 where id = 1')).toBe('ok');
    await c.end();
    expect(await db.sql('select total from shop.orders', { database: 'app' })).toBe('10');
  });

  it('expands * with the catalog, so column rules see every column read', async () => {
    const c = await connect();
    expect(await outcome(c, 'select id, total from shop.orders')).toBe('ok');
    expect(await outcome(c, 'select * from shop.orders')).toMatch(/^dbward: denied by no-secret-column/);
    expect(await outcome(c, 'select o.* from shop.orders o')).toMatch(/^dbward: denied by no-secret-column/);
    await c.end();
  });

  it('refreshes the catalog after DDL, without reconnecting', async () => {
    await db.sql('alter table shop.orders drop column secret', { database: 'app', user: 'app' });
    const c = await connect(); // a new session may still use the shared snapshot; DDL through the sidecar invalidates it
    await c.query('alter table shop.orders add column token text');
    expect(await outcome(c, 'select * from shop.orders')).toMatch(/^dbward: denied by no-secret-column/);
    await c.query('alter table shop.orders drop column token');
    expect(await outcome(c, 'select * from shop.orders')).toBe('ok');
    await c.end();
    expect(sidecar.logs().some((l) => l.msg === 'catalog loaded')).toBe(true);
  });
});

describe('catalog snapshot and RowDescription', () => {
  it('maps a result column\u2019s table OID and attribute number back to its source column, aliases undone', async () => {
    await db.sql('create table public.people (id int, full_name text, email text)', { database: 'app', user: 'app' });
    const snapshot = parseCatalogSnapshot(await db.sql(CATALOG_QUERY, { database: 'app', user: 'app' }));
    // What a RowDescription carries for `select email as e from people p`: the table OID and attnum.
    const c = new pg.Client({ host: db.host, port: db.port, user: 'app', database: 'app' });
    await c.connect();
    const result = await c.query('select p.email as e, p.id as n, 1 as one from people p');
    await c.end();
    const [e, n, one] = result.fields;
    expect(columnByOid(snapshot, e!.tableID, e!.columnID)).toMatchObject({ table: 'public.people', column: { name: 'email', type: 'text' } });
    expect(columnByOid(snapshot, n!.tableID, n!.columnID)).toMatchObject({ table: 'public.people', column: { name: 'id', type: 'integer' } });
    expect(one!.tableID).toBe(0);
    expect(columnByOid(snapshot, one!.tableID, one!.columnID)).toBeUndefined();
  });
});
