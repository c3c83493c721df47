import { randomBytes } from 'node:crypto';
import type { Approvals } from '../approvals/registry.js';
import { decideStatement, type CompiledPolicySet } from '../policy/index.js';
import type { PolicyRuntime, SessionSql } from '../session/enforcer.js';
import type { ActivePolicy, Identity, StatementDecision } from '../session/policy-gate.js';
import { FactsCache, type CatalogSnapshot, type StatementFacts } from '../sql/index.js';

/**
 * Joins the policy engine and the SQL analysis into what a session needs ({@link PolicyRuntime}).
 * No I/O: the caller supplies the policy set in force (from the file watcher, or later from the
 * control plane) and the facts cache.
 */
export interface PolicyRuntimeOptions {
  /** The compiled policy set in force, or undefined before the first one loaded. */
  current: () => CompiledPolicySet | undefined;
  approvals: Approvals;
  /** `--environment`; when empty, the policies' own `spec.environment` applies. */
  environment: string;
  /** How long a database's catalog snapshot is trusted without a refresh. Default 5 minutes. */
  catalogTtlMs?: number;
  /** Statements whose shapes are remembered, per database. Default 10,000. */
  factsCacheEntries?: number;
  /** Key of the `hash` mask; random per process when absent (hashes then differ across restarts). */
  maskKey?: Buffer;
}

/** Per upstream database: its facts cache and its catalog snapshot. */
interface DatabaseState {
  facts: FactsCache;
  catalog: CatalogSnapshot | undefined;
  loadedAt: number;
}

/**
 * The last decision for one statement shape. The facts cache hands out a new facts object per hit
 * (each with its own text) whose arrays are the cached entry's: shared and frozen. Facts with the
 * same frozen arrays and the same scalars are the same facts, text aside, so when no guardrail
 * reads `query.text` the decision for one is the decision for the other (decisions are pure
 * functions of the rules, the identity, the environment and the facts).
 */
interface ShapeMemo {
  readonly command: string;
  readonly kind: string;
  readonly hasWhere: boolean;
  readonly tables: readonly string[];
  readonly readTables: readonly string[];
  readonly writeTables: readonly string[];
  readonly columns: readonly string[];
  readonly functions: readonly string[];
  readonly effectUnknown: boolean;
  readonly output: StatementFacts['output'];
  readonly predicateColumns: StatementFacts['predicateColumns'];
  readonly identity: Identity;
  readonly environment: string;
  readonly decision: StatementDecision;
}

/** Distinct identities interned before the table starts over (sessions keep their interned object). */
const MAX_INTERNED_IDENTITIES = 10_000;

