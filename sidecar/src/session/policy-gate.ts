import { refusal, type Refusal } from '../errors/catalog.js';
import type { QueryAnalysis, StatementFacts, UnparseableQuery } from '../sql/facts.js';
import { parse as parseMessage, query as queryMessage } from '../wire/writers.js';

/**
 * Decides, for each statement-carrying frontend message (Query, Parse, FunctionCall), whether it
 * goes to the server, is refused, or is held for approval. Pure: the session carries out the
 * verdict.
 *
 * A refusal never reaches the server as the client sent it. Instead the server receives a
 * "poison" message — a statement that cannot parse — so that the server itself raises the error:
 * an open transaction becomes failed (a later COMMIT cannot commit earlier statements), the rest
 * of an extended-protocol batch is discarded up to Sync, and ReadyForQuery reports the true
 * transaction state. The session then replaces that one ErrorResponse with the refusal.
 */

/** The identity a statement is judged for (SPEC §4 `identity.*`). */
export interface Identity {
  user: string;
  database: string;
  application: string;
  namespace: string;
  serviceAccount: string;
  pod: string;
  labels: Record<string, string>;
}

/** What a policy decided for one statement. */
export interface StatementDecision {
  action: 'allow' | 'deny' | 'requireApproval';
  rule: string | undefined;
  message: string | undefined;
  /** `enforcement: audit`: decided, recorded, not enforced. */
  auditOnly: boolean;
}

/** The loaded policy, as the gate needs it. Implemented by the policy module. */
export interface ActivePolicy {
  readonly version: string;
  readonly unparseable: 'deny' | 'allow';
  readonly approvalTimeoutMs: number;
  decide(facts: StatementFacts, identity: Identity, environment: string): StatementDecision;
}

/** SQL analysis, as the gate needs it (cached by the implementation). */
export type Analyze = (text: string) => QueryAnalysis | UnparseableQuery;

export interface GateContext {
  identity: Identity;
  environment: string;
  analyze: Analyze;
  policy: ActivePolicy;
}

/** What the session should do with the message. */
export type Verdict =
  | { kind: 'forward'; facts: StatementFacts[]; decisions: StatementDecision[] }
  | { kind: 'refuse'; refusal: Refusal; facts: StatementFacts[]; decisions: StatementDecision[] }
  | {
      kind: 'hold';
      rule: string;
      message: string | undefined;
      timeoutMs: number;
      facts: StatementFacts[];
      decisions: StatementDecision[];
    };

/** A statement the server cannot parse; named so that server logs say who sent it. */
export const POISON_SQL = '/* dbward: refused by policy */ dbward_refused';

/** The Query sent in place of a refused Query. */
export function poisonQuery(): Buffer {
  return POISON_QUERY;
}

/** The Parse sent in place of a refused Parse (same statement name, so the outcome is the same). */
export function poisonParse(statementName: string): Buffer {
  return statementName === '' ? POISON_PARSE_UNNAMED : parseMessage(statementName, POISON_SQL, []);
}

const POISON_QUERY = queryMessage(POISON_SQL);
const POISON_PARSE_UNNAMED = parseMessage('', POISON_SQL, []);

/** Judges a query string (a Query message or the SQL of a Parse). */
export function judgeSql(text: string, ctx: GateContext): Verdict {
  const analysis = ctx.analyze(text);
  if ('error' in analysis) {
    if (ctx.policy.unparseable === 'allow') return { kind: 'forward', facts: [], decisions: [] };
    return {
      kind: 'refuse',
      refusal: refusal('statement-not-understood', analysis.error, {
        hint: 'the policy denies statements the SQL parser rejects (unparseable: deny)',
      }),
      facts: [],
      decisions: [],
    };
  }
  return judgeFacts(analysis.statements, ctx);
}

/**
 * A FunctionCall ('F') runs a function by OID, bypassing SQL: judged as a statement whose effect
 * is unknown, so that policies can deny it (`query.command == "FUNCTION CALL"`).
 */
export function judgeFunctionCall(functionOid: number, ctx: GateContext): Verdict {
  const facts: StatementFacts = {
    command: 'FUNCTION CALL',
    kind: 'unknown',
    tables: [],
    readTables: [],
    writeTables: [],
    columns: [],
    hasWhere: true,
    functions: [`oid:${functionOid}`],
    text: `<fast-path function call ${functionOid}>`,
    effectUnknown: true,
    output: [],
    predicateColumns: [],
  };
  return judgeFacts([facts], ctx);
}

/**
 * Every statement of a multi-statement string is decided; one refusal refuses the whole string
 * before any of it runs (SPEC §4), and a hold holds the whole string. The first refusing
 * statement (in order) names the rule.
 */
export function judgeFacts(statements: StatementFacts[], ctx: GateContext): Verdict {
  const decisions: StatementDecision[] = [];
  let hold: StatementDecision | undefined;
  for (const facts of statements) {
    const decision = ctx.policy.decide(facts, ctx.identity, ctx.environment);
    decisions.push(decision);
    if (decision.auditOnly) continue;
    if (decision.action === 'deny') {
      const rule = decision.rule ?? 'policy';
      return {
        kind: 'refuse',
        refusal: refusal('guardrail-denied', `${rule}: ${decision.message ?? 'statement denied by policy'}`),
        facts: statements,
        decisions,
      };
    }
    if (decision.action === 'requireApproval' && hold === undefined) hold = decision;
  }
  if (hold !== undefined) {
    return { kind: 'hold', rule: hold.rule ?? 'policy', message: hold.message, timeoutMs: ctx.policy.approvalTimeoutMs, facts: statements, decisions };
  }
  return { kind: 'forward', facts: statements, decisions };
}

/** The refusal for a held statement that was not approved. */
export function approvalRefusal(id: string, outcome: 'denied' | 'expired' | 'cancelled', reason: string | undefined): Refusal {
  if (outcome === 'expired') return refusal('approval-timed-out', `${id} timed out`);
  if (outcome === 'cancelled') return { ...refusal('approval-timed-out', `${id} cancelled`), sqlstate: '57014' };
  return refusal('approval-denied', `${id} denied`, reason === undefined ? undefined : { detail: reason });
}
