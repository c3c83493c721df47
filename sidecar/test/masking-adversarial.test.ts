import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { bind, describe as describeMessage, execute, parse, query, sync } from '../src/wire/writers.js';
import { RawClient, type ReceivedFrame } from './support/raw-client.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * Issue 4's adversarial suite: queries written to get masked values out of the sidecar, each run
 * for an `ai-agent` identity in three ways (simple protocol; extended protocol with Describe and
 * text results, as node-postgres and psql's \bind do; extended protocol without Describe and
 * binary results). Every one must be masked or denied, and the check is on every byte the client
 * receives: no raw fixture value (nor the telling part of one) may appear anywhere in the stream,
 * rows, errors, notices, notifications or COPY data alike.
 */

interface Customer {
  id: number;
  name: string;
  email: string;
  phone: string;
  ssn: string;
  card: string;
  iban: string;
  dob: string;
  ip: string;
  apiKey: string;
  notes: string;
}

const CUSTOMERS: Customer[] = [
  {
    id: 1,
    name: 'Ada Lovelace',
    email: 'ada.lovelace@analytical.example',
    phone: '+44 20 7946 0018',
    ssn: '123-45-6789',
    card: '4111111111111111',
    iban: 'GB82WEST12345698765432',
    dob: '1815-12-10',
    ip: '203.0.113.7',
    apiKey: 'sk_live_4eC39HqLyjWDarjtT1zdp7dc',
    notes: 'prefers contact via backup address ada.private@mailbox.example',
  },
  {
    id: 2,
    name: 'Grace Hopper',
    email: 'grace.hopper@cobol.example',
    phone: '+1 202 555 0143',
    ssn: '234-56-7890',
    card: '5500005555555559',
    iban: 'DE89370400440532013000',
    dob: '1906-12-09',
    ip: '198.51.100.23',
    apiKey: 'sk_live_9fG72KpMzxQEbskuU2aeq8ed',
    notes: 'escalations go to grace.escalate@navy.example',
  },
  {
    id: 3,
    name: 'Alan Turing',
    email: 'alan.turing@bletchley.example',
    phone: '+44 161 496 0721',
    ssn: '345-67-8901',
    card: '340000000000009',
    iban: 'FR1420041010050500013M02606',
    dob: '1912-06-23',
    ip: '192.0.2.144',
    apiKey: 'sk_live_2hJ83LqNayRFctlvV3bfr9fe',
    notes: 'call only after 5pm, alt mail turing.enigma@hut8.example',
  },
];

/** Raw values as stored (text formats show them as they are). */
const RAW = CUSTOMERS.flatMap((c) => [c.name, c.phone, c.ssn, c.card, c.iban, c.ip, c.apiKey, c.notes]);
/** Every raw value that must never reach the agent, and parts of values that would betray them. */
const SECRETS = [
  ...RAW,
  ...CUSTOMERS.flatMap((c) => [c.name.split(' ')[1]!, c.email.split('@')[0]!, c.phone.replace(/\D/g, ''), c.ssn.replace(/-/g, ''), c.notes.match(/[\w.]+@/)![0]]),
];

const POLICY = `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: adversarial }
spec:
  classification:
    columns:
      - { table: public.customers, column: notes, classes: [free_text_pii] }
  masking:
    rules:
      - name: emails-keep-domain
        when: '"email" in column.classes'
        action: mask
        mask: email
      - name: phones-partial
        when: '"phone" in column.classes'
        action: mask
        mask: partial
`;

