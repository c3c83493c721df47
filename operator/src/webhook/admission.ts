import type { V1Pod } from '@kubernetes/client-node';
import type { DataAccessPolicy } from '@dbward/sidecar/api';
import { inject, type InjectSettings, type NamespaceInfo } from './inject.js';

/** AdmissionReview v1 in, AdmissionReview v1 out: decoding and encoding around inject(). */

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: {
    uid: string;
    kind: { group: string; version: string; kind: string };
    operation: string;
    namespace?: string;
    object?: unknown;
    dryRun?: boolean;
  };
  response?: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
    status?: { code: number; message: string };
  };
}

export class AdmissionError extends Error {
  override readonly name = 'AdmissionError';
}

export interface AdmissionContext {
  namespace(name: string): NamespaceInfo | undefined;
  policies(namespace: string): readonly DataAccessPolicy[];
  settings: InjectSettings;
}

export function parseReview(body: unknown): AdmissionReview & { request: NonNullable<AdmissionReview['request']> } {
  const r = body as AdmissionReview | null;
  if (r === null || typeof r !== 'object' || r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview' || typeof r.request?.uid !== 'string') {
    throw new AdmissionError('expected an admission.k8s.io/v1 AdmissionReview with a request');
  }
  return r as AdmissionReview & { request: NonNullable<AdmissionReview['request']> };
}

/** The response for one review, and the reasons (for the log). Never rejects a pod: it only mutates or lets it through. */
export function admit(body: unknown, ctx: AdmissionContext): { review: AdmissionReview; reasons: string[]; injected: boolean } {
  const review = parseReview(body);
  const { request } = review;
  const allow = (reasons: string[], extra: Partial<NonNullable<AdmissionReview['response']>> = {}) => ({
    review: { apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const, response: { uid: request.uid, allowed: true, ...extra } },
    reasons,
    injected: extra.patch !== undefined,
  });
  if (request.kind.kind !== 'Pod' || request.kind.group !== '' || request.operation !== 'CREATE') return allow([`ignored ${request.operation} ${request.kind.kind}`]);
  const pod = request.object as V1Pod | undefined;
  const nsName = request.namespace ?? pod?.metadata?.namespace;
  if (pod === undefined || nsName === undefined) throw new AdmissionError('pod CREATE without an object or namespace');
  const ns = ctx.namespace(nsName) ?? { name: nsName };
  const result = inject(pod, ns, ctx.policies(nsName), ctx.settings);
  const warnings = result.reasons.filter((r) => r.startsWith('warning: ')).map((r) => `dbward: ${r.slice('warning: '.length)}`);
  if (result.patch.length === 0) return { ...allow(result.reasons, warnings.length > 0 ? { warnings } : {}), injected: result.injected };
  return {
    ...allow(result.reasons, { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'), ...(warnings.length > 0 ? { warnings } : {}) }),
    injected: result.injected,
  };
}
