import { describe, expect, it } from 'vitest';
import { Backend, Frontend } from '../wire/codes.js';
import { ExpectedReplies, type RequestKind } from './expected-replies.js';

const B = Backend;
type Step = [code: number, request: RequestKind | undefined, completes: boolean, skipped?: RequestKind[]];

function replay(requests: Array<[RequestKind, string?]>, steps: Step[]): ExpectedReplies<string> {
  const q = new ExpectedReplies<string>();
  for (const [kind, tag] of requests) q.push(kind, tag);
  steps.forEach(([code, kind, completes, skipped = []], i) => {
    const match = q.onBackend(code);
    expect({ step: i, kind: match.request?.kind, completes: match.completes, skipped: match.skipped.map((s) => s.kind) }).toEqual({
      step: i,
      kind,
      completes,
      skipped,
    });
  });
  return q;
}

describe('ExpectedReplies', () => {
  it('maps frontend message types to request kinds', () => {
    expect(ExpectedReplies.kindOf(Frontend.Parse)).toBe('parse');
    expect(ExpectedReplies.kindOf(Frontend.Sync)).toBe('sync');
    expect(ExpectedReplies.kindOf(Frontend.Query)).toBe('query');
    expect(ExpectedReplies.kindOf(Frontend.Flush)).toBeUndefined();
    expect(ExpectedReplies.kindOf(Frontend.CopyData)).toBeUndefined();
  });

  it('follows a successful pipeline of Parse/Bind/Describe/Execute/Sync', () => {
    const q = replay(
      [['parse'], ['bind'], ['describe'], ['execute'], ['sync']],
      [
        [B.ParseComplete, 'parse', true],
        [B.BindComplete, 'bind', true],
        [B.RowDescription, 'describe', true],
        [B.DataRow, 'execute', false],
        [B.DataRow, 'execute', false],
        [B.NoticeResponse, undefined, false],
        [B.CommandComplete, 'execute', true],
        [B.ReadyForQuery, 'sync', true],
      ],
    );
    expect(q.length).toBe(0);
  });

  it('describes a statement: ParameterDescription then NoData', () => {
    replay(
      [['describe'], ['sync']],
      [
        [B.ParameterDescription, 'describe', false],
        [B.NoData, 'describe', true],
        [B.ReadyForQuery, 'sync', true],
      ],
    );
  });

  it('skips the requests the server discards after an error, up to the Sync', () => {
    replay(
      [['parse', 'p1'], ['bind'], ['execute'], ['parse', 'p2'], ['sync'], ['parse', 'p3'], ['sync']],
      [
        [B.ErrorResponse, 'parse', true],
        [B.ReadyForQuery, 'sync', true, ['bind', 'execute', 'parse']],
        [B.ParseComplete, 'parse', true],
        [B.ReadyForQuery, 'sync', true],
      ],
    );
  });

  it('attributes an error to the request that failed, not to a later one', () => {
    const q = new ExpectedReplies<string>();
    q.push('parse', 'first');
    q.push('parse', 'poison');
    q.push('sync');
    expect(q.onBackend(B.ParseComplete).request?.tag).toBe('first');
    expect(q.onBackend(B.ErrorResponse).request?.tag).toBe('poison');
    expect(q.onBackend(B.ReadyForQuery).request?.kind).toBe('sync');
  });

  it('an execute error completes the execute and discards to Sync', () => {
    replay(
      [['bind'], ['execute'], ['execute'], ['sync']],
      [
        [B.BindComplete, 'bind', true],
        [B.DataRow, 'execute', false],
        [B.ErrorResponse, 'execute', true],
        [B.ReadyForQuery, 'sync', true, ['execute']],
      ],
    );
  });

  it('keeps a suspended portal pending only until PortalSuspended', () => {
    replay(
      [['execute'], ['execute'], ['sync']],
      [
        [B.DataRow, 'execute', false],
        [B.PortalSuspended, 'execute', true],
        [B.DataRow, 'execute', false],
        [B.CommandComplete, 'execute', true],
        [B.ReadyForQuery, 'sync', true],
      ],
    );
  });

  it('a simple query spans several statements, errors included, until ReadyForQuery', () => {
    replay(
      [['query'], ['query']],
      [
        [B.RowDescription, 'query', false],
        [B.DataRow, 'query', false],
        [B.CommandComplete, 'query', false],
        [B.ErrorResponse, 'query', false],
        [B.ReadyForQuery, 'query', true],
        [B.EmptyQueryResponse, 'query', false],
        [B.ReadyForQuery, 'query', true],
      ],
    );
  });

  it('follows COPY inside a simple query and inside an Execute', () => {
    replay(
      [['query'], ['execute'], ['sync']],
      [
        [B.CopyOutResponse, 'query', false],
        [B.CopyData, 'query', false],
        [B.CopyDone, 'query', false],
        [B.CommandComplete, 'query', false],
        [B.ReadyForQuery, 'query', true],
        [B.CopyInResponse, 'execute', false],
        [B.CommandComplete, 'execute', true],
        [B.ReadyForQuery, 'sync', true],
      ],
    );
  });

  it('treats notices, notifications and parameter status as asynchronous', () => {
    const q = new ExpectedReplies<string>();
    q.push('sync');
    for (const code of [B.NoticeResponse, B.NotificationResponse, B.ParameterStatus]) {
      expect(q.onBackend(code)).toEqual({ request: undefined, completes: false, skipped: [] });
    }
    expect(q.length).toBe(1);
  });

  it('stays correct across many requests (queue compaction)', () => {
    const q = new ExpectedReplies<number>();
    for (let i = 0; i < 5000; i++) {
      q.push('parse', i);
      q.push('sync');
      expect(q.onBackend(B.ParseComplete).request?.tag).toBe(i);
      expect(q.onBackend(B.ReadyForQuery).request?.kind).toBe('sync');
    }
    expect(q.length).toBe(0);
  });
});
