import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  const options = { initialMs: 100, maxMs: 1_000, factor: 2 };

  it.each([
    ['no jitter (random 0): half of each step', 0, [50, 100, 200, 400, 500, 500]],
    ['full jitter (random ~1): the whole step', 0.999999, [100, 200, 400, 800, 1000, 1000]],
    ['middle', 0.5, [75, 150, 300, 600, 750, 750]],
  ])('%s', (_name, random, expected) => {
    const backoff = new Backoff(options, () => random);
    expect(expected.map(() => backoff.next())).toEqual(expected);
  });

  it('stays within [step/2, step] for random draws and never exceeds the cap', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const backoff = new Backoff(options, random);
    for (let i = 0; i < 50; i++) {
      const step = Math.min(1_000, 100 * 2 ** i);
      const delay = backoff.next();
      expect(delay).toBeGreaterThanOrEqual(step / 2);
      expect(delay).toBeLessThanOrEqual(step);
    }
  });

  it('reset starts from the initial delay again', () => {
    const backoff = new Backoff(options, () => 0);
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });
});
