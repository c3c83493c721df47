/**
 * A deliberately cheap PostgreSQL client for throughput measurements: trust startup, one simple
 * Query, and a frame walker that counts DataRow frames and skips their bytes without decoding or
 * copying them. The client does as little work per row as possible, so that the server or the
 * proxy in between, not the client, limits the measured rows/s.
 */
import { connect, type Socket } from 'node:net';

export interface RawQueryOptions {
  host: string;
  port: number;
  user: string;
  database: string;
  sql: string;
  /** Overall timeout (connect + query), default 120 s. */
  timeoutMs?: number;
}

export interface RawQueryResult {
  rows: number;
  /** Bytes received from sending the Query to ReadyForQuery (all frames, headers included). */
  bytes: number;
  /** Seconds from sending the Query to receiving ReadyForQuery. */
  seconds: number;
  /** Seconds to connect and authenticate (not part of `seconds`). */
  connectSeconds: number;
  /** CommandComplete tag, e.g. "SELECT 1000000". */
  tag: string;
  /** Socket reads ('data' events) during the query: bytes / chunks is the average read size. */
  chunks: number;
  /** CPU seconds of this (client) process during the query, all threads. */
  clientCpuSeconds: number;
}

const PROTOCOL_3_0 = 196608;

function startupFrame(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

function queryFrame(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head[0] = 0x51; // 'Q'
  head.writeUInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]); // 'X'

const D = 0x44; // DataRow
const E = 0x45; // ErrorResponse
const R = 0x52; // Authentication*
const C = 0x43; // CommandComplete
const Z = 0x5a; // ReadyForQuery

/** The 'M' (message) and 'C' (SQLSTATE) fields of an ErrorResponse body. */
function errorText(body: Buffer): string {
  let message = '';
  let code = '';
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const field = body[pos]!;
    const end = body.indexOf(0, pos + 1);
    if (end < 0) break;
    const value = body.toString('utf8', pos + 1, end);
    if (field === 0x4d) message = value;
    else if (field === 0x43) code = value;
    pos = end + 1;
  }
  return code === '' ? message : `${message} (SQLSTATE ${code})`;
}

/** Runs one query over a fresh connection and counts its rows. */
export function rawQuery(options: RawQueryOptions): Promise<RawQueryResult> {
  return new Promise<RawQueryResult>((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let tQuery = 0n;
    let cpu0: NodeJS.CpuUsage | undefined;
    let chunks = 0;
    let phase: 'startup' | 'query' | 'done' = 'startup';
    let rows = 0;
    let bytes = 0;
    let tag = '';

    // Frame walker state.
    const header = Buffer.alloc(5);
    let headerFill = 0;
    let type = 0;
    let bodyLeft = 0;
    /** Body pieces of the current frame when it must be inspected (not DataRow). */
    let parts: Buffer[] | null = null;

    const socket: Socket = connect({ host: options.host, port: options.port, noDelay: true });
    const timer = setTimeout(() => fail(new Error(`raw query to ${options.host}:${options.port} timed out`)), options.timeoutMs ?? 120_000);

    /** A function, so that TypeScript does not narrow `phase` across the handlers that change it. */
    function finished(): boolean {
      return phase === 'done';
    }

    function fail(error: Error): void {
      if (phase === 'done') return;
      phase = 'done';
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    }

    function onFrame(code: number, body: Buffer): void {
      switch (code) {
        case R: {
          const auth = body.readInt32BE(0);
          if (auth !== 0) fail(new Error(`server asked for authentication (code ${auth}); the raw client only does trust`));
          return;
        }
        case E:
          fail(new Error(`server error: ${errorText(body)}`));
          return;
        case C:
          tag = body.toString('utf8', 0, Math.max(0, body.length - 1));
          return;
        case Z:
          if (phase === 'startup') {
            phase = 'query';
            cpu0 = process.cpuUsage();
            tQuery = process.hrtime.bigint();
            socket.write(queryFrame(options.sql));
          } else if (phase === 'query') {
            const t1 = process.hrtime.bigint();
            const cpu = process.cpuUsage(cpu0);
            phase = 'done';
            clearTimeout(timer);
            socket.end(TERMINATE);
            resolve({
              rows,
              bytes,
              seconds: Number(t1 - tQuery) / 1e9,
              connectSeconds: Number(tQuery - t0) / 1e9,
              tag,
              chunks,
              clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
            });
          }
          return;
        default:
          return; // ParameterStatus, BackendKeyData, RowDescription, NoticeResponse, ...
      }
    }

    function startFrame(code: number, length: number): void {
      if (length < 4) throw new Error(`bad frame length ${length}`);
      type = code;
      bodyLeft = length - 4;
      if (code === D) {
        rows++;
        parts = null;
      } else {
        parts = [];
      }
      if (bodyLeft === 0) endFrame();
    }

    function endFrame(): void {
      if (parts !== null) {
        const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        parts = null;
        onFrame(type, body);
      }
    }

    socket.on('data', (chunk: Buffer) => {
      if (phase === 'done') return;
      if (phase === 'query') {
        bytes += chunk.length;
        chunks++;
      }
      const len = chunk.length;
      let pos = 0;
      try {
        while (pos < len && !finished()) {
          if (bodyLeft > 0) {
            const take = Math.min(bodyLeft, len - pos);
            if (parts !== null) parts.push(chunk.subarray(pos, pos + take));
            pos += take;
            bodyLeft -= take;
            if (bodyLeft === 0) endFrame();
          } else if (headerFill === 0 && len - pos >= 5) {
            const code = chunk[pos]!;
            const length = chunk.readUInt32BE(pos + 1);
            pos += 5;
            startFrame(code, length);
          } else {
            const take = Math.min(5 - headerFill, len - pos);
            chunk.copy(header, headerFill, pos, pos + take);
            headerFill += take;
            pos += take;
            if (headerFill === 5) {
              headerFill = 0;
              startFrame(header[0]!, header.readUInt32BE(1));
            }
          }
        }
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.on('connect', () => socket.write(startupFrame({ user: options.user, database: options.database })));
    socket.on('error', (error) => fail(error));
    socket.on('close', () => fail(new Error(`connection to ${options.host}:${options.port} closed before the query finished`)));
  });
}
