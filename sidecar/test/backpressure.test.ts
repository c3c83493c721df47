import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { FrameSplitter } from '../src/wire/splitter.js';
import { query, startupMessage } from '../src/wire/writers.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';

/**
 * A slow reader must never make the sidecar buffer a result: when the client's socket is full the
 * sidecar stops reading from the server, and PostgreSQL waits. Measured as the sidecar's resident
 * memory while 1 GB streams to a client that reads slower than the server produces.
 */

const MB = 1024 * 1024;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

interface SlowReadResult {
  rows: number;
  bytes: number;
  commandTag: string;
  /** Sum of the lengths of every DataRow's first field. */
  valueBytes: number;
  /** Rows whose value does not start and end with the expected byte. */
  corrupt: number;
}

/**
 * Logs in (trust), runs `sql`, and reads the answer at about `bytesPerSecond`, pausing the socket
 * whenever it is ahead of that pace. Counts rows with a frame splitter that streams big frames.
 */
function slowRead(port: number, sql: string, bytesPerSecond: number): Promise<SlowReadResult> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    const splitter = new FrameSplitter({ maxFrameLength: 1024 * MB + 5, streamThreshold: 64 * 1024 });
    let phase: 'login' | 'query' = 'login';
    let rows = 0;
    let bytes = 0;
    let valueBytes = 0;
    let commandTag = '';
    let head = Buffer.alloc(0);
    let corrupt = 0;
    const started = Date.now();
    socket.on('error', reject);
    socket.on('connect', () => socket.write(startupMessage(new Map([['user', 'app'], ['database', 'app']]))));
    socket.on('data', (chunk: Buffer) => {
      if (phase === 'query') bytes += chunk.length;
      splitter.push(chunk, {
        onFrame: (code, buf, start, end) => {
          if (code === 0x44) {
            rows++;
            valueBytes += buf.readInt32BE(start + 7);
            // Content, not only lengths: a reused read buffer overwritten too early would show here.
            if (buf[start + 11] !== 0x78 || buf[end - 1] !== 0x78) corrupt++;
          } else if (code === 0x43) {
            commandTag = buf.toString('utf8', start + 5, end - 1);
          } else if (code === 0x45) {
            reject(new Error(`server error: ${buf.toString('utf8', start + 5, end)}`));
          } else if (code === 0x5a) {
            if (phase === 'login') {
              phase = 'query';
              socket.write(query(sql));
            } else {
              socket.end();
              resolve({ rows, bytes, commandTag, valueBytes, corrupt });
            }
          }
        },
        streamFrame: (code) => code === 0x44,
        onFramePiece: (buf, start, end, last) => {
          // Collect the first 11 bytes (header 5 + field count 2 + field length 4) of a streamed row.
          if (head.length < 11) {
            head = Buffer.concat([head, buf.subarray(start, Math.min(end, start + 11 - head.length))]);
            if (head.length === 11) {
              rows++;
              valueBytes += head.readInt32BE(7);
            }
          }
          if (last) head = Buffer.alloc(0);
        },
      });
      if (phase === 'query') {
        const allowed = ((Date.now() - started) / 1000) * bytesPerSecond;
        if (bytes > allowed) {
          socket.pause();
          setTimeout(() => socket.resume(), Math.min(200, ((bytes - allowed) / bytesPerSecond) * 1000));
        }
      }
    });
  });
}

let db: PgCluster;
let sidecar: RunningSidecar;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust', settings: { work_mem: '64MB' } });
  sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }) });
});

afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

/** Samples the sidecar's RSS every 50 ms while `work` runs; returns the peak growth over the start. */
async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; baseline: number; peak: number }> {
  const pid = sidecar.process.pid!;
  const baseline = rssBytes(pid);
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 50);
  try {
    const result = await work();
    peak = Math.max(peak, rssBytes(pid));
    return { result, baseline, peak };
  } finally {
    clearInterval(timer);
  }
}

describe('backpressure', () => {
  it('streams a 1 GB result to a slow reader with bounded sidecar memory', { timeout: 180_000 }, async () => {
    const rows = 1_000_000;
    const { result, baseline, peak } = await peakRssGrowth(() =>
      slowRead(sidecar.port, `select repeat('x', 1000) as v from generate_series(1, ${rows})`, 120 * MB),
    );
    console.log(JSON.stringify({ test: '1GB-slow-reader', rows: result.rows, mb: Math.round(result.bytes / MB), baselineMB: Math.round(baseline / MB), peakGrowthMB: Math.round((peak - baseline) / MB) }));
    expect(result.rows).toBe(rows);
    expect(result.commandTag).toBe(`SELECT ${rows}`);
    expect(result.valueBytes).toBe(rows * 1000);
    expect(result.corrupt).toBe(0);
    expect(result.bytes).toBeGreaterThan(1000 * MB * 0.95);
    expect(peak - baseline).toBeLessThan(64 * MB);
  });

  it('forwards a single 200 MB row in pieces without holding it', { timeout: 180_000 }, async () => {
    const size = 200 * MB;
    const { result, baseline, peak } = await peakRssGrowth(() => slowRead(sidecar.port, `select repeat('y', ${size}) as v`, 60 * MB));
    console.log(JSON.stringify({ test: '200MB-row', mb: Math.round(result.bytes / MB), baselineMB: Math.round(baseline / MB), peakGrowthMB: Math.round((peak - baseline) / MB) }));
    expect(result.rows).toBe(1);
    expect(result.valueBytes).toBe(size);
    expect(result.commandTag).toBe('SELECT 1');
    expect(peak - baseline).toBeLessThan(64 * MB);
  });
});
