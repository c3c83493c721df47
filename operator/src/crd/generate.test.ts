import { describe, expect, it } from 'vitest';
import { generateCrds, staleCrds } from './generate.js';
import { SchemaConversionError, toStructural, type JsonSchema } from './structural.js';

describe('CRD files', () => {
  it('crds/ and charts/dbward/crds/ match the zod schemas (run `make crds` when this fails)', async () => {
    expect(await staleCrds()).toEqual([]);
  });

  it('produce structural schemas: a type on every node, no $ref/anyOf/const', () => {
    for (const file of generateCrds()) {
      expect(file.content).not.toMatch(/\$ref|anyOf|oneOf|allOf|\bconst:|propertyNames|\$schema/);
    }
  });
});

describe('toStructural', () => {
  const cases: { name: string; input: JsonSchema; expected?: JsonSchema; error?: RegExp }[] = [
    { name: 'const becomes enum', input: { type: 'string', const: 'x' }, expected: { type: 'string', enum: ['x'] } },
    {
      name: 'additionalProperties false beside properties is dropped (pruning)',
      input: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false, required: [] },
      expected: { type: 'object', properties: { a: { type: 'string' } } },
    },
    {
      name: 'string maps keep their value schema, propertyNames dropped',
      input: { type: 'object', propertyNames: { type: 'string' }, additionalProperties: { type: 'string' } },
      expected: { type: 'object', additionalProperties: { type: 'string' } },
    },
    { name: 'date-time drops the non-RE2 pattern', input: { type: 'string', format: 'date-time', pattern: '^(?=x)' }, expected: { type: 'string', format: 'date-time' } },
    { name: 'safe-integer bounds dropped, int64', input: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, expected: { type: 'integer', minimum: 0, format: 'int64' } },
    { name: 'anyOf refused', input: { anyOf: [{ type: 'string' }] }, error: /anyOf/ },
    { name: 'untyped node refused', input: { type: 'object', properties: { a: { description: 'x' } } }, error: /\.a: every node needs a type/ },
    { name: 'lookahead pattern refused', input: { type: 'string', pattern: '(?!a)b' }, error: /RE2/ },
  ];
  it.each(cases)('$name', ({ input, expected, error }) => {
    if (error) expect(() => toStructural(input)).toThrow(SchemaConversionError);
    if (error) expect(() => toStructural(input)).toThrow(error);
    else expect(toStructural(input)).toEqual(expected);
  });
});
