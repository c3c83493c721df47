/**
 * Simulated sidecars for the control-plane scale test: one process, many real grpc-js streams
 * (each on its own channel and TCP connection, as real sidecars are), each subscribing with its
 * own token, ACKing every snapshot on receipt. No policy compilation: this measures delivery.
 *
 * Input (env): CP_TARGET host:port, CP_TOKENS a JSON file [{ token, pod }], CP_CA (PEM file, optional).
 * Protocol (JSON lines): prints {"type":"ready", connectMs:[...]} once every stream has its first
 * snapshot; on stdin "arm\n" it prints {"type":"armed"}, then {"type":"updated", at:[...]} once
 * every stream has received a snapshot since (at: epoch ms with fractions, per stream).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Client, credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, controlPlaneService, SUBSCRIBE_PATH, type DecodedControlPlaneMessage, type SidecarMessage } from '@dbward/sidecar/controlplane';

const now = (): number => performance.timeOrigin + performance.now();
const target = process.env.CP_TARGET ?? '';
const tokens = JSON.parse(readFileSync(process.env.CP_TOKENS ?? '', 'utf8')) as Array<{ token: string; pod: string }>;
const creds = process.env.CP_CA ? credentials.createSsl(readFileSync(process.env.CP_CA)) : credentials.createInsecure();
const method = controlPlaneService().Subscribe;

interface Sim {
  client: Client;
  stream: ClientDuplexStream<SidecarMessage, DecodedControlPlaneMessage>;
  startedAt: number;
  firstAt: number | undefined;
  lastAt: number;
  errors: number;
}

const sims: Sim[] = [];
let armed = false;
let pendingArmed = 0;
let ready = 0;

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function open(index: number): void {
  const { token, pod } = tokens[index]!;
  const client = new Client(target, creds, { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const stream = client.makeBidiStreamRequest(SUBSCRIBE_PATH, method.requestSerialize, method.responseDeserialize as (b: Buffer) => DecodedControlPlaneMessage, metadata, {});
  const sim: Sim = { client, stream, startedAt: now(), firstAt: undefined, lastAt: 0, errors: 0 };
  sims[index] = sim;
  stream.on('data', (message: DecodedControlPlaneMessage) => {
    if (message.message !== 'snapshot' || message.snapshot === undefined) return;
    const at = now();
    stream.write({ ack: { version: message.snapshot.version } });
    if (sim.firstAt === undefined) {
      sim.firstAt = at;
      if (++ready === tokens.length) emit({ type: 'ready', connectMs: sims.map((s) => s.firstAt! - s.startedAt) });
    } else if (armed && sim.lastAt === 0) {
      sim.lastAt = at;
      if (--pendingArmed === 0) {
        armed = false;
        emit({ type: 'updated', at: sims.map((s) => s.lastAt) });
      }
    }
  });
  stream.on('error', (error: Error) => {
    sim.errors++;
    emit({ type: 'error', pod, error: error.message });
  });
  stream.write({ hello: { sidecarVersion: 'scale-sim', pod, namespace: '', node: '' } });
}

// Open in slices, one per turn of the event loop, so the first streams' snapshots are not stuck
// behind a thousand synchronous connects.
let next = 0;
function openSome(): void {
  for (let i = 0; i < 50 && next < tokens.length; i++) open(next++);
  if (next < tokens.length) setImmediate(openSome);
}
openSome();

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'arm') {
    for (const sim of sims) sim.lastAt = 0;
    pendingArmed = sims.length;
    armed = true;
    emit({ type: 'armed' });
  } else if (line.trim() === 'quit') {
    for (const sim of sims) {
      sim.stream.cancel();
      sim.client.close();
    }
    process.exit(0);
  }
});
