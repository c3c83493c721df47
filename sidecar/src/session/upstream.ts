import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { UpstreamTarget } from '../config/upstream-url.js';
import { cancelRequest, sslRequest } from '../wire/writers.js';

/** The upstream could not be reached or secured; becomes 08006 for the client. */
export class UpstreamUnavailable extends Error {
  override readonly name = 'UpstreamUnavailable';
}

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  /** True when the connection to the server is encrypted. */
  tls: boolean;
  /**
   * Set when the socket reads into this one reused buffer and hands each read to the `reader`
   * given to {@link connectUpstream} instead of emitting 'data' events.
   */
  readBuffer: Buffer | undefined;
}

/** Size of the reused read buffer of a plain-TCP upstream connection. */
export const UPSTREAM_READ_BUFFER = 64 * 1024;

/** Receives the bytes of one read from the upstream; the chunk is only valid during the call. */
export type UpstreamReader = (chunk: Buffer) => void;

/**
 * Opens a connection to the upstream server and negotiates TLS according to `sslmode`, as libpq
 * does: `disable` never asks, `prefer` asks and accepts a refusal, `require` insists without
 * verifying, `verify-ca` verifies the chain, `verify-full` the chain and the host name. With
 * `require` and an `sslrootcert`, the chain is verified too (libpq's behaviour).
 */
export async function connectUpstream(target: UpstreamTarget, timeoutMs: number, reader?: UpstreamReader): Promise<UpstreamConnection> {
  const deadline = Date.now() + timeoutMs;
  // Without TLS, reads go into one reused buffer (no allocation per read: with a fast server and
  // a slow client, per-read buffers pile up as garbage faster than V8 collects them). TLS
  // decrypts into buffers of its own, so the 'data' path stays for it.
  const readBuffer = target.sslmode === 'disable' && reader !== undefined ? Buffer.alloc(UPSTREAM_READ_BUFFER) : undefined;
  const socket = await openTcp(target, timeoutMs, readBuffer === undefined ? undefined : { buffer: readBuffer, reader: reader! });
  try {
    if (target.sslmode === 'disable') return { socket, tls: false, readBuffer };
    const answer = await requestSsl(socket, deadline - Date.now());
    if (answer === 'N') {
      if (target.sslmode === 'prefer') return { socket, tls: false, readBuffer: undefined };
      throw new UpstreamUnavailable(`the server does not support TLS, but sslmode is ${target.sslmode}`);
    }
    const secured = await startTls(socket, target, deadline - Date.now());
    return { socket: secured, tls: true, readBuffer: undefined };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/**
 * Sends a CancelRequest for an upstream backend on a fresh connection (TLS as for sessions), then
 * closes it. PostgreSQL answers nothing; failures are reported to the caller for logging only.
 */
export async function cancelUpstream(target: UpstreamTarget, processId: number, secretKey: Buffer, timeoutMs: number): Promise<void> {
  const { socket } = await connectUpstream(target, timeoutMs);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve());
    socket.end(cancelRequest(processId, secretKey));
  });
}

function openTcp(target: UpstreamTarget, timeoutMs: number, reused?: { buffer: Buffer; reader: UpstreamReader }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      host: target.host,
      port: target.port,
      ...(reused === undefined
        ? {}
        : {
            onread: {
              buffer: reused.buffer,
              callback: (nread: number, buffer: Uint8Array): boolean => {
                reused.reader((buffer as Buffer).subarray(0, nread));
                return true;
              },
            },
          }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamUnavailable(`connecting to ${target.host}:${target.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new UpstreamUnavailable(`cannot connect to ${target.host}:${target.port}: ${error.code ?? error.message}`, { cause: error }));
    });
  });
}

/** Sends SSLRequest and reads the one-byte answer ('S' or 'N'). */
function requestSsl(socket: Socket, timeoutMs: number): Promise<'S' | 'N'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new UpstreamUnavailable('the server did not answer the SSLRequest in time')), Math.max(timeoutMs, 1));
    const onData = (chunk: Buffer): void => {
      const answer = String.fromCharCode(chunk[0]!);
      if (chunk.length > 1) {
        // Bytes after the answer would be unencrypted data injected before the handshake.
        done(new UpstreamUnavailable('the server sent unexpected data after answering the SSLRequest'));
      } else if (answer === 'S' || answer === 'N') {
        done(null, answer);
      } else {
        done(new UpstreamUnavailable(`the server answered the SSLRequest with 0x${chunk[0]!.toString(16)}`));
      }
    };
    const onError = (error: Error): void => done(new UpstreamUnavailable(`connection lost during SSLRequest: ${error.message}`, { cause: error }));
    const onClose = (): void => done(new UpstreamUnavailable('the server closed the connection during SSLRequest'));
    function done(error: Error | null, answer?: 'S' | 'N'): void {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onError).off('close', onClose);
      socket.pause();
      if (error !== null) reject(error);
      else resolve(answer!);
    }
    socket.on('data', onData).on('error', onError).on('close', onClose);
    socket.write(sslRequest());
  });
}

function startTls(socket: Socket, target: UpstreamTarget, timeoutMs: number): Promise<TLSSocket> {
  const verifyChain = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full' || target.sslrootcert !== undefined;
  let ca: Buffer | undefined;
  if (target.sslrootcert !== undefined) {
    try {
      ca = readFileSync(target.sslrootcert);
    } catch (cause) {
      return Promise.reject(new UpstreamUnavailable(`cannot read sslrootcert ${target.sslrootcert}`, { cause }));
    }
  }
  return new Promise((resolve, reject) => {
    const servername = isIP(target.host) === 0 ? target.host : undefined;
    const tls = tlsConnect({
      socket,
      ...(servername !== undefined ? { servername } : {}),
      ...(ca !== undefined ? { ca } : {}),
      rejectUnauthorized: verifyChain,
      // verify-full checks the name (Node's default identity check); verify-ca and require do not.
      // The option must be absent, not undefined, for the default: tls.connect rejects undefined.
      ...(target.sslmode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
      ALPNProtocols: ['postgresql'],
    });
    const timer = setTimeout(() => {
      tls.destroy();
      reject(new UpstreamUnavailable('TLS handshake with the server timed out'));
    }, Math.max(timeoutMs, 1));
    tls.once('secureConnect', () => {
      clearTimeout(timer);
      tls.removeAllListeners('error');
      resolve(tls);
    });
    tls.once('error', (error: Error) => {
      clearTimeout(timer);
      reject(new UpstreamUnavailable(`TLS handshake with the server failed (sslmode=${target.sslmode}): ${error.message}`, { cause: error }));
    });
  });
}
