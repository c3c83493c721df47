/**
 * FactsCache: statement facts by query shape, so a repeated statement costs one lexer pass
 * instead of a parse. Keys are normalize.ts's cache keys (literals replaced), kept apart by what
 * else the facts depend on: the search_path and standard_conforming_strings; a new catalog
 * snapshot empties the cache.
 *
 * Eviction is approximately least-recently-used with two generations: entries live in `young`
 * until it holds half the budget, then `young` becomes `old` (the previous `old` is dropped); a hit
 * in `old` moves the entry back to `young`. A hit costs one Map lookup, and the cache never holds
 * more than maxEntries.
 */
import { analyzeQuery, isUnparseable, type AnalysisContext } from './analyze.js';
import type { QueryAnalysis, StatementFacts, UnparseableQuery } from './facts.js';
import { lexQuery } from './normalize.js';
import { matchTemplate, templateOf, type ShapeTemplate } from './shape-template.js';

export interface FactsCacheOptions {
  /** Most entries kept (default 10,000). */
  maxEntries?: number;
}

/** Counters for metrics. */
export interface FactsCacheStats {
  hits: number;
  misses: number;
  /** Texts the lexer was not sure about: parsed every time, never cached. */
  bypassed: number;
  /** Hits found by a shape template, without lexing (included in hits). */
  templateHits: number;
  entries: number;
}

/** Facts as cached: immutable, text-less (each hit gets the statement texts of its own query). */
type CachedStatement = Readonly<Omit<StatementFacts, 'text'>>;
type Entry = readonly CachedStatement[];

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Cached facts with this query's own statement text. */
function withText(f: CachedStatement, text: string): StatementFacts {
  const out: StatementFacts = {
    command: f.command,
    kind: f.kind,
    tables: f.tables,
    readTables: f.readTables,
    writeTables: f.writeTables,
    columns: f.columns,
    hasWhere: f.hasWhere,
    functions: f.functions,
    text,
    effectUnknown: f.effectUnknown,
    output: f.output,
    predicateColumns: f.predicateColumns,
  };
  if (f.cursorName !== undefined) out.cursorName = f.cursorName;
  if (f.preparedName !== undefined) out.preparedName = f.preparedName;
  return out;
}

/** Shape templates kept per analysis context, most recently matched first. */
const TEMPLATES = 4;

/** The statements of a query whose cached facts are `entry`, with their own texts. */
function statementsOf(entry: Entry, text: string, spans: readonly number[]): StatementFacts[] {
  const statements: StatementFacts[] = [];
  for (let i = 0; i < entry.length; i++) statements.push(withText(entry[i] as CachedStatement, text.slice(spans[2 * i], spans[2 * i + 1])));
  return statements;
}

/** Two generations of entries for one analysis context, and the templates of its hottest shapes. */
class Generations {
  young = new Map<string, Entry>();
  old = new Map<string, Entry>();
  readonly templates: ShapeTemplate<Entry>[] = [];

  constructor(private readonly half: number) {}

  /** The entry and statement spans of a query with the shape of a recent template. */
  match(text: string): { entry: Entry; spans: number[] } | undefined {
    const templates = this.templates;
    for (let i = 0; i < templates.length; i++) {
      const t = templates[i]!;
      const spans = matchTemplate(t, text);
      if (spans === null) continue;
      if (i > 0) {
        templates.splice(i, 1);
        templates.unshift(t);
      }
      return { entry: t.value, spans };
    }
    return undefined;
  }

  remember(template: ShapeTemplate<Entry>): void {
    if (this.templates.length >= TEMPLATES) this.templates.pop();
    this.templates.unshift(template);
  }

  get(key: string): Entry | undefined {
    const hot = this.young.get(key);
    if (hot !== undefined) return hot;
    const cold = this.old.get(key);
    if (cold !== undefined) {
      this.old.delete(key);
      this.set(key, cold);
    }
    return cold;
  }

  set(key: string, entry: Entry): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, entry);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}

export class FactsCache {
  private readonly half: number;
  /** Per `standard_conforming_strings` + search_path. */
  private readonly contexts = new Map<string, Generations>();
  private catalog: AnalysisContext['catalog'];
  private lastPath: readonly string[] | undefined;
  private lastScs = true;
  private lastGenerations: Generations | undefined;
  private readonly counters = { hits: 0, misses: 0, bypassed: 0, templateHits: 0 };

  constructor(opts: FactsCacheOptions = {}) {
    this.half = Math.max(1, Math.floor((opts.maxEntries ?? 10_000) / 2));
  }

  /**
   * analyzeQuery with the cache in front. The returned facts' arrays are shared with the cache
   * and frozen: treat them as read-only.
   */
  analyze(text: string, ctx: AnalysisContext): QueryAnalysis | UnparseableQuery {
    if (ctx.catalog !== this.catalog) {
      this.clear();
      this.catalog = ctx.catalog;
    }
    const scs = ctx.standardConformingStrings !== false;
    const generations = this.generationsFor(ctx.searchPath, scs);
    // A recent shape with other literal values: no lexing, no key (shape-template.ts).
    const matched = scs ? generations.match(text) : undefined;
    if (matched !== undefined) {
      this.counters.hits++;
      this.counters.templateHits++;
      return { statements: statementsOf(matched.entry, text, matched.spans) };
    }
    const replaced: number[] | undefined = scs ? [] : undefined;
    const lexed = lexQuery(text, { standardConformingStrings: scs }, undefined, replaced);
    if (lexed === null) {
      this.counters.bypassed++;
      return analyzeQuery(text, ctx);
    }
    const spans = lexed.spans;
    const cached = generations.get(lexed.key);
    if (cached !== undefined && cached.length * 2 === spans.length) {
      this.counters.hits++;
      if (replaced !== undefined && replaced.length > 0) {
        const template = templateOf(text, replaced, spans, cached);
        if (template !== null) generations.remember(template);
      }
      return { statements: statementsOf(cached, text, spans) };
    }
    this.counters.misses++;
    const result = analyzeQuery(text, ctx);
    if (isUnparseable(result)) return result; // a literal's content can make one text fail: never cache failures
    const agrees = result.statements.length * 2 === spans.length && result.statements.every((s, i) => s.text === text.slice(spans[2 * i], spans[2 * i + 1]));
    if (agrees) {
      generations.set(
        lexed.key,
        result.statements.map((s) => {
          const { text: _text, ...rest } = s;
          return deepFreeze(rest);
        }),
      );
    }
    return result;
  }

  /** The generations for a context; the last one is remembered (a session rarely changes it). */
  private generationsFor(searchPath: readonly string[], scs: boolean): Generations {
    const last = this.lastPath;
    if (this.lastGenerations !== undefined && scs === this.lastScs && last !== undefined && last.length === searchPath.length && searchPath.every((s, i) => s === last[i])) {
      return this.lastGenerations;
    }
    const id = `${scs ? '1' : '0'}${searchPath.join(',')}`;
    let g = this.contexts.get(id);
    if (g === undefined) this.contexts.set(id, (g = new Generations(this.half)));
    this.lastPath = [...searchPath];
    this.lastScs = scs;
    this.lastGenerations = g;
    return g;
  }

  stats(): FactsCacheStats {
    let entries = 0;
    for (const g of this.contexts.values()) entries += g.size;
    return { ...this.counters, entries };
  }

  clear(): void {
    this.contexts.clear();
    this.lastGenerations = undefined;
  }
}