const SETUP = `
create table customers (
  id int primary key, full_name text, email text, phone text, ssn text, card_number text,
  iban text, date_of_birth date, ip_address inet, api_key text, notes text);
insert into customers values ${CUSTOMERS.map(
  (c) => `(${c.id}, '${c.name}', '${c.email}', '${c.phone}', '${c.ssn}', '${c.card}', '${c.iban}', '${c.dob}', '${c.ip}', '${c.apiKey}', '${c.notes}')`,
).join(',\n')};
create unique index customers_email on customers (email);
create table orders (id int primary key, customer_id int references customers(id), total int, status text);
insert into orders values (10, 1, 500, 'paid'), (11, 2, 700, 'open'), (12, 3, 900, 'paid');
create view v_customers as select * from customers;
create view v_renamed as select id, ssn as x, email as y, full_name as who from customers;
create view v_nested as select x as z, who from v_renamed;
create view v_expr as select id, lower(email) || '/' || phone as contact from customers;
create materialized view mv_people as select id, full_name as who, ssn as tax_id from customers;
create function get_ssns() returns setof text language sql stable as 'select ssn from customers';
create function person(i int) returns text language sql stable as $$ select full_name from customers where id = i $$;
create function opaque_names() returns setof text language plpgsql stable as $$ begin return query select full_name from customers; end $$;
create function has_ssn(x text) returns boolean language sql stable as 'select exists (select 1 from customers where ssn = x)';
create function contacts() returns table (who text, mail text) language sql stable as 'select full_name, email from customers';
create table notes_copy (id int, body text);
`;

/** How a query may end: rows with the masked values, a dbward refusal, or another server error. */
type Outcome = 'mask' | 'deny' | 'error';

interface Case {
  /** One statement, or several run in order on one connection. */
  sql: string | string[];
  /** Accepted outcomes: of the last statement, or `deny` when any step was denied (default: masked or denied). */
  outcomes?: Outcome[];
  /** Simple protocol only (multi-statement strings, COPY, session state that the extended path would change). */
  simpleOnly?: boolean;
}

