import { DataAccessPolicySchema, formatPath, type DataAccessPolicy } from '@dbward/sidecar/api';
import { compilePolicies, isPolicyErrors } from '@dbward/sidecar/policy';

/**
 * Phase 1, observe (pure): what a DataAccessPolicy object is. It is validated with the zod schema
 * (the CRD schema is generated from the same one, but objects written before a CRD upgrade, or
 * checks zod makes and OpenAPI cannot, still need it) and compiled with the sidecar's own compiler,
 * so a rule that would not compile in the sidecar never reaches one.
 */

export type Observation =
  | { readonly ready: true; readonly policy: DataAccessPolicy; readonly generation: number; readonly rules: number }
  | { readonly ready: false; readonly reason: 'Invalid'; readonly message: string; readonly generation: number };

/** Longest condition message we write (metav1.Condition allows 32768). */
export const MAX_MESSAGE = 4096;

export function observePolicy(raw: unknown): Observation {
  const generation = generationOf(raw);
  const parsed = DataAccessPolicySchema.safeParse(raw);
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ');
    return { ready: false, reason: 'Invalid', message: clip(message), generation };
  }
  const policy = parsed.data;
  const compiled = compilePolicies([policy]);
  if (isPolicyErrors(compiled)) {
    return { ready: false, reason: 'Invalid', message: clip(compiled.errors.map((e) => e.message).join('\n')), generation };
  }
  return { ready: true, policy, generation, rules: policy.spec.guardrails.length + policy.spec.masking.rules.length };
}

function generationOf(raw: unknown): number {
  const g = (raw as { metadata?: { generation?: unknown } } | null)?.metadata?.generation;
  return typeof g === 'number' ? g : 0;
}

function clip(text: string): string {
  return text.length <= MAX_MESSAGE ? text : `${text.slice(0, MAX_MESSAGE - 20)}… (truncated)`;
}
