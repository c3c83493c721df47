import type { AccessRequestSpec, AccessRequestStatus, DataAccessPolicy } from '@dbward/sidecar/api';

/**
 * What the gRPC control plane needs from Kubernetes, as interfaces. The control plane
 * (`controlplane/`) is written and scale-tested against in-memory implementations; the operator's
 * main wires the Kubernetes-backed ones (informers, TokenReview, the AccessRequest API).
 *
 * Contract between the control-plane server and the controller; change both sides together.
 */

/** A sidecar, as proven by its projected service-account token (TokenReview). */
export interface SidecarIdentity {
  namespace: string;
  serviceAccount: string;
  /** From the token's pod binding (`authentication.kubernetes.io/pod-name`). */
  pod: string;
  podUid: string;
}

/** Verifies the bearer token a sidecar presents. */
export interface TokenVerifier {
  /** Resolves the identity, or rejects with {@link ControlPlaneAuthError} (never with a bare Error). */
  verify(token: string): Promise<SidecarIdentity>;
}

export class ControlPlaneAuthError extends Error {
  override readonly name = 'ControlPlaneAuthError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Labels of a pod, to match policies' `workloadSelector` (the server never trusts labels a sidecar reports). */
export interface PodLookup {
  /** Undefined when the pod does not exist (deleted, or the token is for another pod). */
  labels(namespace: string, pod: string): Promise<Readonly<Record<string, string>> | undefined>;
  /**
   * Optional: called when a pod's labels may have changed (or the pod is gone), so that a relabelled
   * pod gets the policies of its new labels without reconnecting. Without it, labels are read when
   * a sidecar subscribes. Returns an unsubscribe.
   */
  onChange?(listener: (namespace: string, pod: string) => void): () => void;
}

/**
 * The DataAccessPolicies that compiled (condition Ready=True), per namespace, as the controller sees
 * them. `generation` and `resourceVersion` make a snapshot's version.
 */
export interface ReadyPolicy {
  policy: DataAccessPolicy;
  generation: number;
  resourceVersion: string;
}

export interface PolicySource {
  /** Ready policies of one namespace, in name order. */
  list(namespace: string): readonly ReadyPolicy[];
  /** Called after any change in `namespace` (added, edited, deleted, became Ready or Invalid). Returns an unsubscribe. */
  onChange(listener: (namespace: string) => void): () => void;
}

/** A sidecar NACKed a snapshot: the controller records it on the policies' status (and as an Event). */
export interface RejectionSink {
  rejected(namespace: string, policies: readonly string[], version: string, error: string, sidecar: SidecarIdentity): void;
}

/** Approvals (SPEC §7) in Kubernetes: one AccessRequest object per held statement. */
export interface AccessRequestStore {
  /** Creates the AccessRequest; resolves its name (the approval id the client sees). */
  create(namespace: string, spec: AccessRequestSpec): Promise<string>;
  /** Calls `listener` with the status once it is no longer Pending. Returns an unsubscribe. */
  onDecision(namespace: string, name: string, listener: (status: AccessRequestStatus) => void): () => void;
  /** The sidecar stopped waiting (timeout, client gone): marks it Expired if still Pending. */
  expire(namespace: string, name: string, reason: string): Promise<void>;
}

/** What the control plane logs with: a pino logger fits, so does the operator's Logger plus `debug`. */
export interface ControlPlaneLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