const CASES: Case[] = [
  // Aliases and plain projections
  { sql: 'select full_name, email, phone, ssn, card_number, iban, ip_address, api_key, notes from customers', outcomes: ['mask'] },
  { sql: 'select email as e, ssn as not_a_secret, card_number as n from customers', outcomes: ['mask'] },
  { sql: 'select * from customers', outcomes: ['mask'] },
  { sql: 'select c.* from customers c', outcomes: ['mask'] },
  { sql: 'table customers', outcomes: ['mask'] },
  { sql: 'select (c).ssn, (c).full_name from customers c', outcomes: ['mask'] },
  // Expressions
  { sql: 'select lower(email), upper(full_name), initcap(notes) from customers', outcomes: ['mask'] },
  { sql: "select full_name || ' <' || email || '>' from customers", outcomes: ['mask'] },
  { sql: "select concat(full_name, ':', ssn), concat_ws('|', phone, iban) from customers", outcomes: ['mask'] },
  { sql: "select format('%s %s', full_name, api_key) from customers", outcomes: ['mask'] },
  { sql: 'select substr(ssn, 1, 11), substring(card_number from 1 for 16), left(iban, 30), right(phone, 20) from customers', outcomes: ['mask'] },
  { sql: "select replace(ssn, '-', ''), translate(phone, ' ', '.'), reverse(reverse(full_name)) from customers", outcomes: ['mask'] },
  { sql: "select regexp_replace(email, '@.*', ''), split_part(email, '@', 1) from customers", outcomes: ['mask'] },
  { sql: "select overlay(ssn placing 'x' from 1 for 0), btrim(' ' || api_key || ' ') from customers", outcomes: ['mask'] },
  { sql: 'select coalesce(null, ssn), nullif(full_name, \'\'), greatest(email, \'\') from customers', outcomes: ['mask'] },
  { sql: "select case when id > 0 then ssn else 'x' end, case when ssn like '1%' then full_name end from customers", outcomes: ['mask'] },
  { sql: 'select md5(ssn), encode(ssn::bytea, \'hex\'), encode(convert_to(full_name, \'UTF8\'), \'base64\') from customers', outcomes: ['mask'] },
  { sql: "select string_to_array(ssn, '-'), regexp_split_to_array(full_name, ' ') from customers", outcomes: ['mask'] },
  { sql: "select unnest(array[ssn, email, full_name]) from customers", outcomes: ['mask'] },
  { sql: "select regexp_matches(notes, '[\\w.]+@[\\w.]+') from customers", outcomes: ['mask'] },
  // Casts and type games
  { sql: 'select ssn::varchar(20), full_name::char(30), email::name, ip_address::text, host(ip_address) from customers', outcomes: ['mask'] },
  { sql: 'select cast(card_number as bytea), ssn::bytea from customers', outcomes: ['mask'] },
  { sql: 'select ip_address, date_of_birth from customers', outcomes: ['mask'] },
  { sql: 'select to_json(email), to_jsonb(full_name), array[ssn] from customers', outcomes: ['mask'] },
  // Whole rows
  { sql: 'select c from customers c', outcomes: ['mask'] },
  { sql: 'select customers from customers', outcomes: ['mask'] },
  { sql: 'select c::text from customers c', outcomes: ['mask'] },
  { sql: 'select row_to_json(c), to_jsonb(c) from customers c', outcomes: ['mask'] },
  { sql: 'select row(full_name, ssn), (select row(c.email)) from customers c', outcomes: ['mask'] },
  { sql: "select json_build_object('n', full_name, 's', ssn), jsonb_build_array(email, phone) from customers", outcomes: ['mask'] },
  { sql: "select format('%s', c) from customers c", outcomes: ['mask'] },
  // Aggregates and windows
  { sql: "select string_agg(ssn, ','), array_agg(email), json_agg(full_name) from customers", outcomes: ['mask'] },
  { sql: 'select json_agg(c), jsonb_object_agg(id, card_number) from customers c', outcomes: ['mask'] },
  { sql: 'select max(ssn), min(full_name), max(api_key) from customers', outcomes: ['mask'] },
  { sql: "select array_to_string(array_agg(iban), ';') from customers", outcomes: ['mask'] },
  { sql: 'select first_value(ssn) over (), lag(email) over (), nth_value(full_name, 1) over () from customers', outcomes: ['mask'] },
  // Subqueries, CTEs, set operations, LATERAL, VALUES
  { sql: 'select x.s from (select ssn as s from customers) x', outcomes: ['mask'] },
  { sql: 'select (select ssn from customers where id = 1) as s', outcomes: ['mask'] },
  { sql: 'select (select string_agg(full_name, \',\') from customers) from orders', outcomes: ['mask'] },
  { sql: 'with t as (select phone as p, email as e from customers) select p, e from t', outcomes: ['mask'] },
  { sql: 'with a as (select ssn as v from customers), b as (select v as w from a) select w from b', outcomes: ['mask'] },
  { sql: 'with recursive r(v, n) as (select ssn, 1 from customers union all select v, n + 1 from r where n < 2) select v from r', outcomes: ['mask'] },
  { sql: 'select email from customers union all select full_name from customers', outcomes: ['mask'] },
  { sql: 'select id::text from orders union all select ssn from customers', outcomes: ['mask'] },
  { sql: "select status from orders union select api_key from customers", outcomes: ['mask'] },
  { sql: 'select ssn from customers intersect select ssn from customers', outcomes: ['mask', 'deny'] },
  { sql: 'select l.x from customers c, lateral (select c.ssn as x) l', outcomes: ['mask'] },
  { sql: 'select v.x from (values ((select full_name from customers where id = 2))) v(x)', outcomes: ['mask'] },
  { sql: 'select * from unnest(array(select card_number from customers)) as u(n)', outcomes: ['mask'] },
  { sql: 'select c.email, o.total from customers c join orders o on o.customer_id = c.id', outcomes: ['mask'] },
  { sql: 'select * from orders o natural join (select id as customer_id, full_name from customers) c', outcomes: ['mask'] },
  // Views, materialized views, functions
  { sql: 'select * from v_customers', outcomes: ['mask'] },
  { sql: 'select x, y, who from v_renamed', outcomes: ['mask'] },
  { sql: 'select z, who from v_nested', outcomes: ['mask'] },
  { sql: 'select contact from v_expr', outcomes: ['mask'] },
  { sql: 'select who, tax_id from mv_people', outcomes: ['mask'] },
  { sql: 'select get_ssns()', outcomes: ['mask'] },
  { sql: 'select * from get_ssns() as s', outcomes: ['mask'] },
  { sql: 'select person(1), person(2)', outcomes: ['mask'] },
  { sql: 'select opaque_names()', outcomes: ['deny'] },
  { sql: "select has_ssn('123-45-6789')", outcomes: ['deny'] },
  { sql: 'select * from contacts()', outcomes: ['mask'] },
  { sql: 'select c.who, upper(c.mail) from contacts() c', outcomes: ['mask'] },
  { sql: "select query_to_xml('select full_name, ssn from customers', true, false, '')", outcomes: ['deny'] },
  { sql: "select table_to_xml('customers', true, false, '')", outcomes: ['deny'] },
  { sql: "select * from ts_stat('select to_tsvector(''simple'', full_name) from customers')", outcomes: ['deny'] },
  // Writes that return or move values
  { sql: 'update customers set id = id where id = 1 returning ssn, full_name', outcomes: ['mask', 'deny'] },
  { sql: 'insert into customers (id, full_name, ssn) select 99, full_name, ssn from customers where id = 1 on conflict (id) do update set id = excluded.id returning full_name, ssn', outcomes: ['mask', 'deny'] },
  { sql: 'insert into notes_copy select id, full_name || ssn from customers', outcomes: ['deny'] },
  { sql: 'create temp table stash as select ssn as x from customers', outcomes: ['deny'] },
  { sql: 'select ssn into temp stash2 from customers', outcomes: ['deny'] },
  // Session-level tricks
  { sql: ['declare cur cursor with hold for select lower(ssn), full_name from customers', 'fetch all from cur'], outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: ['prepare p as select upper(full_name), ssn || \'\' from customers', 'execute p'], outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: ["select set_config('dbward.x', ssn, false) from customers where id = 1", "select current_setting('dbward.x')"], outcomes: ['mask', 'deny'] },
  { sql: ['listen leak', "select pg_notify('leak', full_name) from customers"], outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: "do $$ begin raise notice '%', (select string_agg(ssn, ',') from customers); end $$", outcomes: ['deny'] },
  { sql: "do $$ begin raise exception '%', (select full_name from customers limit 1); end $$", outcomes: ['deny'] },
  // COPY, every format
  { sql: 'copy customers to stdout', outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: 'copy customers (full_name, ssn) to stdout with (format csv, header)', outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: 'copy (select lower(email), ssn from customers) to stdout', outcomes: ['mask', 'deny'], simpleOnly: true },
  { sql: 'copy (select * from v_renamed) to stdout with (format binary)', outcomes: ['mask', 'deny'], simpleOnly: true },
  // Errors and notices that echo values
  { sql: 'select ssn::int from customers', outcomes: ['error'] },
  { sql: 'select full_name::numeric from customers', outcomes: ['error'] },
  { sql: 'select email::jsonb from customers', outcomes: ['error'] },
  { sql: "select to_date(full_name, 'YYYY-MM-DD') from customers", outcomes: ['error'] },
  { sql: "insert into customers (id, email) values (98, 'ada.lovelace@analytical.example')", outcomes: ['error'] },
  { sql: 'select (ssn || \'x\')::uuid from customers', outcomes: ['error'] },
  { sql: 'select array[full_name]::int[] from customers', outcomes: ['error'] },
  // Predicate probing
  { sql: "select id from customers where ssn = '123-45-6789'", outcomes: ['deny'] },
  { sql: "select count(*) from customers where full_name like 'Ada%'", outcomes: ['deny'] },
  { sql: 'select id from customers order by ssn', outcomes: ['deny'] },
  { sql: 'select substr(card_number, 1, 1), count(*) from customers group by 1', outcomes: ['deny'] },
  { sql: "select exists (select 1 from customers where api_key like 'sk_live_4%')", outcomes: ['deny'] },
];

