import { Backend, Frontend } from '../wire/codes.js';

/**
 * The replies the client is owed, in order: one entry per frontend message that the server
 * answers (Parse, Bind, Describe, Execute, Close, Sync, Query, FunctionCall). Backend messages are
 * matched against the head of the queue, so the session always knows which request a reply
 * belongs to — which statement an ErrorResponse is about, which Execute a DataRow comes from —
 * and can inject or swallow messages without desynchronising the client. (The same idea as
 * pgdog's protocol state queue.)
 *
 * Extended protocol: after an error, the server discards every message up to the next Sync; the
 * entries of the discarded messages are dropped here at the same point. Simple protocol: a Query
 * is answered by any number of statement results and ends with ReadyForQuery.
 */

export type RequestKind = 'parse' | 'bind' | 'describe' | 'execute' | 'close' | 'sync' | 'query' | 'function-call';

/** One request the server will answer. `tag` is the session's own annotation (e.g. a refusal). */
export interface Expected<T> {
  kind: RequestKind;
  tag: T | undefined;
}

/** What a backend message meant for the request at the head of the queue. */
export interface ReplyMatch<T> {
  /** The request this message answers, or undefined for asynchronous messages and surprises. */
  request: Expected<T> | undefined;
  /** True when this message is the last one for that request. */
  completes: boolean;
  /** Requests discarded by the server because of an earlier error (extended protocol). */
  skipped: Expected<T>[];
}

const KIND_BY_FRONTEND: Partial<Record<number, RequestKind>> = {
  [Frontend.Parse]: 'parse',
  [Frontend.Bind]: 'bind',
  [Frontend.Describe]: 'describe',
  [Frontend.Execute]: 'execute',
  [Frontend.Close]: 'close',
  [Frontend.Sync]: 'sync',
  [Frontend.Query]: 'query',
  [Frontend.FunctionCall]: 'function-call',
};

/** Backend messages that are not replies to a request: they may arrive at any time. */
function isAsynchronous(code: number): boolean {
  return code === Backend.NoticeResponse || code === Backend.NotificationResponse || code === Backend.ParameterStatus;
}

export class ExpectedReplies<T> {
  private readonly queue: (Expected<T> | undefined)[] = [];
  private head = 0;
  /** Extended protocol: an error occurred; requests up to the next Sync are being discarded. */
  private discarding = false;

  /** The request kind a frontend message creates, or undefined (Flush, CopyData, Terminate, ...). */
  static kindOf(code: number): RequestKind | undefined {
    return KIND_BY_FRONTEND[code];
  }

  /** Records a request forwarded to the server. */
  push(kind: RequestKind, tag?: T): void {
    this.queue.push({ kind, tag });
  }

  /** Requests still awaiting their replies. */
  get length(): number {
    return this.queue.length - this.head;
  }

  /** The request at the head of the queue. */
  peek(): Expected<T> | undefined {
    return this.queue[this.head];
  }

  /** Every request still pending, oldest first. */
  pending(): Expected<T>[] {
    return this.queue.slice(this.head).filter((e): e is Expected<T> => e !== undefined);
  }

  /**
   * Matches one backend message (by type byte) against the queue. Call for every message the
   * server sends after authentication, in order.
   */
  onBackend(code: number): ReplyMatch<T> {
    if (isAsynchronous(code)) return { request: undefined, completes: false, skipped: [] };
    const skipped: Expected<T>[] = [];
    if (this.discarding && code === Backend.ReadyForQuery) {
      // Everything between the error and the Sync was discarded by the server.
      while (this.length > 0 && this.peek()!.kind !== 'sync') skipped.push(this.shift()!);
      this.discarding = false;
    }
    const request = this.peek();
    if (request === undefined) return { request: undefined, completes: false, skipped };
    const completes = this.completes(request.kind, code);
    if (code === Backend.ErrorResponse && request.kind !== 'query' && request.kind !== 'sync' && request.kind !== 'function-call') {
      // Extended protocol: this request failed; the server skips to the Sync.
      this.shift();
      this.discarding = true;
      return { request, completes: true, skipped };
    }
    if (completes) this.shift();
    return { request, completes, skipped };
  }

  /** Forgets everything (the connection is gone). */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
    this.discarding = false;
  }

  private completes(kind: RequestKind, code: number): boolean {
    switch (kind) {
      case 'parse':
        return code === Backend.ParseComplete;
      case 'bind':
        return code === Backend.BindComplete;
      case 'close':
        return code === Backend.CloseComplete;
      case 'describe':
        // Statement: ParameterDescription then RowDescription or NoData. Portal: one of the two.
        return code === Backend.RowDescription || code === Backend.NoData;
      case 'execute':
        return (
          code === Backend.CommandComplete ||
          code === Backend.EmptyQueryResponse ||
          code === Backend.PortalSuspended ||
          code === Backend.ErrorResponse
        );
      case 'sync':
      case 'query':
      case 'function-call':
        return code === Backend.ReadyForQuery;
    }
  }

  private shift(): Expected<T> | undefined {
    const item = this.queue[this.head];
    if (item === undefined) return undefined;
    this.queue[this.head] = undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}
