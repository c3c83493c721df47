import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

/**
 * Deterministic transcripts of client sessions: what a client observes (rows, command tags, row
 * counts, errors with SQLSTATE and every field, notices, notifications, parameter changes, COPY
 * content hashes), free of values that legitimately differ between two runs (process ids, ports,
 * table OIDs, timings). The same scenario is run against PostgreSQL directly and through the
 * sidecar, and the transcripts must be equal.
 */

export interface Step {
  step: string;
  [key: string]: unknown;
}

export type Transcript = Step[];

/** Every field of an ErrorResponse / NoticeResponse that node-postgres exposes. */
const ERROR_FIELDS = [
  'severity',
  'code',
  'message',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const;

/** An error or notice as its fields (only those present); a non-server error as its name and message. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (error instanceof pg.DatabaseError || isNotice(error)) {
    const source = error as unknown as Record<string, unknown>;
    const fields: Record<string, unknown> = {};
    for (const key of ERROR_FIELDS) if (source[key] !== undefined) fields[key] = source[key];
    return fields;
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { thrown: String(error) };
}

function isNotice(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { name?: unknown }).name === 'notice';
}

/** A query result without its table OIDs (they change whenever a fixture is recreated). */
export function resultStep(step: string, result: pg.QueryResult | pg.QueryArrayResult): Step {
  return {
    step,
    command: result.command,
    rowCount: result.rowCount,
    fields: result.fields.map((f) => ({
      name: f.name,
      columnID: f.columnID,
      dataTypeID: f.dataTypeID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: f.format,
    })),
    rows: result.rows,
  };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Runs `fn`, recording its result or its error under `step`. */
async function attempt(t: Transcript, step: string, fn: () => Promise<pg.QueryResult | pg.QueryArrayResult>): Promise<void> {
  try {
    t.push(resultStep(step, await fn()));
  } catch (error) {
    t.push({ step, error: errorFields(error) });
  }
}

function processIdOf(client: pg.Client): number | null {
  return (client as unknown as { processID: number | null }).processID;
}

/** node-postgres's cancel API: `other.cancel(client, query)` opens a connection and sends CancelRequest. */
interface CancellingClient {
  cancel(client: pg.Client, query: pg.Query): void;
}

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Fixture tables, recreated (as the app role) before every run so that all runs start alike. */
export const NODE_FIXTURES = `
drop table if exists compat_items, compat_copy;
create table compat_items (id int primary key, name text not null);
create table compat_copy (id int, name text, note text);
`;

/** Facts measured outside the transcript (they vary between runs), asserted by the tests. */
export interface RunFacts {
  cancelMs: number;
  copyInSha: string;
}

const UNICODE = 'héllo wörld ✓ 日本語 🐘';
const BYTES = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
const COPY_ROWS = 20_000;

function copyInput(): Buffer {
  const lines: string[] = [];
  for (let i = 1; i <= COPY_ROWS; i++) lines.push(`${i}\tname ${i} ✓\t${i % 7 === 0 ? '\\N' : `note\\t${i % 13}`}\n`);
  return Buffer.from(lines.join(''));
}

async function streamToBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The node-postgres scenario: two connections (A and B) of the app role to `config`, a third
 * client only for the CancelRequest (`cancelConfig`, plaintext like libpq's cancel).
 */
export async function nodeTranscript(config: pg.ClientConfig): Promise<{ transcript: Transcript; facts: RunFacts }> {
  const t: Transcript = [];
  const facts: RunFacts = { cancelMs: -1, copyInSha: '' };
  const a = new pg.Client(config);
  const b = new pg.Client(config);
  let connected = false;
  const startupParameters: Record<string, string> = {};
  a.connection.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) => {
    if (connected) t.push({ step: 'parameter-status', name: msg.parameterName, value: msg.parameterValue });
    else startupParameters[msg.parameterName] = msg.parameterValue;
  });
  a.on('notice', (notice) => t.push({ step: 'notice', ...errorFields(notice) }));
  const notifications: Step[] = [];
  a.on('notification', (n) =>
    notifications.push({
      step: 'notification',
      channel: n.channel,
      payload: n.payload,
      fromSelf: n.processId === processIdOf(a),
      fromOther: n.processId === processIdOf(b),
    }),
  );
  a.on('error', (error) => t.push({ step: 'async-error A', error: errorFields(error) }));
  b.on('error', (error) => t.push({ step: 'async-error B', error: errorFields(error) }));
  try {
    await a.connect();
    await b.connect();
    connected = true;
    t.push({ step: 'startup parameters', parameters: Object.fromEntries(Object.entries(startupParameters).sort()) });
    const keyA = { processId: processIdOf(a), secret: (a as unknown as { secretKey: number | null }).secretKey };
    t.push({ step: 'backend key present', present: typeof keyA.processId === 'number' && typeof keyA.secret === 'number' });
    {
      const pid = await a.query<{ pid: number }>('select pg_backend_pid() as pid');
      t.push({ step: 'pg_backend_pid() is the BackendKeyData process id', same: pid.rows[0]?.pid === keyA.processId });
    }
    await attempt(t, 'who am i', () => a.query("select current_user, session_user, current_database(), current_setting('server_encoding') as enc"));

    // ---- simple query protocol, several statements in one Query -------------------------------
    try {
      const results: unknown = await a.query(
        "select 1 as a, 'x'::text as b; select g from generate_series(2, 4) g; insert into compat_items values (1, 'one'), (2, 'two'); update compat_items set name = name || '!' where id = 2; select 1 as \"ünï ✓\"",
      );
      (results as pg.QueryResult[]).forEach((r, i) => t.push(resultStep(`multi-statement #${i}`, r)));
    } catch (error) {
      t.push({ step: 'multi-statement', error: errorFields(error) });
    }
    await attempt(t, 'empty query', () => a.query(''));

    // ---- extended query protocol ---------------------------------------------------------------
    const extended = 'select $1::int as i, $2::text as t, $3::bytea as b, $4::text as n, $5::numeric as num, length($2) as len, octet_length($3) as blen';
    const values = [42, UNICODE, BYTES, null, '12345.6789'];
    await attempt(t, 'extended text results', () => a.query(extended, values));
    await attempt(t, 'extended binary results', () => a.query({ text: extended, values, binary: true } as pg.QueryConfig));
    await attempt(t, 'extended array rows', () => a.query({ text: 'select $1::int[] as arr, $2::jsonb as j', values: [[1, 2, 3], { k: UNICODE }], rowMode: 'array' }));
    for (const n of [1, 2, 3]) {
      await attempt(t, `named prepared #${n}`, () => a.query({ name: 'compat_double', text: 'select $1::int * 2 as doubled, $2::text as label', values: [n, `n${n} ✓`] }));
    }
    await attempt(t, 'insert returning', () => a.query('insert into compat_items values ($1, $2), ($3, $4) returning *', [3, 'three', 4, UNICODE]));

    // ---- errors ----------------------------------------------------------------------------------
    await attempt(t, 'syntax error', () => a.query('selec 1'));
    await attempt(t, 'division by zero', () => a.query('select 1/0'));
    await attempt(t, 'unique violation', () => a.query("insert into compat_items values (1, 'again')"));
    await attempt(t, 'not null violation', () => a.query('insert into compat_items values (99, null)'));
    await attempt(t, 'bad parameter (extended)', () => a.query('select $1::int', ['abc']));
    await attempt(t, 'error in named prepare', () => a.query({ name: 'compat_bad', text: 'select nope from compat_items', values: [] }));
    await attempt(t, 'still usable', () => a.query("select 'still alive' as s"));
    await attempt(t, 'tx begin', () => a.query('begin'));
    await attempt(t, 'tx insert', () => a.query("insert into compat_items values (50, 'fifty')"));
    await attempt(t, 'tx error', () => a.query('select 1/0'));
    await attempt(t, 'tx after error', () => a.query('select 1'));
    await attempt(t, 'tx after error (extended)', () => a.query('select $1::int', [1]));
    await attempt(t, 'tx rollback', () => a.query('rollback'));
    await attempt(t, 'rolled back', () => a.query('select count(*)::int as n from compat_items where id = 50'));

    // ---- transactions across connections ---------------------------------------------------------
    await attempt(t, 'visibility begin', () => a.query('begin'));
    await attempt(t, 'visibility insert', () => a.query("insert into compat_items values (10, 'ten')"));
    await attempt(t, 'visibility before commit (B)', () => b.query('select count(*)::int as n from compat_items where id = 10'));
    await attempt(t, 'visibility commit', () => a.query('commit'));
    await attempt(t, 'visibility after commit (B)', () => b.query('select count(*)::int as n from compat_items where id = 10'));

    // ---- notices -----------------------------------------------------------------------------------
    await attempt(t, 'raise notice', () =>
      a.query("do $$ begin raise notice 'hello % ✓', 42; raise warning 'careful' using detail = 'the detail', hint = 'the hint', errcode = '01000'; end $$"),
    );
    await attempt(t, 'drop if exists notice', () => a.query('drop table if exists compat_missing'));
    await attempt(t, 'raise exception', () => a.query("do $$ begin raise exception 'custom failure' using errcode = 'P0001', detail = 'd', hint = 'h'; end $$"));

    // ---- a large result ------------------------------------------------------------------------------
    {
      const result = await a.query<unknown[]>({ text: 'select g, md5(g::text) as h, g::float8 / 7 as f from generate_series(1, 100000) g', rowMode: 'array' });
      const hash = createHash('sha256');
      for (const row of result.rows) hash.update(JSON.stringify(row)).update('\n');
      t.push({ step: '100k rows', command: result.command, rowCount: result.rowCount, rows: result.rows.length, sha256: hash.digest('hex') });
    }

    // ---- pg-cursor: Execute with a row limit, PortalSuspended ------------------------------------------
    {
      const cursor = a.query(new Cursor<{ g: number; s: string }>("select g, repeat('x', g % 17) as s from generate_series(1, 2500) g"));
      const batches: number[] = [];
      const hash = createHash('sha256');
      for (;;) {
        const rows = await cursor.read(100);
        batches.push(rows.length);
        for (const row of rows) hash.update(`${row.g}:${row.s}\n`);
        if (rows.length === 0) break;
      }
      await cursor.close();
      t.push({ step: 'cursor', batches, sha256: hash.digest('hex') });
      const bad = a.query(new Cursor('select 1/(g - 150) from generate_series(1, 300) g'));
      const seen: unknown[] = [];
      try {
        for (;;) {
          const rows = await bad.read(100);
          seen.push(rows.length);
          if (rows.length === 0) break;
        }
      } catch (error) {
        seen.push(errorFields(error));
      }
      await bad.close().catch(() => undefined);
      t.push({ step: 'cursor error mid-way', seen });
      await attempt(t, 'after cursor', () => a.query('select count(*)::int as n from compat_items'));
    }

    // ---- COPY -----------------------------------------------------------------------------------------
    {
      const input = copyInput();
      facts.copyInSha = sha256(input);
      const ingest = a.query(copyFrom('copy compat_copy from stdin'));
      await pipeline(Readable.from([input.subarray(0, 100_003), input.subarray(100_003)]), ingest);
      t.push({ step: 'copy from stdin', rowCount: ingest.rowCount });
      const text = await streamToBuffer(a.query(copyTo('copy (select * from compat_copy order by id) to stdout')));
      t.push({ step: 'copy to stdout', bytes: text.length, sha256: sha256(text), sameAsInput: sha256(text) === facts.copyInSha });
      const binary = await streamToBuffer(a.query(copyTo('copy (select * from compat_copy order by id) to stdout (format binary)')));
      t.push({ step: 'copy to stdout binary', bytes: binary.length, sha256: sha256(binary) });
      const csv = await streamToBuffer(a.query(copyTo("copy (select id, name from compat_copy where id <= 3 order by id) to stdout (format csv, header)")));
      t.push({ step: 'copy csv', text: csv.toString('utf8') });
      const broken = a.query(copyFrom('copy compat_copy from stdin'));
      try {
        await pipeline(Readable.from([Buffer.from('20001\tok\tfine\nnot-a-number\tx\ty\n')]), broken);
        t.push({ step: 'copy bad row', error: null });
      } catch (error) {
        t.push({ step: 'copy bad row', error: errorFields(error) });
      }
      await attempt(t, 'after bad copy', () => a.query('select count(*)::int as n, sum(id)::bigint as s from compat_copy'));
    }

    // ---- LISTEN / NOTIFY --------------------------------------------------------------------------------
    {
      await attempt(t, 'listen', () => a.query('listen compat_ch'));
      await attempt(t, 'notify (B)', () => b.query(`notify compat_ch, 'from B ${UNICODE}'`));
      await attempt(t, 'pg_notify (B)', () => b.query("select pg_notify('compat_ch', 'second') as r"));
      await waitUntil('two notifications', () => notifications.length >= 2);
      await attempt(t, 'notify self', () => a.query("notify compat_ch, 'self'"));
      await waitUntil('three notifications', () => notifications.length >= 3);
      await attempt(t, 'unlisten', () => a.query('unlisten compat_ch'));
      await attempt(t, 'notify after unlisten (B)', () => b.query("notify compat_ch, 'unheard'"));
      await attempt(t, 'round trip', () => a.query('select 1 as n'));
      t.push(...notifications);
    }

    // ---- cancel ---------------------------------------------------------------------------------------------
    {
      const sleeper = new pg.Query('select pg_sleep(30)');
      const outcome = new Promise<Step>((resolve) => {
        sleeper.on('error', (error) => resolve({ step: 'cancelled query', error: errorFields(error) }));
        sleeper.on('end', () => resolve({ step: 'cancelled query', error: null }));
      });
      a.query(sleeper);
      await waitUntil('pg_sleep to run', async () => {
        const r = await b.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'");
        return (r.rows[0] as { n: number }).n === 1;
      });
      const canceller = new pg.Client({ host: config.host, port: config.port, ssl: false }) as pg.Client & CancellingClient;
      canceller.connection.on('error', () => undefined);
      const started = Date.now();
      canceller.cancel(a, sleeper);
      t.push(await outcome);
      facts.cancelMs = Date.now() - started;
      // PostgreSQL delivers a CancelRequest's SIGINT twice (to the backend and to its process
      // group). When the second arrives after the first ended the statement, it stays pending
      // and cancels the next statement that checks for interrupts. Let it land (unrecorded).
      await new Promise((resolve) => setTimeout(resolve, 200));
      await a.query('select pg_sleep(0.2)').catch(() => undefined);
      await attempt(t, 'after cancel', () => a.query("select 'after cancel' as s"));

      // pg_cancel_backend() from another session, given the BackendKeyData process id.
      const second = new pg.Query('select pg_sleep(30)');
      const secondOutcome = new Promise<Step>((resolve) => {
        second.on('error', (error) => resolve({ step: 'pg_cancel_backend(processID)', error: errorFields(error) }));
        second.on('end', () => resolve({ step: 'pg_cancel_backend(processID)', error: null }));
      });
      a.query(second);
      let settled: Step | null = null;
      void secondOutcome.then((step) => (settled = step));
      await waitUntil('pg_sleep to run again', async () => {
        if (settled !== null) throw new Error(`the second pg_sleep ended before it was cancelled: ${JSON.stringify(settled)}`);
        const r = await b.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'");
        return (r.rows[0] as { n: number }).n === 1;
      }).catch(async (error: unknown) => {
        const r = await b.query('select pid, state, query, wait_event from pg_stat_activity where pid = $1', [processIdOf(a)]);
        throw new Error(`${String(error)}; A is ${JSON.stringify(r.rows)}`);
      });
      await attempt(t, 'pg_cancel_backend (B)', () => b.query('select pg_cancel_backend($1) as cancelled', [processIdOf(a)]));
      t.push(await secondOutcome);
    }

    // ---- ParameterStatus ---------------------------------------------------------------------------------------
    await attempt(t, 'set application_name', () => a.query(`set application_name = 'compat ${UNICODE}'`));
    await attempt(t, 'show application_name', () => a.query('show application_name'));
    await attempt(t, 'set timezone', () => a.query("set timezone = 'Europe/Paris'"));
    await attempt(t, 'timestamptz', () => a.query("select '2024-06-01 12:00:00+00'::timestamptz::text as ts"));
    await attempt(t, 'set datestyle', () => a.query("set datestyle = 'SQL, DMY'"));
    await attempt(t, 'date', () => a.query("select '2024-06-01'::date::text as d"));
    await attempt(t, 'reset all', () => a.query('reset all'));
  } finally {
    await a.end().catch(() => undefined);
    await b.end().catch(() => undefined);
  }
  return { transcript: t, facts };
}

/** The SQLSTATEs present in a transcript's errors. */
export function sqlstates(t: Transcript): string[] {
  const codes: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null) {
      const record = v as Record<string, unknown>;
      if (typeof record['code'] === 'string' && typeof record['severity'] === 'string') codes.push(record['code']);
      Object.values(record).forEach(visit);
    }
  };
  visit(t);
  return codes;
}