let db: PgCluster;
let agent: RunningSidecar;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust' });
  await db.sql(SETUP, { database: 'app', user: 'app' });
  const dir = mkdtempSync(join(tmpdir(), 'dbward-adversarial-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  const upstream = db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' });
  agent = await startSidecar({
    upstream,
    args: ['--policy', join(dir, 'policy.yaml'), '--identity', 'serviceAccount=agent', '--identity', 'labels.dbward.io/kind=ai-agent'],
    name: 'agent',
  });
});

afterAll(async () => {
  await agent?.stop();
  await db?.stop();
});

type Mode = 'simple' | 'extended-text' | 'extended-binary';

interface Observed {
  bytes: Buffer;
  /** Outcome of the last statement. */
  outcome: Outcome;
  sqlstate: string | undefined;
  rows: number;
}

function errorCode(frame: ReceivedFrame): string | undefined {
  let at = 5;
  while (at < frame.bytes.length && frame.bytes[at] !== 0) {
    const field = frame.bytes[at]!;
    const endOfValue = frame.bytes.indexOf(0, at + 1);
    if (field === 0x43) return frame.bytes.toString('utf8', at + 1, endOfValue);
    at = endOfValue + 1;
  }
  return undefined;
}

async function run(mode: Mode, statements: string[]): Promise<Observed> {
  const raw = await RawClient.login(agent.port, { user: 'app', database: 'app' });
  const all: Buffer[] = [];
  let last: ReceivedFrame[] = [];
  let denied = false;
  try {
    for (const sql of statements) {
      raw.frames.length = 0;
      if (mode === 'simple') raw.send(query(sql));
      else if (mode === 'extended-text') raw.send(Buffer.concat([parse('', sql), bind('', '', [], [], [0]), describeMessage('P', ''), execute('', 0), sync()]));
      else raw.send(Buffer.concat([parse('', sql), bind('', '', [], [], [1]), execute('', 0), sync()]));
      const done = await raw.waitFor((f) => f.code === 0x5a, 15_000);
      if (done === null) throw new Error(`connection closed during ${sql}`);
      last = [...raw.frames];
      denied ||= last.some((f) => f.code === 0x45 && errorCode(f) === '42501');
      all.push(...last.map((f) => f.bytes));
    }
  } finally {
    raw.close();
  }
  const error = last.find((f) => f.code === 0x45);
  const sqlstate = error === undefined ? undefined : errorCode(error);
  // A sequence is denied when any of its steps was (what follows then fails on its own).
  const outcome: Outcome = denied || sqlstate === '42501' ? 'deny' : error === undefined ? 'mask' : 'error';
  return { bytes: Buffer.concat(all), outcome, sqlstate, rows: last.filter((f) => f.code === 0x44 || f.code === 0x64).length };
}

