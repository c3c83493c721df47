import { parseArgs } from 'node:util';
import type { CliIO } from './approvals.js';

/**
 * `dbward`: the user CLI (also installed as the kubectl plugin `kubectl-dbward`).
 *
 *   dbward approvals list|approve <id>|deny <id> [--admin 127.0.0.1:9901] [--reason text] [-o json]
 *   kubectl dbward list|approve <name>|deny <name> [-n ns | -A] [--reason text] [--kubeconfig f] [--context c] [-o json]
 *   dbward check --policy p.yaml --sql "..." [--identity k=v]... [--environment e] [-o json]
 */
const USAGE = `usage: dbward check --policy p.yaml --sql "..." [--identity key=value]... [--environment e] [--user u] [--database d] [-o json]
       dbward approvals list [--admin host:port] [-o table|json]
       dbward approvals approve <id> [--reason text] [--by who] [--admin host:port]
       dbward approvals deny <id> [--reason text] [--by who] [--admin host:port]
       kubectl dbward list [-n ns | -A] [-o table|json]            (AccessRequests in Kubernetes)
       kubectl dbward approve|deny <name> [-n ns] [--reason text]
                                    [--kubeconfig file] [--context name]
The admin address defaults to $DBWARD_ADMIN, else 127.0.0.1:9901. Kubernetes mode uses the kubeconfig
($KUBECONFIG, --kubeconfig, --context) and records the authenticated user as decidedBy.`;

export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        admin: { type: 'string' },
        reason: { type: 'string' },
        by: { type: 'string' },
        output: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
        policy: { type: 'string', multiple: true },
        sql: { type: 'string' },
        identity: { type: 'string', multiple: true },
        environment: { type: 'string' },
        user: { type: 'string' },
        database: { type: 'string' },
        'search-path': { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        'all-namespaces': { type: 'boolean', short: 'A' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
      },
    });
  } catch (error) {
    io.err(`dbward: ${(error as Error).message.replace(/\. To specify.*$/s, '')}\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help === true || command === undefined) {
    io.out(USAGE);
    return command === undefined && parsed.values.help !== true ? 2 : 0;
  }
  const output = parsed.values.output ?? 'table';
  if (output !== 'table' && output !== 'json') {
    io.err('dbward: -o must be table or json');
    return 2;
  }
  if (command === 'approvals') {
    const { approvalsCommand } = await import('./approvals.js');
    return approvalsCommand(rest, { admin: parsed.values.admin ?? env.DBWARD_ADMIN ?? '127.0.0.1:9901', output, reason: parsed.values.reason, by: parsed.values.by }, io);
  }
  if (command === 'list' || command === 'approve' || command === 'deny') {
    // Loaded on demand: the Kubernetes client and the policy compiler are slow to import.
    const { accessRequestCommand } = await import('./access-requests.js');
    return accessRequestCommand(
      command,
      rest,
      {
        kubeconfig: parsed.values.kubeconfig,
        context: parsed.values.context,
        namespace: parsed.values.namespace,
        allNamespaces: parsed.values['all-namespaces'] === true,
        reason: parsed.values.reason,
        output,
      },
      io,
    );
  }
  if (command === 'check') {
    if (rest.length > 0) return usageError(io, `unexpected argument "${rest[0]}" (quote the SQL and pass it with --sql)`);
    const { checkCommand } = await import('./check.js');
    return checkCommand(
      {
        policies: parsed.values.policy ?? [],
        sql: parsed.values.sql,
        identity: parsed.values.identity ?? [],
        environment: parsed.values.environment,
        user: parsed.values.user,
        database: parsed.values.database,
        output,
        searchPath: (parsed.values['search-path'] ?? 'public').split(',').map((p) => p.trim()).filter(Boolean),
      },
      io,
    );
  }
  io.err(`dbward: unknown command "${command}"\n${USAGE}`);
  return 2;
}

function usageError(io: CliIO, message: string): number {
  io.err(`dbward: ${message}\n${USAGE}`);
  return 2;
}
