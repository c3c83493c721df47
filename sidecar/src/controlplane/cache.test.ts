import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CACHE_FILE, PolicyCacheError, readCachedSnapshot, writeCachedSnapshot } from './cache.js';
import type { Snapshot } from './proto.js';

const SNAPSHOT: Snapshot = {
  version: 'v1',
  identity: { namespace: 'shop', serviceAccount: 'checkout', pod: 'p', podUid: 'u', labels: { app: 'checkout' } },
  policies: [{ name: 'a', generation: 2, resourceVersion: '9', json: '{"kind":"DataAccessPolicy"}' }],
};

const tempDir = () => mkdtempSync(join(tmpdir(), 'dbward-cache-'));

describe('last-known-good cache', () => {
  it('round-trips, replaces atomically and leaves no temporary file', async () => {
    const dir = tempDir();
    expect(await readCachedSnapshot(dir)).toBeUndefined();
    await writeCachedSnapshot(dir, SNAPSHOT, new Date('2026-01-02T03:04:05Z'));
    expect(await readCachedSnapshot(dir)).toEqual({ snapshot: SNAPSHOT, savedAt: '2026-01-02T03:04:05.000Z' });
    const next = { ...SNAPSHOT, version: 'v2' };
    await writeCachedSnapshot(dir, next);
    expect((await readCachedSnapshot(dir))?.snapshot.version).toBe('v2');
    expect(readdirSync(dir)).toEqual([CACHE_FILE]);
  });

  it('creates the directory', async () => {
    const dir = join(tempDir(), 'nested', 'cache');
    await writeCachedSnapshot(dir, SNAPSHOT);
    expect(JSON.parse(readFileSync(join(dir, CACHE_FILE), 'utf8'))).toMatchObject({ snapshot: { version: 'v1' } });
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['another JSON file', '{"hello": "world"}', /not a dbward snapshot cache/],
    ['policies without json', JSON.stringify({ format: 'dbward.controlplane.v1.Snapshot', savedAt: 'x', snapshot: { version: 'v', identity: {}, policies: [{ name: 'a' }] } }), /not a dbward snapshot cache/],
  ])('a damaged file is an error, not a policy: %s', async (_name, text, message) => {
    const dir = tempDir();
    writeFileSync(join(dir, CACHE_FILE), text);
    await expect(readCachedSnapshot(dir)).rejects.toThrow(PolicyCacheError);
    await expect(readCachedSnapshot(dir)).rejects.toThrow(message);
  });

  it('an unwritable place is a PolicyCacheError', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    await expect(writeCachedSnapshot(join(dir, 'file'), SNAPSHOT)).rejects.toThrow(PolicyCacheError);
  });
});
