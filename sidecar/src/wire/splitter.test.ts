import { describe, expect, it } from 'vitest';
import { decodeBackend } from './backend.js';
import { encodeBackend, encodeFrontend } from './encode.js';
import { FrameTooLarge, ProtocolViolation } from './errors.js';
import { backendFixtures, decodeFrontendAs, frontendFixtures, patternBytes, startupFixtures } from './fixtures.js';
import type { BackendMessage } from './messages.js';
import { FrameSplitter, type FrameHandler } from './splitter.js';
import * as w from './writers.js';
import { prng as rng } from '../../test/support/prng.js';


interface Expected {
  frame: Buffer;
  code: number;
  message: unknown;
  decode: (code: number, buf: Buffer, start: number, end: number) => unknown;
}

const startup = startupFixtures[1]!; // StartupMessage 3.2
const frontendExpected: Expected[] = [
  {
    frame: encodeFrontend(startup.message),
    code: 0,
    message: startup.message,
    decode: (code, buf, start, end) => decodeFrontendAs(startup.message.type, code, buf, start, end),
  },
  ...frontendFixtures.map((f) => {
    const frame = encodeFrontend(f.message);
    return {
      frame,
      code: frame[0]!,
      message: f.message,
      decode: (code: number, buf: Buffer, start: number, end: number) => decodeFrontendAs(f.message.type, code, buf, start, end),
    };
  }),
];
const backendExpected: Expected[] = backendFixtures.map((f) => {
  const frame = encodeBackend(f.message);
  return { frame, code: frame[0]!, message: f.message, decode: decodeBackend };
});

/** Pushes the chunks and returns, per frame, its code, a copy of its bytes and its decoded message. */
function run(chunks: Buffer[], expected: Expected[], options: { untyped: boolean }) {
  const splitter = new FrameSplitter({ maxFrameLength: 1 << 20, untyped: options.untyped });
  const got: { code: number; bytes: Buffer; message: unknown }[] = [];
  const handler: FrameHandler = {
    onFrame(code, buf, start, end) {
      const i = got.length;
      const decode = expected[i]?.decode ?? decodeBackend;
      // Decode inside the callback, as the proxy will, before the buffer may be reused.
      got.push({ code, bytes: Buffer.from(buf.subarray(start, end)), message: decode(code, buf, start, end) });
    },
  };
  for (const c of chunks) splitter.push(c, handler);
  expect(splitter.hasPartial()).toBe(false);
  expect(splitter.bufferedBytes()).toBe(0);
  return got;
}

function check(chunks: Buffer[], expected: Expected[], untyped: boolean): void {
  const got = run(chunks, expected, { untyped });
  expect(got.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const g = got[i]!;
    if (g.code !== e.code || !g.bytes.equals(e.frame)) {
      throw new Error(`frame ${i}: got code ${g.code} ${g.bytes.toString('hex')}, expected ${e.code} ${e.frame.toString('hex')}`);
    }
    expect(g.message).toEqual(e.message);
  }
}

function randomCuts(stream: Buffer, random: () => number, maxCuts: number): Buffer[] {
  const n = 1 + Math.floor(random() * maxCuts);
  const cuts = new Set<number>();
  for (let i = 0; i < n; i++) cuts.add(Math.floor(random() * (stream.length + 1)));
  const sorted = [0, ...[...cuts].sort((a, b) => a - b), stream.length];
  const chunks: Buffer[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) chunks.push(stream.subarray(sorted[i], sorted[i + 1]));
  return chunks; // may contain empty chunks, which the splitter must accept
}

