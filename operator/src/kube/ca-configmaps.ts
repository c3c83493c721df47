import { CA_CONFIGMAP, CA_CONFIGMAP_KEY, INJECTION_LABEL } from '../webhook/inject.js';
import type { Informer } from './informer.js';
import { isAlreadyExists, isConflict, isNotFound, type KubeClient, type KubeObject } from './rest.js';

/**
 * Keeps the `dbward-ca` ConfigMap (the CA bundle sidecars trust for the control plane, mounted at
 * DBWARD_CONTROL_PLANE_CA_FILE) in every namespace labelled dbward.io/injection=enabled, and up to
 * date after a CA rotation. Pods only mount ConfigMaps of their own namespace, hence one per namespace.
 */
export class CaConfigMaps {
  private bundle = '';

  constructor(
    private readonly client: KubeClient,
    private readonly namespaces: Informer<KubeObject>,
    private readonly operatorNamespace: string,
    private readonly onError: (error: unknown) => void,
  ) {
    namespaces.onEvent((event, ns) => {
      if (event !== 'delete') void this.ensure(ns).catch(onError);
    });
  }

  /** Sets the bundle and writes it to every enabled namespace. */
  async setBundle(bundle: string): Promise<void> {
    this.bundle = bundle;
    await Promise.all(this.namespaces.list().map((ns) => this.ensure(ns).catch(this.onError)));
  }

  private async ensure(ns: KubeObject): Promise<void> {
    const name = ns.metadata.name;
    if (this.bundle === '' || ns.metadata.labels?.[INJECTION_LABEL] !== 'enabled' || name === this.operatorNamespace) return;
    const path = `/api/v1/namespaces/${name}/configmaps`;
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: CA_CONFIGMAP, namespace: name, labels: { 'app.kubernetes.io/part-of': 'dbward', 'app.kubernetes.io/managed-by': 'dbward-operator' } },
      data: { [CA_CONFIGMAP_KEY]: this.bundle },
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const current = await this.client.get<{ data?: Record<string, string> }>(`${path}/${CA_CONFIGMAP}`);
        if (current.data?.[CA_CONFIGMAP_KEY] === this.bundle) return;
        await this.client.patch(`${path}/${CA_CONFIGMAP}`, { data: body.data }, 'merge');
        return;
      } catch (error) {
        if (isNotFound(error)) {
          try {
            await this.client.create(path, body);
            return;
          } catch (createError) {
            if (isAlreadyExists(createError)) continue;
            throw createError;
          }
        }
        if (isConflict(error)) continue;
        throw error;
      }
    }
  }
}
