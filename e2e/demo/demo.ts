/**
 * `make demo`: a throw-away PostgreSQL with sample customer data, dbward-sidecar in front of it,
 * and psql talking to the database through the sidecar.
 *
 *   make demo                  run the walkthrough and clean up
 *   DBWARD_DEMO_KEEP=1 make demo   keep everything running and print how to connect (Ctrl-C stops)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run, spawnProcess, startPostgres, type PgCluster } from '../harness/index.js';

const SIDECAR = fileURLToPath(new URL('../../sidecar/dist/main.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('./sample-data.sql', import.meta.url));

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function psql(port: number, sql: string, env: Record<string, string>): Promise<string> {
  const result = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'app', '-d', 'app', '-c', sql], {
    env: { ...env, PGSSLMODE: 'disable' },
  });
  return result.code === 0 ? result.stdout : `${result.stdout}${result.stderr}`;
}

async function main(): Promise<void> {
  console.log(bold('1. A throw-away PostgreSQL 15 with sample customer data (SCRAM-SHA-256 logins)'));
  const db: PgCluster = await startPostgres({ auth: 'scram-sha-256', name: 'demo' });
  const sidecar = spawnProcess(process.execPath, [SIDECAR, '--upstream', db.url({ password: null, sslmode: 'disable' }), '--listen', '127.0.0.1:0'], {
    name: 'dbward-sidecar',
  });
  const stop = async (): Promise<void> => {
    await sidecar.kill('SIGTERM', 5_000);
    await db.stop();
  };
  try {
    await db.sql(readFileSync(SAMPLE, 'utf8'), { database: 'app', user: 'app' });
    console.log(`   postgres://app@127.0.0.1:${db.port}/app`);

    console.log(bold('\n2. dbward-sidecar in front of it (pass-through authentication)'));
    const [, port] = await sidecar.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/, { timeoutMs: 15_000 });
    console.log(`   dbward-sidecar --upstream postgres://app@127.0.0.1:${db.port}/app?sslmode=disable --listen 127.0.0.1:${port}`);

    const env = { PGPASSWORD: db.app.password };
    console.log(bold('\n3. psql through the sidecar'));
    console.log(`   $ psql -h 127.0.0.1 -p ${port} -U app app -c 'select id, full_name, email, ssn, card_number from customers'`);
    console.log(await psql(Number(port), 'select id, full_name, email, ssn, card_number from customers', env));
    console.log(`   $ psql ... -c 'select c.full_name, count(*), sum(o.total_cents) from customers c join orders o ...'`);
    console.log(await psql(Number(port), 'select c.full_name, count(*) as orders, sum(o.total_cents) as total_cents from customers c join orders o on o.customer_id = c.id group by 1 order by 1', env));
    console.log(`   $ psql ... -c 'select * from no_such_table'      (server errors pass through unchanged)`);
    console.log(await psql(Number(port), 'select * from no_such_table', env));

    console.log(bold('4. What is next'));
    console.log('   This release is the transparent proxy: every byte above passed through dbward unchanged.');
    console.log('   Policies (guardrails, approvals) and masking of the email, ssn and card_number columns');
    console.log('   for an ai-agent identity are built on it next; this demo will show them masked.\n');

    if (process.env.DBWARD_DEMO_KEEP === '1') {
      console.log(bold(`Running. Connect with: PGPASSWORD=${db.app.password} psql -h 127.0.0.1 -p ${port} -U app app    (Ctrl-C stops)`));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
  } finally {
    await stop();
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
