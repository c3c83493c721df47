import type { DataClass } from './classes.js';

/**
 * Classification by column name (SPEC §3 `classification.automatic`), with the table name and the
 * column's type as context. Pure and cheap; the caller caches per (table, column, type).
 *
 * How a name is read:
 * 1. Split into lower-case tokens: snake_case, camelCase, kebab-case, `IPAddress`, `address1`
 *    (`address`, `1`). Plurals match their singular (`emails`, `addresses`).
 * 2. Find keywords, longest first: `email_address` is email, `ip_address` is ip_address,
 *    `mac_address` is a known non-PII compound and consumes both tokens.
 * 3. A keyword names the value only when every token after it describes that same value
 *    (`phone_number`, `email_hash`, `address_line_1`, `password_digest`) and no token before it
 *    turns the name into a property (`is_`, `has_`, `num_`, `max_`...). So `email_verified`,
 *    `phone_count`, `card_type`, `token_expires_at`, `address_id`, `has_email` are not PII, while
 *    `billing_email`, `customer_phone`, `password_reset_token` (a token) are.
 * 4. `name` alone is ambiguous (`products.name`): it is person_name only when the table is about
 *    people (customers, users, people, employees, patients, contacts, members, ... — any token of
 *    the table name, singular or plural), and `display_name`, `nickname`, `preferred_name` the same.
 *    `<person>_name` (`customer_name`, `patient_name`, `cardholder_name`) is person_name in any
 *    table. `username` / `user_name` are login handles, not names: not classified.
 * 5. The type must be able to hold the class: a bool or a count is never PII by name; integers
 *    only for ssn, phone and credit_card; date/timestamp only for date_of_birth; inet/cidr only for
 *    ip_address. Text-like, json, bytea, arrays of those, and unknown types (domains, enums, citext)
 *    are accepted: unknown means fail closed.
 */

export interface NameInput {
  /** `schema.table` (or just `table`); empty when unknown. */
  readonly table: string;
  readonly name: string;
  /** pg_type.typname, e.g. `text`, `int4`, `_text` (array), `citext`; empty when unknown. */
  readonly type: string;
}

export interface NameClassification {
  readonly classes: readonly DataClass[];
  /** Why: which token matched, or why a keyword was not enough. For logs and `dbward check`. */
  readonly reason: string;
}

interface Pattern {
  readonly tokens: readonly string[];
  /** null: a known compound that is not PII (`mac_address`), consumed so its parts do not match. */
  readonly cls: DataClass | null;
  /** Only as the whole name (no tokens before it), and only in a table about people. */
  readonly personTable?: boolean;
}

const KEYWORDS: Record<DataClass | 'none', readonly string[]> = {
  email: ['email', 'e_mail', 'mail', 'email_address', 'emailaddress', 'mail_address', 'mailaddress', 'email_addr', 'emailaddr'],
  phone: [
    'phone', 'phone_number', 'phonenumber', 'mobile', 'mobile_number', 'mobile_phone', 'mobilephone', 'tel', 'telephone',
    'telephone_number', 'msisdn', 'cellphone', 'cell_phone', 'fax', 'fax_number',
  ],
  ssn: ['ssn', 'social_security', 'social_security_number', 'socialsecuritynumber'],
  credit_card: [
    'card', 'card_number', 'cardnumber', 'card_no', 'card_num', 'cc_number', 'ccnumber', 'cc_num', 'ccnum', 'cc_no',
    'credit_card', 'creditcard', 'credit_card_number', 'creditcardnumber', 'debit_card', 'pan', 'primary_account_number',
  ],
  iban: ['iban'],
  ip_address: [
    'ip', 'ip_address', 'ipaddress', 'ip_addr', 'ipaddr', 'ipv4', 'ipv6', 'inet', 'remote_addr', 'remote_address',
    'client_addr', 'x_forwarded_for', 'forwarded_for',
  ],
  person_name: [
    'first_name', 'firstname', 'last_name', 'lastname', 'full_name', 'fullname', 'given_name', 'givenname', 'family_name',
    'familyname', 'middle_name', 'middlename', 'maiden_name', 'maidenname', 'surname', 'forename', 'legal_name', 'birth_name',
  ],
  address: [
    'address', 'addr', 'street', 'street_address', 'street_name', 'streetname', 'city', 'city_name', 'zip', 'zipcode',
    'zip_code', 'postcode', 'post_code', 'postal_code', 'postalcode', 'address_line', 'addressline',
  ],
  date_of_birth: ['dob', 'date_of_birth', 'dateofbirth', 'birth_date', 'birthdate', 'birthday', 'birth_day', 'born_on', 'born_at'],
  secret: [
    'secret', 'secret_key', 'secretkey', 'private_key', 'privatekey', 'signing_key', 'encryption_key', 'master_key',
    'secret_access_key', 'client_secret', 'shared_secret',
  ],
  api_key: [
    'api_key', 'apikey', 'api_token', 'access_token', 'accesstoken', 'refresh_token', 'refreshtoken', 'auth_token',
    'authtoken', 'bearer_token', 'session_token', 'id_token', 'token', 'access_key', 'access_key_id', 'accesskey', 'jwt',
  ],
  password: [
    'password', 'passwd', 'pwd', 'pass_word', 'password_hash', 'hashed_password', 'encrypted_password', 'password_digest',
    'passphrase', 'pass_phrase', 'passcode',
  ],
  free_text_pii: [],
  none: [
    'mac_address', 'macaddress', 'mac_addr', 'macaddr', 'hw_address', 'hardware_address', 'wallet_address', 'contract_address',
    'memory_address', 'web_address', 'url_address', 'server_address', 'host_address', 'bind_address', 'listen_address',
    'broadcast_address', 'network_address', 'ether_address', 'eth_address', 'btc_address', 'bitcoin_address', 'base_address',
    'user_name', 'username', 'card_type', 'cc_list', 'mail_server', 'mail_host',
  ],
};

