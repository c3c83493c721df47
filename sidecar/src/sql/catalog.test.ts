import { describe, expect, it } from 'vitest';
import { CATALOG_QUERY, CatalogFormatError, catalogRelation, parseCatalogSnapshot } from './catalog.js';

/** The shape CATALOG_QUERY returns (trimmed from a PostgreSQL 15 database). */
const SAMPLE = JSON.stringify({
  searchPath: ['public'],
  relations: {
    public: {
      customers: { kind: 'r', columns: [{ name: 'id', type: 'integer' }, { name: 'email', type: 'text' }], definition: null },
      v_emails: {
        kind: 'v',
        columns: [{ name: 'contact', type: 'text' }],
        definition: ' SELECT lower(customers.email) AS contact\n   FROM customers;',
      },
      events: { kind: 'p', columns: [{ name: 'payload', type: 'jsonb' }], definition: null },
    },
    pg_catalog: { pg_class: { kind: 'r', columns: [{ name: 'oid', type: 'oid' }, { name: 'relname', type: 'name' }], definition: null } },
  },
  functions: {
    'pg_catalog.lower': { volatility: 'i', languages: ['internal'] },
    'public.my_func': { volatility: 'v', languages: ['sql'] },
  },
});

describe('parseCatalogSnapshot', () => {
  it('converts CATALOG_QUERY output', () => {
    const snap = parseCatalogSnapshot(SAMPLE);
    expect(snap.searchPath).toEqual(['public']);
    expect(catalogRelation(snap, 'public', 'customers')).toEqual({
      kind: 'table',
      columns: [{ name: 'id', type: 'integer' }, { name: 'email', type: 'text' }],
    });
    expect(catalogRelation(snap, 'public', 'v_emails')?.kind).toBe('view');
    expect(catalogRelation(snap, 'public', 'v_emails')?.definition).toContain('lower(customers.email)');
    expect(catalogRelation(snap, 'public', 'events')?.kind).toBe('partitioned table');
    expect(catalogRelation(snap, 'public', 'constructor')).toBeUndefined();
    expect(catalogRelation(snap, 'nope', 'customers')).toBeUndefined();
    expect(snap.functions['public.my_func']).toEqual({ volatility: 'v', languages: ['sql'] });
  });

  it('accepts an already parsed value and an empty database', () => {
    expect(parseCatalogSnapshot({ searchPath: [], relations: {}, functions: {} })).toEqual({ searchPath: [], relations: {}, functions: {} });
  });

  it.each([
    ['[]', 'not an object'],
    ['{"relations": []}', 'relations is not an object'],
    ['{"relations": {"public": {"t": {"kind": "x", "columns": []}}}}', 'has kind x'],
    ['{"relations": {"public": {"t": {"kind": "r"}}}}', 'no columns list'],
    ['{"relations": {"public": {"t": {"kind": "r", "columns": [{}]}}}}', 'malformed column'],
    ['{"functions": {"f": {"volatility": "q"}}}', 'function f is malformed'],
    ['{"searchPath": [1]}', 'searchPath'],
  ])('rejects %s', (json, message) => {
    expect(() => parseCatalogSnapshot(json)).toThrow(CatalogFormatError);
    expect(() => parseCatalogSnapshot(json)).toThrow(message);
  });

  it('is one statement returning one json column', () => {
    expect(CATALOG_QUERY.trim().startsWith('SELECT json_build_object(')).toBe(true);
    expect(CATALOG_QUERY).toContain(')::text AS catalog');
    expect(CATALOG_QUERY).not.toContain(';');
  });
});
