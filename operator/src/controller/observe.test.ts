import { describe, expect, it } from 'vitest';
import { observePolicy } from './observe.js';

const policy = (spec: unknown, generation = 4): unknown => ({
  apiVersion: 'dbward.io/v1alpha1',
  kind: 'DataAccessPolicy',
  metadata: { name: 'p', namespace: 'ns', generation, uid: 'u', resourceVersion: '9' },
  spec,
});

describe('observePolicy', () => {
  it('Ready with the rule count when every rule compiles', () => {
    const obs = observePolicy(policy({ guardrails: [{ name: 'no-drop', when: "query.command == 'DROP TABLE'", action: 'deny' }] }));
    expect(obs).toMatchObject({ ready: true, generation: 4, rules: 1 });
  });

  const invalid: { name: string; spec: unknown; message: RegExp }[] = [
    {
      name: 'CEL type error: rule and position',
      spec: { guardrails: [{ name: 'typed', when: "query.command == 'DELETE' && query.tables == 3", action: 'deny' }] },
      message: /guardrail "typed" \(spec\.guardrails\[0\]\.when\) at 1:\d+: .*\n.*\|.*\n.*\^/,
    },
    {
      name: 'syntax error in a masking rule, second line',
      spec: { masking: { rules: [{ name: 'm', when: "true &&\n  column.name ==", action: 'reveal' }] } },
      message: /masking rule "m" \(spec\.masking\.rules\[0\]\.when\) at 2:\d+/,
    },
    { name: 'schema error (zod)', spec: { enforcement: 'block' }, message: /^spec\.enforcement: / },
    { name: 'duplicate rule names (zod refinement)', spec: { guardrails: [{ name: 'a', when: 'true', action: 'deny' }, { name: 'a', when: 'true', action: 'deny' }] }, message: /duplicate rule name "a"/ },
  ];
  it.each(invalid)('Invalid: $name', ({ spec, message }) => {
    const obs = observePolicy(policy(spec));
    expect(obs.ready).toBe(false);
    if (!obs.ready) {
      expect(obs.reason).toBe('Invalid');
      expect(obs.message).toMatch(message);
      expect(obs.generation).toBe(4);
    }
  });
});
