/**
 * Counters of the control plane, ready to be exported (Prometheus/OTLP) by the operator's metrics
 * module: plain numbers, read with `snapshot()`.
 */
export interface ControlPlaneMetrics {
  /** Sidecars with an authenticated, subscribed stream now. */
  connected: number;
  /** Streams open now, authenticated or not. */
  open: number;
  /** Streams accepted since start (before authentication). */
  streamsOpened: number;
  /** Streams refused: bad or missing token, unknown pod, no Hello. */
  refused: number;
  snapshotsSent: number;
  acks: number;
  nacks: number;
  approvalsCreated: number;
  approvalsDecided: number;
  approvalsWithdrawn: number;
}

export function newMetrics(): ControlPlaneMetrics {
  return { connected: 0, open: 0, streamsOpened: 0, refused: 0, snapshotsSent: 0, acks: 0, nacks: 0, approvalsCreated: 0, approvalsDecided: 0, approvalsWithdrawn: 0 };
}