describe.each([
  ['frontend (untyped StartupMessage first)', frontendExpected, true],
  ['backend', backendExpected, false],
] as const)('FrameSplitter on a %s stream of every fixture', (_name, expected, untyped) => {
  const stream = Buffer.concat(expected.map((e) => e.frame));

  it('whole stream in one chunk: frames are views of the chunk (zero-copy)', () => {
    const views: boolean[] = [];
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 20, untyped });
    splitter.push(stream, {
      onFrame(_code, buf) {
        views.push(buf === stream);
      },
    });
    expect(views.length).toBe(expected.length);
    // Only the untyped startup frame goes through the copying slow path.
    expect(views.filter((v) => !v).length).toBe(untyped ? 1 : 0);
    check([stream], expected, untyped);
  });

  it('split in two at every byte offset', () => {
    for (let i = 0; i <= stream.length; i++) check([stream.subarray(0, i), stream.subarray(i)], expected, untyped);
  });

  it('fed one byte at a time', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
    check(chunks, expected, untyped);
  });

  it('cut at 300 random sets of offsets', () => {
    const random = rng(untyped ? 1 : 2);
    for (let k = 0; k < 300; k++) check(randomCuts(stream, random, 40), expected, untyped);
  });
});

describe('FrameSplitter stop() and takeRemainder()', () => {
  const tls = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), patternBytes(300, 5)]);

  it('after an SSLRequest, returns exactly the bytes that followed, at every split offset', () => {
    const stream = Buffer.concat([w.sslRequest(), tls]);
    for (let i = 0; i <= stream.length; i++) {
      const splitter = new FrameSplitter({ maxFrameLength: 10000, untyped: true });
      const frames: Buffer[] = [];
      const handler: FrameHandler = {
        onFrame(code, buf, start, end) {
          expect(code).toBe(0);
          frames.push(Buffer.from(buf.subarray(start, end)));
          splitter.stop();
        },
      };
      let rest: Buffer = Buffer.alloc(0);
      for (const chunk of [stream.subarray(0, i), stream.subarray(i)]) {
        if (frames.length === 0) {
          splitter.push(chunk, handler);
          if (frames.length > 0) rest = splitter.takeRemainder();
        } else {
          rest = Buffer.concat([rest, chunk]); // the stream now belongs to the TLS handshake
        }
      }
      expect(frames).toEqual([w.sslRequest()]);
      expect(rest.toString('hex')).toBe(tls.toString('hex'));
      expect(splitter.takeRemainder().length).toBe(0);
    }
  });

  it('stops after a typed frame in the middle of a chunk, and refuses further bytes', () => {
    const stream = Buffer.concat([w.query('a'), w.sync(), w.query('b')]);
    const splitter = new FrameSplitter({ maxFrameLength: 100 });
    const codes: number[] = [];
    splitter.push(stream, {
      onFrame(code) {
        codes.push(code);
        if (codes.length === 2) splitter.stop();
      },
    });
    expect(codes).toEqual([0x51, 0x53]);
    expect(splitter.takeRemainder()).toEqual(w.query('b'));
    expect(() => splitter.push(w.sync(), { onFrame() {} })).toThrow(ProtocolViolation);
  });

  it('after SSLRequest refused (N), expectUntyped() reads the StartupMessage and then typed frames', () => {
    const startupFrame = encodeFrontend(startupFixtures[0]!.message);
    const stream = Buffer.concat([w.sslRequest(), startupFrame, w.query('SELECT 1'), w.terminate()]);
    for (let i = 0; i <= stream.length; i++) {
      const splitter = new FrameSplitter({ maxFrameLength: 10000, untyped: true });
      const seen: [number, string][] = [];
      const handler: FrameHandler = {
        onFrame(code, buf, start, end) {
          seen.push([code, buf.toString('hex', start, end)]);
          if (seen.length === 1) splitter.expectUntyped();
        },
      };
      splitter.push(stream.subarray(0, i), handler);
      splitter.push(stream.subarray(i), handler);
      expect(seen).toEqual([
        [0, w.sslRequest().toString('hex')],
        [0, startupFrame.toString('hex')],
        [0x51, w.query('SELECT 1').toString('hex')],
        [0x58, w.terminate().toString('hex')],
      ]);
    }
  });

  it('expectUntyped() while part of a frame is held is a protocol violation', () => {
    const splitter = new FrameSplitter({ maxFrameLength: 100 });
    splitter.push(w.query('abc').subarray(0, 3), { onFrame() {} });
    expect(splitter.hasPartial()).toBe(true);
    expect(splitter.bufferedBytes()).toBe(3);
    expect(() => splitter.expectUntyped()).toThrow(/before the startup packet was answered/);
  });
});

