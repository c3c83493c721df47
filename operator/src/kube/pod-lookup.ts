import type { PodLookup } from '../controlplane/ports.js';
import { isNotFound, type KubeClient } from './rest.js';

/** PodLookup by GET: always the labels the API server holds now (never what a sidecar reports). */
export class KubePodLookup implements PodLookup {
  constructor(private readonly client: KubeClient) {}

  async labels(namespace: string, pod: string): Promise<Readonly<Record<string, string>> | undefined> {
    try {
      const obj = await this.client.get<{ metadata: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`);
      return obj.metadata.labels ?? {};
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
