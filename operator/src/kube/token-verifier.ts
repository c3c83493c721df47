import { ControlPlaneAuthError, type SidecarIdentity, type TokenVerifier } from '../controlplane/ports.js';
import { CONTROL_PLANE_AUDIENCE } from '../webhook/inject.js';
import type { KubeClient } from './rest.js';

/**
 * TokenVerifier by TokenReview (authentication.k8s.io/v1): the token must be valid for the audience
 * `dbward-controlplane`, belong to a service account, and be bound to a pod (projected tokens are;
 * legacy Secret tokens are not, and are refused).
 */

interface TokenReview {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; extra?: Record<string, string[]> };
  };
}

const SA_PREFIX = 'system:serviceaccount:';

export class KubeTokenVerifier implements TokenVerifier {
  constructor(private readonly client: KubeClient, private readonly audience = CONTROL_PLANE_AUDIENCE) {}

  async verify(token: string): Promise<SidecarIdentity> {
    if (token === '') throw new ControlPlaneAuthError('no token');
    let review: TokenReview;
    try {
      review = await this.client.create<TokenReview>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [this.audience] },
      });
    } catch (cause) {
      throw new ControlPlaneAuthError('TokenReview failed', { cause });
    }
    const status = review.status ?? {};
    if (status.authenticated !== true) throw new ControlPlaneAuthError(`token rejected${status.error ? `: ${status.error}` : ''}`);
    if (!(status.audiences ?? []).includes(this.audience)) throw new ControlPlaneAuthError(`token is not for audience ${this.audience}`);
    const username = status.user?.username ?? '';
    if (!username.startsWith(SA_PREFIX)) throw new ControlPlaneAuthError(`not a service account: ${username}`);
    const [namespace, serviceAccount] = username.slice(SA_PREFIX.length).split(':');
    const extra = status.user?.extra ?? {};
    const pod = extra['authentication.kubernetes.io/pod-name']?.[0];
    const podUid = extra['authentication.kubernetes.io/pod-uid']?.[0];
    if (namespace === undefined || serviceAccount === undefined || pod === undefined || podUid === undefined) {
      throw new ControlPlaneAuthError(`token of ${username} is not bound to a pod (use a projected service-account token)`);
    }
    return { namespace, serviceAccount, pod, podUid };
  }
}
