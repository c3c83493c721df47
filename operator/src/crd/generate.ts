import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AccessRequestSchema, DataAccessPolicySchema } from '@dbward/sidecar/api';
import { stringify } from 'yaml';
import { z } from 'zod';
import { API_GROUP, API_VERSION, KINDS } from '../api.js';
import { addValidation, toStructural, type JsonSchema } from './structural.js';

/**
 * The CRDs of dbward, generated from the zod schemas of `@dbward/sidecar/api` (ADR 0009, ADR 0017):
 * `make crds` writes `crds/<plural>.dbward.io.yaml` and the same files into `charts/dbward/crds/`;
 * never edit those by hand (a unit test fails when they are stale).
 */

export const CRD_CATEGORIES = ['dbward'];

interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  schema: z.ZodType;
  columns: readonly { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
  validations: readonly { path: string; rule: string; message: string; fieldPath?: string }[];
}

const AGE = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' };

const KIND_INFO: readonly KindInfo[] = [
  {
    kind: 'DataAccessPolicy',
    plural: KINDS.DataAccessPolicy.plural,
    singular: 'dataaccesspolicy',
    shortNames: KINDS.DataAccessPolicy.shortNames,
    schema: DataAccessPolicySchema,
    columns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Whether every rule compiled.' },
      { name: 'Enforcement', type: 'string', jsonPath: '.spec.enforcement', description: 'enforce or audit.' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', description: 'Compiled, or why not.', priority: 1 },
      AGE,
    ],
    validations: [
      {
        path: 'spec.masking.rules[]',
        rule: "!has(self.mask) || self.action == 'mask'",
        message: 'mask is only allowed with action: mask',
        fieldPath: '.mask',
      },
      {
        path: 'spec.approvals.timeout',
        rule: "duration(self) >= duration('1s') && duration(self) <= duration('24h')",
        message: 'must be between 1s and 24h',
      },
    ],
  },
  {
    kind: 'AccessRequest',
    plural: KINDS.AccessRequest.plural,
    singular: 'accessrequest',
    shortNames: KINDS.AccessRequest.shortNames,
    schema: AccessRequestSchema,
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Pending, Approved, Denied or Expired.' },
      { name: 'Policy', type: 'string', jsonPath: '.spec.policy', description: 'DataAccessPolicy whose guardrail held the statement.' },
      { name: 'Rule', type: 'string', jsonPath: '.spec.rule', description: 'The requireApproval guardrail.' },
      { name: 'Decided-By', type: 'string', jsonPath: '.status.decidedBy', description: 'Who approved or denied.', priority: 1 },
      AGE,
    ],
    validations: [
      { path: 'spec', rule: 'self == oldSelf', message: 'spec is immutable' },
      { path: 'status', rule: "self.phase == 'Pending' || has(self.decidedAt)", message: 'a decision needs decidedAt' },
      { path: 'status', rule: "oldSelf.phase == 'Pending' || self == oldSelf", message: 'a decided AccessRequest is final' },
    ],
  },
];

/** The OpenAPI v3 schema of one kind: apiVersion/kind/metadata as Kubernetes wants them, spec and status from zod. */
export function openApiSchema(info: KindInfo): JsonSchema {
  const json = z.toJSONSchema(info.schema, { io: 'input', reused: 'inline', cycles: 'throw', unrepresentable: 'throw' }) as JsonSchema;
  const structural = toStructural(json);
  const properties = structural['properties'] as Record<string, JsonSchema>;
  // ObjectMeta is validated by the API server itself; a CRD may only restrict name/generateName.
  properties['metadata'] = { type: 'object' };
  // apiVersion/kind are checked by the API server; the schema keeps them as plain strings.
  for (const key of ['apiVersion', 'kind']) {
    const node = properties[key] ?? {};
    delete node['enum'];
    properties[key] = node;
  }
  structural['required'] = (structural['required'] as string[] | undefined)?.filter((k) => k === 'spec');
  if ((structural['required'] as string[] | undefined)?.length === 0) delete structural['required'];
  for (const v of info.validations) {
    addValidation(structural, v.path, { rule: v.rule, message: v.message, ...(v.fieldPath ? { fieldPath: v.fieldPath } : {}) });
  }
  return structural;
}

export function crdObject(info: KindInfo): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'dbward' },
      annotations: { 'dbward.io/generated-by': 'operator/src/crd/generate.ts (make crds); do not edit' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [...info.shortNames],
        categories: CRD_CATEGORIES,
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.columns,
          schema: { openAPIV3Schema: openApiSchema(info) },
        },
      ],
    },
  };
}

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

const HEADER = '# Generated by operator/src/crd/generate.ts from the zod schemas of @dbward/sidecar/api (make crds). Do not edit.\n';

/** Every generated file: crds/*.yaml and their copies in charts/dbward/crds/. */
export function generateCrds(): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  for (const info of KIND_INFO) {
    const content = HEADER + stringify(crdObject(info), { lineWidth: 0, aliasDuplicateObjects: false });
    const name = `${info.plural}.${API_GROUP}.yaml`;
    files.push({ path: `crds/${name}`, content }, { path: `charts/dbward/crds/${name}`, content });
  }
  return files;
}

/** Repository root, from this module's location (src/crd or dist/crd). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Files whose content on disk differs from what the generator produces. */
export async function staleCrds(root = repoRoot()): Promise<string[]> {
  const stale: string[] = [];
  for (const f of generateCrds()) {
    const current = await readFile(join(root, f.path), 'utf8').catch(() => undefined);
    if (current !== f.content) stale.push(f.path);
  }
  return stale;
}

export async function writeCrds(root = repoRoot()): Promise<string[]> {
  const files = generateCrds();
  for (const f of files) {
    await mkdir(dirname(join(root, f.path)), { recursive: true });
    await writeFile(join(root, f.path), f.content);
  }
  return files.map((f) => f.path);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const path of await writeCrds()) process.stdout.write(`wrote ${path}\n`);
}
