import { z } from 'zod';
import { DURATION_PATTERN, parseDurationMs } from './duration.js';
import { ConditionsSchema, GROUP_VERSION, LabelSelectorSchema, ObjectMetaSchema } from './meta.js';

/**
 * DataAccessPolicy (SPEC §3): the one definition of its shape, its defaults and its field
 * descriptions. The sidecar validates policy files with it, the operator validates objects with it
 * and generates the CRD's OpenAPI schema from it (ADR 0009).
 *
 * Defaults are chosen so that an empty `spec` already protects: classification on, classified
 * columns masked, guardrails enforced, unparseable statements denied.
 */

export const DATA_ACCESS_POLICY_KIND = 'DataAccessPolicy';

/** Largest `when` expression, in UTF-8 bytes. */
export const MAX_EXPRESSION_BYTES = 4096;

/** Rule names: what users see in `dbward: denied by <rule>` and in audit spans. */
export const RULE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$';

export const ENFORCEMENT_MODES = ['enforce', 'audit'] as const;
export const UNPARSEABLE_ACTIONS = ['deny', 'allow'] as const;
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-full'] as const;
export const MASK_NAMES = ['redact', 'partial', 'email', 'hash', 'null'] as const;
export const MASKING_ACTIONS = ['reveal', 'mask'] as const;
export const MASKING_DEFAULTS = ['mask', 'reveal'] as const;
export const GUARDRAIL_ACTIONS = ['deny', 'requireApproval', 'allow'] as const;
export const QUERY_TEXT_MODES = ['normalized', 'full', 'none'] as const;

export type EnforcementMode = (typeof ENFORCEMENT_MODES)[number];
export type UnparseableAction = (typeof UNPARSEABLE_ACTIONS)[number];
export type MaskName = (typeof MASK_NAMES)[number];
export type MaskingAction = (typeof MASKING_ACTIONS)[number];
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];
export type QueryTextMode = (typeof QUERY_TEXT_MODES)[number];

const utf8 = new TextEncoder();

const ruleName = z
  .string()
  .min(1)
  .max(128)
  .regex(new RegExp(RULE_NAME_PATTERN), 'must be lower-case letters, digits, "-", "." or "_", starting and ending with a letter or digit')
  .describe('Rule name, unique within its list. Shown to clients (`dbward: denied by <name>`) and recorded in audit spans.');

const expression = (what: string) =>
  z
    .string()
    .max(MAX_EXPRESSION_BYTES)
    .regex(/\S/, 'must not be empty')
    // Characters are checked by max(); this adds the byte bound for multi-byte text.
    .refine((text) => text.length > MAX_EXPRESSION_BYTES || utf8.encode(text).length <= MAX_EXPRESSION_BYTES, `must be at most ${MAX_EXPRESSION_BYTES} bytes of UTF-8`)
    .describe(what);

