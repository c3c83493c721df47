import type { ApprovalHold, ApprovalOutcome, Approvals } from '../approvals/registry.js';
import type { EnforcerAudit } from '../audit/types.js';
import { refusal, type Refusal } from '../errors/catalog.js';
import type { Logger } from '../log/logger.js';
import { CATALOG_QUERY, copyOutFormat, parseCatalogSnapshot, type CatalogSnapshot, type CopyOutFormat } from '../sql/index.js';
import { Backend, Frontend } from '../wire/codes.js';
import { decodeBackend } from '../wire/backend.js';
import { decodeFrontend } from '../wire/frontend.js';
import { copyData as copyDataMessage, describe as describeMessage, errorResponse, noticeResponse, query as queryMessage } from '../wire/writers.js';
import { MaskingError, planColumns, type ColumnPlan, type PlanDecision } from '../masking/plan.js';
import { rewriteDataRowTo, type FrameSink } from '../masking/rewrite.js';
import type { CompiledPolicySet } from '../policy/index.js';
import type { StatementFacts } from '../sql/index.js';
import { DataRowScanner } from '../wire/backend.js';
import type { FieldDescription } from '../wire/messages.js';
import { maskingFlowRefusal } from './masking-flow.js';
import { copyFields, decideResult, maskedPredicateColumn, masksSomeColumn, readsMaskedColumn, scrubEchoedValues, touchesMaskedColumn, type MaskerContext } from './result-masker.js';
import { maskCopyBinaryRow, maskCopyCsvRow, maskCopyTextRow } from '../masking/copy.js';
import { decodeClientText, isUtf8, UndecodableText } from './encoding.js';
import { ExpectedReplies } from './expected-replies.js';
import {
  approvalRefusal,
  judgeFunctionCall,
  judgeSql,
  poisonParse,
  poisonQuery,
  type ActivePolicy,
  type Analyze,
  type GateContext,
  type Identity,
  type Verdict,
} from './policy-gate.js';

/** What the policy half of a session needs from the process. */
export interface PolicyRuntime {
  /** The policy in force now, or null before one is loaded (the sidecar then fails closed). */
  current(): ActivePolicy | null;
  /** SQL analysis with the session's lexing settings (cached by the implementation). */
  analyze(text: string, session: SessionSql): ReturnType<Analyze>;
  catalogs: CatalogStore;
  /** The compiled policy set in force (masking decisions need it whole). */
  compiled(): CompiledPolicySet | undefined;
  /** The catalog snapshot of a database, if one was loaded. */
  catalogOf(database: string): CatalogSnapshot | undefined;
  /** Key of the `hash` mask (HMAC-SHA-256), so hashed values join across sessions. */
  maskKey: Buffer;
  approvals: Approvals;
  environment: string;
}

/** Session settings that change how SQL text is read and names resolve. */
export interface SessionSql {
  database: string;
  standardConformingStrings: boolean;
  /** The session's effective schemas, current_schemas(false), e.g. ['public']. */
  searchPath: string[];
}

/** Catalog snapshots per upstream database, shared by the sessions of a process. */
export interface CatalogStore {
  /** True when a snapshot for the database is loaded and recent enough to use. */
  fresh(database: string): boolean;
  store(database: string, snapshot: CatalogSnapshot): void;
  /** Schema changed (DDL): the next session start or idle moment reloads it. */
  invalidate(database: string): void;
}

/** How the enforcer reaches the two connections; the session owns the sockets. */
export interface EnforcerOutlet {
  /** Forwards bytes of the current client frame to the server unchanged. */
  forward(buf: Buffer, start: number, end: number): void;
  sendToServer(bytes: Buffer): void;
  sendToClient(bytes: Buffer): void;
  /** Where rewritten DataRows are written in place, in order with everything else sent to the client. */
  clientFrames: FrameSink;
  /** Writes pending bytes out (after work done outside a data event). */
  flush(): void;
}

/** A query the sidecar itself runs on the session's connection; its replies never reach the client. */
interface InternalQuery {
  internal: 'catalog' | 'search-path';
  /** The first column of the first row. */
  value: string | undefined;
  failed: boolean;
}

/** A simple Query's results: which statement each RowDescription belongs to. */
interface QueryResults {
  results: readonly StatementFacts[];
  index: number;
}

/** A Describe or Execute of a portal (the client's, or one the sidecar sends to learn the columns). */
interface PortalRequest {
  portal: string;
  internal: boolean;
}

/** Per request the server will answer: the refusal that replaces its error, an internal query, or result context. */
type Tag = Refusal | InternalQuery | QueryResults | PortalRequest;

function isRefusal(tag: Tag | undefined): tag is Refusal {
  return tag !== undefined && 'sqlstate' in tag;
}

/** Masking decisions for a result shape, under one policy version. */
interface ResultDecisions {
  policyVersion: string;
  /** The RowDescription they were decided for (its bytes). */
  described: Buffer;
  fields: readonly FieldDescription[];
  /** null: nothing masked. */
  decisions: (PlanDecision | undefined)[] | null;
}

