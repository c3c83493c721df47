import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type PgCluster } from '../../../e2e/harness/index.js';
import type { Target } from './compat.js';

/**
 * psql and pgbench scenarios for the compatibility tests: the same libpq programs, with the same
 * inputs, directly and through the sidecar.
 */

/** Fixture tables for the psql script (recreated as the app role before every run). */
export const PSQL_FIXTURES = `
drop table if exists compat_items, compat_copy;
create table compat_items (id int primary key, name text not null);
create table compat_copy (id int, name text, note text);
`;

/** The psql script: errors with SQLSTATEs (verbose), a failed transaction, notices, \gdesc, \d, COPY and \copy both ways. */
export function psqlScript(dir: string): string {
  return `\\set VERBOSITY verbose
\\set SHOW_CONTEXT always
\\pset pager off
select 1 as one, 'ünï ✓'::text as t, null::int as n;
select 1/0;
\\echo sqlstate :SQLSTATE last :LAST_ERROR_SQLSTATE error :ERROR
selec 2;
\\echo :LAST_ERROR_MESSAGE
insert into compat_items values (1, 'one'), (2, 'two');
\\echo rows :ROW_COUNT
insert into compat_items values (1, 'dup');
insert into compat_items values (9, null);
select '12x'::int;
begin;
insert into compat_items values (3, 'three');
select nope from compat_items;
select 1;
\\echo :SQLSTATE
rollback;
select count(*) from compat_items;
begin;
insert into compat_items values (4, 'four ✓');
commit;
do $$ begin raise notice 'notice % ✓', 7; raise warning 'careful' using detail = 'the detail', hint = 'the hint'; end $$;
drop table if exists compat_missing;
do $$ begin raise exception 'custom' using errcode = 'P0001'; end $$;
select 1 as a, 'x'::text as b, now() as c, $$d$$::varchar(5) as d \\gdesc
\\d compat_items
copy compat_copy from stdin;
1	alpha	x
2	beta	\\N
\\.
\\copy compat_copy from stdin
3	gamma	y
4	délta ✓	z
\\.
\\copy compat_copy from '${join(dir, 'in.csv')}' with (format csv)
\\copy compat_copy from stdin
bad	row	here
\\.
select count(*) from compat_copy;
copy (select * from compat_copy order by id) to stdout;
copy (select * from compat_copy order by id) to stdout with (format csv, header);
\\copy (select * from compat_copy order by id) to '${join(dir, 'out.csv')}' with (format csv, header)
\\copy compat_copy to stdout
copy compat_copy from stdin;
\\.
prepare p(int) as select $1 * 10 as x;
execute p(5);
execute p(null);
deallocate p;
execute p(1);
set application_name = 'psql ✓';
show application_name;
\\pset format aligned
select g, md5(g::text) as h from generate_series(1, 2000) g;
select * from generate_series(1, 3) g, lateral (select g * 2 as d) s;
\\pset format unaligned
select id, name from compat_items order by id;
`;
}

export interface PsqlRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What \\copy ... to 'file' wrote. */
  outFile: string;
}

/** Writes the script and its input file into `dir` (once; every run uses the same paths). */
export async function preparePsql(dir: string): Promise<string> {
  const rows: string[] = [];
  for (let i = 100; i < 400; i++) rows.push(`${i},"csv ${i}, quoted ""x""",${i % 3 === 0 ? '' : 'n'}`);
  await writeFile(join(dir, 'in.csv'), rows.join('\n') + '\n');
  const script = join(dir, 'script.sql');
  await writeFile(script, psqlScript(dir));
  return script;
}

/** Runs the psql script against a target; the only normalisation is the port, should it appear. */
export async function runPsql(db: PgCluster, target: Target, script: string, dir: string): Promise<PsqlRun> {
  await db.sql(PSQL_FIXTURES, { database: 'app', user: 'app' });
  await writeFile(join(dir, 'out.csv'), '');
  const r = await run('psql', ['-X', '-f', script], { env: { ...target.env, PGAPPNAME: 'compat' }, timeoutMs: 60_000 });
  // Connection errors name the port ("... port 5432 failed: ..."); nothing else differs.
  const port = (text: string): string => text.replace(/\bport \d+\b/g, 'port <port>');
  return { code: r.code, stdout: port(r.stdout), stderr: port(r.stderr), outFile: await readFile(join(dir, 'out.csv'), 'utf8') };
}

export interface BankState {
  history: number;
  delta: number;
  accounts: number;
  tellers: number;
  branches: number;
}

export async function bankState(db: PgCluster): Promise<BankState> {
  const out = await db.sql(
    `select count(*), coalesce(sum(delta), 0), (select sum(abalance) from pgbench_accounts), (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches) from pgbench_history`,
    { database: 'app', user: 'app' },
  );
  const [history, delta, accounts, tellers, branches] = out.split('|').map(Number) as [number, number, number, number, number];
  return { history, delta, accounts, tellers, branches };
}

export interface PgbenchSummary {
  mode: string;
  code: number | null;
  processed: string | undefined;
  failed: string | undefined;
  historyDelta: number;
  /** The balance changes in history equal the changes of accounts, tellers and branches. */
  consistent: boolean;
  stderr: string;
}

export const PGBENCH_CLIENTS = 4;
export const PGBENCH_TRANSACTIONS = 100;

/** `pgbench -i -s 1` (COPY FROM STDIN into pgbench_accounts) against a target. */
export async function pgbenchInit(target: Target): Promise<{ code: number | null; stderr: string }> {
  const r = await run('pgbench', ['-i', '-s', '1', '-q'], { env: target.env, timeoutMs: 60_000 });
  return { code: r.code, stderr: r.stderr };
}

/** One pgbench run (TPC-B like) in a query mode, summarised without timings. */
export async function pgbenchRun(db: PgCluster, target: Target, mode: 'simple' | 'extended' | 'prepared'): Promise<PgbenchSummary> {
  const before = await bankState(db);
  const r = await run('pgbench', ['-n', '-M', mode, '-c', String(PGBENCH_CLIENTS), '-j', '2', '-t', String(PGBENCH_TRANSACTIONS)], {
    env: target.env,
    timeoutMs: 60_000,
  });
  const after = await bankState(db);
  const change = after.delta - before.delta;
  return {
    mode,
    code: r.code,
    processed: /number of transactions actually processed: (\S+)/.exec(r.stdout)?.[1],
    failed: /number of failed transactions: (\S+)/.exec(r.stdout)?.[1],
    historyDelta: after.history - before.history,
    consistent: after.accounts - before.accounts === change && after.tellers - before.tellers === change && after.branches - before.branches === change,
    stderr: r.stderr,
  };
}