/** Names that are a person's name only in a table about people, and only as the whole name. */
const PERSON_TABLE_NAMES = ['name', 'display_name', 'displayname', 'nickname', 'nick_name', 'preferred_name'];

/** Table-name tokens (singular) that mark a table about people. */
const PERSON_TABLES = new Set([
  'customer', 'user', 'person', 'people', 'employee', 'patient', 'contact', 'member', 'student', 'staff', 'author', 'driver',
  'passenger', 'guest', 'subscriber', 'recipient', 'applicant', 'candidate', 'profile', 'doctor', 'physician', 'teacher',
  'beneficiary', 'owner', 'cardholder', 'lead', 'visitor', 'buyer', 'donor', 'volunteer', 'resident', 'citizen', 'individual',
  'worker', 'personnel', 'shopper', 'client', 'consumer', 'holder', 'account_holder', 'traveler', 'traveller', 'tenant',
]);

/** `<noun>_name` is person_name in any table. */
const PERSON_NOUNS = new Set([
  'customer', 'person', 'employee', 'patient', 'contact', 'member', 'student', 'driver', 'passenger', 'guest', 'recipient',
  'sender', 'applicant', 'candidate', 'beneficiary', 'owner', 'holder', 'cardholder', 'guardian', 'spouse', 'parent', 'mother',
  'father', 'child', 'buyer', 'donor', 'volunteer', 'resident', 'traveler', 'traveller', 'subscriber', 'shopper', 'consumer',
  'payer', 'payee', 'signer', 'signatory', 'doctor', 'physician', 'nurse', 'teacher', 'worker', 'manager', 'emergency', 'real',
]);

/** Tokens after a keyword that still describe the value itself. Numeric tokens are accepted too. */
const VALUE_SUFFIXES = new Set([
  'number', 'num', 'no', 'nr', 'nbr', 'addr', 'address', 'hash', 'hashed', 'digest', 'salt', 'value', 'val', 'text', 'txt', 'raw',
  'enc', 'encrypted', 'crypt', 'crypted', 'cipher', 'ciphertext', 'plain', 'plaintext', 'clear', 'cleartext', 'encoded', 'b64',
  'base64', 'hex', 'full', 'e', 'e164', 'intl', 'international', 'national', 'local', 'formatted', 'normalized', 'normalised',
  'canonical', 'lower', 'lowercase', 'upper', 'str', 'string', 'primary', 'secondary', 'alt', 'alternate', 'alternative', 'other',
  'backup', 'old', 'new', 'prev', 'previous', 'current', 'original', 'orig', 'home', 'work', 'personal', 'private', 'business',
  'office', 'line', 'digits', 'answer', 'data', 'json', 'info', 'details', 'list', 'array', 'bytes', 'bin', 'blob', 'mobile',
  'cell', 'fixed', 'landline', 'contact', 'billing', 'shipping', 'mailing', 'postal',
]);

