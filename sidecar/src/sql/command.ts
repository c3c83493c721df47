/**
 * Command tags and statement kinds of utility statements: a port of PostgreSQL 18's
 * CreateCommandTag (src/backend/tcop/utility.c) over libpg_query's raw parse tree. Where the
 * server's CommandComplete differs from CreateCommandTag (CREATE TABLE AS, SELECT INTO and
 * CREATE MATERIALIZED VIEW report `SELECT n`), statement.ts applies the server's tag.
 */
import type { Fields } from './ast.js';
import type { StatementKind } from './facts.js';

/** How an ObjectType is spelled in command tags (`OBJECT_MATVIEW` -> `MATERIALIZED VIEW`). */
const OBJECT_WORDS: Record<string, string> = {
  MATVIEW: 'MATERIALIZED VIEW',
  FDW: 'FOREIGN DATA WRAPPER',
  FOREIGN_SERVER: 'SERVER',
  TSPARSER: 'TEXT SEARCH PARSER',
  TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OPCLASS: 'OPERATOR CLASS',
  OPFAMILY: 'OPERATOR FAMILY',
  STATISTIC_EXT: 'STATISTICS',
  LARGEOBJECT: 'LARGE OBJECT',
  ACCESS_METHOD: 'ACCESS METHOD',
  EVENT_TRIGGER: 'EVENT TRIGGER',
  FOREIGN_TABLE: 'FOREIGN TABLE',
};

/** Object types DROP reports (CreateCommandTag's DropStmt cases). */
const DROPPABLE = new Set([
  'TABLE', 'SEQUENCE', 'VIEW', 'MATVIEW', 'INDEX', 'TYPE', 'DOMAIN', 'COLLATION', 'CONVERSION', 'SCHEMA', 'TSPARSER',
  'TSDICTIONARY', 'TSTEMPLATE', 'TSCONFIGURATION', 'FOREIGN_TABLE', 'EXTENSION', 'FUNCTION', 'PROCEDURE', 'ROUTINE',
  'AGGREGATE', 'OPERATOR', 'LANGUAGE', 'CAST', 'TRIGGER', 'EVENT_TRIGGER', 'RULE', 'FDW', 'FOREIGN_SERVER', 'OPCLASS',
  'OPFAMILY', 'POLICY', 'TRANSFORM', 'ACCESS_METHOD', 'PUBLICATION', 'STATISTIC_EXT',
]);

/** AlterObjectTypeCommandTag: object types an ALTER reports, and the ones reported as another. */
const ALTER_AS: Record<string, string> = {
  ATTRIBUTE: 'TYPE', COLUMN: 'TABLE', DOMCONSTRAINT: 'DOMAIN', TABCONSTRAINT: 'TABLE',
};
const ALTERABLE = new Set([
  'AGGREGATE', 'CAST', 'COLLATION', 'CONVERSION', 'DATABASE', 'DOMAIN', 'EXTENSION', 'FDW', 'FOREIGN_SERVER',
  'FOREIGN_TABLE', 'FUNCTION', 'INDEX', 'LANGUAGE', 'LARGEOBJECT', 'OPCLASS', 'OPERATOR', 'OPFAMILY', 'POLICY',
  'PROCEDURE', 'ROLE', 'ROUTINE', 'RULE', 'SCHEMA', 'SEQUENCE', 'TABLE', 'TABLESPACE', 'TRIGGER', 'EVENT_TRIGGER',
  'TSCONFIGURATION', 'TSDICTIONARY', 'TSPARSER', 'TSTEMPLATE', 'TYPE', 'VIEW', 'MATVIEW', 'PUBLICATION',
  'SUBSCRIPTION', 'STATISTIC_EXT',
]);

/** PostgreSQL's CMDTAG_UNKNOWN. */
export const UNKNOWN_TAG = '???';

function objectWords(objtype: unknown): string | undefined {
  if (typeof objtype !== 'string' || !objtype.startsWith('OBJECT_')) return undefined;
  const t = objtype.slice('OBJECT_'.length);
  return OBJECT_WORDS[t] ?? t.replace(/_/g, ' ');
}

function dropTag(objtype: unknown): string {
  const t = typeof objtype === 'string' ? objtype.slice('OBJECT_'.length) : '';
  return DROPPABLE.has(t) ? `DROP ${objectWords(objtype) ?? ''}` : UNKNOWN_TAG;
}

/** AlterObjectTypeCommandTag. */
export function alterTag(objtype: unknown): string {
  let t = typeof objtype === 'string' ? objtype.slice('OBJECT_'.length) : '';
  t = ALTER_AS[t] ?? t;
  return ALTERABLE.has(t) ? `ALTER ${objectWords(`OBJECT_${t}`) ?? ''}` : UNKNOWN_TAG;
}

