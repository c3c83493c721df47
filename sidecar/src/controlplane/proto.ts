import { fileURLToPath } from 'node:url';
import type { ChannelOptions, MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/**
 * The control-plane contract (`proto/controlplane/v1/controlplane.proto`), loaded at run time with
 * @grpc/proto-loader (ADR 0018). The .proto file ships inside the sidecar package (`sidecar/proto/`,
 * next to `dist/`), so the same relative path finds it from `src/` (tsx, vitest) and from `dist/`;
 * the operator loads it through `@dbward/sidecar/controlplane`.
 */

export const PROTO_FILE = fileURLToPath(new URL('../../proto/controlplane/v1/controlplane.proto', import.meta.url));
export const SERVICE_NAME = 'dbward.controlplane.v1.ControlPlane';
export const SUBSCRIBE_PATH = `/${SERVICE_NAME}/Subscribe`;

/** Largest message either side accepts: a snapshot of many large policies fits with room to spare. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** HTTP/2 keepalive: a ping every 30 s, the connection is dead after 10 s without an answer. */
export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** The server closes a stream that has not said Hello within this time. */
export const HELLO_TIMEOUT_MS = 10_000;
/** The audience a projected service-account token must carry. */
export const TOKEN_AUDIENCE = 'dbward-controlplane';

/** Channel options both ends use (the server adds its own enforcement policy). */
export const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
};

// ---- messages (proto-loader objects: camelCase fields, int64 as number, every field defaulted) ----

export interface Hello {
  sidecarVersion: string;
  node: string;
  pod: string;
  namespace: string;
  currentVersion: string;
}
export interface Ack {
  version: string;
}
export interface Nack {
  version: string;
  error: string;
}
export interface RequestIdentity {
  user: string;
  database: string;
  application: string;
}
export interface ApprovalRequestMessage {
  requestId: string;
  rule: string;
  statement: string;
  identity: RequestIdentity | null;
  timeoutMs: number;
}
export interface ApprovalWithdraw {
  name: string;
  reason: string;
}
export interface ApprovalWatch {
  name: string;
}
export interface PolicyDocument {
  name: string;
  generation: number;
  resourceVersion: string;
  json: string;
}
export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
  pod: string;
  podUid: string;
  labels: Record<string, string>;
}
export interface Snapshot {
  version: string;
  policies: PolicyDocument[];
  identity: WorkloadIdentity | null;
}
export interface ApprovalCreated {
  requestId: string;
  name: string;
  error: string;
}
export interface ApprovalDecision {
  name: string;
  phase: string;
  decidedBy: string;
  reason: string;
  decidedAt: string;
}

/** What the sidecar sends: exactly one field set (encoding fills the others with defaults). */
export type SidecarMessage =
  | { hello: Partial<Hello> }
  | { ack: Ack }
  | { nack: Nack }
  | { approvalRequest: Partial<ApprovalRequestMessage> }
  | { approvalWithdraw: ApprovalWithdraw }
  | { approvalWatch: ApprovalWatch };

/** What the server sends. */
export type ControlPlaneMessage = { snapshot: Snapshot } | { approvalCreated: ApprovalCreated } | { approvalDecision: ApprovalDecision };

/** A decoded message: `message` names the oneof member that is set. */
export type DecodedSidecarMessage = Partial<UnionToIntersection<SidecarMessage>> & { message?: string };
export type DecodedControlPlaneMessage = Partial<UnionToIntersection<ControlPlaneMessage>> & { message?: string };
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

export type SubscribeMethod = MethodDefinition<SidecarMessage, ControlPlaneMessage>;

let cached: ServiceDefinition | undefined;

/** The ControlPlane service definition (loaded once per process). */
export function controlPlaneService(): { Subscribe: SubscribeMethod } & ServiceDefinition {
  if (cached === undefined) {
    let definitions: ReturnType<typeof loadSync>;
    try {
      definitions = loadSync(PROTO_FILE, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
    } catch (cause) {
      throw new Error(`cannot load the control-plane contract ${PROTO_FILE}: ${(cause as Error).message}`, { cause });
    }
    const service = definitions[SERVICE_NAME];
    if (service === undefined || !('Subscribe' in service)) throw new Error(`${PROTO_FILE} does not define ${SERVICE_NAME}`);
    cached = service as unknown as ServiceDefinition;
  }
  return cached as { Subscribe: SubscribeMethod } & ServiceDefinition;
}
