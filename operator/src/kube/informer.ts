import { isGone, type KubeClient, type KubeList, type KubeObject } from './rest.js';

/**
 * List + watch of one resource collection into an in-memory cache, like client-go's reflector:
 * list, then watch from the list's resourceVersion (with bookmarks); a stream that ends is resumed
 * from the last resourceVersion seen; 410 Gone (the version was compacted or fell out of the watch
 * cache) relists and reports the differences as events; other errors retry with backoff.
 */

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, object: T, old: T | undefined) => void;

export interface InformerOptions {
  /** Backoff after a failed list/watch; default 1 s. */
  retryMs?: number;
  /** Server-side watch timeout; default 300 s (then the watch is resumed). */
  watchTimeoutSeconds?: number;
  onError?: (error: unknown) => void;
}

export const objectKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();
  private abort = new AbortController();
  private stopped = false;
  private resourceVersion = '';
  private loop: Promise<void> | undefined;
  private forcedVersion: string | undefined;
  /** How many times the collection was listed (1 at start, +1 per 410 Gone). */
  relists = 0;
  synced = false;

  constructor(
    private readonly client: KubeClient,
    /** Collection path, e.g. `/apis/dbward.io/v1alpha1/dataaccesspolicies` (all namespaces). */
    readonly path: string,
    private readonly options: InformerOptions = {},
  ) {}

  onEvent(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(`${namespace ?? ''}/${name}`);
  }

  /** Lists, then keeps watching in the background; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    await this.relist();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
  }

  /** Drops the current watch and resumes it from `resourceVersion` (default: the last seen). For tests of the 410 path. */
  reconnect(resourceVersion?: string): void {
    this.forcedVersion = resourceVersion;
    this.abort.abort();
  }

  private async relist(): Promise<void> {
    const list = await this.client.get<KubeList<T>>(this.path);
    this.relists++;
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item);
      seen.add(key);
      this.apply(key, item);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('delete', old, old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
    this.synced = true;
  }

  private apply(key: string, object: T): void {
    const old = this.store.get(key);
    if (old?.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.store.set(key, object);
    this.emit(old === undefined ? 'add' : 'update', object, old);
  }

  private emit(event: InformerEvent, object: T, old: T | undefined): void {
    for (const h of [...this.handlers]) {
      try {
        h(event, object, old);
      } catch (error) {
        this.options.onError?.(error);
      }
    }
  }

  private async run(): Promise<void> {
    const retryMs = this.options.retryMs ?? 1_000;
    while (!this.stopped) {
      if (this.forcedVersion !== undefined) {
        this.resourceVersion = this.forcedVersion;
        this.forcedVersion = undefined;
      }
      if (this.abort.signal.aborted) this.abort = new AbortController();
      try {
        this.resourceVersion = await this.client.watch<T>(
          this.path,
          this.resourceVersion,
          (event) => {
            if (event.type === 'BOOKMARK') return;
            const key = objectKey(event.object);
            if (event.type === 'DELETED') {
              const old = this.store.get(key);
              this.store.delete(key);
              this.emit('delete', event.object, old);
            } else this.apply(key, event.object);
          },
          this.abort.signal,
          this.options.watchTimeoutSeconds ?? 300,
        );
      } catch (error) {
        if (this.stopped) return;
        if (isGone(error)) {
          try {
            await this.relist();
            continue;
          } catch (listError) {
            this.options.onError?.(listError);
          }
        } else this.options.onError?.(error);
        await sleep(retryMs, this.abort.signal);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