/** Tokens before a keyword that make the name a property of the value (a flag, a count, a limit). */
const PROPERTY_PREFIXES = new Set([
  'is', 'has', 'have', 'can', 'should', 'allow', 'allows', 'use', 'uses', 'needs', 'need', 'require', 'requires', 'enable',
  'enabled', 'disable', 'disabled', 'count', 'total', 'num', 'number', 'n', 'max', 'min', 'avg', 'sum', 'len', 'length', 'size', 'no',
]);

/** What a type can hold; undefined: every class (text-like, json, unknown). */
const TYPE_GATES: ReadonlyMap<string, ReadonlySet<DataClass>> = new Map<string, ReadonlySet<DataClass>>([
  ...['bool', 'int2', 'float4', 'float8', 'oid', 'char', 'money', 'interval', 'time', 'timetz', 'macaddr', 'macaddr8', 'tsvector', 'point']
    .map((t) => [t, new Set<DataClass>()] as const),
  ...['int4', 'int8', 'numeric'].map((t) => [t, new Set<DataClass>(['ssn', 'phone', 'credit_card'])] as const),
  ...['date', 'timestamp', 'timestamptz'].map((t) => [t, new Set<DataClass>(['date_of_birth'])] as const),
  ...['inet', 'cidr'].map((t) => [t, new Set<DataClass>(['ip_address'])] as const),
  ['uuid', new Set<DataClass>(['secret', 'api_key', 'password'])],
  [
    'bytea',
    new Set<DataClass>(['email', 'phone', 'ssn', 'credit_card', 'iban', 'person_name', 'address', 'secret', 'api_key', 'password', 'free_text_pii']),
  ],
]);

/** Aliases from format_type() spellings to typname. */
const TYPE_ALIASES: Record<string, string> = {
  boolean: 'bool', smallint: 'int2', integer: 'int4', int: 'int4', bigint: 'int8', real: 'float4', 'double precision': 'float8',
  'timestamp without time zone': 'timestamp', 'timestamp with time zone': 'timestamptz', 'time without time zone': 'time',
  'time with time zone': 'timetz', decimal: 'numeric',
};

const PATTERNS = buildPatterns();
const PERSON_NOUN_NAME: Pattern = { tokens: ['name'], cls: 'person_name' };

function buildPatterns(): ReadonlyMap<string, readonly Pattern[]> {
  const all: Pattern[] = [];
  for (const [cls, names] of Object.entries(KEYWORDS)) {
    for (const name of names) all.push({ tokens: name.split('_'), cls: cls === 'none' ? null : (cls as DataClass) });
  }
  for (const name of PERSON_TABLE_NAMES) all.push({ tokens: name.split('_'), cls: 'person_name', personTable: true });
  const byFirst = new Map<string, Pattern[]>();
  for (const p of all) {
    const first = p.tokens[0] as string;
    const list = byFirst.get(first) ?? [];
    list.push(p);
    byFirst.set(first, list);
  }
  // Longest first, so `email_address` wins over `email`; whole-name person patterns after the rest.
  for (const list of byFirst.values()) list.sort((a, b) => b.tokens.length - a.tokens.length || Number(a.personTable ?? false) - Number(b.personTable ?? false));
  return byFirst;
}

/** Lower-case tokens of an identifier: `billingEmailAddress2` → billing, email, address, 2. */
export function nameTokens(identifier: string): string[] {
  const spaced = identifier
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .replace(/([A-Za-z])([0-9])/g, '$1 $2')
    .toLowerCase();
  return spaced.split(/[^a-z0-9]+/).filter((t) => t.length > 0);
}

function sameToken(token: string, keyword: string): boolean {
  if (token === keyword) return true;
  if (token.length === keyword.length + 1) return token.endsWith('s') && token.startsWith(keyword);
  if (token.length === keyword.length + 2) return token.endsWith('es') && token.startsWith(keyword);
  return keyword.endsWith('y') && token === `${keyword.slice(0, -1)}ies`;
}

function matchAt(tokens: readonly string[], i: number, p: Pattern): boolean {
  if (i + p.tokens.length > tokens.length) return false;
  for (let k = 0; k < p.tokens.length; k++) if (!sameToken(tokens[i + k] as string, p.tokens[k] as string)) return false;
  return true;
}

