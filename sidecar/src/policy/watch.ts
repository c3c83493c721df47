import { EventEmitter } from 'node:events';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { DataAccessPolicy } from '../api/v1alpha1/index.js';
import { compilePolicies, isPolicyErrors, type CompiledPolicySet } from './compile.js';
import { locatePolicyPath, loadPolicies, PolicyLoadError } from './load.js';

/**
 * The one I/O module of the policy engine: reads policy files, compiles them, keeps the last
 * known good set, and reloads on file changes (fs.watch, debounced) or on demand (SIGHUP). A set
 * that does not load or compile is rejected as a whole and the previous one stays in force.
 *
 * A path may be a file or a directory; a directory contributes its `*.yaml`, `*.yml` and `*.json`
 * files in name order, hidden entries excepted (so a mounted ConfigMap, whose `..data` symlink is
 * swapped on update, works). Documents apply in the order of the paths, then of the files, then
 * within each file.
 */

export type ReloadReason = 'initial' | 'file-change' | 'signal' | 'manual';

export interface LoadedEvent {
  readonly set: CompiledPolicySet;
  readonly files: readonly string[];
  readonly reason: ReloadReason;
  /** The version that was in force before, if any. */
  readonly previousVersion: string | undefined;
}

export interface RejectedEvent {
  readonly errors: readonly Error[];
  readonly reason: ReloadReason;
  /** The version that stays in force (last known good), if any. */
  readonly keptVersion: string | undefined;
}

export interface PolicyWatcherEvents {
  loaded: [LoadedEvent];
  rejected: [RejectedEvent];
}

export interface PolicyWatcherOptions {
  /** Policy files or directories (`--policy`, repeatable). */
  readonly paths: readonly string[];
  /** Coalesce bursts of file events (editors write, rename, chmod). Default 150 ms. */
  readonly debounceMs?: number;
}

const POLICY_FILE = /\.(ya?ml|json)$/i;

export class PolicyWatcher extends EventEmitter<PolicyWatcherEvents> {
  #current: CompiledPolicySet | undefined;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CompiledPolicySet | RejectedEvent> | undefined;
  #again: ReloadReason | undefined;
  #closed = false;
  readonly #paths: readonly string[];
  readonly #debounceMs: number;

  constructor(options: PolicyWatcherOptions) {
    super();
    this.#paths = options.paths;
    this.#debounceMs = options.debounceMs ?? 150;
  }

  /** The policy set in force: the last one that loaded and compiled. */
  get current(): CompiledPolicySet | undefined {
    return this.#current;
  }

  /**
   * Reads, validates and compiles every policy file; on success the new set is in force. Resolves
   * to the set, or to the rejection (the previous set stays in force). Concurrent calls coalesce.
   */
  reload(reason: ReloadReason = 'manual'): Promise<CompiledPolicySet | RejectedEvent> {
    if (this.#running) {
      this.#again = reason;
      return this.#running;
    }
    const run = this.#load(reason).finally(() => {
      this.#running = undefined;
      const again = this.#again;
      this.#again = undefined;
      if (again !== undefined && !this.#closed) void this.reload(again);
    });
    this.#running = run;
    return run;
  }

  /** Watches the directories of every path; a change reloads after the debounce delay. */
  watch(): void {
    if (this.#watchers.length > 0 || this.#closed) return;
    const directories = new Map<string, Set<string> | 'all'>();
    for (const path of this.#paths) {
      // Watch the parent directory: editors and ConfigMaps replace files rather than write them.
      const dir = dirname(path);
      const names = directories.get(dir);
      if (names !== 'all') directories.set(dir, (names ?? new Set()).add(basename(path)));
      if (isDirectory(path)) directories.set(path, 'all');
    }
    for (const [dir, names] of directories) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, file) => {
          if (names === 'all' || file === null || names.has(file) || file.startsWith('..')) this.#schedule();
        });
        watcher.on('error', () => this.#schedule());
        this.#watchers.push(watcher);
      } catch {
        // Not a directory (a file path given as "directory") or gone: nothing to watch there.
      }
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.reload('file-change'), this.#debounceMs);
    this.#timer.unref();
  }

  async #load(reason: ReloadReason): Promise<CompiledPolicySet | RejectedEvent> {
    const files = await policyFiles(this.#paths);
    const errors: Error[] = [...files.errors];
    const policies: DataAccessPolicy[] = [];
    for (const file of files.files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        errors.push(new PolicyLoadError(file, 0, 0, '', `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error }));
        continue;
      }
      const loaded = loadPolicies(text, file);
      if (loaded.ok) policies.push(...loaded.policies);
      else errors.push(...loaded.errors);
    }
    if (errors.length === 0) {
      const compiled = compilePolicies(policies, { locate: locatePolicyPath });
      if (!isPolicyErrors(compiled)) {
        const previousVersion = this.#current?.version;
        if (compiled.version !== previousVersion) {
          this.#current = compiled;
          this.emit('loaded', { set: compiled, files: files.files, reason, previousVersion });
        }
        return this.#current ?? compiled;
      }
      errors.push(...compiled.errors);
    }
    const rejected: RejectedEvent = { errors, reason, keptVersion: this.#current?.version };
    this.emit('rejected', rejected);
    return rejected;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Expands directories into their policy files, in order. */
async function policyFiles(paths: readonly string[]): Promise<{ files: string[]; errors: Error[] }> {
  const files: string[] = [];
  const errors: Error[] = [];
  if (paths.length === 0) errors.push(new PolicyLoadError('--policy', 0, 0, '', 'no policy files given'));
  for (const path of paths) {
    try {
      if ((await stat(path)).isDirectory()) {
        const names = (await readdir(path)).filter((name) => !name.startsWith('.') && POLICY_FILE.test(name)).sort();
        if (names.length === 0) errors.push(new PolicyLoadError(path, 0, 0, '', 'directory holds no *.yaml, *.yml or *.json files'));
        files.push(...names.map((name) => join(path, name)));
      } else {
        files.push(path);
      }
    } catch (error) {
      errors.push(new PolicyLoadError(path, 0, 0, '', `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error }));
    }
  }
  return { files, errors };
}

/** Reloads on SIGHUP. Returns the function that removes the handler. */
export function reloadOnSighup(watcher: PolicyWatcher, target: NodeJS.EventEmitter = process): () => void {
  const handler = () => void watcher.reload('signal');
  target.on('SIGHUP', handler);
  return () => target.off('SIGHUP', handler);
}
