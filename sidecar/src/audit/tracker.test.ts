import { describe, expect, it } from 'vitest';
import { refusal } from '../errors/catalog.js';
import type { ColumnPlan } from '../masking/plan.js';
import type { StatementDecision, Verdict } from '../session/policy-gate.js';
import type { StatementFacts } from '../sql/index.js';
import {
  bind,
  bindComplete,
  commandComplete,
  dataRow,
  emptyQueryResponse,
  errorResponse,
  execute,
  parse,
  parseComplete,
  query,
  readyForQuery,
  sync,
} from '../wire/writers.js';
import { unknownShape } from './statement-shape.js';
import { rowsOf, ruleOfRefusal, SessionTracker, sqlstateOf, type StatementRun, type TrackerHost } from './tracker.js';

/** What the tracker handed to the emitter, flattened for assertions. */
interface Emitted {
  operation: string;
  decision: string;
  rule: string | undefined;
  rows: number | undefined;
  sqlstate: string | undefined;
  masked: number;
  traced: boolean;
}

function facts(command: string, table = 'public.t'): StatementFacts {
  return {
    command,
    kind: command === 'SELECT' ? 'read' : 'write',
    tables: [table],
    readTables: command === 'SELECT' ? [table] : [],
    writeTables: command === 'SELECT' ? [] : [table],
    columns: [],
    hasWhere: true,
    functions: [],
    text: `${command.toLowerCase()} ...`,
    effectUnknown: false,
    output: [],
    predicateColumns: [],
  };
}

const allow: StatementDecision = { action: 'allow', rule: undefined, message: undefined, auditOnly: false };
const forward = (...f: StatementFacts[]): Verdict => ({ kind: 'forward', facts: f, decisions: f.map(() => allow) });

function setup(policyMode = true): { tracker: SessionTracker; emitted: Emitted[]; closed: () => boolean } {
  const emitted: Emitted[] = [];
  let closed = false;
  const host: TrackerHost = {
    shape: (f, text) => (f === undefined ? unknownShape(text) : { ...unknownShape(f.command), operation: f.command }),
    analyze: (text) => (text.startsWith('select') ? [facts('SELECT')] : []),
    emit: (run: StatementRun, _end, rows, sqlstate) =>
      emitted.push({ operation: run.shape.operation, decision: run.decision, rule: run.rule, rows, sqlstate, masked: run.maskedValues, traced: run.trace !== undefined }),
    closed: () => {
      closed = true;
    },
  };
  return { tracker: new SessionTracker(host, policyMode), emitted, closed: () => closed };
}

function client(t: SessionTracker, ...frames: Buffer[]): void {
  for (const f of frames) t.clientMessage(f[0]!, f, 0, f.length);
}
function server(t: SessionTracker, ...frames: Buffer[]): void {
  for (const f of frames) t.serverMessage(f[0]!, f, 0, f.length);
}
const error = (code: string): Buffer => errorResponse(new Map([['S', 'ERROR'], ['V', 'ERROR'], ['C', code], ['M', 'm']]));
const rfq = (): Buffer => readyForQuery('I');
const PLAN: ColumnPlan[] = [{ action: 'pass' }, { action: 'mask', mask: 'redact', column: { typeOid: 25, typeModifier: -1, format: 0 }, fixed: undefined, inline: undefined }];

