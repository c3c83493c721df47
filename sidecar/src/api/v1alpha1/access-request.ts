import { z } from 'zod';
import { GROUP_VERSION, ObjectMetaSchema } from './meta.js';

/**
 * AccessRequest (SPEC §7): one statement held by a `requireApproval` guardrail. The sidecar (through
 * the operator) creates it; `kubectl dbward approve|deny <name>` writes its status.
 */

export const ACCESS_REQUEST_KIND = 'AccessRequest';
export const ACCESS_REQUEST_PHASES = ['Pending', 'Approved', 'Denied', 'Expired'] as const;
export type AccessRequestPhase = (typeof ACCESS_REQUEST_PHASES)[number];

/** The workload identity the statement ran under: the CEL `identity` of SPEC §4. */
export const RequestIdentitySchema = z
  .strictObject({
    user: z.string().default('').describe('Database user from the startup message.'),
    database: z.string().default('').describe('Database from the startup message.'),
    application: z.string().default('').describe('application_name from the startup message.'),
    namespace: z.string().default('').describe('Namespace of the workload.'),
    serviceAccount: z.string().default('').describe('Service account of the workload.'),
    pod: z.string().default('').describe('Pod name of the workload.'),
    labels: z.record(z.string(), z.string()).default({}).describe('Labels of the workload pod.'),
  })
  .describe('Who sent the statement.');
export type RequestIdentity = z.infer<typeof RequestIdentitySchema>;

export const AccessRequestSpecSchema = z
  .strictObject({
    policy: z.string().min(1).max(253).describe('Name of the DataAccessPolicy (same namespace) whose guardrail held the statement.'),
    rule: z.string().min(1).max(128).describe('Name of the requireApproval guardrail that matched.'),
    statement: z.string().max(65536).describe('The statement, normalized (literals replaced by placeholders).'),
    identity: RequestIdentitySchema,
    requestedAt: z.iso.datetime({ offset: true }).describe('When the statement was held (RFC 3339).'),
    expiresAt: z.iso.datetime({ offset: true }).optional().describe('When the sidecar stops waiting (requestedAt + approvals.timeout).'),
  })
  .describe('The held statement and who sent it. Immutable once created.');
export type AccessRequestSpec = z.infer<typeof AccessRequestSpecSchema>;

export const AccessRequestStatusSchema = z
  .strictObject({
    phase: z.enum(ACCESS_REQUEST_PHASES).default('Pending').describe('Pending, Approved, Denied or Expired.'),
    decidedBy: z.string().max(253).optional().describe('User who approved or denied (from the API request).'),
    decidedAt: z.iso.datetime({ offset: true }).optional().describe('When it was approved, denied or expired (RFC 3339).'),
    reason: z.string().max(1024).optional().describe('Why, as given by the approver or the sidecar.'),
  })
  .describe('The decision.');
export type AccessRequestStatus = z.infer<typeof AccessRequestStatusSchema>;

export const AccessRequestSchema = z
  .strictObject({
    apiVersion: z.literal(GROUP_VERSION).describe(`Always ${GROUP_VERSION}.`),
    kind: z.literal(ACCESS_REQUEST_KIND).describe(`Always ${ACCESS_REQUEST_KIND}.`),
    metadata: ObjectMetaSchema,
    spec: AccessRequestSpecSchema,
    status: AccessRequestStatusSchema.optional(),
  })
  .describe('A statement waiting for approval (requireApproval guardrail).');
export type AccessRequest = z.infer<typeof AccessRequestSchema>;
export type AccessRequestInput = z.input<typeof AccessRequestSchema>;