interface PreparedStatement {
  facts: StatementFacts | undefined;
  /** Known after the first Describe of one of its portals. */
  result: ResultDecisions | undefined;
}

/** What the session knows of a portal: its statement's facts and, once described, the masking plan. */
interface Portal {
  statement: string;
  facts: StatementFacts | undefined;
  resultFormats: readonly number[];
  /** undefined: not described yet; null: nothing to mask. */
  plan: ColumnPlan[] | null | undefined;
}

/** Prepared statements and portals remembered per session, at most. */
const MAX_NAMED = 10_000;

function isInternal(tag: Tag | undefined): tag is InternalQuery {
  return tag !== undefined && 'internal' in tag && typeof tag.internal === 'string';
}

/** CommandComplete tags after which the schema may have changed, or the search_path. */
const SCHEMA_CHANGING = /^(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|REFRESH|IMPORT|SECURITY LABEL)\b/;
const PATH_CHANGING = /^(SET|RESET|DISCARD)\b/;
const SEARCH_PATH_QUERY = 'SELECT to_json(current_schemas(false))::text /* dbward: search_path */';

interface Held {
  approval: ApprovalHold;
  kind: 'query' | 'parse' | 'function-call';
  frame: Buffer;
  poison: Buffer;
  facts: StatementFacts[];
}

/**
 * Enforces the policy on one session: judges every statement-carrying message (Query, Parse,
 * FunctionCall), sends refused ones to the server as poison so that the server's own error
 * handling keeps the transaction and the protocol truthful, rewrites that error into the refusal,
 * and holds statements that need approval — queueing everything the client sends behind them, so
 * nothing is reordered.
 */
export class PolicyEnforcer {
  private readonly expected = new ExpectedReplies<Tag>();
  private held: Held | null = null;
  private readonly heldQueue: Buffer[] = [];
  private closed = false;
  /** An internal query (catalog, search_path) is in flight: client messages wait behind it. */
  private internalInFlight = false;
  /** What to re-read at the next idle moment: the schema changed, or maybe the search_path. */
  private refresh: InternalQuery['internal'] | null = null;
  /** current_schemas(false) of this session, as last read. */
  private searchPath: string[] = ['public'];
  /** Prepared statements by name ('' the unnamed one): facts for lineage, and once known, the masking decisions. */
  private readonly statements = new Map<string, PreparedStatement>();
  /** Simple-protocol result decisions per statement shape (the cached facts' frozen output array) and RowDescription. */
  private readonly shapeDecisions = new WeakMap<object, Map<string, ResultDecisions>>();
  private readonly portals = new Map<string, Portal>();
  /** The masking plan of the simple-protocol result being received. */
  private queryPlan: ColumnPlan[] | null = null;
  private readonly scanner = new DataRowScanner();

  constructor(
    private readonly runtime: PolicyRuntime,
    private readonly identity: Identity,
    private readonly sessionId: number,
    private readonly outlet: EnforcerOutlet,
    private readonly log: Logger,
    /** The server's ParameterStatus values as last reported (client_encoding, standard_conforming_strings). */
    private readonly serverParams: ReadonlyMap<string, string>,
    /** Audit: told each verdict, approval outcome and masked row. */
    private readonly audit?: EnforcerAudit,
  ) {
    this.sessionSql.database = identity.database;
  }

  /** True while a statement waits for approval or an internal query runs: client frames must not stream through. */
  get holding(): boolean {
    return this.held !== null || this.internalInFlight;
  }

  /** True while the replies of an internal query are being captured: server frames must not stream through. */
  get capturing(): boolean {
    return this.internalInFlight || this.mayMask();
  }

  /** True when the policy in force classifies anything, so rows may need masking (and must arrive whole). */
  private mayMask(): boolean {
    const set = this.runtime.compiled();
    return set !== undefined && (set.classification.automatic || set.classification.columns.length > 0);
  }

  /**
   * The session is ready: read its search_path, and the database's catalog when no recent snapshot
   * is shared yet, on the session's own connection (in pass-through mode the sidecar has no
   * credentials of its own). Client messages wait until the answer is in.
   */
  start(): void {
    this.runInternal(this.runtime.catalogs.fresh(this.identity.database) ? 'search-path' : 'catalog');
  }

  private runInternal(kind: InternalQuery['internal']): void {
    this.internalInFlight = true;
    this.refresh = null;
    this.expected.push('query', { internal: kind, value: undefined, failed: false });
    this.outlet.sendToServer(queryMessage(kind === 'catalog' ? CATALOG_QUERY : SEARCH_PATH_QUERY));
    this.outlet.flush();
  }