/** Tags that depend only on the node type. */
const FIXED_TAGS: Record<string, string> = {
  InsertStmt: 'INSERT', DeleteStmt: 'DELETE', UpdateStmt: 'UPDATE', MergeStmt: 'MERGE', SelectStmt: 'SELECT',
  PLAssignStmt: 'SELECT', DeclareCursorStmt: 'DECLARE CURSOR', CreateDomainStmt: 'CREATE DOMAIN',
  CreateSchemaStmt: 'CREATE SCHEMA', CreateStmt: 'CREATE TABLE', CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE', AlterTableSpaceOptionsStmt: 'ALTER TABLESPACE',
  CreateExtensionStmt: 'CREATE EXTENSION', AlterExtensionStmt: 'ALTER EXTENSION',
  AlterExtensionContentsStmt: 'ALTER EXTENSION', CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER',
  AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER', CreateForeignServerStmt: 'CREATE SERVER',
  AlterForeignServerStmt: 'ALTER SERVER', CreateUserMappingStmt: 'CREATE USER MAPPING',
  AlterUserMappingStmt: 'ALTER USER MAPPING', DropUserMappingStmt: 'DROP USER MAPPING',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE', ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA',
  TruncateStmt: 'TRUNCATE TABLE', CommentStmt: 'COMMENT', SecLabelStmt: 'SECURITY LABEL', CopyStmt: 'COPY',
  AlterDomainStmt: 'ALTER DOMAIN', AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  CompositeTypeStmt: 'CREATE TYPE', CreateEnumStmt: 'CREATE TYPE', CreateRangeStmt: 'CREATE TYPE',
  AlterEnumStmt: 'ALTER TYPE', ViewStmt: 'CREATE VIEW', IndexStmt: 'CREATE INDEX', RuleStmt: 'CREATE RULE',
  CreateSeqStmt: 'CREATE SEQUENCE', AlterSeqStmt: 'ALTER SEQUENCE', DoStmt: 'DO', CreatedbStmt: 'CREATE DATABASE',
  AlterDatabaseStmt: 'ALTER DATABASE', AlterDatabaseRefreshCollStmt: 'ALTER DATABASE',
  AlterDatabaseSetStmt: 'ALTER DATABASE', DropdbStmt: 'DROP DATABASE', NotifyStmt: 'NOTIFY', ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN', LoadStmt: 'LOAD', CallStmt: 'CALL', ClusterStmt: 'CLUSTER', ExplainStmt: 'EXPLAIN',
  RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW', AlterSystemStmt: 'ALTER SYSTEM', VariableShowStmt: 'SHOW',
  CreateTransformStmt: 'CREATE TRANSFORM', CreateTrigStmt: 'CREATE TRIGGER', CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  AlterEventTrigStmt: 'ALTER EVENT TRIGGER', CreatePLangStmt: 'CREATE LANGUAGE', CreateRoleStmt: 'CREATE ROLE',
  AlterRoleStmt: 'ALTER ROLE', AlterRoleSetStmt: 'ALTER ROLE', DropRoleStmt: 'DROP ROLE', DropOwnedStmt: 'DROP OWNED',
  ReassignOwnedStmt: 'REASSIGN OWNED', LockStmt: 'LOCK TABLE', ConstraintsSetStmt: 'SET CONSTRAINTS',
  CheckPointStmt: 'CHECKPOINT', ReindexStmt: 'REINDEX', CreateConversionStmt: 'CREATE CONVERSION',
  CreateCastStmt: 'CREATE CAST', CreateOpClassStmt: 'CREATE OPERATOR CLASS', CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
  AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY', AlterOperatorStmt: 'ALTER OPERATOR', AlterTypeStmt: 'ALTER TYPE',
  AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY', AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
  CreatePolicyStmt: 'CREATE POLICY', AlterPolicyStmt: 'ALTER POLICY', CreateAmStmt: 'CREATE ACCESS METHOD',
  CreatePublicationStmt: 'CREATE PUBLICATION', AlterPublicationStmt: 'ALTER PUBLICATION',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION', AlterSubscriptionStmt: 'ALTER SUBSCRIPTION',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION', AlterCollationStmt: 'ALTER COLLATION', PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE', CreateStatsStmt: 'CREATE STATISTICS', AlterStatsStmt: 'ALTER STATISTICS',
};

const TRANSACTION_TAGS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN', TRANS_STMT_START: 'START TRANSACTION', TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK', TRANS_STMT_ROLLBACK_TO: 'ROLLBACK', TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE', TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED', TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