describe('SessionTracker', () => {
  it('simple query: one span with the rows of CommandComplete', () => {
    const { tracker, emitted } = setup();
    client(tracker, query('select 1'));
    tracker.decided(forward(facts('SELECT')));
    server(tracker, dataRow([Buffer.from('1')]), commandComplete('SELECT 1'), rfq());
    expect(emitted).toEqual([{ operation: 'SELECT', decision: 'allow', rule: undefined, rows: 1, sqlstate: undefined, masked: 0, traced: false }]);
  });

  it('multi-statement string: one span per statement; a server error drops the statements that never ran', () => {
    const { tracker, emitted } = setup();
    client(tracker, query('insert ...; select ...; update ...'));
    tracker.decided(forward(facts('INSERT'), facts('SELECT'), facts('UPDATE')));
    server(tracker, commandComplete('INSERT 0 3'), error('22012'), rfq());
    expect(emitted.map((e) => [e.operation, e.rows, e.sqlstate])).toEqual([
      ['INSERT', 3, undefined],
      ['SELECT', undefined, '22012'],
    ]);
  });

  it('refused string: every statement carries the refusal, with the denying rule', () => {
    const { tracker, emitted } = setup();
    client(tracker, query('select ...; drop table t'));
    const deny: StatementDecision = { action: 'deny', rule: 'no-drop', message: 'no', auditOnly: false };
    tracker.decided({ kind: 'refuse', refusal: refusal('guardrail-denied', 'no-drop: no'), facts: [facts('SELECT'), facts('DROP TABLE')], decisions: [allow, deny] });
    server(tracker, error('42501'), rfq());
    expect(emitted.map((e) => [e.operation, e.decision, e.rule, e.sqlstate])).toEqual([
      ['SELECT', 'deny', 'no-drop', '42501'],
      ['DROP TABLE', 'deny', 'no-drop', '42501'],
    ]);
  });

  it('held statements: approved runs and is marked approved; rejected carries the refusal', () => {
    const { tracker, emitted } = setup();
    const hold = (f: StatementFacts): Verdict => ({ kind: 'hold', rule: 'review', message: undefined, timeoutMs: 1000, facts: [f], decisions: [allow] });
    client(tracker, query('delete ...'), query('select ...'));
    tracker.decided(hold(facts('DELETE')));
    tracker.settled(true);
    tracker.decided(forward(facts('SELECT')));
    server(tracker, commandComplete('DELETE 2'), rfq(), commandComplete('SELECT 0'), rfq());
    client(tracker, query('delete ...'));
    tracker.decided(hold(facts('DELETE')));
    tracker.settled(false);
    server(tracker, error('42501'), rfq());
    expect(emitted.map((e) => [e.operation, e.decision, e.rule, e.rows, e.sqlstate])).toEqual([
      ['DELETE', 'approved', 'review', 2, undefined],
      ['SELECT', 'allow', undefined, 0, undefined],
      ['DELETE', 'rejected', 'review', undefined, '42501'],
    ]);
  });

  it('extended protocol: decided at Parse, a span per Execute; a refused Parse ends with its error', () => {
    const { tracker, emitted } = setup();
    client(tracker, parse('s1', 'select ...'), bind('', 's1', []), execute(''), bind('', 's1', []), execute(''), sync());
    tracker.decided(forward(facts('SELECT')));
    server(tracker, parseComplete(), bindComplete(), commandComplete('SELECT 4'), bindComplete(), commandComplete('SELECT 5'), rfq());
    client(tracker, parse('', 'truncate t'), bind('', '', []), execute(''), sync());
    tracker.decided({ kind: 'refuse', refusal: refusal('guardrail-denied', 'no-truncate: no'), facts: [facts('TRUNCATE TABLE')], decisions: [{ action: 'deny', rule: 'no-truncate', message: undefined, auditOnly: false }] });
    server(tracker, error('42501'), rfq());
    expect(emitted.map((e) => [e.operation, e.decision, e.rows, e.sqlstate])).toEqual([
      ['SELECT', 'allow', 4, undefined],
      ['SELECT', 'allow', 5, undefined],
      ['TRUNCATE TABLE', 'deny', undefined, '42501'],
    ]);
  });

  it('counts masked values on the statement whose rows arrive, and audit-only decisions', () => {
    const { tracker, emitted } = setup();
    client(tracker, query('select ...'));
    tracker.decided({ kind: 'forward', facts: [facts('SELECT')], decisions: [{ action: 'deny', rule: 'watch', message: undefined, auditOnly: true }] });
    tracker.masked(PLAN);
    tracker.masked(PLAN);
    server(tracker, commandComplete('SELECT 2'), rfq());
    expect(emitted).toEqual([expect.objectContaining({ decision: 'audit-only', rule: 'watch', masked: 2 })]);
  });

  it('pass-through: analyses the statement itself and allows it; empty query and trace context', () => {
    const { tracker, emitted, closed } = setup(false);
    client(tracker, query("select 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"), query('vacuum'), query(''));
    server(tracker, commandComplete('SELECT 1'), rfq(), commandComplete('VACUUM'), rfq(), emptyQueryResponse(), rfq());
    tracker.close();
    expect(emitted.map((e) => [e.operation, e.decision, e.traced])).toEqual([
      ['SELECT', 'allow', true],
      ['VACUUM', 'allow', false],
      ['UNKNOWN', 'allow', false],
    ]);
    expect(closed()).toBe(true);
  });
});

describe('reply parsing', () => {
  it.each([
    ['SELECT 5', 5],
    ['INSERT 0 12', 12],
    ['UPDATE 0', 0],
    ['CREATE TABLE', undefined],
    ['COPY 1000000', 1_000_000],
  ])('rowsOf(%s) = %s', (tag, rows) => {
    const frame = commandComplete(tag);
    expect(rowsOf(frame, 0, frame.length)).toBe(rows);
  });

  it('sqlstateOf reads the C field', () => {
    const frame = error('40001');
    expect(sqlstateOf(frame, 0, frame.length)).toBe('40001');
  });

  it.each([
    ['dbward: denied by no-drop: DROP is blocked', 'guardrail-denied', 'no-drop'],
    ['dbward: denied by dbward.masking: COPY of t would send masked columns unmasked', 'guardrail-denied', 'dbward.masking'],
    ['dbward: statement not understood: syntax error', 'statement-not-understood', 'dbward.statement-not-understood'],
  ])('ruleOfRefusal(%s)', (message, reason, rule) => {
    expect(ruleOfRefusal(message, reason)).toBe(rule);
  });
});