  private onInternalReply(tag: InternalQuery, code: number, buf: Buffer, start: number, end: number, completes: boolean): void {
    if (code === Backend.DataRow && tag.value === undefined) {
      const row = decodeBackend(code, buf, start, end);
      if (row.type === 'DataRow') tag.value = row.values[0]?.toString('utf8');
    } else if (code === Backend.ErrorResponse) {
      tag.failed = true;
      const error = decodeBackend(code, buf, start, end);
      this.log.warn({ query: tag.internal, err: error.type === 'ErrorResponse' ? error.fields.get('M') : undefined }, 'internal query failed; continuing without it');
    }
    if (!completes) return;
    this.internalInFlight = false;
    if (!tag.failed && tag.value !== undefined) {
      try {
        if (tag.internal === 'catalog') {
          const snapshot = parseCatalogSnapshot(tag.value);
          this.runtime.catalogs.store(this.identity.database, snapshot);
          this.searchPath = snapshot.searchPath;
          this.log.debug({ database: this.identity.database, schemas: Object.keys(snapshot.relations).length, bytes: tag.value.length }, 'catalog loaded');
        } else {
          const path: unknown = JSON.parse(tag.value);
          if (Array.isArray(path) && path.every((p) => typeof p === 'string')) this.searchPath = path as string[];
        }
      } catch (error) {
        this.log.warn({ query: tag.internal, err: error instanceof Error ? error.message : String(error) }, 'internal query answer not understood');
      }
    }
    this.replayQueued();
  }

  /**
   * Masking refusals, after the guardrails allowed a statement: predicate probing on masked columns
   * (unless `masking.predicates: allow`), data flows dbward cannot follow (masking-flow.ts),
   * EXECUTE/FETCH of statements and cursors the session did not see prepared or declared, and
   * COPY ... TO STDOUT of masked columns (COPY rows are not masked: fail closed).
   */
  private refuseMaskingLeaks(verdict: Verdict): Verdict {
    if (verdict.kind === 'refuse' || !this.mayMask()) return verdict;
    const set = this.runtime.compiled();
    if (set === undefined) return verdict;
    const ctx = this.maskerContext(set);
    let earlier: Set<string> | undefined;
    for (const facts of verdict.facts) {
      if (set.masking.predicates === 'deny') {
        const column = this.predicateCheck(ctx, facts);
        if (column !== undefined) {
          return maskingRefusal(
            verdict,
            `dbward.masking: the statement filters, joins, groups or sorts on ${column}, which is masked for you`,
            'a predicate on a masked column can reveal its values; set spec.masking.predicates: allow to permit it',
          );
        }
      }
      const unknown = facts.command === 'EXECUTE' || facts.command === 'FETCH' ? this.unknownSessionObject(facts, earlier ?? NO_NAMES) : undefined;
      if (unknown !== undefined && masksSomeColumn(ctx)) {
        return maskingRefusal(verdict, `dbward.masking: ${unknown} was not prepared or declared through dbward, so its rows cannot be masked`, 'prepare it (or declare the cursor) in this session');
      }
      const flow = this.flowCheck(ctx, facts);
      if (flow !== undefined) return maskingRefusal(verdict, flow, undefined);
      if (facts.command === 'PREPARE' && facts.preparedName !== undefined) (earlier ??= new Set()).add(`p:${facts.preparedName}`);
      if (facts.command === 'DECLARE CURSOR' && facts.cursorName !== undefined) (earlier ??= new Set()).add(`c:${facts.cursorName}`);
    }
    for (const copy of verdict.facts) {
      if (copy.command !== 'COPY' || copy.readTables.length === 0 || !readsMaskedColumn(ctx, copy)) continue;
      // COPY ... TO STDOUT whose columns are all known is masked row by row; anything else (no
      // catalog to expand the table, COPY options this sidecar does not parse) is refused.
      const format = copy.output.length > 0 && copy.output.every((c) => !c.opaque) ? copyOutFormat(copy.text) : undefined;
      if (format === undefined) {
        return maskingRefusal(verdict, `dbward.masking: COPY of ${copy.readTables.join(', ')} would send masked columns unmasked`, 'select the rows instead (they are masked), or copy only columns that are not masked');
      }
      this.copyFormats.set(copy, format);
    }
    return verdict;
  }

  /** Formats of COPY ... TO STDOUT statements whose rows are masked, by their facts (see onResultMessage). */
  private readonly copyFormats = new WeakMap<StatementFacts, CopyOutFormat>();
  /** The COPY being received, when its rows are masked. */
  private copyOut: { plan: ColumnPlan[]; format: CopyOutFormat; headerPending: boolean } | null = null;

  /** Masks one CopyData row of a masked COPY; true when a rewritten message was sent instead. */
  private maskCopyData(buf: Buffer, start: number, end: number): boolean {
    const copy = this.copyOut;
    if (copy === null) return false;
    if (copy.headerPending) {
      copy.headerPending = false; // column names, not values
      return false;
    }
    const payload = buf.subarray(start + 5, end);
    const key = this.runtime.maskKey;
    const f = copy.format;
    // CopyOutFormat carries the text and CSV options under the names the maskers take.
    const masked = f.format === 'binary' ? maskCopyBinaryRow(payload, copy.plan, key) : f.format === 'csv' ? maskCopyCsvRow(payload, copy.plan, key, f) : maskCopyTextRow(payload, copy.plan, key, f);
    if (masked === null) return false;
    this.outlet.sendToClient(copyDataMessage(masked));
    return true;
  }