describe('FrameSplitter streaming of oversized frames', () => {
  const big = w.dataRow([patternBytes(3000, 3), null, 'tail']);
  const before = w.rowDescription([]);
  const after = w.commandComplete('SELECT 1');
  const stream = Buffer.concat([before, big, after]);
  const threshold = 1024;

  type Event = { kind: 'frame'; bytes: Buffer } | { kind: 'piece'; bytes: Buffer; last: boolean };

  function feed(chunks: Buffer[], stream_: boolean, onLastPiece?: (s: FrameSplitter) => void) {
    const splitter = new FrameSplitter({ maxFrameLength: 1 << 20, streamThreshold: threshold });
    const events: Event[] = [];
    const asked: [number, number][] = [];
    const handler: FrameHandler = {
      onFrame(_code, buf, start, end) {
        events.push({ kind: 'frame', bytes: Buffer.from(buf.subarray(start, end)) });
      },
      streamFrame(code, length) {
        asked.push([code, length]);
        return stream_;
      },
      onFramePiece(buf, start, end, last) {
        events.push({ kind: 'piece', bytes: Buffer.from(buf.subarray(start, end)), last });
        if (last) onLastPiece?.(splitter);
      },
    };
    const rest: Buffer[] = [];
    for (const c of chunks) {
      if (rest.length > 0) rest.push(c);
      else {
        splitter.push(c, handler);
        const r = splitter.takeRemainder();
        if (r.length > 0 || (onLastPiece !== undefined && events.some((e) => e.kind === 'piece' && e.last))) rest.push(r);
      }
    }
    return { events, asked, splitter, rest: Buffer.concat(rest) };
  }

  /** Reassembles the frames from whole frames and runs of pieces, checking piece invariants. */
  function reassemble(events: Event[]): Buffer[] {
    const frames: Buffer[] = [];
    let pieces: Buffer[] | null = null;
    for (const e of events) {
      if (e.kind === 'frame') {
        expect(pieces).toBeNull();
        frames.push(e.bytes);
        continue;
      }
      expect(e.bytes.length).toBeGreaterThan(0);
      if (pieces === null) {
        expect(e.bytes.length).toBeGreaterThanOrEqual(5); // the first piece holds the whole header
        pieces = [];
      }
      pieces.push(e.bytes);
      if (e.last) {
        frames.push(Buffer.concat(pieces));
        pieces = null;
      }
    }
    expect(pieces).toBeNull();
    return frames;
  }

  it('streamFrame true: pieces concatenate to the exact frame, at every split offset', () => {
    let streamed = 0;
    for (let i = 0; i <= stream.length; i++) {
      const { events, asked } = feed([stream.subarray(0, i), stream.subarray(i)], true);
      expect(reassemble(events)).toEqual([before, big, after]);
      const bigWhole = i <= before.length || i >= before.length + big.length;
      // Asked once, only when the big frame was not whole in one chunk; then it came in pieces.
      expect(asked).toEqual(bigWhole ? [] : [[0x44, big.length]]);
      expect(events.some((e) => e.kind === 'piece')).toBe(!bigWhole);
      if (!bigWhole) streamed++;
    }
    expect(streamed).toBe(big.length - 1);
  });

  it('streamFrame true: byte by byte, and at random cuts', () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
    const { events, asked } = feed(bytes, true);
    expect(reassemble(events)).toEqual([before, big, after]);
    expect(asked).toEqual([[0x44, big.length]]);
    expect(events.filter((e) => e.kind === 'piece').length).toBe(big.length - 4); // header piece + one per body byte
    const random = rng(3);
    for (let k = 0; k < 300; k++) expect(reassemble(feed(randomCuts(stream, random, 12), true).events)).toEqual([before, big, after]);
  });

  it('streamFrame false: the frame arrives whole through onFrame, at every split offset', () => {
    for (let i = 0; i <= stream.length; i++) {
      const { events, asked } = feed([stream.subarray(0, i), stream.subarray(i)], false);
      expect(events.every((e) => e.kind === 'frame')).toBe(true);
      expect(events.map((e) => e.bytes)).toEqual([before, big, after]);
      expect(asked.length).toBe(i > before.length && i < before.length + big.length ? 1 : 0);
    }
  });

  it('frames at or below the threshold are never offered for streaming', () => {
    const small = w.dataRow([patternBytes(threshold - 11, 1)]);
    expect(small.length).toBe(threshold);
    const { events, asked } = feed([small.subarray(0, 7), small.subarray(7)], true);
    expect(asked).toEqual([]);
    expect(events).toEqual([{ kind: 'frame', bytes: small }]);
  });

  it('stop() on the last piece keeps the bytes after the streamed frame', () => {
    for (const i of [before.length + 3, before.length + 5, before.length + 100, before.length + big.length - 1]) {
      const chunks = [stream.subarray(0, i), stream.subarray(i)];
      const { events, rest } = feed(chunks, true, (s) => s.stop());
      expect(reassemble(events)).toEqual([before, big]);
      expect(rest).toEqual(after);
    }
  });
});

