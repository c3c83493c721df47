import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import {
  bind,
  close,
  copyData,
  copyDone,
  copyFail,
  describe as describeMessage,
  execute,
  flush,
  functionCall,
  parse,
  query,
  startupMessage,
  sync,
} from '../src/wire/writers.js';
import { errorFields, RawClient, type ReceivedFrame } from './support/raw-client.js';
import { startSidecar, type RunningSidecar } from './support/sidecar.js';
import { prng } from './support/prng.js';

/**
 * Fuzzing the client side of a running sidecar: at least 100,000 random and mutated frontend
 * frames, in the startup phase and after login. Whatever arrives, the sidecar must not crash,
 * must only ever send well-formed backend frames, must answer a protocol violation with FATAL
 * 08P01 and close, and must keep serving a concurrent well-behaved client.
 */

const SEED = Number(process.env.DBWARD_FUZZ_SEED ?? 20261122);
const TARGET_FRAMES = Number(process.env.DBWARD_FUZZ_FRAMES ?? 100_000);


const random = prng(SEED);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

const SQL = ['select 1', 'select $1::int', "select 'x' || 'y'", '', 'begin', 'rollback', 'commit', 'select * from fuzz_t', 'select from', 'show all'];

/** A valid frontend frame of a random kind. */
function validFrame(): Buffer {
  switch (int(14)) {
    case 0:
      return query(pick(SQL));
    case 1:
      return parse(pick(['', 's1', 's2']), pick(SQL), pick([[], [23], [25, 23]]));
    case 2:
      return bind(pick(['', 'p1']), pick(['', 's1']), pick([[], ['1'], [null], [Buffer.from([0, 0, 0, 1])]]), pick([[], [0], [1]]), pick([[], [0], [1]]));
    case 3:
      return describeMessage(pick(['S', 'P'] as const), pick(['', 's1', 'p1']));
    case 4:
      return execute(pick(['', 'p1']), pick([0, 1, 5]));
    case 5:
      return close(pick(['S', 'P'] as const), pick(['', 's1']));
    case 6:
      return flush();
    case 7:
      return copyData(bytes(int(32)));
    case 8:
      return copyDone();
    case 9:
      return copyFail('fuzz');
    case 10:
      return functionCall(int(100_000), [Buffer.from('1')], [0], 0);
    case 11:
      return query(bytes(int(40)).toString('latin1').replace(/\0/g, ' '));
    default:
      return sync();
  }
}

/** A valid frame with one mutation; `fatal` tells whether the sidecar itself must reject it. */
function mutatedFrame(): { frame: Buffer; sidecarRejects: boolean } {
  const frame = Buffer.from(validFrame());
  switch (int(7)) {
    case 0: {
      // Unknown message type: the sidecar rejects it before anything reaches the server.
      const unknown = pick([0x00, 0x01, 0x41, 0x5a, 0x7f, 0xff, 0x61, 0x71]);
      frame[0] = unknown;
      return { frame, sidecarRejects: true };
    }
    case 1:
      // Length field below its own size.
      frame.writeUInt32BE(int(4), 1);
      return { frame, sidecarRejects: true };
    case 2:
      // Length field above the sidecar's limit.
      frame.writeUInt32BE(0x7ff00000 + int(0xfffff), 1);
      return { frame, sidecarRejects: true };
    case 3: {
      // A shorter length: the body is cut and the rest of it is read as the next frame.
      const length = frame.readUInt32BE(1);
      if (length > 4) frame.writeUInt32BE(4 + int(length - 4), 1);
      return { frame, sidecarRejects: false };
    }
    case 4: {
      // Random bytes flipped in the body.
      for (let i = 0, n = 1 + int(3); i < n && frame.length > 5; i++) frame[5 + int(frame.length - 5)] = int(256);
      return { frame, sidecarRejects: false };
    }
    case 5:
      // Body truncated but the length kept: the next frame's bytes complete this one.
      return { frame: frame.subarray(0, Math.max(5, frame.length - 1 - int(3))), sidecarRejects: false };
    default:
      // Plain garbage.
      return { frame: bytes(1 + int(64)), sidecarRejects: false };
  }
}

const READY_FOR_QUERY = 0x5a;
const ERROR_RESPONSE = 0x45;

interface Outcome {
  frames: number;
  closed: boolean;
  protocolViolation: boolean;
  timedOut: boolean;
}