  /** CopyOutResponse of a statement whose COPY rows are masked: the plan for its rows. */
  private startCopyOut(facts: StatementFacts | undefined): void {
    this.copyOut = null;
    const format = facts === undefined ? undefined : this.copyFormats.get(facts);
    const set = this.runtime.compiled();
    if (facts === undefined || format === undefined || set === undefined) return;
    const ctx = this.maskerContext(set);
    const fields = copyFields(ctx, facts, format.format === 'binary');
    const decisions = decideResult(ctx, fields, facts);
    if (decisions === null) return;
    this.copyOut = { plan: planColumns(fields, decisions), format, headerPending: format.header && format.format !== 'binary' };
  }

  /** Data-flow check per statement shape (the cached facts' frozen array), policy version and catalog. */
  private readonly flowChecks = new WeakMap<object, { version: string; catalog: object | undefined; refusal: string | undefined }>();

  private flowCheck(ctx: MaskerContext, facts: StatementFacts): string | undefined {
    if (!Object.isFrozen(facts.columns)) return maskingFlowRefusal(ctx, facts, this.searchPath);
    const cached = this.flowChecks.get(facts.columns);
    if (cached !== undefined && cached.version === ctx.set.version && cached.catalog === ctx.catalog) return cached.refusal;
    const result = maskingFlowRefusal(ctx, facts, this.searchPath);
    this.flowChecks.set(facts.columns, { version: ctx.set.version, catalog: ctx.catalog, refusal: result });
    return result;
  }

  /** `EXECUTE p` / `FETCH c` of something this session never saw prepared or declared. */
  private unknownSessionObject(facts: StatementFacts, sameString: ReadonlySet<string>): string | undefined {
    const p = facts.preparedName;
    if (facts.command === 'EXECUTE' && p !== undefined && !this.sqlPrepared.has(p) && !sameString.has(`p:${p}`)) return `prepared statement ${p}`;
    const c = facts.cursorName;
    if (facts.command === 'FETCH' && c !== undefined && !this.cursors.has(c) && !sameString.has(`c:${c}`)) return `cursor ${c}`;
    return undefined;
  }

  /**
   * SQL-level prepared statements and cursors: EXECUTE returns the PREPARE's rows and FETCH the
   * DECLARE's, so their results are masked with that statement's lineage.
   */
  private readonly sqlPrepared = new Map<string, StatementFacts>();
  private readonly cursors = new Map<string, StatementFacts>();

  private noteSessionObjects(facts: readonly StatementFacts[]): void {
    for (const f of facts) {
      switch (f.command) {
        case 'PREPARE':
          if (f.preparedName !== undefined && this.sqlPrepared.size < MAX_NAMED) this.sqlPrepared.set(f.preparedName, f);
          break;
        case 'DEALLOCATE':
          if (f.preparedName === undefined) this.sqlPrepared.clear();
          else this.sqlPrepared.delete(f.preparedName);
          break;
        case 'DECLARE CURSOR':
          if (f.cursorName !== undefined && this.cursors.size < MAX_NAMED) this.cursors.set(f.cursorName, f);
          break;
        case 'CLOSE CURSOR':
          if (f.cursorName === undefined) this.cursors.clear();
          else this.cursors.delete(f.cursorName);
          break;
        case 'DISCARD':
          this.sqlPrepared.clear();
          this.cursors.clear();
          break;
      }
    }
  }

  /** EXECUTE and FETCH take the lineage of what they run (the facts the results are masked with). */
  private withSessionLineage(facts: StatementFacts[]): StatementFacts[] {
    if (this.sqlPrepared.size === 0 && this.cursors.size === 0) return facts;
    return facts.map((f) => {
      const source = f.command === 'EXECUTE' && f.preparedName !== undefined ? this.sqlPrepared.get(f.preparedName) : f.command === 'FETCH' && f.cursorName !== undefined ? this.cursors.get(f.cursorName) : undefined;
      return source === undefined ? f : { ...f, output: source.output, readTables: source.readTables, columns: source.columns };
    });
  }

  /** Predicate probing per statement shape (the cached facts' frozen array) and policy version. */
  private readonly predicateChecks = new WeakMap<object, { version: string; column: string | undefined }>();

  private predicateCheck(ctx: MaskerContext, facts: StatementFacts): string | undefined {
    if (!Object.isFrozen(facts.predicateColumns)) return maskedPredicateColumn(ctx, facts);
    const cached = this.predicateChecks.get(facts.predicateColumns);
    if (cached !== undefined && cached.version === ctx.set.version) return cached.column;
    const column = maskedPredicateColumn(ctx, facts);
    this.predicateChecks.set(facts.predicateColumns, { version: ctx.set.version, column });
    return column;
  }

