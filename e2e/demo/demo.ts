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
const POLICY = fileURLToPath(new URL('./policy.yaml', import.meta.url));
const DBWARD = fileURLToPath(new URL('../../sidecar/dist/dbward.js', import.meta.url));

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
  // The sidecar in front of it, as an AI agent's sidecar would run: production, the agent's identity.
  const sidecar = spawnProcess(
    process.execPath,
    [SIDECAR, '--upstream', db.url({ password: null, sslmode: 'disable' }), '--listen', '127.0.0.1:0', '--policy', POLICY, '--environment', 'production', '--identity', 'serviceAccount=support-copilot', '--identity', 'labels.dbward.io/kind=ai-agent'],
    { name: 'dbward-sidecar' },
  );
  // A second sidecar, as the support team's service would have it.
  const support = spawnProcess(
    process.execPath,
    [SIDECAR, '--upstream', db.url({ password: null, sslmode: 'disable' }), '--listen', '127.0.0.1:0', '--policy', POLICY, '--environment', 'production', '--identity', 'serviceAccount=support'],
    { name: 'dbward-sidecar-support' },
  );
  const stop = async (): Promise<void> => {
    await sidecar.kill('SIGTERM', 5_000);
    await support.kill('SIGTERM', 5_000);
    await db.stop();
  };
  try {
    await db.sql(readFileSync(SAMPLE, 'utf8'), { database: 'app', user: 'app' });
    console.log(`   postgres://app@127.0.0.1:${db.port}/app`);

    console.log(bold('\n2. dbward-sidecar in front of it, for an AI agent in production, with e2e/demo/policy.yaml'));
    const [, port] = await sidecar.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/, { timeoutMs: 15_000 });
    console.log(`   dbward-sidecar --upstream postgres://app@127.0.0.1:${db.port}/app?sslmode=disable --listen 127.0.0.1:${port} \\`);
    console.log('                  --policy e2e/demo/policy.yaml --environment production \\');
    console.log('                  --identity serviceAccount=support-copilot --identity labels.dbward.io/kind=ai-agent');

    const env = { PGPASSWORD: db.app.password };
    const show = async (title: string, sql: string): Promise<void> => {
      console.log(`   $ psql -h 127.0.0.1 -p ${port} -U app app -c ${JSON.stringify(sql)}${title === '' ? '' : `      (${title})`}`);
      console.log((await psql(Number(port), sql, env)).replace(/^/gm, '   '));
    };
    const [, supportPort] = await support.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/, { timeoutMs: 15_000 });
    console.log(bold('\n3. The agent reads through the sidecar: PII is masked (found by column name, no setup)'));
    await show('', 'select id, full_name, email, phone, ssn from customers');
    await show('an alias or an expression does not get around it', 'select lower(email) as contact, full_name as who from customers limit 2');
    console.log(bold('   The same query through the support team\u2019s sidecar: contact details revealed, the rest still masked'));
    console.log(`   $ psql -h 127.0.0.1 -p ${supportPort} -U app app -c "select id, full_name, email, phone, ssn, card_number from customers"`);
    console.log((await psql(Number(supportPort), 'select id, full_name, email, phone, ssn, card_number from customers', env)).replace(/^/gm, '   '));
    await show('', 'select c.id, c.full_name, count(*) as orders, sum(o.total_cents) as total_cents from customers c join orders o on o.customer_id = c.id group by c.id order by c.id');
    console.log(bold('4. ... and is stopped where the policy says'));
    await show('destructive DDL', 'DROP TABLE customers');
    await show('a delete hidden in a CTE', 'WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone');
    await show('a write', "UPDATE customers SET email = 'x@example.com' WHERE id = 1");
    await show('card numbers, reached through *', 'SELECT * FROM customers');
    await show('probing a masked column', "SELECT id FROM customers WHERE ssn = '123-45-6789'");
    console.log(`   rows still there: ${await db.sql('select count(*) from customers', { database: 'app' })} customers, ${await db.sql('select count(*) from orders', { database: 'app' })} orders\n`);

    console.log('   (the first rule that matches decides: this policy\'s rules first, then the built-ins, which refuse');
    console.log('    DROP/TRUNCATE and UPDATE/DELETE without WHERE in production for every identity)\n');
    console.log(bold('5. Policy authors test rules without a database'));
    console.log(`   $ dbward check --policy e2e/demo/policy.yaml --sql 'DELETE FROM orders' --environment production`);
    const check = await run(process.execPath, [DBWARD, 'check', '--policy', POLICY, '--sql', 'DELETE FROM orders', '--environment', 'production']);
    console.log(check.stdout.replace(/^/gm, '   '));

    console.log(bold('6. More'));
    console.log('   COPY TO STDOUT is masked too, errors that echo values are scrubbed, and views, SQL functions,');
    console.log('   cursors and prepared statements are traced (docs/masking.md). In Kubernetes the operator injects');
    console.log('   this sidecar and delivers the policy over gRPC (docs/deployment.md); every statement can be an');
    console.log('   OpenTelemetry span (docs/audit.md).\n');

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