export function createPolicyRuntime(options: PolicyRuntimeOptions): PolicyRuntime {
  const adapted = new WeakMap<CompiledPolicySet, ActivePolicy>();
  const ttl = options.catalogTtlMs ?? 5 * 60_000;
  const databases = new Map<string, DatabaseState>();
  const database = (name: string): DatabaseState => {
    let state = databases.get(name);
    if (state === undefined) {
      state = { facts: new FactsCache({ maxEntries: options.factsCacheEntries ?? 10_000 }), catalog: undefined, loadedAt: 0 };
      databases.set(name, state);
    }
    return state;
  };
  // Sessions of the same workload have equal identities in different objects: one object per
  // value, so that a shape memo filled by one session hits for the others.
  const interned = new WeakMap<Identity, Identity>();
  const byValue = new Map<string, Identity>();
  const intern = (identity: Identity): Identity => {
    let canonical = interned.get(identity);
    if (canonical === undefined) {
      const labels = Object.keys(identity.labels)
        .sort()
        .map((k) => [k, identity.labels[k]]);
      const key = JSON.stringify([identity.user, identity.database, identity.application, identity.namespace, identity.serviceAccount, identity.pod, labels]);
      canonical = byValue.get(key);
      if (canonical === undefined) {
        if (byValue.size >= MAX_INTERNED_IDENTITIES) byValue.clear();
        canonical = identity;
        byValue.set(key, canonical);
      }
      interned.set(identity, canonical);
    }
    return canonical;
  };
  const activePolicy = (set: CompiledPolicySet): ActivePolicy => {
    let active = adapted.get(set);
    if (active === undefined) {
      // Keyed by the facts' (frozen, cache-shared) `tables` array; the entry is checked field by field.
      const shapes = set.guardrailsReadText ? undefined : new WeakMap<readonly string[], ShapeMemo>();
      active = {
        version: set.version,
        unparseable: set.unparseable.action === 'allow' ? 'allow' : 'deny',
        approvalTimeoutMs: set.approvals.timeoutMs,
        decide: (facts, sessionIdentity, environment) => {
          const identity = intern(sessionIdentity);
          const memo = shapes?.get(facts.tables);
          if (memo !== undefined && memo.identity === identity && memo.environment === environment && sameShape(memo, facts)) return memo.decision;
          const d = decideStatement(set, { identity, environment, facts });
          const decision: StatementDecision = Object.freeze({ action: d.action, rule: d.rule, message: d.message, auditOnly: d.auditOnly });
          if (shapes !== undefined && isFrozenShape(facts)) {
            const { command, kind, hasWhere, tables, readTables, writeTables, columns, functions, effectUnknown, output, predicateColumns } = facts;
            shapes.set(tables, { command, kind, hasWhere, tables, readTables, writeTables, columns, functions, effectUnknown, output, predicateColumns, identity, environment, decision });
          }
          return decision;
        },
      };
      adapted.set(set, active);
    }
    return active;
  };
  return {
    current: () => {
      const set = options.current();
      return set === undefined ? null : activePolicy(set);
    },
    analyze: (text: string, session: SessionSql) => {
      const state = database(session.database);
      const ctx = { searchPath: session.searchPath, standardConformingStrings: session.standardConformingStrings };
      return state.facts.analyze(text, state.catalog === undefined ? ctx : { ...ctx, catalog: state.catalog });
    },
    catalogs: {
      fresh: (name) => {
        const state = databases.get(name);
        return state?.catalog !== undefined && Date.now() - state.loadedAt < ttl;
      },
      store: (name, snapshot) => {
        const state = database(name);
        state.catalog = snapshot;
        state.loadedAt = Date.now();
      },
      invalidate: (name) => {
        const state = databases.get(name);
        if (state !== undefined) state.loadedAt = 0;
      },
    },
    compiled: () => options.current(),
    catalogOf: (name) => databases.get(name)?.catalog,
    maskKey: options.maskKey ?? randomBytes(32),
    approvals: options.approvals,
    get environment(): string {
      return options.environment !== '' ? options.environment : (options.current()?.environment ?? '');
    },
  };
}

/**
 * The facts' fields except `text` (and the session-only cursor / prepared statement names), arrays
 * by identity (they are frozen): more than guardrails read today, so that a field the CEL
 * environment exposes later cannot be forgotten here.
 */
function sameShape(memo: ShapeMemo, facts: StatementFacts): boolean {
  return (
    memo.tables === facts.tables &&
    memo.readTables === facts.readTables &&
    memo.writeTables === facts.writeTables &&
    memo.columns === facts.columns &&
    memo.functions === facts.functions &&
    memo.command === facts.command &&
    memo.kind === facts.kind &&
    memo.hasWhere === facts.hasWhere &&
    memo.effectUnknown === facts.effectUnknown &&
    memo.output === facts.output &&
    memo.predicateColumns === facts.predicateColumns
  );
}

/** Facts whose arrays cannot change (the facts cache freezes what it keeps): safe to memoise by identity. */
function isFrozenShape(facts: StatementFacts): boolean {
  return (
    Object.isFrozen(facts.tables) &&
    Object.isFrozen(facts.readTables) &&
    Object.isFrozen(facts.writeTables) &&
    Object.isFrozen(facts.columns) &&
    Object.isFrozen(facts.functions) &&
    Object.isFrozen(facts.output) &&
    Object.isFrozen(facts.predicateColumns)
  );
}