  /** Records a forwarded statement: its results' lineage (Query) or its prepared statement (Parse). */
  private pushForwarded(kind: Held['kind'], facts: StatementFacts[], frame: Buffer, start: number): void {
    this.noteSessionObjects(facts);
    facts = this.withSessionLineage(facts);
    if (kind === 'query') {
      this.expected.push('query', { results: facts, index: 0 });
      return;
    }
    if (kind === 'parse') {
      const name = frame.toString('utf8', start + 5, frame.indexOf(0, start + 5));
      if (this.statements.size >= MAX_NAMED) this.statements.clear();
      this.statements.set(name, { facts: facts[0], result: undefined });
    }
    this.expected.push(kind);
  }

  /**
   * Masking of results. Returns true when the message was consumed (replaced, or an internal
   * Describe's reply). Rows that do not fit their plan throw: the session then closes the
   * connection rather than forward something unmasked.
   */
  private onResultMessage(code: number, buf: Buffer, start: number, end: number, tag: Tag | undefined): boolean {
    if (tag === undefined || isRefusal(tag) || isInternal(tag)) return false;
    if ('results' in tag) {
      switch (code) {
        case Backend.RowDescription:
          this.queryPlan = this.planForShape(buf, start, end, tag.results[tag.index]);
          return false;
        case Backend.DataRow:
          return this.queryPlan !== null && this.maskRow(buf, start, end, this.queryPlan);
        case Backend.CopyOutResponse:
          this.startCopyOut(tag.results[tag.index]);
          return false;
        case Backend.CopyData:
          return this.maskCopyData(buf, start, end);
        case Backend.CommandComplete:
        case Backend.EmptyQueryResponse:
        case Backend.ErrorResponse:
          tag.index++;
          this.queryPlan = null;
          this.copyOut = null;
          return false;
        default:
          return false;
      }
    }
    const portal = this.portals.get(tag.portal);
    if (code === Backend.RowDescription || code === Backend.NoData) {
      if (portal !== undefined) {
        const statement = this.statements.get(portal.statement);
        const ofStatement = statement !== undefined && statement.facts === portal.facts ? statement : undefined;
        let result: ResultDecisions | undefined;
        if (code === Backend.RowDescription) {
          // A prepared statement executed again (Bind, Describe, Execute) gets the same
          // RowDescription: its decisions, still current, hold without decoding it again.
          const known = this.current(ofStatement?.result);
          result = known !== undefined && known.described.length === end - start && known.described.compare(buf, start, end) === 0 ? known : this.decide(buf, start, end, portal.facts);
        }
        portal.plan = result === undefined || result.decisions === null ? null : planColumns(result.fields, result.decisions);
        if (ofStatement !== undefined && result !== undefined) ofStatement.result = result;
      }
      return tag.internal;
    }
    if (code === Backend.CopyOutResponse) {
      this.startCopyOut(portal?.facts);
      return false;
    }
    if (code === Backend.CopyData) return this.maskCopyData(buf, start, end);
    if (code === Backend.CommandComplete || code === Backend.ErrorResponse) this.copyOut = null;
    if (code === Backend.DataRow) {
      const plan = portal?.plan;
      if (plan === undefined && this.mayMask()) throw new MaskingError('a row arrived for a portal whose columns are unknown');
      return plan !== undefined && plan !== null && this.maskRow(buf, start, end, plan);
    }
    return false;
  }

  /**
   * Can an error or notice for this request echo a value of a masked column? Yes when its
   * statement touches (reads or writes) a table with a column masked for this identity, or when
   * the statement is not known (a notice between statements, an error of a Bind).
   */
  private mayEchoMasked(tag: Tag | undefined): boolean {
    const set = this.runtime.compiled();
    if (set === undefined || tag === undefined || isInternal(tag) || isRefusal(tag)) return true;
    const facts = 'results' in tag ? tag.results[tag.index] : this.portals.get(tag.portal)?.facts;
    if (facts === undefined) return true;
    return touchesMaskedColumn(this.maskerContext(set), facts);
  }

  /** The masking decisions for a RowDescription of a statement (computed; callers cache). */
  private decide(buf: Buffer, start: number, end: number, facts: StatementFacts | undefined): ResultDecisions | undefined {
    const set = this.runtime.compiled();
    if (set === undefined) return undefined;
    const message = decodeBackend(Backend.RowDescription, buf, start, end);
    if (message.type !== 'RowDescription') return undefined;
    const ctx = this.maskerContext(set);
    return { policyVersion: set.version, described: Buffer.from(buf.subarray(start, end)), fields: message.fields, decisions: decideResult(ctx, message.fields, facts) };
  }

  private maskerContext(set: CompiledPolicySet): MaskerContext {
    return { set, catalog: this.runtime.catalogOf(this.identity.database), identity: this.identity, environment: this.runtime.environment };
  }

  /** Decisions still valid under the policy in force. */
  private current(result: ResultDecisions | undefined): ResultDecisions | undefined {
    if (result === undefined || result.policyVersion !== this.runtime.compiled()?.version) return undefined;
    // Content sampling of a column ended (clean, or something found): decide again.
    if (result.decisions !== null && result.decisions.some((d) => d?.action === 'watch' && d.watch.settled())) return undefined;
    return result;
  }

