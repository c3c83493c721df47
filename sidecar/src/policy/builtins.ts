import type { Guardrail } from '../api/v1alpha1/index.js';

/**
 * Built-in guardrails (SPEC §3). They follow every document's own guardrails and apply unless a
 * guardrail with the same name replaces them (see compile.ts for how that works across documents).
 */

export const BUILTIN_PREFIX = 'builtin.';
/** The `policy` reported for decisions made by a built-in guardrail. */
export const BUILTIN_POLICY = 'builtin';

export const BUILTIN_GUARDRAILS: readonly Readonly<Guardrail>[] = Object.freeze([
  Object.freeze({
    name: 'builtin.no-destructive-ddl-in-production',
    when: 'environment == "production" && query.command in ["DROP DATABASE", "DROP SCHEMA", "DROP TABLE", "TRUNCATE TABLE"]',
    action: 'deny',
    message: 'DROP DATABASE, DROP SCHEMA, DROP TABLE and TRUNCATE are blocked in production',
  }),
  Object.freeze({
    name: 'builtin.no-unbounded-write-in-production',
    when: 'environment == "production" && !query.hasWhere',
    action: 'deny',
    message: 'UPDATE and DELETE without WHERE are blocked in production',
  }),
]);

export const BUILTIN_NAMES: ReadonlySet<string> = new Set(BUILTIN_GUARDRAILS.map((rule) => rule.name));
