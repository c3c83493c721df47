import { parseIdentity } from '../config/cli.js';
import { ConfigError } from '../config/errors.js';
import { ApprovalRegistry } from '../approvals/registry.js';
import { decideStatement } from '../policy/index.js';
import { PolicyWatcher } from '../policy/watch.js';
import { createPolicyRuntime } from '../runtime/policy-runtime.js';
import { judgeSql, type Identity, type Verdict } from '../session/policy-gate.js';
import { initSqlAnalysis } from '../sql/index.js';
import type { CliIO } from './approvals.js';

/**
 * `dbward check --policy p.yaml --sql "..." [--identity k=v]... [--environment e] [-o json]`:
 * what the sidecar would do with a statement, and why, without a database — the same loading,
 * analysis and decision code the sidecar runs.
 *
 * Exit status: 0 the statement would run; 3 it would be refused or held for approval;
 * 2 bad arguments or a policy that does not load.
 */
export interface CheckOptions {
  policies: string[];
  sql: string | undefined;
  identity: string[];
  environment: string | undefined;
  user: string | undefined;
  database: string | undefined;
  output: 'table' | 'json';
  /** The search_path to resolve unqualified names with (no database to ask). */
  searchPath: string[];
}

export async function checkCommand(options: CheckOptions, io: CliIO): Promise<number> {
  if (options.policies.length === 0) return usage(io, '--policy is required');
  if (options.sql === undefined || options.sql.trim() === '') return usage(io, '--sql is required');
  let given: ReturnType<typeof parseIdentity>;
  try {
    given = parseIdentity(options.identity);
  } catch (error) {
    if (error instanceof ConfigError) return usage(io, error.message);
    throw error;
  }

  await initSqlAnalysis();
  const watcher = new PolicyWatcher({ paths: options.policies });
  const loaded = await watcher.reload('initial');
  if (!('kind' in loaded)) {
    for (const error of loaded.errors) io.err(`dbward: ${'headline' in error && typeof error.headline === 'string' ? error.headline : error.message}`);
    return 2;
  }
  const set = loaded;
  const runtime = createPolicyRuntime({ current: () => set, approvals: new ApprovalRegistry(), environment: options.environment ?? '' });
  const identity: Identity = {
    user: options.user ?? given.fields.user ?? '',
    database: options.database ?? given.fields.database ?? '',
    application: given.fields.application ?? '',
    namespace: given.fields.namespace ?? '',
    serviceAccount: given.fields.serviceAccount ?? '',
    pod: given.fields.pod ?? '',
    labels: given.labels,
  };
  const environment = runtime.environment;
  const verdict = judgeSql(options.sql, {
    identity,
    environment,
    analyze: (text) => runtime.analyze(text, { database: identity.database, standardConformingStrings: true, searchPath: options.searchPath }),
    policy: runtime.current()!,
  });
  // The full reasoning per statement, for the author.
  const details = verdict.facts.map((facts) => ({ facts, decision: decideStatement(set, { identity, environment, facts }) }));
  const outcome = verdict.kind === 'forward' ? 'allow' : verdict.kind === 'refuse' ? 'refuse' : 'hold';

  if (options.output === 'json') {
    io.out(JSON.stringify({ outcome, policyVersion: set.version, environment, identity, verdict: summarize(verdict), statements: details }, null, 2));
  } else {
    io.out(`policy ${set.version} (${set.policies.join(', ')}), environment "${environment}"`);
    details.forEach(({ facts, decision }, i) => {
      io.out(`\nstatement ${i + 1}: ${facts.text}`);
      io.out(`  command    ${facts.command}   kind ${facts.kind}${facts.effectUnknown ? '   effect unknown' : ''}   hasWhere ${facts.hasWhere}`);
      if (facts.readTables.length > 0) io.out(`  reads      ${facts.readTables.join(', ')}`);
      if (facts.writeTables.length > 0) io.out(`  writes     ${facts.writeTables.join(', ')}`);
      if (facts.columns.length > 0) io.out(`  columns    ${facts.columns.join(', ')}`);
      if (facts.functions.length > 0) io.out(`  functions  ${facts.functions.join(', ')}`);
      const audited = decision.auditOnly ? ` (audit only: would ${decision.auditedAction ?? 'deny'})` : '';
      io.out(`  decision   ${decision.action}${decision.rule !== undefined ? ` by ${decision.rule}` : ''}${audited}${decision.message !== undefined ? `: ${decision.message}` : ''}`);
      for (const reason of decision.reasons) io.out(`             ${reason}`);
    });
    io.out('');
    io.out(renderVerdict(verdict));
  }
  return outcome === 'allow' ? 0 : 3;
}

function summarize(verdict: Verdict): Record<string, unknown> {
  if (verdict.kind === 'refuse') return { kind: 'refuse', sqlstate: verdict.refusal.sqlstate, message: verdict.refusal.message };
  if (verdict.kind === 'hold') return { kind: 'hold', rule: verdict.rule, message: verdict.message, timeoutMs: verdict.timeoutMs };
  return { kind: 'allow' };
}

function renderVerdict(verdict: Verdict): string {
  if (verdict.kind === 'refuse') return `REFUSED  ${verdict.refusal.sqlstate}  ${verdict.refusal.message}`;
  if (verdict.kind === 'hold') return `HELD FOR APPROVAL by ${verdict.rule}${verdict.message !== undefined ? `: ${verdict.message}` : ''} (timeout ${Math.round(verdict.timeoutMs / 1000)} s)`;
  return 'ALLOWED';
}

function usage(io: CliIO, message: string): number {
  io.err(`dbward: ${message}\nusage: dbward check --policy p.yaml --sql "..." [--identity key=value]... [--environment e] [--user u] [--database d] [-o json]`);
  return 2;
}