  /** Simple protocol: the plan of a result, cached per statement shape and RowDescription. */
  private planForShape(buf: Buffer, start: number, end: number, facts: StatementFacts | undefined): ColumnPlan[] | null {
    if (facts === undefined || !Object.isFrozen(facts.output)) {
      const result = this.decide(buf, start, end, facts);
      return result === undefined || result.decisions === null ? null : planColumns(result.fields, result.decisions);
    }
    // The same statement shape and RowDescription as last time (a client repeating a statement):
    // compare bytes, no key string.
    const last = this.lastShape;
    if (last !== null && last.output === facts.output && last.bytes.length === end - start && last.bytes.compare(buf, start, end) === 0) {
      const known = this.current(last.result);
      if (known !== undefined) return last.plan;
    }
    let byDescription = this.shapeDecisions.get(facts.output);
    if (byDescription === undefined) {
      byDescription = new Map();
      this.shapeDecisions.set(facts.output, byDescription);
    }
    const key = buf.toString('latin1', start, end);
    let result = this.current(byDescription.get(key));
    if (result === undefined) {
      result = this.decide(buf, start, end, facts);
      if (result === undefined) return null;
      if (byDescription.size > 64) byDescription.clear();
      byDescription.set(key, result);
    }
    const plan = result.decisions === null ? null : planColumns(result.fields, result.decisions);
    this.lastShape = { output: facts.output, bytes: Buffer.from(buf.subarray(start, end)), result, plan };
    return plan;
  }

  /** The last simple-protocol result shape planned (see planForShape). */
  private lastShape: { output: object; bytes: Buffer; result: ResultDecisions; plan: ColumnPlan[] | null } | null = null;

  private maskRow(buf: Buffer, start: number, end: number, plan: readonly ColumnPlan[]): boolean {
    if (!rewriteDataRowTo(this.outlet.clientFrames, buf, start, end, plan, this.scanner, this.runtime.maskKey)) return false;
    this.audit?.masked(plan);
    return true;
  }

  /** CommandComplete of a client statement: note schema and search_path changes. */
  private noteCommand(buf: Buffer, start: number, end: number): void {
    // `SELECT n`, the common case, changes nothing (CREATE TABLE AS reports SELECT too, and its
    // table is new: nothing it could unmask until the catalog is read at the next DDL or TTL).
    if (buf[start + 5] === 0x53 && buf[start + 6] === 0x45 && buf[start + 7] === 0x4c) return;
    const tag = buf.toString('latin1', start + 5, Math.min(end - 1, start + 5 + 24));
    if (SCHEMA_CHANGING.test(tag)) {
      this.runtime.catalogs.invalidate(this.identity.database);
      this.refresh = 'catalog';
    } else if (PATH_CHANGING.test(tag) && this.refresh === null) {
      this.refresh = 'search-path';
    }
  }