function candidates(token: string): readonly Pattern[] {
  const exact = PATTERNS.get(token);
  const s = token.endsWith('s') ? PATTERNS.get(token.slice(0, -1)) : undefined;
  const es = token.endsWith('es') ? PATTERNS.get(token.slice(0, -2)) : undefined;
  const ies = token.endsWith('ies') ? PATTERNS.get(`${token.slice(0, -3)}y`) : undefined;
  if (s === undefined && es === undefined && ies === undefined) return exact ?? [];
  return [...(exact ?? []), ...(s ?? []), ...(es ?? []), ...(ies ?? [])].sort((a, b) => b.tokens.length - a.tokens.length);
}

function singular(token: string): string {
  if (token === 'people') return 'person';
  if (token.endsWith('ies')) return `${token.slice(0, -3)}y`;
  if (token.endsWith('s') && !token.endsWith('ss')) return token.slice(0, -1);
  return token;
}

/** True when the table (last segment of `schema.table`) is about people. */
export function isPersonTable(table: string): boolean {
  const dot = table.lastIndexOf('.');
  const tokens = nameTokens(dot >= 0 ? table.slice(dot + 1) : table);
  return tokens.some((t) => PERSON_TABLES.has(t) || PERSON_TABLES.has(singular(t)));
}

function normaliseType(type: string): string {
  const t = type.trim().toLowerCase().replace(/\(.*\)$/, '');
  if (t.endsWith('[]')) return normaliseType(t.slice(0, -2));
  if (t.startsWith('_')) return t.slice(1);
  return TYPE_ALIASES[t] ?? t;
}

/** True when a column of this type can hold a value of the class (see rule 5 above). */
export function typeCanHold(type: string, cls: DataClass): boolean {
  const gate = TYPE_GATES.get(normaliseType(type));
  return gate === undefined || gate.has(cls);
}

const isNumeric = (t: string): boolean => /^[0-9]+$/.test(t);

interface Found {
  readonly cls: DataClass;
  readonly start: number;
  readonly end: number;
}

export function classifyByName(input: NameInput): NameClassification {
  const tokens = nameTokens(input.name);
  const found: Found[] = [];
  const notes: string[] = [];
  let personTable: boolean | undefined;
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i] as string;
    let pattern: Pattern | undefined;
    let start = i;
    if (sameToken(token, 'name') && i > 0 && PERSON_NOUNS.has(tokens[i - 1] as string)) {
      // `<person>_name`: the noun before `name` is part of the match.
      pattern = PERSON_NOUN_NAME;
      start = i - 1;
    } else {
      pattern = candidates(token).find((p) => matchAt(tokens, i, p));
    }
    if (pattern === undefined) {
      i++;
      continue;
    }
    const end = i + pattern.tokens.length;
    i = end;
    const cls = pattern.cls;
    if (cls === null) {
      notes.push(`"${tokens.slice(start, end).join('_')}" is not personal data`);
      continue;
    }
    if (pattern.personTable === true) {
      if (start !== 0) continue;
      personTable ??= isPersonTable(input.table);
      if (!personTable) {
        notes.push(`"${tokens.slice(start, end).join('_')}" is a person's name only in a table about people, not in ${input.table === '' ? 'an unknown table' : input.table}`);
        continue;
      }
    }
    const prefix = tokens.slice(0, start).find((t) => PROPERTY_PREFIXES.has(t));
    if (prefix !== undefined) {
      notes.push(`"${tokens.slice(start, end).join('_')}" after "${prefix}" names a property, not the value`);
      continue;
    }
    const suffix = tokens.slice(end).find((t) => !VALUE_SUFFIXES.has(t) && !isNumeric(t));
    if (suffix !== undefined) {
      notes.push(`"${tokens.slice(start, end).join('_')}" followed by "${suffix}" names a property, not the value`);
      continue;
    }
    found.push({ cls, start, end });
  }
  const classes: DataClass[] = [];
  const why: string[] = [];
  for (const f of found) {
    const words = tokens.slice(f.start, f.end).join('_');
    if (input.type !== '' && !typeCanHold(input.type, f.cls)) {
      notes.push(`"${words}" suggests ${f.cls} but a ${input.type} column cannot hold one`);
      continue;
    }
    if (!classes.includes(f.cls)) classes.push(f.cls);
    why.push(`"${words}" → ${f.cls}`);
  }
  const reason = classes.length > 0 ? `name ${input.name}: ${why.join(', ')}` : `name ${input.name}: ${notes.length > 0 ? notes.join('; ') : 'no personal-data keyword'}`;
  return { classes, reason };
}
