import type { LabelSelector } from '@dbward/sidecar/api';

// The one label-selector matcher: the webhook (which pods get the sidecar) and the control plane
// (which policies a sidecar receives) must agree.

/**
 * `metav1.LabelSelector` semantics (LabelSelectorAsSelector): every matchLabels pair and every
 * matchExpressions requirement must hold. An empty selector (`{}`) selects every pod; an absent
 * one selects none (a policy without `workloadSelector` is delivered to no sidecar).
 */
export function selects(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, requirement.key);
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (!has || !values.includes(value!)) return false;
        break;
      case 'NotIn':
        // As in Kubernetes: a pod without the label satisfies NotIn.
        if (has && values.includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
