import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { microTime } from './status.js';

/** Kubernetes Events (events.k8s.io/v1) about an object, written by the operator. */

export const REPORTING_CONTROLLER = 'dbward.io/operator';

export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. Ready, Invalid, Rejected. */
  reason: string;
  /** What the operator did, e.g. Compile, Reject. */
  action: string;
  note: string;
}

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly instance: string,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Never throws: an Event that cannot be written is reported to onError and dropped. */
  async record(regarding: KubeObject, event: EventSpec): Promise<void> {
    const namespace = regarding.metadata.namespace ?? 'default';
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${regarding.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
      eventTime: microTime(new Date()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.instance.slice(0, 128),
      action: event.action,
      reason: event.reason,
      type: event.type,
      note: event.note.slice(0, 1024),
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: regarding.metadata.name,
        namespace,
        uid: regarding.metadata.uid,
        resourceVersion: regarding.metadata.resourceVersion,
      },
    };
    try {
      await this.client.create(`/apis/events.k8s.io/v1/namespaces/${namespace}/events`, body);
    } catch (error) {
      this.onError(error);
    }
  }
}
