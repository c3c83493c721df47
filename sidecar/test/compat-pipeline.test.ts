import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../e2e/harness/index.js';
import { decodeBackend } from '../src/wire/backend.js';
import { AUTH_METHODS, WRONG_PASSWORD, startCellSidecar, type SidecarCell } from './support/compat.js';
import { runPipeline, type PipelineAnswer } from './support/pipeline.js';
import type { RunningSidecar } from './support/sidecar.js';

// A raw pipelined conversation (50 Parse/Bind/Describe/Execute before one Sync with an error
// mid-way, row-limited portals, Flush, multi-statement simple queries, COPY in and out) gets
// byte for byte the same answer through the sidecar as directly, whether it arrives in one write
// or in 7-byte pieces. Everything after the login's ReadyForQuery is compared; BackendKeyData
// (before it) differs by design.

/** Splits an answer into frames: [type letter, frame bytes]. */
function frames(answer: PipelineAnswer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (let pos = 0; pos < answer.bytes.length; ) {
    const length = answer.bytes.readUInt32BE(pos + 1);
    out.push([String.fromCharCode(answer.bytes[pos]!), answer.bytes.subarray(pos, pos + 1 + length)]);
    pos += 1 + length;
  }
  return out;
}

function sqlstatesOf(answer: PipelineAnswer): string[] {
  return frames(answer)
    .filter(([code]) => code === 'E')
    .map(([, bytes]) => {
      const message = decodeBackend(0x45, bytes, 0, bytes.length);
      return message.type === 'ErrorResponse' ? (message.fields.get('C') ?? '') : '';
    });
}

/** Absolute facts about the answer, so that equality cannot hold vacuously. */
function checkAnswer(answer: PipelineAnswer): void {
  const copyOut = 'H' + 'd'.repeat(1000) + 'cCZ';
  expect(answer.codes).toBe(
    [
      '12TDC'.repeat(25) + '1EZ', // batch 1: 25 statements, then the error at Bind, skipped to Sync
      '1tT2DDsDDsDC32DDDC3Z', // named statement, portal read 2 rows at a time, binary Bind
      'EZ', // syntax error at Parse
      '12DC12IZ', // Flush, then an empty query
      'CSZ', // SET application_name: ParameterStatus
      'NCEZ', // notice, DO, division by zero; select 2 never runs
      'CEZ', 'EZ', 'CZ', // failed transaction block: 25P02, ROLLBACK
      'CZ', 'EZ', 'CZ', // extended protocol error inside a transaction
      copyOut,
      'CZ', 'GCZ', 'GEZ', // COPY in before the server asked; a bad row fails the second COPY
      'TDDDCZ', // three rows copied in
    ].join(''),
  );
  expect(sqlstatesOf(answer)).toEqual(['22012', '42601', '22012', '22012', '25P02', '22P02', '22P02']);
}

describe.each(AUTH_METHODS)('auth %s', (auth) => {
  let db: PgCluster;
  let direct: PipelineAnswer;
  const sidecars = new Map<string, RunningSidecar>();
  const cells: readonly SidecarCell[] = [
    { mode: 'pass-through', upstreamTls: false },
    { mode: 'inject', upstreamTls: true },
  ];

  beforeAll(async () => {
    db = await startPostgres({ auth, tls: true, certNames: ['sidecar'] });
    for (const cell of cells) sidecars.set(cell.mode, await startCellSidecar(db, cell));
  });
  afterAll(async () => {
    await Promise.all([...sidecars.values()].map((s) => s.stop()));
    await db?.stop();
  });

  it('directly: the expected answer', async () => {
    direct = await runPipeline(db.port, { user: 'app', password: db.app.password, database: 'app' });
    checkAnswer(direct);
    // The same conversation in 7-byte pieces gets the same answer.
    expect((await runPipeline(db.port, { user: 'app', password: db.app.password, database: 'app' }, 7)).bytes.equals(direct.bytes)).toBe(true);
  });

  it.each(cells.map((cell) => [`${cell.mode} / upstream ${cell.upstreamTls ? 'tls' : 'plain'}`, cell] as const))(
    'through the sidecar (%s): byte-identical, in one write and in 7-byte pieces',
    async (_label, cell: SidecarCell) => {
      expect(direct, 'the direct answer').toBeDefined();
      const sidecar = sidecars.get(cell.mode)!;
      const password = cell.mode === 'inject' ? WRONG_PASSWORD : db.app.password;
      const whole = await runPipeline(sidecar.port, { user: 'app', password, database: 'app' });
      expect(frames(whole)).toEqual(frames(direct));
      expect(whole.bytes.equals(direct.bytes)).toBe(true);
      const pieces = await runPipeline(sidecar.port, { user: 'app', password, database: 'app' }, 7);
      expect(frames(pieces)).toEqual(frames(direct));
    },
  );
});
