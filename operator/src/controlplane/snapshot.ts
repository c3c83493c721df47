import { createHash } from 'node:crypto';
import type { DataAccessPolicy } from '@dbward/sidecar/api';
import type { PolicyDocument } from '@dbward/sidecar/controlplane';
import type { ReadyPolicy } from './ports.js';
import { selects } from '../selector.js';

/**
 * What a sidecar receives, minus its identity: the Ready policies of its namespace that select its
 * pod, as JSON documents, and a version that is a stable hash of exactly that content. Pure.
 *
 * The version covers the documents (name, spec) and nothing else: a status update (new
 * resourceVersion) or an unchanged re-apply gives the same version, so nothing is re-sent; two pods
 * that get the same policies see the same version (one figure to look for in NACKs and ACK counts).
 */
export interface SnapshotContent {
  readonly version: string;
  readonly policies: readonly PolicyDocument[];
  /** Names of the policies, in order (for NACK records). */
  readonly names: readonly string[];
}

export function buildSnapshot(namespace: string, ready: readonly ReadyPolicy[], labels: Readonly<Record<string, string>>): SnapshotContent {
  const selected = ready.filter((entry) => selects(entry.policy.spec.workloadSelector, labels));
  const policies = selected.map(
    (entry): PolicyDocument => ({
      name: entry.policy.metadata.name,
      generation: entry.generation,
      resourceVersion: entry.resourceVersion,
      json: canonicalJson(deliveredDocument(namespace, entry.policy)),
    }),
  );
  const hash = createHash('sha256');
  for (const doc of policies) hash.update(`${doc.name}\n${doc.json}\n`);
  return { version: policies.length === 0 ? 'empty' : hash.digest('hex').slice(0, 16), policies, names: policies.map((p) => p.name) };
}

/** The part of a policy a sidecar needs: no status, no server-managed metadata. */
function deliveredDocument(namespace: string, policy: DataAccessPolicy): object {
  return { apiVersion: policy.apiVersion, kind: policy.kind, metadata: { name: policy.metadata.name, namespace }, spec: policy.spec };
}

/** JSON with object keys sorted at every level, so equal content hashes equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** A stable key for a label set (streams with equal keys share one snapshot computation). */
export function labelsKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}
