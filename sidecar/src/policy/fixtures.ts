import { DataAccessPolicySchema, type DataAccessPolicy } from '../api/v1alpha1/index.js';
import type { StatementFacts } from '../sql/facts.js';
import { compilePolicies, isPolicyErrors, type CompiledPolicySet } from './compile.js';
import type { PolicyErrors } from './errors.js';
import type { ColumnFacts, PolicyIdentity } from './types.js';

/** Test helpers: documents, statement facts and identities with sensible defaults. */

export function policy(spec: Record<string, unknown> = {}, metadata: { name?: string; namespace?: string } = {}): DataAccessPolicy {
  return DataAccessPolicySchema.parse({
    apiVersion: 'dbward.io/v1alpha1',
    kind: 'DataAccessPolicy',
    metadata: { name: metadata.name ?? 'orders', namespace: metadata.namespace ?? 'shop' },
    spec,
  });
}

export function compiled(...docs: DataAccessPolicy[]): CompiledPolicySet {
  const set = compilePolicies(docs);
  if (isPolicyErrors(set)) throw set;
  return set;
}

export function compileErrors(...docs: DataAccessPolicy[]): PolicyErrors {
  const set = compilePolicies(docs);
  if (!isPolicyErrors(set)) throw new Error('expected the policies not to compile');
  return set;
}

const COMMAND_KIND: Record<string, StatementFacts['kind']> = {
  SELECT: 'read',
  INSERT: 'write',
  UPDATE: 'write',
  DELETE: 'write',
  MERGE: 'write',
  COPY: 'read',
  'DROP TABLE': 'ddl',
  'DROP SCHEMA': 'ddl',
  'DROP DATABASE': 'ddl',
  'TRUNCATE TABLE': 'ddl',
  'ALTER TABLE': 'ddl',
  'CREATE TABLE': 'ddl',
  GRANT: 'dcl',
  BEGIN: 'transaction',
  SET: 'session',
  DO: 'unknown',
};

/** Facts of a statement: `facts('DELETE', { hasWhere: false, tables: ['public.orders'] })`. */
export function facts(command: string, overrides: Partial<StatementFacts> = {}): StatementFacts {
  const tables = overrides.tables ?? ['public.orders'];
  const kind = overrides.kind ?? COMMAND_KIND[command] ?? 'utility';
  return {
    command,
    kind,
    tables,
    readTables: kind === 'read' ? tables : [],
    writeTables: kind === 'write' || kind === 'ddl' ? tables : [],
    columns: [],
    hasWhere: true,
    functions: [],
    text: `${command} ...`,
    effectUnknown: kind === 'unknown',
    output: [],
    predicateColumns: [],
    ...overrides,
  };
}

export function identity(overrides: Partial<PolicyIdentity> = {}): PolicyIdentity {
  return {
    user: 'app',
    database: 'shop',
    application: 'checkout',
    namespace: 'shop',
    serviceAccount: 'checkout',
    pod: 'checkout-7d9f',
    labels: { app: 'checkout' },
    ...overrides,
  };
}

export function column(overrides: Partial<ColumnFacts> = {}): ColumnFacts {
  return { table: 'public.customers', name: 'email', type: 'text', classes: ['email'], derived: false, ...overrides };
}
