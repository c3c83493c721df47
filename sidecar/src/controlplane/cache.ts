import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot } from './proto.js';

/**
 * Last-known-good: the last snapshot the sidecar compiled and ACKed, kept in
 * `DBWARD_POLICY_CACHE_DIR` (an emptyDir in Kubernetes, so it survives container restarts), to
 * start enforcing when the control plane cannot be reached. Written atomically (temporary file,
 * fsync, rename): a crash leaves the old file or the new one, never half of one.
 */

export const CACHE_FILE = 'snapshot.json';
const FORMAT = 'dbward.controlplane.v1.Snapshot';

interface CacheFile {
  format: typeof FORMAT;
  savedAt: string;
  snapshot: Snapshot;
}

export class PolicyCacheError extends Error {
  override readonly name = 'PolicyCacheError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export async function writeCachedSnapshot(dir: string, snapshot: Snapshot, now: Date = new Date()): Promise<void> {
  const file = join(dir, CACHE_FILE);
  const temporary = join(dir, `.${CACHE_FILE}.${process.pid}.tmp`);
  const body: CacheFile = { format: FORMAT, savedAt: now.toISOString(), snapshot };
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(body));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (cause) {
    await unlink(temporary).catch(() => undefined);
    throw new PolicyCacheError(`cannot write ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  try {
    // The rename is durable once the directory is synced (best effort: not every filesystem allows it).
    const handle = await open(dir, 'r');
    await handle.sync().finally(() => handle.close());
  } catch {
    // ignored
  }
}

/** The cached snapshot; undefined when there is none; a PolicyCacheError when the file is unreadable or malformed. */
export async function readCachedSnapshot(dir: string): Promise<{ snapshot: Snapshot; savedAt: string } | undefined> {
  const file = join(dir, CACHE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PolicyCacheError(`cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new PolicyCacheError(`${file} is not valid JSON`, { cause });
  }
  if (!isCacheFile(parsed)) throw new PolicyCacheError(`${file} is not a dbward snapshot cache`);
  return { snapshot: parsed.snapshot, savedAt: parsed.savedAt };
}

function isCacheFile(value: unknown): value is CacheFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<CacheFile>;
  const s = v.snapshot as Partial<Snapshot> | undefined;
  return (
    v.format === FORMAT &&
    typeof v.savedAt === 'string' &&
    typeof s === 'object' &&
    s !== null &&
    typeof s.version === 'string' &&
    Array.isArray(s.policies) &&
    s.policies.every((p) => typeof p === 'object' && p !== null && typeof (p as { json?: unknown }).json === 'string' && typeof (p as { name?: unknown }).name === 'string') &&
    typeof s.identity === 'object'
  );
}
