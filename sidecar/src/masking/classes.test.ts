import { describe, expect, it } from 'vitest';
import { bitsOf, classBit, classesOf, DATA_CLASSES, isDataClass } from './classes.js';

describe('data classes', () => {
  it('lists the SPEC §4 vocabulary plus free_text_pii', () => {
    expect(DATA_CLASSES).toEqual([
      'email', 'phone', 'ssn', 'credit_card', 'iban', 'ip_address', 'person_name', 'address',
      'date_of_birth', 'secret', 'api_key', 'password', 'free_text_pii',
    ]);
  });

  it.each([
    ['email', true],
    ['free_text_pii', true],
    ['Email', false],
    ['customer_notes', false],
  ])('isDataClass(%s) = %s', (value, expected) => {
    expect(isDataClass(value)).toBe(expected);
  });

  it('round-trips bit sets in vocabulary order', () => {
    expect(classesOf(bitsOf(['password', 'email', 'iban']))).toEqual(['email', 'iban', 'password']);
    expect(classesOf(0)).toEqual([]);
    expect(new Set(DATA_CLASSES.map(classBit)).size).toBe(DATA_CLASSES.length);
  });
});
