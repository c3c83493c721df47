import { describe, expect, it } from 'vitest';
import { CancelKeys, type CancelTarget } from './cancel-keys.js';

const target = (): CancelTarget => ({ cancel: () => undefined });

describe('CancelKeys', () => {
  it('keeps the upstream process id with a fresh secret', () => {
    const keys = new CancelKeys();
    const t = target();
    const key = keys.issue(t, 4, 4242);
    expect(key.processId).toBe(4242);
    expect(key.secretKey).toHaveLength(4);
    expect(keys.lookup(4242, key.secretKey)).toBe(t);
    expect(keys.lookup(4242, Buffer.alloc(4))).toBeUndefined();
  });

  it('falls back to a random process id while the upstream one is still held', () => {
    const keys = new CancelKeys();
    const first = keys.issue(target(), 4, 7);
    const second = keys.issue(target(), 4, 7);
    expect(first.processId).toBe(7);
    expect(second.processId).not.toBe(7);
    expect(second.processId).toBeGreaterThan(0);
    keys.release(first.processId);
    expect(keys.issue(target(), 4, 7).processId).toBe(7);
    expect(keys.size).toBe(2);
  });

  it('issues a random process id without a preference, and secrets of the asked length', () => {
    const keys = new CancelKeys();
    const key = keys.issue(target(), 32);
    expect(key.processId).toBeGreaterThan(0);
    expect(key.secretKey).toHaveLength(32);
    keys.release(key.processId);
    expect(keys.size).toBe(0);
  });
});
