import type { MaskName } from '../policy/types.js';
import { fixedMaskValue, type MaskColumn } from './masks.js';
import { TypeOid, typeCategory } from './pg-types.js';

/**
 * What to do with each column of a result: pass its bytes through, or mask them. Built once per
 * RowDescription (or CopyOutResponse) from the policy's per-column decisions, then used for every
 * row, so the per-row work is only the masking itself.
 */
export type ColumnPlan = PassColumn | MaskedColumn | WatchedColumn;

/**
 * Content detection on a text column that nothing else classified (issue 4): each value is
 * scanned by the content detectors while the column is being sampled, and a value in which they
 * find a class the policy masks for this identity is masked.
 */
export interface ContentWatch {
  /** True while values of this column are still scanned (sampling, or a column without a source). Counts the value. */
  active(): boolean;
  /** The mask for a value in which the detectors found `bits` (classes.ts), or undefined to pass it. */
  maskFor(bits: number): MaskName | undefined;
  /** True once sampling ended with nothing found or with something found: decisions made with this watch should be made again. */
  settled(): boolean;
}

export interface WatchedColumn {
  readonly action: 'watch';
  readonly column: MaskColumn;
  readonly watch: ContentWatch;
}

export interface PassColumn {
  readonly action: 'pass';
}

export interface MaskedColumn {
  readonly action: 'mask';
  readonly mask: MaskName;
  readonly column: MaskColumn;
  /**
   * The output when it does not depend on the value (redact on text, anything that becomes NULL):
   * computed once. Undefined when each value must be masked.
   */
  readonly fixed: Buffer | null | undefined;
  /**
   * `email` or `partial` on a text column (not char(n) or name): ASCII values are masked straight
   * into the output frame, byte by byte (rewrite.ts); others take maskValue's string path.
   */
  readonly inline: 'email' | 'partial' | undefined;
}

export const PASS: PassColumn = Object.freeze({ action: 'pass' });

/** The part of a policy ColumnDecision a plan needs; undefined: no decision (pass). */
export type PlanDecision = { readonly action: 'mask' | 'reveal'; readonly mask: MaskName } | { readonly action: 'watch'; readonly watch: ContentWatch };

/** A column as a RowDescription describes it (a FieldDescription fits). */
export interface PlanField {
  readonly typeOid: number;
  readonly typeModifier: number;
  readonly format: number;
  readonly typeName?: string;
}

/**
 * The plan of a result. `resultFormats`, when given, are the result-column format codes of the
 * Bind that produced the rows (a RowDescription answering Describe of a statement always says
 * text): none means all text, one applies to every column, otherwise one per column.
 */
export function planColumns(
  fields: readonly PlanField[],
  decisions: readonly (PlanDecision | undefined)[],
  resultFormats?: readonly number[],
): ColumnPlan[] {
  return fields.map((field, i) => {
    const decision = decisions[i];
    if (decision === undefined || decision.action === 'reveal') return PASS;
    const format = resultFormats === undefined ? field.format : resultFormats.length === 0 ? 0 : resultFormats.length === 1 ? (resultFormats[0] as number) : (resultFormats[i] ?? 0);
    const column: MaskColumn = { typeOid: field.typeOid, typeModifier: field.typeModifier, format, ...(field.typeName === undefined ? {} : { typeName: field.typeName }) };
    if (decision.action === 'watch') return typeCategory(field.typeOid, field.typeName) === 'text' ? { action: 'watch', column, watch: decision.watch } : PASS;
    const inline =
      (decision.mask === 'email' || decision.mask === 'partial') && typeCategory(field.typeOid, field.typeName) === 'text' && field.typeOid !== TypeOid.bpchar && field.typeOid !== TypeOid.name
        ? decision.mask
        : undefined;
    return { action: 'mask', mask: decision.mask, column, fixed: fixedMaskValue(column, decision.mask), inline };
  });
}

/** True when some column of the plan is masked or watched (otherwise forward the rows untouched). */
export function masksAnything(plan: readonly ColumnPlan[]): boolean {
  return plan.some((c) => c.action !== 'pass');
}

/** The masked column indexes, for audit (`dbward.masked_columns`). */
export function maskedIndexes(plan: readonly ColumnPlan[]): number[] {
  const out: number[] = [];
  plan.forEach((c, i) => {
    if (c.action === 'mask') out.push(i);
  });
  return out;
}

/** Rows do not match their plan (column count, or a COPY row the parser cannot split): never forward them. */
export class MaskingError extends Error {
  override readonly name = 'MaskingError';
}
