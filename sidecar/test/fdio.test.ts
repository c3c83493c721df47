/**
 * The fdio addon (sidecar/native/fdio.c, built here with `make native`) on real loopback TCP:
 * bytes arrive whole and in order, short writes queue and drain, end() and peer EOF/close are
 * reported once, splice() forwards both ways.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runChecked } from '../../e2e/harness/index.js';
import { loadFdio, type Fdio } from '../src/net/fdio.js';
import { NativeSocket } from '../src/net/native-socket.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let fdio: Fdio;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  await runChecked('make', ['-s', 'native'], { cwd: ROOT, timeoutMs: 60_000 });
  fdio = loadFdio();
});

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A listening server on a free loopback port, closed after the test. */
async function listen(onConnection: (socket: Socket) => void, pauseOnConnect = false): Promise<{ server: Server; port: number }> {
  // pauseOnConnect: Node must not read from a socket the addon takes over later.
  const server = createServer({ noDelay: true, pauseOnConnect }, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return { server, port: (server.address() as AddressInfo).port };
}

/** A connected pair: `ours` (a Node socket about to be adopted) and the server's end, `peer`. */
async function pair(): Promise<{ ours: Socket; peer: Socket }> {
  let resolvePeer: (s: Socket) => void = () => undefined;
  const peerP = new Promise<Socket>((resolve) => (resolvePeer = resolve));
  const { port } = await listen((s) => resolvePeer(s));
  const ours = connect({ host: '127.0.0.1', port });
  await once(ours, 'connect');
  const peer = await peerP;
  cleanups.push(() => peer.destroy());
  return { ours, peer };
}

function collect(socket: Socket): { chunks: Buffer[]; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  return { chunks, ended };
}

describe('fdio transport (NativeSocket)', () => {
  it('delivers 8 MB from the peer whole and in order, as copies', async () => {
    const { ours, peer } = await pair();
    const native = NativeSocket.adopt(fdio, ours)!;
    const got: Buffer[] = [];
    native.on('data', (c: Buffer) => got.push(c));
    const closed = once(native, 'close');
    const payload = randomBytes(8 * 1024 * 1024);
    peer.end(payload);
    await closed;
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    expect(ours.destroyed).toBe(true);
  });

  it('queues what a non-reading peer does not take, signals backpressure, drains in order, then end() closes', async () => {
    const { ours, peer } = await pair();
    const native = NativeSocket.adopt(fdio, ours)!;
    peer.pause();
    const payload = randomBytes(32 * 1024 * 1024);
    let refused = 0;
    for (let at = 0; at < payload.length; at += 256 * 1024) {
      if (!native.write(payload.subarray(at, at + 256 * 1024))) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(native.writableNeedDrain).toBe(true);
    expect(native.writableLength).toBeGreaterThan(0);
    const drained = once(native, 'drain');
    const { chunks, ended } = collect(peer);
    peer.resume();
    await drained;
    expect(native.writableNeedDrain).toBe(false);
    native.end();
    await ended;
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    peer.end();
    await once(native, 'close');
  });

  it('pause() stops reading until resume()', async () => {
    const { ours, peer } = await pair();
    const native = NativeSocket.adopt(fdio, ours)!;
    const got: Buffer[] = [];
    native.on('data', (c: Buffer) => got.push(c));
    native.pause();
    peer.write('held');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got).toEqual([]);
    native.resume();
    await once(native, 'data');
    expect(Buffer.concat(got).toString()).toBe('held');
    native.destroy();
    await once(native, 'close');
  });

  it('a reset by the peer is an error with its code, then one close', async () => {
    const { ours, peer } = await pair();
    const native = NativeSocket.adopt(fdio, ours)!;
    const errors: NodeJS.ErrnoException[] = [];
    let closes = 0;
    native.on('error', (e: NodeJS.ErrnoException) => errors.push(e));
    // Not events.once(native, 'close'): it rejects on the 'error' that comes first.
    const closed = new Promise<void>((resolve) => native.on('close', () => resolve()));
    native.on('close', () => closes++);
    peer.resetAndDestroy();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errors.map((e) => e.code)).toEqual(['ECONNRESET']);
    expect(closes).toBe(1);
    expect(native.write(Buffer.from('late'))).toBe(false);
  });
});

describe('fdio.splice', () => {
  it('forwards 16 MB both ways through an echo server and reports one close', async () => {
    // client <-> [a | splice | b] <-> echo
    const echo = await listen((s) => s.pipe(s));
    const { port: front } = await listen((a) => {
      const b = connect({ host: '127.0.0.1', port: echo.port });
      b.once('connect', () => {
        fdio.splice((a as unknown as { _handle: { fd: number } })._handle.fd, (b as unknown as { _handle: { fd: number } })._handle.fd, (errno) => spliceClosed.push(errno));
        a.destroy();
        b.destroy();
      });
    }, true);
    const spliceClosed: number[] = [];
    const client = connect({ host: '127.0.0.1', port: front });
    await once(client, 'connect');
    const { chunks } = collect(client);
    const payload = randomBytes(16 * 1024 * 1024);
    client.write(payload);
    while (chunks.reduce((n, c) => n + c.length, 0) < payload.length) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    client.end();
    await once(client, 'close');
    while (spliceClosed.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(spliceClosed).toEqual([0]);
  });
});
