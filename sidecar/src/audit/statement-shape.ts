import { normalizeSync } from 'libpg-query';
import type { StatementFacts } from '../sql/index.js';
import { encodeAttributes } from './proto.js';

/**
 * What a statement's span says about the statement itself, computed once per statement shape
 * (the facts cache shares frozen arrays between every query with the same shape) and reused for
 * every span of that shape. Pure apart from libpg_query's normalizer.
 */
export interface StatementShape {
  /** db.operation.name: the command tag (SELECT, INSERT, DROP TABLE, ...). */
  operation: string;
  /** db.query.summary, also the span name: `SELECT public.accounts`. */
  summary: string;
  /** Pre-encoded Span.attributes: operation, collection, summary, dbward.tables.read/written. */
  attributes: Buffer;
  /** db.query.text for `audit.queryText: normalized`, computed when first needed (null: not normalizable). */
  normalizedText: Buffer | null | undefined;
}

const MAX_SUMMARY = 255;

/** The shape of a statement the sidecar knows nothing about (unparseable, or no facts). */
export function unknownShape(text: string | undefined): StatementShape {
  const word = text === undefined ? '' : (/^\s*([A-Za-z]+)/.exec(stripComments(text))?.[1] ?? '');
  const operation = word === '' ? 'UNKNOWN' : word.toUpperCase();
  return { operation, summary: operation, attributes: encodeAttributes({ 'db.operation.name': operation, 'db.query.summary': operation }), normalizedText: undefined };
}

/** Builds the shape of one statement's facts. */
export function shapeOf(facts: StatementFacts): StatementShape {
  const operation = facts.command;
  const tables = facts.tables;
  let summary = tables.length === 0 ? operation : `${operation} ${tables.join(' ')}`;
  if (summary.length > MAX_SUMMARY) summary = `${summary.slice(0, MAX_SUMMARY - 1)}…`;
  return {
    operation,
    summary,
    attributes: encodeAttributes({
      'db.operation.name': operation,
      'db.collection.name': tables.length === 1 ? tables[0] : undefined,
      'db.query.summary': summary,
      'dbward.tables.read': facts.readTables,
      'dbward.tables.written': facts.writeTables,
    }),
    normalizedText: undefined,
  };
}

/** Shapes by the facts' frozen `tables` array (one per cached statement shape). */
export class ShapeCache {
  private readonly shapes = new WeakMap<readonly string[], StatementShape>();
  /** The last shape looked up: most statements repeat their predecessor's shape. */
  private lastTables: readonly string[] | undefined;
  private lastShape: StatementShape | undefined;

  of(facts: StatementFacts): StatementShape {
    if (facts.tables === this.lastTables) return this.lastShape!;
    if (!Object.isFrozen(facts.tables)) return shapeOf(facts);
    let shape = this.shapes.get(facts.tables);
    if (shape === undefined) {
      shape = shapeOf(facts);
      this.shapes.set(facts.tables, shape);
    }
    this.lastTables = facts.tables;
    this.lastShape = shape;
    return shape;
  }
}

/**
 * The statement text with every literal replaced by a parameter ($1, $2, ...) by libpg_query's
 * normalizer, and comments removed (sqlcommenter comments carry per-request values). null when
 * the text does not parse: the text is then left out rather than risk a literal in the trail.
 */
export function normalizeQueryText(text: string): string | null {
  let normalized: string;
  try {
    normalized = normalizeSync(text);
  } catch {
    return null;
  }
  return stripComments(normalized).replace(/\s+/g, ' ').trim();
}

/**
 * Removes `-- ...` and `/* ... *\/` comments outside quoted identifiers. Meant for normalized text,
 * whose string literals have already become parameters; dollar-quoted bodies are literals too.
 */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      const close = text.indexOf(c, i + 1);
      const end = close < 0 ? n : close + 1;
      out += text.slice(i, end);
      i = end;
    } else if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      out += ' ';
    } else if (c === '/' && text[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (text[j] === '*' && text[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      i = j;
      out += ' ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** A W3C trace context carried by a sqlcommenter comment: `traceparent='00-<trace>-<span>-<flags>'`. */
export interface TraceParent {
  traceId: Buffer;
  spanId: Buffer;
}

const NEEDLE = Buffer.from('traceparent=');
const HEX = /^[0-9a-f]+$/;

/**
 * Finds a sqlcommenter traceparent in a frame's bytes [start, end): sqlcommenter appends its
 * comment to the statement, so only statements ending in `*\/` (then maybe `;`, whitespace and the
 * message's NUL) are searched. Only version 00 is read; all-zero ids are invalid (W3C Trace Context).
 */
export function findTraceParent(buf: Buffer, start: number, end: number): TraceParent | undefined {
  let last = end - 1;
  while (last > start && (buf[last] === 0 || buf[last] === 0x3b /* ; */ || buf[last] === 0x20 || buf[last] === 0x0a || buf[last] === 0x0d || buf[last] === 0x09)) last--;
  if (buf[last] !== 0x2f /* / */ || buf[last - 1] !== 0x2a /* * */) return undefined;
  const view = buf.subarray(start, end);
  const at = view.indexOf(NEEDLE);
  if (at < 0) return undefined;
  let i = at + NEEDLE.length;
  if (view[i] === 0x27 /* ' */) i++;
  const value = view.toString('latin1', i, i + 55);
  if (value.length < 55 || value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  if (value.slice(0, 2) !== '00') return undefined;
  const trace = value.slice(3, 35);
  const span = value.slice(36, 52);
  if (!HEX.test(trace) || !HEX.test(span) || !HEX.test(value.slice(53, 55))) return undefined;
  if (/^0+$/.test(trace) || /^0+$/.test(span)) return undefined;
  return { traceId: Buffer.from(trace, 'hex'), spanId: Buffer.from(span, 'hex') };
}
