/**
 * `@dbward/sidecar/api`: the dbward API types, imported by the operator (ADR 0009). The served
 * version is re-exported flat; each version is also available as a namespace.
 */
export * from './v1alpha1/index.js';
export * as v1alpha1 from './v1alpha1/index.js';