/** Rules of one list must have distinct names; reports the later duplicate at its own path. */
function uniqueNames<T extends { name: string }>(rules: readonly T[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  rules.forEach((rule, index) => {
    const first = seen.get(rule.name);
    if (first === undefined) seen.set(rule.name, index);
    else ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate rule name "${rule.name}" (also at [${first}])` });
  });
}

/** Applies an object schema's own defaults when the whole object is absent. */
function defaulted<T extends z.ZodType<object>>(schema: T): z.ZodDefault<T> {
  return schema.default(() => schema.parse({}) as z.util.NoUndefined<z.output<T>>);
}

const listMapByName = { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] } as const;

export const UpstreamSchema = z
  .strictObject({
    host: z.string().min(1).max(253).describe('Host name or IP address of the PostgreSQL server.'),
    port: z.int().min(1).max(65535).default(5432).describe('TCP port of the PostgreSQL server.'),
    sslmode: z
      .enum(SSL_MODES)
      .default('prefer')
      .describe('TLS to the server, as libpq: disable, prefer, require (encrypt, no verification), verify-full (verify chain and host name).'),
    credentialsSecretRef: z
      .strictObject({ name: z.string().min(1).max(253).describe('Name of a Secret in the policy namespace.') })
      .optional()
      .describe('Secret with keys `username` and `password`. When set, the sidecar logs in upstream itself and the workload never holds the password; the listener is then loopback-only.'),
  })
  .describe('The PostgreSQL server the sidecar connects to. In standalone mode `--upstream` takes its place.');
export type Upstream = z.infer<typeof UpstreamSchema>;

export const ListenSchema = z
  .strictObject({
    port: z.int().min(1).max(65535).default(6432).describe('Port of the sidecar listener inside the pod.'),
    envVar: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional()
      .describe('Environment variable of the workload container holding the database URL; the webhook rewrites it to reach the sidecar.'),
  })
  .describe('Where the sidecar listens for the workload.');
export type Listen = z.infer<typeof ListenSchema>;

export const ClassifiedColumnSchema = z
  .strictObject({
    table: z
      .string()
      .regex(/^[^.\s]+\.[^.\s]+$/, 'must be schema-qualified, e.g. public.customers')
      .describe('Schema-qualified table, e.g. `public.customers`.'),
    column: z.string().min(1).max(63).describe('Column name.'),
    classes: z
      .array(z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower-case letters, digits and "_"'))
      .min(1)
      .describe('Data classes of the column, e.g. `email`, `ssn`, or your own such as `free_text_pii`.'),
  })
  .describe('A column classified by hand.');
export type ClassifiedColumn = z.infer<typeof ClassifiedColumnSchema>;

export const ClassificationSchema = z
  .strictObject({
    automatic: z
      .boolean()
      .default(true)
      .describe('Run the built-in detectors, by column name and by content (email, phone, ssn, credit_card, iban, ...).'),
    columns: z.array(ClassifiedColumnSchema).default([]).describe('Columns classified by hand, in addition to the detectors.'),
  })
  .describe('Which columns carry sensitive data.');
export type Classification = z.infer<typeof ClassificationSchema>;

export const MaskingRuleSchema = z
  .strictObject({
    name: ruleName,
    when: expression('CEL expression over `identity`, `environment`, `query` and `column`; must be bool.'),
    action: z.enum(MASKING_ACTIONS).describe('reveal: send the value as is; mask: replace it.'),
    mask: z
      .enum(MASK_NAMES)
      .optional()
      .describe('With action mask: redact (default), partial (last 4 characters kept), email (domain kept), hash (keyed HMAC-SHA-256), null.'),
  })
  .superRefine((rule, ctx) => {
    if (rule.mask !== undefined && rule.action !== 'mask') {
      ctx.addIssue({ code: 'custom', path: ['mask'], message: 'mask is only allowed with action: mask' });
    }
  })
  .describe('One masking rule; the first reveal or mask match decides for a column.');
export type MaskingRule = z.infer<typeof MaskingRuleSchema>;

export const MaskingSchema = z
  .strictObject({
    default: z
      .enum(MASKING_DEFAULTS)
      .default('mask')
      .describe('What happens to a classified column no rule matched: mask (with redact) or reveal.'),
    rules: z
      .array(MaskingRuleSchema)
      .default([])
      .superRefine(uniqueNames)
      .meta(listMapByName)
      .describe('Masking rules, evaluated in order for every result column.'),
    predicates: z
      .enum(['deny', 'allow'])
      .default('deny')
      .describe(
        'Statements that filter, join, group or sort on a column masked for the identity (WHERE ssn = ..., ORDER BY ssn) can reveal its values by inference: deny refuses them (42501), allow lets them run with the results masked.',
      ),
  })
  .describe('How result values are masked.');
export type Masking = z.infer<typeof MaskingSchema>;

export const GuardrailSchema = z
  .strictObject({
    name: ruleName,
    when: expression('CEL expression over `identity`, `environment` and `query`; must be bool.'),
    action: z
      .enum(GUARDRAIL_ACTIONS)
      .describe('deny: refuse the statement (SQLSTATE 42501); requireApproval: hold it until approved; allow: let it run, skipping later rules.'),
    message: z.string().max(1024).optional().describe('Shown to the client after `dbward: denied by <name>: `.'),
  })
  .describe('One guardrail; the first matching rule decides for a statement.');
export type Guardrail = z.infer<typeof GuardrailSchema>;

export const ApprovalsSchema = z
  .strictObject({
    timeout: z
      .string()
      .regex(new RegExp(DURATION_PATTERN), 'must be a duration such as 90s, 10m or 1h30m')
      .refine((text) => {
        const ms = parseDurationMs(text);
        return ms === undefined || (ms >= 1_000 && ms <= 86_400_000); // undefined: the pattern reports it
      }, 'must be between 1s and 24h')
      .default('10m')
      .describe('How long a statement waits for approval before it fails (SQLSTATE 57014). Between 1s and 24h.'),
  })
  .describe('Statements held by requireApproval guardrails.');
export type Approvals = z.infer<typeof ApprovalsSchema>;

export const AuditSchema = z
  .strictObject({
    queryText: z
      .enum(QUERY_TEXT_MODES)
      .default('normalized')
      .describe('What db.query.text records: normalized (literals replaced by placeholders), full, or none.'),
  })
  .describe('What audit spans record.');
export type Audit = z.infer<typeof AuditSchema>;

export const DataAccessPolicySpecSchema = z
  .strictObject({
    workloadSelector: LabelSelectorSchema.optional().describe(
      'Pods of the policy namespace that get the sidecar. Ignored by the standalone sidecar.',
    ),
    upstream: UpstreamSchema.optional(),
    listen: defaulted(ListenSchema),
    environment: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .describe('The value of `environment` in CEL. Default: the namespace label dbward.io/environment (standalone: --environment).'),
    enforcement: z
      .enum(ENFORCEMENT_MODES)
      .default('enforce')
      .describe('enforce: guardrails block and hold statements; audit: decide and record, never block.'),
    unparseable: z
      .enum(UNPARSEABLE_ACTIONS)
      .default('deny')
      .describe('Statements the SQL parser rejects: deny (SQLSTATE 42601) or allow.'),
    classification: defaulted(ClassificationSchema),
    masking: defaulted(MaskingSchema),
    guardrails: z
      .array(GuardrailSchema)
      .default([])
      .superRefine(uniqueNames)
      .meta(listMapByName)
      .describe('Guardrails, evaluated in order before the built-ins; a rule named like a built-in replaces it.'),
    approvals: defaulted(ApprovalsSchema),
    audit: defaulted(AuditSchema),
  })
  .describe('What the sidecar enforces for the selected workloads.');
export type DataAccessPolicySpec = z.infer<typeof DataAccessPolicySpecSchema>;

export const DataAccessPolicyStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe('The metadata.generation this status describes.'),
    conditions: ConditionsSchema.optional(),
    policyVersion: z.string().max(64).optional().describe('Version of the compiled policy last sent to sidecars.'),
  })
  .describe('Observed state, written by the operator.');
export type DataAccessPolicyStatus = z.infer<typeof DataAccessPolicyStatusSchema>;

export const DataAccessPolicySchema = z
  .strictObject({
    apiVersion: z.literal(GROUP_VERSION).describe(`Always ${GROUP_VERSION}.`),
    kind: z.literal(DATA_ACCESS_POLICY_KIND).describe(`Always ${DATA_ACCESS_POLICY_KIND}.`),
    metadata: ObjectMetaSchema,
    spec: defaulted(DataAccessPolicySpecSchema),
    status: DataAccessPolicyStatusSchema.optional(),
  })
  .describe('Masking, guardrails, approvals and audit for the PostgreSQL connections of selected workloads.');

/** A validated DataAccessPolicy, every default applied. */
export type DataAccessPolicy = z.infer<typeof DataAccessPolicySchema>;
/** A DataAccessPolicy as written by a user (defaults not yet applied). */
export type DataAccessPolicyInput = z.input<typeof DataAccessPolicySchema>;

/** `namespace/name`, or `name` when the policy has no namespace (standalone files). */
export function policyRef(policy: { metadata: { name: string; namespace?: string | undefined } }): string {
  const { name, namespace } = policy.metadata;
  return namespace === undefined ? name : `${namespace}/${name}`;
}