/** CreateCommandTag for a raw statement node (`tag` is its node type, `f` its fields). */
export function commandTag(tag: string, f: Fields): string {
  const fixed = FIXED_TAGS[tag];
  if (fixed !== undefined) return fixed;
  switch (tag) {
    case 'TransactionStmt':
      return TRANSACTION_TAGS[String(f.kind)] ?? UNKNOWN_TAG;
    case 'ClosePortalStmt':
      return f.portalname === undefined ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR';
    case 'FetchStmt':
      return f.ismove === true ? 'MOVE' : 'FETCH';
    case 'DropStmt':
      return dropTag(f.removeType);
    case 'RenameStmt':
      return alterTag(f.renameType === 'OBJECT_COLUMN' ? f.relationType : f.renameType);
    case 'AlterObjectDependsStmt':
    case 'AlterObjectSchemaStmt':
    case 'AlterOwnerStmt':
      return alterTag(f.objectType);
    case 'AlterTableMoveAllStmt':
    case 'AlterTableStmt':
      return alterTag(f.objtype);
    case 'AlterFunctionStmt':
      return f.objtype === 'OBJECT_PROCEDURE' ? 'ALTER PROCEDURE' : f.objtype === 'OBJECT_ROUTINE' ? 'ALTER ROUTINE' : 'ALTER FUNCTION';
    case 'GrantStmt':
      return f.is_grant === true ? 'GRANT' : 'REVOKE';
    case 'GrantRoleStmt':
      return f.is_grant === true ? 'GRANT ROLE' : 'REVOKE ROLE';
    case 'DefineStmt': {
      const words = objectWords(f.kind);
      return words === undefined ? UNKNOWN_TAG : `CREATE ${words}`;
    }
    case 'CreateFunctionStmt':
      return f.is_procedure === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
    case 'VacuumStmt':
      return f.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE';
    case 'CreateTableAsStmt':
      if (f.objtype === 'OBJECT_MATVIEW') return 'CREATE MATERIALIZED VIEW';
      return f.is_select_into === true ? 'SELECT INTO' : 'CREATE TABLE AS';
    case 'VariableSetStmt':
      return f.kind === 'VAR_RESET' || f.kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET';
    case 'DiscardStmt':
      return `DISCARD ${String(f.target ?? '').replace(/^DISCARD_/, '')}`;
    case 'DeallocateStmt':
      return f.name === undefined ? 'DEALLOCATE ALL' : 'DEALLOCATE';
    default:
      return UNKNOWN_TAG;
  }
}

const TRANSACTION_NODES = new Set(['TransactionStmt', 'ConstraintsSetStmt']);
const SESSION_NODES = new Set([
  'VariableSetStmt', 'VariableShowStmt', 'DiscardStmt', 'ListenStmt', 'UnlistenStmt', 'DeallocateStmt',
  'ClosePortalStmt',
]);
const DCL_NODES = new Set([
  'GrantStmt', 'GrantRoleStmt', 'AlterDefaultPrivilegesStmt', 'CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt',
  'DropRoleStmt', 'DropOwnedStmt', 'ReassignOwnedStmt',
]);
const DDL_NODES = new Set([
  'DropStmt', 'RenameStmt', 'AlterObjectDependsStmt', 'AlterObjectSchemaStmt', 'AlterOwnerStmt', 'AlterTableMoveAllStmt',
  'AlterTableStmt', 'AlterFunctionStmt', 'DefineStmt', 'CreateFunctionStmt',
]);
const UTILITY_NODES = new Set([
  'VacuumStmt', 'ClusterStmt', 'ReindexStmt', 'CheckPointStmt', 'LoadStmt', 'LockStmt', 'NotifyStmt',
  'AlterSystemStmt', 'RefreshMatViewStmt',
]);

/**
 * The kind of a utility statement that is not a query wrapper (statement.ts decides SELECT, DML,
 * EXPLAIN, COPY, PREPARE, DECLARE, DO, CALL, EXECUTE, CREATE TABLE AS itself).
 */
export function utilityKind(tag: string): StatementKind {
  if (TRANSACTION_NODES.has(tag)) return 'transaction';
  if (SESSION_NODES.has(tag)) return 'session';
  if (DCL_NODES.has(tag)) return 'dcl';
  if (UTILITY_NODES.has(tag)) return 'utility';
  if (tag === 'TruncateStmt') return 'write';
  if (tag === 'FetchStmt') return 'read';
  if (FIXED_TAGS[tag] !== undefined || DDL_NODES.has(tag)) return 'ddl';
  return 'unknown';
}
