import { functionSchema, type StatementFacts } from '../sql/index.js';
import { maskedColumnsMovedOut, masksSomeColumn, readsMaskedColumn, type MaskerContext } from './result-masker.js';

/**
 * Ways masked values could leave other than in a result column whose lineage the sidecar knows
 * (issue 4: "a derivation that touches a masked source and cannot be analysed is denied, not
 * guessed"). Pure: the facts of one statement and the masking context in, the reason to refuse out.
 *
 * - Code the sidecar cannot read: DO, CALL, user-defined functions other than single-overload
 *   `LANGUAGE sql` ones (whose bodies the analyzer reads), and
 *   built-ins that run SQL given as text (`query_to_xml`, `table_to_xml`, `ts_stat`, `dblink`...).
 *   Refused when any column of the database is masked for the identity.
 * - Side channels: `set_config` (read back with `current_setting`), `pg_notify` (a notification to
 *   oneself), large objects... Refused when the statement reads a masked column.
 * - Copies: INSERT ... SELECT, CREATE TABLE AS, SELECT INTO, UPDATE ... FROM that move masked
 *   values into another table, where they would no longer be recognised. Refused.
 */

/** Built-ins that execute SQL passed as text, or read whole tables by name. */
const RUNS_SQL_TEXT: ReadonlySet<string> = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'table_to_xml', 'table_to_xmlschema',
  'table_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'schema_to_xml', 'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'ts_stat', 'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_send_query', 'dblink_get_result',
]);

/** Built-ins that store or send a value somewhere the client can read it back outside the result. */
const SIDE_CHANNELS: ReadonlySet<string> = new Set([
  'set_config', 'pg_notify', 'pg_logical_emit_message', 'lo_from_bytea', 'lo_put', 'lowrite', 'lo_import', 'lo_export',
  'pg_file_write', 'pg_advisory_lock', 'pg_try_advisory_lock', 'pg_advisory_xact_lock', 'pg_try_advisory_xact_lock',
]);

const TRUSTED_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/** The refusal message (after `dbward: denied by `), or undefined when the statement may run. */
export function maskingFlowRefusal(ctx: MaskerContext, facts: StatementFacts, searchPath: readonly string[]): string | undefined {
  if (facts.command === 'DO' || facts.command === 'CALL') {
    return masksSomeColumn(ctx) ? `dbward.masking: ${facts.command} runs code dbward cannot analyse, and some columns are masked for you` : undefined;
  }
  for (const fn of facts.functions) {
    const base = fn.slice(fn.lastIndexOf('.') + 1);
    const schema = functionSchema(fn, searchPath, ctx.catalog);
    const builtin = schema !== undefined && TRUSTED_SCHEMAS.has(schema);
    if (builtin && RUNS_SQL_TEXT.has(base)) {
      if (masksSomeColumn(ctx)) return `dbward.masking: ${fn}() runs SQL given as text, which dbward cannot analyse, and some columns are masked for you`;
    } else if (builtin && SIDE_CHANNELS.has(base)) {
      if (readsMaskedColumn(ctx, facts)) return `dbward.masking: ${fn}() could carry values of masked columns out of the result`;
    } else if (!builtin && schema !== undefined && ctx.catalog?.functions[`${schema}.${base}`]?.body !== undefined) {
      // A SQL function whose body the analyzer read: its result's lineage, the tables it reads and
      // the functions it calls are part of this statement's facts (and checked like them).
    } else if (!builtin && masksSomeColumn(ctx)) {
      return `dbward.masking: ${fn}() is not a built-in function and not a SQL function whose body dbward can read, and some columns are masked for you`;
    }
  }
  if (facts.writeTables.length > 0) {
    const moved = maskedColumnsMovedOut(ctx, facts);
    if (moved.length > 0) return `dbward.masking: the statement copies ${moved[0]}, which is masked for you, into ${facts.writeTables.join(', ')}`;
  }
  return undefined;
}
