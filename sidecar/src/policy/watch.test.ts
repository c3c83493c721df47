import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledPolicySet } from './compile.js';
import { PolicyWatcher, reloadOnSighup, type LoadedEvent, type RejectedEvent } from './watch.js';

const doc = (name: string, spec = '{}') => `apiVersion: dbward.io/v1alpha1
kind: DataAccessPolicy
metadata: { name: ${name} }
spec: ${spec}
`;

let dir: string;
const watchers: PolicyWatcher[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbward-policy-'));
});

afterEach(async () => {
  for (const watcher of watchers.splice(0)) watcher.close();
  await rm(dir, { recursive: true, force: true });
});

function watcher(paths: string[]): { watcher: PolicyWatcher; loaded: LoadedEvent[]; rejected: RejectedEvent[] } {
  const w = new PolicyWatcher({ paths, debounceMs: 20 });
  watchers.push(w);
  const loaded: LoadedEvent[] = [];
  const rejected: RejectedEvent[] = [];
  w.on('loaded', (event) => loaded.push(event));
  w.on('rejected', (event) => rejected.push(event));
  return { watcher: w, loaded, rejected };
}

function isSet(value: CompiledPolicySet | RejectedEvent): value is CompiledPolicySet {
  return 'kind' in value && value.kind === 'CompiledPolicySet';
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('PolicyWatcher', () => {
  it('loads files in order and emits loaded', async () => {
    await writeFile(join(dir, 'a.yaml'), doc('a'));
    await writeFile(join(dir, 'b.yaml'), `${doc('b1')}---\n${doc('b2')}`);
    const { watcher: w, loaded } = watcher([join(dir, 'b.yaml'), join(dir, 'a.yaml')]);
    const result = await w.reload('initial');
    expect(isSet(result) && result.policies).toEqual(['b1', 'b2', 'a']);
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({ reason: 'initial', previousVersion: undefined });
    expect(w.current).toBe(result);
  });

  it('reads a directory in name order, skipping hidden and other files', async () => {
    await writeFile(join(dir, '20-b.yml'), doc('b'));
    await writeFile(join(dir, '10-a.yaml'), doc('a'));
    await writeFile(join(dir, '.hidden.yaml'), doc('hidden'));
    await writeFile(join(dir, 'README.md'), '# not a policy');
    const { watcher: w } = watcher([dir]);
    const result = await w.reload();
    expect(isSet(result) && result.policies).toEqual(['a', 'b']);
  });

  it('keeps the last known good set when a reload fails', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, doc('p'));
    const { watcher: w, loaded, rejected } = watcher([file]);
    const good = await w.reload('initial');
    if (!isSet(good)) throw new Error('expected a set');

    await writeFile(file, doc('p', '{ guardrails: [{ name: bad, when: "query.command == 3", action: deny }] }'));
    const failed = await w.reload('signal');
    expect(isSet(failed)).toBe(false);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ reason: 'signal', keptVersion: good.version });
    expect(rejected[0]?.errors[0]?.message).toMatch(/^.*p\.yaml:4:\d+: DataAccessPolicy p: guardrail "bad" \(spec\.guardrails\[0\]\.when\) at 1:1: no such overload/);
    expect(w.current).toBe(good);

    await writeFile(file, doc('p', '{ enforcement: audit }'));
    const fixed = await w.reload('signal');
    expect(isSet(fixed) && fixed.enforcement).toBe('audit');
    expect(loaded.map((e) => e.previousVersion)).toEqual([undefined, good.version]);
  });

  it('does not emit when nothing changed', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, doc('p'));
    const { watcher: w, loaded } = watcher([file]);
    await w.reload();
    await w.reload();
    expect(loaded).toHaveLength(1);
  });

  it('rejects missing files and empty paths', async () => {
    const { watcher: w, rejected } = watcher([join(dir, 'missing.yaml')]);
    await w.reload('initial');
    expect(rejected[0]?.errors[0]?.message).toBe(`${join(dir, 'missing.yaml')}: cannot read: ENOENT`);
    const none = watcher([]);
    await none.watcher.reload();
    expect(none.rejected[0]?.errors[0]?.message).toBe('--policy: no policy files given');
  });

  it('reloads when a watched file is replaced', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, doc('p'));
    const { watcher: w, loaded } = watcher([file]);
    await w.reload('initial');
    w.watch();
    await writeFile(join(dir, 'p.yaml.tmp'), doc('p', '{ unparseable: allow }'));
    await rename(join(dir, 'p.yaml.tmp'), file);
    await until(() => loaded.length === 2);
    expect(loaded[1]?.reason).toBe('file-change');
    expect(w.current?.unparseable.action).toBe('allow');
  });

  it('reloads when a file appears in a watched directory', async () => {
    const sub = join(dir, 'policies');
    await mkdir(sub);
    await writeFile(join(sub, 'a.yaml'), doc('a'));
    const { watcher: w, loaded } = watcher([sub]);
    await w.reload('initial');
    w.watch();
    await writeFile(join(sub, 'b.yaml'), doc('b'));
    await until(() => loaded.length === 2);
    expect(w.current?.policies).toEqual(['a', 'b']);
  });

  it('reloads on SIGHUP', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, doc('p'));
    const { watcher: w, loaded } = watcher([file]);
    await w.reload('initial');
    await writeFile(file, doc('p', '{ enforcement: audit }'));
    const signals = new EventEmitter();
    const detach = reloadOnSighup(w, signals);
    signals.emit('SIGHUP');
    await until(() => loaded.length === 2);
    expect(loaded[1]?.reason).toBe('signal');
    detach();
    expect(signals.listenerCount('SIGHUP')).toBe(0);
  });

  it('coalesces concurrent reloads', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, doc('p'));
    const { watcher: w } = watcher([file]);
    const [a, b] = await Promise.all([w.reload(), w.reload()]);
    expect(a).toBe(b);
  });
});
