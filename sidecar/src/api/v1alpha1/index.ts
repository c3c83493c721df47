/** dbward.io/v1alpha1: schemas, inferred types and defaults of every dbward kind (ADR 0009). */
export * from './meta.js';
export * from './duration.js';
export * from './data-access-policy.js';
export * from './access-request.js';
