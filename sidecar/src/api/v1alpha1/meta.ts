import { z } from 'zod';

/**
 * Pieces shared by every dbward kind: object metadata, Kubernetes conditions, label selectors.
 * Only constructs that map onto a Kubernetes structural schema are used (objects, strings with
 * enums or patterns, integers, booleans, arrays, string maps), because the CRDs are generated from
 * these schemas (ADR 0009).
 */

export const API_GROUP = 'dbward.io';
export const API_VERSION = 'v1alpha1';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}` as const;

/** RFC 1123 subdomain: what Kubernetes accepts as an object name. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** RFC 1123 label: what Kubernetes accepts as a namespace name. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

const stringMap = (what: string) => z.record(z.string(), z.string()).describe(what);

/**
 * The part of Kubernetes ObjectMeta that dbward reads. Other fields the API server adds (uid,
 * resourceVersion, managedFields, ...) are kept as they are.
 */
export const ObjectMetaSchema = z
  .looseObject({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(new RegExp(DNS_SUBDOMAIN_PATTERN), 'must be a lower-case RFC 1123 subdomain (a-z, 0-9, "-", ".")')
      .describe('Object name, unique within its namespace.'),
    namespace: z
      .string()
      .min(1)
      .max(63)
      .regex(new RegExp(DNS_LABEL_PATTERN), 'must be a lower-case RFC 1123 label (a-z, 0-9, "-")')
      .optional()
      .describe('Namespace of the object. Optional in standalone policy files.'),
    labels: stringMap('Kubernetes labels.').optional(),
    annotations: stringMap('Kubernetes annotations.').optional(),
    generation: z.int().min(0).optional().describe('Set by the API server; bumped on every spec change.'),
  })
  .describe('Standard object metadata.');
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** A metav1.Condition. */
export const ConditionSchema = z
  .strictObject({
    type: z.string().min(1).max(316).describe('Condition type, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    reason: z
      .string()
      .max(1024)
      .regex(/^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$/, 'must be CamelCase')
      .optional()
      .describe('Machine-readable reason in CamelCase, e.g. Compiled.'),
    message: z.string().max(32768).optional().describe('Human-readable details.'),
    observedGeneration: z.int().min(0).optional().describe('The metadata.generation the condition was computed from.'),
    lastTransitionTime: z.iso.datetime({ offset: true }).optional().describe('When the status last changed (RFC 3339).'),
  })
  .describe('The state of one aspect of the object.');
export type Condition = z.infer<typeof ConditionSchema>;

export const ConditionsSchema = z
  .array(ConditionSchema)
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
  .describe('Current conditions, one per type.');

/** A metav1.LabelSelector. */
export const LabelSelectorSchema = z
  .strictObject({
    matchLabels: stringMap('Labels a pod must carry, all of them.').optional(),
    matchExpressions: z
      .array(
        z.strictObject({
          key: z.string().min(1).describe('Label key.'),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('In, NotIn, Exists or DoesNotExist.'),
          values: z.array(z.string()).optional().describe('Values for In and NotIn; empty for Exists and DoesNotExist.'),
        }),
      )
      .optional()
      .describe('Label requirements, all of them.'),
  })
  .describe('Selects pods by label; the requirements are ANDed. An empty selector selects every pod of the namespace.');
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;

/** Zod issue path rendered the way users write it: `spec.guardrails[2].action`, `labels["a.b/c"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}
