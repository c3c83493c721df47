/**
 * Policy engine: load (YAML → validated documents), compile (CEL, once) and decide. Everything
 * exported here is pure; the file watcher (the one I/O module) is imported from './watch.js'.
 */
export { compilePolicies, isPolicyErrors, type CompiledGuardrail, type CompiledMaskingRule, type CompiledPolicySet, type CompileOptions } from './compile.js';
export { decideColumn, decideStatement, decideUnparseable } from './evaluate.js';
export { loadPolicies, locatePolicyPath, PolicyLoadError, type LoadResult } from './load.js';
export { PolicyError, PolicyErrors, type PolicyErrorCode } from './errors.js';
export { BUILTIN_GUARDRAILS, BUILTIN_POLICY } from './builtins.js';
export { CEL_LIMITS, CEL_VARIABLES } from './cel-env.js';
export type { ColumnDecision, ColumnFacts, ColumnInput, Decision, MaskName, PolicyIdentity, PolicyLocator, SourcePosition, StatementInput } from './types.js';