  /** A frontend message after authentication (Terminate excepted: the session handles it). */
  onClientMessage(code: number, buf: Buffer, start: number, end: number): void {
    if (this.held !== null || this.internalInFlight) {
      this.heldQueue.push(Buffer.from(buf.subarray(start, end)));
      return;
    }
    switch (code) {
      case Frontend.Query: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type !== 'Query') return;
        const text = this.sqlText(message.query, buf, start + 5);
        const gate = this.gateContext();
        this.act(gate === null ? PolicyEnforcer.NO_POLICY : judgeSqlText(text, gate), 'query', buf, start, end, poisonQuery());
        return;
      }
      case Frontend.Parse: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type !== 'Parse') return;
        const text = this.sqlText(message.query, buf, buf.indexOf(0, start + 5) + 1);
        const gate = this.gateContext();
        this.act(gate === null ? PolicyEnforcer.NO_POLICY : judgeSqlText(text, gate), 'parse', buf, start, end, poisonParse(message.name));
        return;
      }
      case Frontend.FunctionCall: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type !== 'FunctionCall') return;
        const gate = this.gateContext();
        this.act(gate === null ? PolicyEnforcer.NO_POLICY : judgeFunctionCall(message.functionOid, gate), 'function-call', buf, start, end, poisonQuery());
        return;
      }
      case Frontend.Bind: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type === 'Bind') {
          if (this.portals.size >= MAX_NAMED) this.portals.clear();
          const statement = this.statements.get(message.statement);
          const known = this.current(statement?.result);
          this.portals.set(message.portal, {
            statement: message.statement,
            facts: statement?.facts,
            resultFormats: message.resultFormats,
            // Decisions known for the statement: the portal's plan needs only the Bind's formats.
            plan: known === undefined ? undefined : known.decisions === null ? null : planColumns(known.fields, known.decisions, message.resultFormats),
          });
        }
        this.expected.push('bind');
        this.outlet.forward(buf, start, end);
        return;
      }
      case Frontend.Describe: {
        const message = decodeFrontend(code, buf, start, end);
        this.expected.push('describe', message.type === 'Describe' && message.target === 'P' ? { portal: message.name, internal: false } : undefined);
        this.outlet.forward(buf, start, end);
        return;
      }
      case Frontend.Execute: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type === 'Execute') {
          const portal = this.portals.get(message.portal);
          if (portal !== undefined && portal.plan === undefined && this.mayMask()) {
            // The client did not describe the portal: ask the server for its columns first, so
            // that every row can be masked; the client never sees this Describe's reply.
            this.expected.push('describe', { portal: message.portal, internal: true });
            this.outlet.sendToServer(describeMessage('P', message.portal));
          }
          this.expected.push('execute', { portal: message.portal, internal: false });
        } else {
          this.expected.push('execute');
        }
        this.outlet.forward(buf, start, end);
        return;
      }
      case Frontend.Close: {
        const message = decodeFrontend(code, buf, start, end);
        if (message.type === 'Close') {
          if (message.target === 'P') this.portals.delete(message.name);
          else this.statements.delete(message.name);
        }
        this.expected.push('close');
        this.outlet.forward(buf, start, end);
        return;
      }
      default: {
        const kind = ExpectedReplies.kindOf(code);
        if (kind !== undefined) this.expected.push(kind);
        this.outlet.forward(buf, start, end);
      }
    }
  }

  /**
   * A backend message after authentication. Returns true when the enforcer consumed it (the
   * session must not forward it).
   */
  onServerMessage(code: number, buf: Buffer, start: number, end: number): boolean {
    const match = this.expected.onBackend(code);
    const tag = match.request?.tag;
    if (isInternal(tag)) {
      this.onInternalReply(tag, code, buf, start, end, match.completes);
      return true;
    }
    const echoes = (code === Backend.ErrorResponse || code === Backend.NoticeResponse) && !isRefusal(tag) && this.mayMask() && this.mayEchoMasked(tag);
    if (this.onResultMessage(code, buf, start, end, tag)) return true;
    if (echoes) {
      const message = decodeBackend(code, buf, start, end);
      if ((message.type === 'ErrorResponse' || message.type === 'NoticeResponse') && scrubEchoedValues(message.fields)) {
        this.outlet.sendToClient(code === Backend.ErrorResponse ? errorResponse(message.fields) : noticeResponse(message.fields));
        return true;
      }
    }
    if (code === Backend.CommandComplete) this.noteCommand(buf, start, end);
    if (code === Backend.ReadyForQuery && this.refresh !== null && buf[start + 5] === 0x49 && this.expected.length === 0 && this.held === null) {
      // Idle and outside a transaction: re-read what a statement may have changed.
      this.runInternal(this.refresh);
      return false;
    }
    if (code !== Backend.ErrorResponse || !isRefusal(tag)) return false;
    // The server's error for a poisoned request: the client sees the refusal instead. A FATAL
    // (the server going away) is passed through as it is.
    const error = decodeBackend(code, buf, start, end);
    if (error.type === 'ErrorResponse' && ['FATAL', 'PANIC'].includes(error.fields.get('V') ?? '')) return false;
    this.outlet.sendToClient(errorResponse(refusalFields(tag)));
    return true;
  }

  /** A CancelRequest for this session: withdraws a held statement. Returns true if it did. */
  cancelHeld(): boolean {
    if (this.held === null) return false;
    this.held.approval.cancel();
    return true;
  }

  /** The session is closing: withdraw what is held. */
  close(): void {
    this.closed = true;
    if (this.held !== null) this.held.approval.cancel();
  }

  /**
   * The gate context for the policy in force, or null before one is loaded. One object per
   * session, refreshed in place (the policy and the session's SQL settings can change between
   * statements): judging a statement allocates no context and no closure.
   */
  private gateContext(): GateContext | null {
    const policy = this.runtime.current();
    if (policy === null) return null;
    const session = this.sessionSql;
    session.standardConformingStrings = this.serverParams.get('standard_conforming_strings') !== 'off';
    session.searchPath = this.searchPath;
    let gate = this.gate;
    if (gate === undefined) {
      const runtime = this.runtime;
      gate = this.gate = { identity: this.identity, environment: runtime.environment, analyze: (text) => runtime.analyze(text, session), policy };
    }
    gate.policy = policy;
    gate.environment = this.runtime.environment;
    return gate;
  }

  /** The session's SQL settings as the analysis reads them, updated in place (see gateContext). */
  private readonly sessionSql: SessionSql = { database: '', standardConformingStrings: true, searchPath: [] };
  private gate: GateContext | undefined;

  private static readonly NO_POLICY: Verdict = { kind: 'refuse', refusal: { ...refusal('no-policy'), severity: 'ERROR' }, facts: [], decisions: [] };

  /**
   * The statement text as the server will read it: the codec's UTF-8 string when the client
   * encoding is UTF-8, else the raw bytes decoded in the client encoding (an error if they cannot
   * be, which the gate then treats as an unparseable statement).
   */
  private sqlText(utf8: string, buf: Buffer, textStart: number): string | UndecodableText {
    const encoding = this.serverParams.get('client_encoding') ?? 'UTF8';
    if (encoding === 'UTF8' || isUtf8(encoding)) return utf8;
    try {
      return decodeClientText(buf.subarray(textStart, buf.indexOf(0, textStart)), encoding);
    } catch (error) {
      if (error instanceof UndecodableText) return error;
      throw error;
    }
  }

  private act(verdict: Verdict, kind: Held['kind'], buf: Buffer, start: number, end: number, poison: Buffer): void {
    verdict = this.refuseMaskingLeaks(verdict);
    this.audit?.decided(verdict);
    switch (verdict.kind) {
      case 'forward':
        this.pushForwarded(kind, verdict.facts, buf, start);
        this.outlet.forward(buf, start, end);
        return;
      case 'refuse':
        this.log.info({ reason: verdict.refusal.reason, message: verdict.refusal.message }, 'statement refused');
        this.expected.push(kind, verdict.refusal);
        this.outlet.sendToServer(poison);
        return;
      case 'hold': {
        const statement = verdict.facts.map((f) => f.text).join('; ');
        const approval = this.runtime.approvals.request({
          rule: verdict.rule,
          ...(verdict.message !== undefined ? { message: verdict.message } : {}),
          statement,
          identity: identityFields(this.identity),
          sessionId: this.sessionId,
          timeoutMs: verdict.timeoutMs,
        });
        this.held = { approval, kind, frame: Buffer.from(buf.subarray(start, end)), poison, facts: verdict.facts };
        // A remote store (the control plane's AccessRequest) names the request later: announce it then.
        const announce = (id: string): void => {
          if (this.held?.approval !== approval || this.closed) return;
          this.log.info({ approval: id, rule: verdict.rule }, 'statement held for approval');
          this.outlet.sendToClient(
            noticeResponse(
              new Map([
                ['S', 'NOTICE'],
                ['V', 'NOTICE'],
                ['C', '00000'],
                ['M', `dbward: waiting for approval ${id}`],
                ['D', `rule ${verdict.rule}${verdict.message !== undefined ? `: ${verdict.message}` : ''}`],
                ['H', this.runtime.approvals.hint?.(id) ?? `dbward approvals approve ${id}   (or deny ${id})`],
              ]),
            ),
          );
          this.outlet.flush();
        };
        if (typeof approval.id === 'string') announce(approval.id);
        else approval.id.then(announce, () => undefined);
        approval.outcome.then((result) => this.release(result), (error: unknown) => this.log.error({ err: error }, 'approval wait failed'));
        return;
      }
    }
  }

  private release(outcome: ApprovalOutcome): void {
    const held = this.held;
    if (held === null || this.closed) return;
    this.held = null;
    this.log.info({ approval: outcome.request.id, state: outcome.state, by: outcome.request.decidedBy }, 'approval settled');
    this.audit?.settled(outcome.state === 'approved');
    if (outcome.state === 'approved') {
      this.pushForwarded(held.kind, held.facts, held.frame, 0);
      this.outlet.sendToServer(held.frame);
    } else {
      this.expected.push(held.kind, approvalRefusal(outcome.request.id, outcome.state, outcome.request.reason));
      this.outlet.sendToServer(held.poison);
    }
    this.replayQueued();
  }

  /** Replays what the client sent while waiting, in order; it may hold again. */
  private replayQueued(): void {
    while (this.heldQueue.length > 0 && this.held === null && !this.internalInFlight) {
      const frame = this.heldQueue.shift()!;
      this.onClientMessage(frame[0]!, frame, 0, frame.length);
    }
    this.outlet.flush();
  }
}

