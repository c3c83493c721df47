import type { DataAccessPolicyStatus } from '@dbward/sidecar/api';
import { API_GROUP, API_VERSION, KINDS } from '../api.js';
import { isConflict, isNotFound, resourcePath, type KubeClient, type KubeObject } from '../kube/rest.js';
import type { EventRecorder } from './events.js';
import type { Observation } from './observe.js';
import { readyCondition } from './status.js';

/**
 * Phase 3, act: write the status (merge patch carrying the resourceVersion we observed, so a
 * concurrent change is a 409 Conflict: requeue and observe again) and the Events of transitions.
 * NotFound means the policy is gone: nothing left to do.
 */

export type ActResult = 'done' | 'requeue';

export const DAP_RESOURCE = { group: API_GROUP, version: API_VERSION, plural: KINDS.DataAccessPolicy.plural };

export async function writeStatus(client: KubeClient, object: KubeObject, status: DataAccessPolicyStatus): Promise<ActResult> {
  const path = resourcePath(DAP_RESOURCE, object.metadata.namespace, object.metadata.name, 'status');
  try {
    await client.patch(path, { metadata: { resourceVersion: object.metadata.resourceVersion }, status }, 'merge');
    return 'done';
  } catch (error) {
    if (isNotFound(error)) return 'done';
    if (isConflict(error)) return 'requeue';
    throw error;
  }
}

/** An Event when Ready changes (or first appears): Normal Ready, or Warning Invalid with the message. */
export async function recordTransition(events: EventRecorder, object: KubeObject, before: DataAccessPolicyStatus | undefined, obs: Observation): Promise<void> {
  const old = readyCondition(before);
  const nowReady = obs.ready ? 'True' : 'False';
  const sameMessage = obs.ready || old?.message === obs.message;
  if (old?.status === nowReady && sameMessage) return;
  await events.record(
    object,
    obs.ready
      ? { type: 'Normal', reason: 'Ready', action: 'Compile', note: `generation ${obs.generation}: ${obs.rules} rule(s) compiled` }
      : { type: 'Warning', reason: 'Invalid', action: 'Compile', note: `generation ${obs.generation}: ${obs.message}` },
  );
}