/**
 * A protocol violation that ends the connection (FATAL 08P01, from the sidecar or the server) must
 * be the last frame sent, followed by the connection closing. Every 08P01 the sidecar raises itself
 * is FATAL. (PostgreSQL also reports some malformed message bodies, e.g. a Bind with the wrong
 * parameter count, as ERROR 08P01 and keeps the session; the sidecar passes that through as is.)
 */
function checkViolationHandling(client: RawClient): boolean {
  for (const frame of client.frames) {
    if (frame.code !== ERROR_RESPONSE) continue;
    const fields = errorFields(frame);
    if (fields.get('M')?.startsWith('dbward: protocol violation') === true) expect(fields.get('V')).toBe('FATAL');
  }
  const index = client.frames.findIndex((f) => f.code === ERROR_RESPONSE && errorFields(f).get('C') === '08P01' && errorFields(f).get('V') === 'FATAL');
  if (index < 0) return false;
  expect(index).toBe(client.frames.length - 1);
  return true;
}

let db: PgCluster;
let sidecar: RunningSidecar;

beforeAll(async () => {
  db = await startPostgres({ auth: 'trust', settings: { max_connections: 100 } });
  await db.sql('create table fuzz_t (id int primary key, v text); insert into fuzz_t select g, md5(g::text) from generate_series(1, 20) g', { database: 'app', user: 'app' });
  sidecar = await startSidecar({ upstream: db.url({ user: 'app', password: null, database: 'app', sslmode: 'disable' }), args: ['--max-message-size', '1MB'] });
});

afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