const NO_NAMES: ReadonlySet<string> = new Set();

/** A masking refusal (42501, `dbward: denied by dbward.masking: ...`) in place of a verdict. */
function maskingRefusal(verdict: Verdict, message: string, hint: string | undefined): Verdict {
  return {
    kind: 'refuse',
    refusal: refusal('guardrail-denied', message, hint === undefined ? undefined : { hint }),
    facts: verdict.facts,
    decisions: verdict.decisions,
  };
}

/** judgeSql, or an unparseable verdict for text that could not be decoded. */
function judgeSqlText(text: string | UndecodableText, ctx: GateContext): Verdict {
  if (typeof text === 'string') return judgeSql(text, ctx);
  return judgeSql('', { ...ctx, analyze: () => ({ error: text.message }) });
}

function identityFields(identity: Identity): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(identity)) if (typeof value === 'string' && value !== '') fields[key] = value;
  return fields;
}

/** ErrorResponse fields in PostgreSQL's order. */
export function refusalFields(why: Refusal): Map<string, string> {
  const fields = new Map<string, string>([
    ['S', why.severity],
    ['V', why.severity],
    ['C', why.sqlstate],
    ['M', why.message],
  ]);
  if (why.detail !== undefined) fields.set('D', why.detail);
  if (why.hint !== undefined) fields.set('H', why.hint);
  return fields;
}
