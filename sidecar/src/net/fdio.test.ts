import { describe, expect, it } from 'vitest';
import { FDIO_PATH, FdioUnavailable, loadFdio } from './fdio.js';

describe('loadFdio', () => {
  it.each([
    ['/nonexistent/fdio.node', /cannot be loaded: not built \(run `make native`\)/],
    ['/etc/hostname', /cannot be loaded: .+/],
  ])('%s: a FdioUnavailable naming the path, with the loader error as cause', (path, message) => {
    let caught: unknown;
    try {
      loadFdio(path);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FdioUnavailable);
    expect((caught as Error).message).toContain(path);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).cause).toBeInstanceOf(Error);
  });

  it('looks for the addon where `make native` puts it', () => {
    expect(FDIO_PATH).toMatch(/sidecar\/native\/build\/fdio\.node$/);
  });
});
