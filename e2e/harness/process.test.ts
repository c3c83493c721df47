import { describe, expect, it } from 'vitest';
import { CommandError, freePort, isPortOpen, run, runChecked, spawnProcess } from './index.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('run', () => {
  it('collects exit code, stdout and stderr, and feeds input', async () => {
    const result = await run('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello\n' });
    expect(result).toMatchObject({ code: 3, signal: null, stdout: 'hello\n', stderr: 'err\n' });
  });

  it('merges env over the inherited environment, undefined removes a variable', async () => {
    process.env['DBWARD_TEST_INHERITED'] = 'x';
    try {
      const result = await run('sh', ['-c', 'echo "${DBWARD_TEST_SET}-${DBWARD_TEST_INHERITED:-gone}-${HOME:+home}"'], {
        env: { DBWARD_TEST_SET: 'set', DBWARD_TEST_INHERITED: undefined },
      });
      expect(result.stdout).toBe('set-gone-home\n');
    } finally {
      delete process.env['DBWARD_TEST_INHERITED'];
    }
  });

  it('runChecked throws CommandError with the output on failure', async () => {
    const err = await runChecked('sh', ['-c', 'echo boom >&2; exit 1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toMatch(/exit code 1:\nboom/);
    expect((err as CommandError).result.stderr).toBe('boom\n');
  });

  it('rejects on timeout and kills the command', async () => {
    const started = Date.now();
    await expect(run('sleep', ['30'], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects when the command does not exist', async () => {
    await expect(run('/nonexistent/dbward-cmd')).rejects.toThrow(/failed to start/);
  });
});

describe('spawnProcess', () => {
  it('waits for a line, then for a later one with `since`', async () => {
    const proc = spawnProcess('sh', ['-c', 'echo "listening on 127.0.0.1:6432" >&2; read line; echo "got $line"; sleep 30']);
    try {
      const match = await proc.waitFor(/listening on ([\d.]+):(\d+)/, { timeoutMs: 5_000 });
      expect(match[2]).toBe('6432');
      const mark = proc.outputLength;
      await expect(proc.waitFor('listening', { since: mark, timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
      proc.write('ping\n');
      await proc.waitFor('got ping', { stream: 'stdout', timeoutMs: 5_000 });
      expect(proc.stderr).toContain('listening');
    } finally {
      await proc.kill();
    }
  });

  it('rejects a wait with the output when the process exits first', async () => {
    const proc = spawnProcess('sh', ['-c', 'echo fatal: bad flag; exit 2']);
    await expect(proc.waitFor('ready', { timeoutMs: 5_000 })).rejects.toThrow(/exited \(code 2[\s\S]*fatal: bad flag/);
    expect((await proc.exited).code).toBe(2);
  });

  it('kill() reaches the whole process group and escalates to SIGKILL', async () => {
    const port = await freePort();
    // The child ignores SIGTERM; its grandchild (a node TCP server) would survive a plain kill.
    const script = `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`;
    const proc = spawnProcess('sh', ['-c', `trap '' TERM; ${JSON.stringify(process.execPath)} -e "${script}" & while :; do sleep 0.1; done`]);
    await proc.waitFor('up', { timeoutMs: 10_000 });
    expect(await isPortOpen(port)).toBe(true);
    const exit = await proc.kill('SIGTERM', 500);
    expect(exit.signal).toBe('SIGKILL');
    expect(proc.pid !== undefined && alive(proc.pid)).toBe(false);
    await expect.poll(() => isPortOpen(port)).toBe(false);
    expect(await proc.kill()).toBe(exit);
  });
});
