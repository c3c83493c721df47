/**
 * The data classes of SPEC §4 (`column.classes`): what classification (by name, by content, or
 * declared in `classification.columns`) says a column holds. Policies compare these strings in CEL,
 * so they are part of the contract: add classes, never rename one.
 */
export const DATA_CLASSES = [
  'email',
  'phone',
  'ssn',
  'credit_card',
  'iban',
  'ip_address',
  'person_name',
  'address',
  'date_of_birth',
  'secret',
  'api_key',
  'password',
  /** Free text (notes, comments, messages) in which a detector found one of the classes above. */
  'free_text_pii',
] as const;

export type DataClass = (typeof DATA_CLASSES)[number];

const INDEX = new Map<string, number>(DATA_CLASSES.map((c, i) => [c, i]));

/** True for a built-in class. Users may declare their own classes too; those are not DataClass. */
export function isDataClass(value: string): value is DataClass {
  return INDEX.has(value);
}

/**
 * One bit per class, in DATA_CLASSES order: the content detectors run per row value and return a
 * bit set, which costs no allocation; {@link classesOf} turns it into names.
 */
export function classBit(c: DataClass): number {
  return 1 << (INDEX.get(c) as number);
}

/** The classes of a bit set, in DATA_CLASSES order. */
export function classesOf(bits: number): DataClass[] {
  const out: DataClass[] = [];
  for (let i = 0; i < DATA_CLASSES.length; i++) if ((bits & (1 << i)) !== 0) out.push(DATA_CLASSES[i] as DataClass);
  return out;
}

/** The bit set of some classes. */
export function bitsOf(classes: Iterable<DataClass>): number {
  let bits = 0;
  for (const c of classes) bits |= classBit(c);
  return bits;
}

/** Classes whose detectors validate (checksums, fixed structure): one hit in a sample is enough. */
export const HIGH_RISK_CLASSES: readonly DataClass[] = ['ssn', 'credit_card', 'iban', 'secret', 'api_key', 'password'];
