import { md5PasswordResponse, ScramClient } from '../../src/session/auth/scram.js';
import { decodeBackend } from '../../src/wire/backend.js';
import { Frontend } from '../../src/wire/codes.js';
import * as w from '../../src/wire/writers.js';
import { describeError, isFatal, RawClient } from './raw-client.js';

/**
 * Raw protocol pipelining for the compatibility tests: a whole conversation of extended-protocol
 * batches (many Parse/Bind/Execute before one Sync, errors that make the server skip to Sync,
 * row-limited Execute, Flush), simple queries with several statements, COPY both ways, sent in
 * one write (or in tiny pieces), and the server's answer captured byte for byte.
 */

const INT4 = 23;

/** The frames of the conversation, in order. */
export function pipelineFrames(): Buffer[] {
  const frames: Buffer[] = [];
  // Batch 1: 50 statements, one Sync; number 25 divides by zero (when Bind plans it with its
  // parameter), the rest is skipped up to the Sync.
  for (let i = 0; i < 50; i++) {
    if (i === 25) {
      frames.push(w.parse('', 'select 1/($1::int - 25) as boom'), w.bind('', '', ['25']), w.describe('P', ''), w.execute('', 0));
      continue;
    }
    frames.push(
      w.parse('', 'select $1::int + 1 as n, repeat($2::text, 3) as r'),
      w.bind('', '', [String(i), 'ab✓'], [], [i % 2]),
      w.describe('P', ''),
      w.execute('', 0),
    );
  }
  frames.push(w.sync());
  // Batch 2: a named statement with a declared parameter type; a portal read 2 rows at a time.
  frames.push(
    w.parse('s_named', 'select g, md5(g::text) as h from generate_series(1, $1) g', [INT4]),
    w.describe('S', 's_named'),
    w.bind('p1', 's_named', ['5']),
    w.execute('p1', 2),
    w.execute('p1', 2),
    w.execute('p1', 2),
    w.close('P', 'p1'),
    w.bind('', 's_named', [Buffer.from([0, 0, 0, 3])], [1], [1]),
    w.execute('', 0),
    w.close('S', 's_named'),
    w.sync(),
  );
  // Batch 3: a syntax error at Parse; Bind and Execute are skipped.
  frames.push(w.parse('', 'selec 1'), w.bind('', '', []), w.execute('', 0), w.sync());
  // Batch 4: Flush before Sync, an empty query.
  frames.push(w.parse('', 'select 42 as answer'), w.bind('', '', []), w.execute('', 0), w.flush(), w.parse('', ''), w.bind('', '', []), w.execute('', 0), w.sync());
  // Simple queries: ParameterStatus; several statements with a notice and an error mid-way.
  frames.push(w.query("set application_name = 'pipe ✓'"));
  frames.push(w.query("do $$ begin raise notice 'pipelined %', 1; end $$; select 1/0; select 2"));
  // A failed transaction block: 25P02, then ROLLBACK.
  frames.push(w.query('begin; select 1/0'), w.query('select 1'), w.query('rollback'));
  // Extended protocol inside a transaction: an error, then skipped to Sync, then rollback.
  frames.push(w.query('begin'), w.parse('', "select 'x'::int"), w.bind('', '', []), w.execute('', 0), w.sync(), w.query('rollback'));
  // COPY out, and COPY in with the data sent before the server asked for it.
  frames.push(w.query('copy (select g, g * 2 from generate_series(1, 1000) g) to stdout'));
  frames.push(w.query('create temp table pipe_t (a int, b text)'), w.query('copy pipe_t from stdin'));
  frames.push(w.copyData(Buffer.from('1\tx\n2\tÿ ✓\n')), w.copyData(Buffer.from('3\t\\N\n')), w.copyDone());
  frames.push(w.query('copy pipe_t from stdin'), w.copyData(Buffer.from('4\tfine\nnope\tbad\n')), w.copyDone());
  frames.push(w.query("select a * 1 as a, b || '' as b from pipe_t order by a"));
  return frames;
}

/** ReadyForQuery messages the conversation ends with: one per Query and per Sync. */
export function expectedReadyCount(frames: readonly Buffer[]): number {
  return frames.filter((f) => f[0] === Frontend.Query || f[0] === Frontend.Sync).length;
}

/** Startup and authentication as a client would answer (trust, cleartext, MD5, SCRAM-SHA-256), until ReadyForQuery. */
export async function rawLogin(port: number, user: string, password: string, database: string): Promise<RawClient> {
  const client = await RawClient.connect(port);
  client.send(w.startupMessage({ user, database }));
  let scram: ScramClient | null = null;
  let seen = 0;
  for (;;) {
    await client.waitFor((_f) => client.frames.length > seen, 10_000);
    if (client.frames.length <= seen) throw new Error('the connection closed during login');
    const frame = client.frames[seen++]!;
    if (isFatal(frame)) throw new Error(`login failed: ${describeError(frame)}`);
    if (frame.code === 0x5a) break; // ReadyForQuery
    if (frame.code !== 0x52) continue; // ParameterStatus, BackendKeyData, NoticeResponse
    const message = decodeBackend(frame.code, frame.bytes, 0, frame.bytes.length);
    switch (message.type) {
      case 'AuthenticationOk':
        break;
      case 'AuthenticationCleartextPassword':
        client.send(w.passwordMessage(password));
        break;
      case 'AuthenticationMD5Password':
        client.send(w.passwordMessage(md5PasswordResponse(user, password, message.salt)));
        break;
      case 'AuthenticationSASL':
        scram = new ScramClient(password);
        client.send(w.saslInitialResponse(ScramClient.pick(message.mechanisms) ?? 'SCRAM-SHA-256', scram.clientFirst()));
        break;
      case 'AuthenticationSASLContinue':
        client.send(w.saslResponse(scram!.clientFinal(message.data)));
        break;
      case 'AuthenticationSASLFinal':
        scram!.verifyServerFinal(message.data);
        break;
      default:
        throw new Error(`unexpected authentication request ${message.type}`);
    }
  }
  client.frames.length = 0;
  return client;
}

export interface PipelineAnswer {
  /** Every byte the server sent after the login's ReadyForQuery, up to the last expected ReadyForQuery. */
  bytes: Buffer;
  /** Frame type letters, for readable assertions. */
  codes: string;
}

/**
 * Logs in, sends the conversation (in one write, or in `pieceSize`-byte writes yielding between
 * them), and collects the answer until every ReadyForQuery has arrived.
 */
export async function runPipeline(port: number, login: { user: string; password: string; database: string }, pieceSize?: number): Promise<PipelineAnswer> {
  const client = await rawLogin(port, login.user, login.password, login.database);
  try {
    const frames = pipelineFrames();
    const all = Buffer.concat(frames);
    if (pieceSize === undefined) client.send(all);
    else
      for (let i = 0; i < all.length; i += pieceSize) {
        client.send(all.subarray(i, i + pieceSize));
        await new Promise((resolve) => setImmediate(resolve));
      }
    const expected = expectedReadyCount(frames);
    let ready = 0;
    await client.waitFor((f) => f.code === 0x5a && ++ready === expected, 30_000);
    if (client.invalid !== null) throw client.invalid;
    const got = client.frames.slice(0, client.frames.findLastIndex((f) => f.code === 0x5a) + 1);
    return { bytes: Buffer.concat(got.map((f) => f.bytes)), codes: got.map((f) => String.fromCharCode(f.code)).join('') };
  } finally {
    client.send(w.terminate());
    client.close();
  }
}
