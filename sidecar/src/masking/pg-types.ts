/**
 * The PostgreSQL built-in types masking needs to know (OIDs from pg_type.dat, stable across
 * versions). Extension types such as citext have no fixed OID: callers that know a column's type
 * name pass it (`typeName`) and {@link typeCategory} uses it.
 */
export const TypeOid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  cidr: 650,
  float4: 700,
  float8: 701,
  money: 790,
  macaddr: 829,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const NAMES = new Map<number, string>(Object.entries(TypeOid).map(([name, oid]) => [oid, name]));

/** The pg_type.typname of a built-in OID, or undefined. */
export function typeNameOf(oid: number): string | undefined {
  return NAMES.get(oid);
}

/**
 * How masks treat a type:
 *   text     text, varchar, bpchar, name, citext: the masked string (bpchar keeps its length)
 *   json     json, jsonb: a JSON string value
 *   uuid     hash gives a UUID derived from the HMAC; other masks NULL
 *   integer  int4, int8: hash gives an integer derived from the HMAC; other masks NULL
 *   bytea    hash gives the 32 HMAC bytes; other masks NULL
 *   other    always NULL (numbers, dates, inet, arrays, enums, unknown OIDs...)
 */
export type TypeCategory = 'text' | 'json' | 'uuid' | 'integer' | 'bytea' | 'other';

/** Type names (lower case, as in pg_type.typname or format_type) that are text to masks. */
const TEXT_NAMES = new Set(['text', 'varchar', 'bpchar', 'name', 'citext', 'character varying', 'character']);

export function typeCategory(typeOid: number, typeName?: string): TypeCategory {
  switch (typeOid) {
    case TypeOid.text:
    case TypeOid.varchar:
    case TypeOid.bpchar:
    case TypeOid.name:
      return 'text';
    case TypeOid.json:
    case TypeOid.jsonb:
      return 'json';
    case TypeOid.uuid:
      return 'uuid';
    case TypeOid.int4:
    case TypeOid.int8:
      return 'integer';
    case TypeOid.bytea:
      return 'bytea';
  }
  if (typeName !== undefined && NAMES.get(typeOid) === undefined && TEXT_NAMES.has(typeName.toLowerCase())) return 'text';
  return 'other';
}

/** The declared length n of char(n) from pg_attribute.atttypmod (n + 4), or -1 when unknown. */
export function bpcharLength(typeModifier: number): number {
  return typeModifier >= 4 ? typeModifier - 4 : -1;
}

/** Largest `name` value in bytes (NAMEDATALEN - 1). */
export const NAME_MAX_BYTES = 63;