describe('FrameSplitter rejects bad headers', () => {
  const noop: FrameHandler = { onFrame() {} };
  const cases: [string, Buffer, boolean, RegExp | typeof FrameTooLarge][] = [
    ['typed length 3', Buffer.from('5100000003', 'hex'), false, /invalid length 3/],
    ['typed length 0', Buffer.from('5300000000', 'hex'), false, /invalid length 0/],
    ['typed length above max', Buffer.from('44000003e9', 'hex'), false, FrameTooLarge],
    ['untyped length 3', Buffer.from('00000003', 'hex'), true, /invalid length 3/],
    ['untyped length above max', Buffer.from('000003e9', 'hex'), true, FrameTooLarge],
  ];
  it.each(cases)('%s, whole and split inside the header', (_name, bytes, untyped, error) => {
    expect(() => new FrameSplitter({ maxFrameLength: 1000, untyped }).push(bytes, noop)).toThrow(error);
    for (let i = 1; i < bytes.length; i++) {
      const s = new FrameSplitter({ maxFrameLength: 1000, untyped });
      s.push(bytes.subarray(0, i), noop);
      expect(() => s.push(bytes.subarray(i), noop)).toThrow(error);
    }
  });

  it('FrameTooLarge carries the code, the length and the limit', () => {
    const s = new FrameSplitter({ maxFrameLength: 1000 });
    let err: unknown;
    try {
      s.push(Buffer.concat([w.sync(), Buffer.from('44000003e9', 'hex')]), noop);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameTooLarge);
    expect(err).toMatchObject({ code: 0x44, length: 1002, max: 1000 });
  });

  it('accepts a frame of exactly the maximum length', () => {
    const frame = w.copyData(Buffer.alloc(995));
    expect(frame.length).toBe(1000);
    const frames: number[] = [];
    new FrameSplitter({ maxFrameLength: 1000 }).push(frame, { onFrame: (_c, _b, s, e) => frames.push(e - s) });
    expect(frames).toEqual([1000]);
  });
});

describe('decoded backend stream keeps its order', () => {
  it('decodes a realistic result stream split at random', () => {
    const messages: BackendMessage[] = [
      { type: 'RowDescription', fields: [{ name: 'a', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }] },
      ...Array.from({ length: 200 }, (_, i): BackendMessage => ({ type: 'DataRow', values: [Buffer.from(`row ${i} ü`)] })),
      { type: 'CommandComplete', tag: 'SELECT 200' },
      { type: 'ReadyForQuery', status: 'I' },
    ];
    const expected = messages.map((m) => {
      const frame = encodeBackend(m);
      return { frame, code: frame[0]!, message: m, decode: decodeBackend };
    });
    const stream = Buffer.concat(expected.map((e) => e.frame));
    const random = rng(4);
    for (let k = 0; k < 50; k++) check(randomCuts(stream, random, 100), expected, false);
  });
});