/** A well-behaved client querying throughout; none of its queries may fail. */
function startGoodClient(): { stop: () => Promise<{ queries: number; failures: string[]; maxLatencyMs: number }> } {
  const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
  let running = true;
  let queries = 0;
  let maxLatencyMs = 0;
  const failures: string[] = [];
  client.on('error', (error) => failures.push(`connection error: ${error.message}`));
  const loop = (async () => {
    await client.connect();
    while (running) {
      const started = performance.now();
      try {
        const result = await client.query('select count(*)::int as n from fuzz_t');
        if (result.rows[0]?.n !== 20) failures.push(`unexpected result ${JSON.stringify(result.rows)}`);
      } catch (error) {
        failures.push((error as Error).message);
      }
      maxLatencyMs = Math.max(maxLatencyMs, performance.now() - started);
      queries++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { queries, failures, maxLatencyMs };
    },
  };
}

async function fuzzStartup(): Promise<Outcome> {
  const client = await RawClient.connect(sidecar.port);
  let packet: Buffer;
  const kind = int(5);
  if (kind === 0) packet = bytes(1 + int(40));
  else if (kind === 1) {
    packet = Buffer.from(startupMessage(new Map([['user', 'app'], ['database', 'app']])));
    packet[int(packet.length)] = int(256);
  } else if (kind === 2) {
    packet = Buffer.alloc(8);
    packet.writeUInt32BE(pick([0, 3, 7, 8, 10_001, 0xffffffff]), 0);
    packet.writeUInt32BE(pick([196608, 80877103, 80877102, 80877104, 0x00020000, 0x12345678]), 4);
  } else if (kind === 3) {
    packet = Buffer.concat([startupMessage(new Map([['user', 'app'], ['database', 'app']])), bytes(1 + int(8))]);
    packet.writeUInt32BE(packet.length + 1 + int(5), 0); // claims more than it carries
  } else {
    packet = startupMessage(new Map([['user', 'app'], [bytes(3).toString('hex'), bytes(3).toString('hex')]]));
  }
  client.send(packet);
  let timedOut = false;
  try {
    await client.waitFor((f) => f.code === READY_FOR_QUERY || f.code === ERROR_RESPONSE || f.code === 0x52, 400);
  } catch {
    timedOut = true;
  }
  expect(client.invalid).toBeNull();
  const protocolViolation = checkViolationHandling(client);
  if (protocolViolation) await client.waitClosed(3_000);
  const outcome = { frames: 1, closed: client.closed, protocolViolation, timedOut };
  client.close();
  return outcome;
}

async function fuzzSession(framesPerConnection: number): Promise<Outcome & { sidecarRejects: boolean }> {
  const client = await RawClient.login(sidecar.port, { user: 'app', database: 'app' });
  const parts: Buffer[] = [];
  for (let i = 0; i < framesPerConnection; i++) parts.push(validFrame());
  // A third of the connections stay clean; the others carry one to three mutations. Some start
  // with a violation the sidecar must catch itself (at a frame boundary, so it is certain).
  let sidecarRejects = false;
  const style = random();
  if (style >= 0.35) {
    for (let i = 0, n = 1 + int(3); i < n; i++) parts[int(parts.length)] = mutatedFrame().frame;
    if (style >= 0.85) {
      let first = mutatedFrame();
      while (!first.sidecarRejects) first = mutatedFrame();
      parts[0] = first.frame;
      sidecarRejects = true;
    }
  }
  const stream = Buffer.concat(parts);
  // Send in random chunks so that frames straddle reads.
  for (let offset = 0; offset < stream.length; ) {
    const n = 1 + int(4096);
    client.send(stream.subarray(offset, offset + n));
    offset += n;
  }
  // A marker query: when the connection survived, its answer proves the stream stayed in sync.
  client.send(Buffer.concat([sync(), query('select 4242')]));
  let timedOut = false;
  try {
    await client.waitFor((f) => f.code === 0x44 && f.bytes.includes('4242'), 1_000);
  } catch {
    timedOut = true;
  }
  expect(client.invalid).toBeNull();
  const protocolViolation = checkViolationHandling(client);
  if (protocolViolation) await client.waitClosed(3_000);
  if (sidecarRejects) {
    expect(protocolViolation).toBe(true);
    const fields = errorFields(client.frames.at(-1) as ReceivedFrame);
    expect(fields.get('M')).toMatch(/^dbward: protocol violation/);
  }
  const outcome = { frames: framesPerConnection, closed: client.closed, protocolViolation, timedOut, sidecarRejects };
  client.close();
  return outcome;
}

describe('fuzzing the frontend protocol', () => {
  it(`survives ${TARGET_FRAMES.toLocaleString('en')} random and mutated frames (seed ${SEED})`, { timeout: 600_000 }, async () => {
    const good = startGoodClient();
    let frames = 0;
    let connections = 0;
    let violations = 0;
    let sidecarRejected = 0;
    let timeouts = 0;
    let survived = 0;

    // Startup phase: one packet per connection.
    const startupRuns = Math.min(600, Math.ceil(TARGET_FRAMES * 0.01));
    for (let i = 0; i < startupRuns; i += 8) {
      const outcomes = await Promise.all(Array.from({ length: Math.min(8, startupRuns - i) }, () => fuzzStartup()));
      for (const o of outcomes) {
        frames += o.frames;
        connections++;
        if (o.protocolViolation) violations++;
        if (o.timedOut) timeouts++;
      }
    }

    // After login: batches of frames per connection.
    while (frames < TARGET_FRAMES) {
      const outcomes = await Promise.all(Array.from({ length: 8 }, () => fuzzSession(300 + int(500))));
      for (const o of outcomes) {
        frames += o.frames;
        connections++;
        if (o.protocolViolation) violations++;
        if (o.sidecarRejects) sidecarRejected++;
        if (o.timedOut) timeouts++;
        if (!o.closed && !o.timedOut) survived++;
      }
    }

    const goodResult = await good.stop();
    // The process is alive and serving, and logged no escaped exception.
    expect(sidecar.process.exitInfo).toBeUndefined();
    const escaped = sidecar.logs().filter((line) => /uncaught|unhandled/.test(String(line.msg)));
    expect(escaped).toEqual([]);
    expect(goodResult.failures).toEqual([]);
    expect(goodResult.queries).toBeGreaterThan(10);

    console.log(
      JSON.stringify({ seed: SEED, frames, connections, violations, sidecarRejected, timeouts, survived, goodQueries: goodResult.queries, goodMaxLatencyMs: Math.round(goodResult.maxLatencyMs) }),
    );
    expect(frames).toBeGreaterThanOrEqual(TARGET_FRAMES);
    // The mix must really exercise both paths: violations caught and connections that survived.
    expect(violations).toBeGreaterThan(50);
    expect(sidecarRejected).toBeGreaterThan(5);
    expect(survived).toBeGreaterThan(5);

    // After the storm, a fresh client is served normally.
    const fresh = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'app', database: 'app' });
    await fresh.connect();
    expect((await fresh.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await fresh.end();
  });
});
