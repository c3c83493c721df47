import { parseSync } from 'libpg-query';
import { isObject, list, nodeOf, stringValue } from './ast.js';

/**
 * How the rows of a `COPY ... TO STDOUT` are written: what the sidecar needs to parse and mask
 * them. Read from the statement text itself (not from the facts cache, whose keys ignore
 * literals: two COPYs that differ only in DELIMITER share an entry).
 */
export interface CopyOutFormat {
  format: 'text' | 'csv' | 'binary';
  delimiter?: string;
  null?: string;
  quote?: string;
  escape?: string;
  /** A header line comes first (text and CSV). */
  header: boolean;
}

interface DefElem {
  defname?: string;
  arg?: unknown;
}

function truthy(arg: unknown): boolean {
  if (arg === undefined) return true;
  const boolean = nodeOf<{ boolval?: boolean }>(arg, 'Boolean');
  if (boolean !== undefined) return boolean.boolval === true;
  const integer = nodeOf<{ ival?: number }>(arg, 'Integer');
  if (integer !== undefined) return (integer.ival ?? 0) !== 0;
  const text = stringValue(arg)?.toLowerCase();
  return text === 'true' || text === 'on' || text === '1' || text === 'match';
}

/**
 * The format of a `COPY ... TO STDOUT` statement (one statement's text), or undefined when the
 * text is not one (COPY FROM, to a file or a program, or not a COPY at all) or does not parse.
 */
export function copyOutFormat(text: string): CopyOutFormat | undefined {
  let tree: { stmts?: { stmt?: unknown }[] };
  try {
    tree = parseSync(text) as typeof tree;
  } catch {
    return undefined;
  }
  const stmts = tree.stmts ?? [];
  if (stmts.length !== 1) return undefined;
  const copy = nodeOf<{ is_from?: boolean; filename?: string; is_program?: boolean; options?: unknown }>(stmts[0]?.stmt, 'CopyStmt');
  if (copy === undefined || copy.is_from === true || copy.filename !== undefined || copy.is_program === true) return undefined;
  const out: CopyOutFormat = { format: 'text', header: false };
  for (const item of list(copy.options)) {
    const d = nodeOf<DefElem>(item, 'DefElem');
    if (d === undefined || !isObject(d)) continue;
    const value = stringValue(d.arg);
    switch (d.defname) {
      case 'format':
        if (value === 'csv' || value === 'binary' || value === 'text') out.format = value;
        else return undefined;
        break;
      case 'header':
        out.header = truthy(d.arg);
        break;
      case 'delimiter':
        if (value !== undefined) out.delimiter = value;
        break;
      case 'null':
        if (value !== undefined) out.null = value;
        break;
      case 'quote':
        if (value !== undefined) out.quote = value;
        break;
      case 'escape':
        if (value !== undefined) out.escape = value;
        break;
      case 'force_quote':
      case 'encoding':
        break;
      default:
        // An option this module does not know may change the row format: do not guess.
        return undefined;
    }
  }
  return out;
}