function leaks(bytes: Buffer): string[] {
  return SECRETS.filter((secret) => bytes.includes(Buffer.from(secret)));
}

const statementsOf = (c: Case): string[] => (typeof c.sql === 'string' ? [c.sql] : c.sql);
const label = (c: Case): string => statementsOf(c).join(' ; ');

it('the suite has at least 60 evasion queries', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(60);
});

describe.each<Mode>(['simple', 'extended-text', 'extended-binary'])('%s', (mode) => {
  const cases = CASES.filter((c) => mode === 'simple' || (c.simpleOnly !== true && statementsOf(c).every((s) => !/^\s*(listen|copy)\b/i.test(s))));
  it.each(cases.map((c) => [label(c), c] as const))('%s', async (_label, c) => {
    const observed = await run(mode, statementsOf(c));
    expect(leaks(observed.bytes), `raw values in the stream (outcome ${observed.outcome} ${observed.sqlstate ?? ''})`).toEqual([]);
    expect(c.outcomes ?? ['mask', 'deny'], `outcome (SQLSTATE ${observed.sqlstate ?? 'none'})`).toContain(observed.outcome);
    if (observed.outcome === 'mask' && !/^(insert|update)/i.test(statementsOf(c).at(-1)!)) expect(observed.rows).toBeGreaterThan(0);
  });
});

describe('control: the same stream check sees the values without the sidecar', () => {
  it('direct to PostgreSQL, the first query leaks every kind of value', async () => {
    const raw = await RawClient.login(db.port, { user: 'app', database: 'app' });
    raw.send(query(statementsOf(CASES[0]!)[0]!));
    await raw.waitFor((f) => f.code === 0x5a, 10_000);
    raw.close();
    const bytes = Buffer.concat(raw.frames.map((f) => f.bytes));
    const found = leaks(bytes);
    for (const value of RAW) expect(found).toContain(value);
  });
});
