import { describe, expect, it } from 'vitest';
import type { StatementFacts } from '../sql/facts.js';
import { decodeFrontend } from '../wire/frontend.js';
import { approvalRefusal, judgeFacts, judgeFunctionCall, judgeSql, poisonParse, poisonQuery, POISON_SQL, type ActivePolicy, type GateContext, type StatementDecision } from './policy-gate.js';

function facts(command: string, overrides: Partial<StatementFacts> = {}): StatementFacts {
  return {
    command,
    kind: command === 'SELECT' ? 'read' : 'write',
    tables: [],
    readTables: [],
    writeTables: [],
    columns: [],
    hasWhere: true,
    functions: [],
    text: command,
    effectUnknown: false,
    output: [],
    predicateColumns: [],
    ...overrides,
  };
}

/** A policy written as a plain function, to test the gate's own logic. */
function policy(decide: (f: StatementFacts) => Partial<StatementDecision>, unparseable: 'deny' | 'allow' = 'deny'): ActivePolicy {
  return {
    version: 'test',
    unparseable,
    approvalTimeoutMs: 1000,
    decide: (f) => ({ action: 'allow', rule: undefined, message: undefined, auditOnly: false, ...decide(f) }),
  };
}

const identity = { user: 'app', database: 'app', application: '', namespace: '', serviceAccount: '', pod: '', labels: {} };
const noDrops = policy((f) => (f.command === 'DROP TABLE' ? { action: 'deny', rule: 'no-drops', message: 'no' } : {}));

function ctx(p: ActivePolicy, statements: StatementFacts[] | 'unparseable'): GateContext {
  return {
    identity,
    environment: 'production',
    policy: p,
    analyze: () => (statements === 'unparseable' ? { error: 'syntax error at or near "selec"', position: 1 } : { statements }),
  };
}

describe('policy gate', () => {
  it('forwards allowed statements', () => {
    expect(judgeFacts([facts('SELECT')], ctx(noDrops, [])).kind).toBe('forward');
  });

  it('refuses a whole multi-statement string when one statement is denied, naming the rule', () => {
    const verdict = judgeFacts([facts('SELECT'), facts('DROP TABLE'), facts('SELECT')], ctx(noDrops, []));
    expect(verdict.kind).toBe('refuse');
    if (verdict.kind !== 'refuse') return;
    expect(verdict.refusal).toMatchObject({ sqlstate: '42501', severity: 'ERROR', message: 'dbward: denied by no-drops: no' });
  });

  it('holds for approval unless a later statement is denied', () => {
    const holding = policy((f) => (f.command === 'DELETE' ? { action: 'requireApproval', rule: 'hold-deletes' } : f.command === 'DROP TABLE' ? { action: 'deny', rule: 'no-drops' } : {}));
    expect(judgeFacts([facts('DELETE')], ctx(holding, []))).toMatchObject({ kind: 'hold', rule: 'hold-deletes', timeoutMs: 1000 });
    expect(judgeFacts([facts('DELETE'), facts('DROP TABLE')], ctx(holding, [])).kind).toBe('refuse');
  });

  it('records but does not enforce audit-only decisions', () => {
    const audit = policy((f) => (f.command === 'DROP TABLE' ? { action: 'deny', rule: 'no-drops', auditOnly: true } : {}));
    const verdict = judgeFacts([facts('DROP TABLE')], ctx(audit, []));
    expect(verdict.kind).toBe('forward');
    expect(verdict.decisions[0]).toMatchObject({ action: 'deny', auditOnly: true });
  });

  it('refuses unparseable statements with 42601 unless the policy allows them', () => {
    const refused = judgeSql('selec 1', ctx(noDrops, 'unparseable'));
    expect(refused).toMatchObject({ kind: 'refuse', refusal: { sqlstate: '42601', message: 'dbward: statement not understood: syntax error at or near "selec"' } });
    expect(judgeSql('selec 1', ctx(policy(() => ({}), 'allow'), 'unparseable')).kind).toBe('forward');
  });

  it('judges fast-path function calls as statements of unknown effect', () => {
    const noCalls = policy((f) => (f.command === 'FUNCTION CALL' ? { action: 'deny', rule: 'no-fastpath' } : {}));
    const verdict = judgeFunctionCall(2201, ctx(noCalls, []));
    expect(verdict.kind).toBe('refuse');
    expect(verdict.facts[0]).toMatchObject({ kind: 'unknown', effectUnknown: true, functions: ['oid:2201'] });
  });

  it('builds poison messages the server cannot run', () => {
    expect(decodeFrontend(0x51, poisonQuery(), 0, poisonQuery().length)).toEqual({ type: 'Query', query: POISON_SQL });
    const named = poisonParse('s1');
    expect(decodeFrontend(0x50, named, 0, named.length)).toEqual({ type: 'Parse', name: 's1', query: POISON_SQL, paramTypes: [] });
  });

  it('words approval outcomes per SPEC §6', () => {
    expect(approvalRefusal('apr-1', 'denied', 'not during the freeze')).toMatchObject({ sqlstate: '42501', message: 'dbward: approval apr-1 denied', detail: 'not during the freeze' });
    expect(approvalRefusal('apr-1', 'expired', undefined)).toMatchObject({ sqlstate: '57014', message: 'dbward: approval apr-1 timed out' });
  });
});
