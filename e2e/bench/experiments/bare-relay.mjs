// The cheapest possible Node relay between a PostgreSQL client and server: no framing, no logic.
// It measures Node's own per-transaction floor (2 reads + 2 writes) for comparison with the sidecar
// and pgbouncer; see docs/adr/0010-node-data-plane-floor.md.
//
//   node e2e/bench/experiments/bare-relay.mjs data|onread <upstream-port> <listen-port>
//   pgbench -S -M prepared -c 8 -j 2 -T 5 -h 127.0.0.1 -p <listen-port> ...   (and read the relay's CPU time)
import { Buffer } from 'node:buffer';
import net from 'node:net';
const mode = process.argv[2]; const up = Number(process.argv[3]); const port = Number(process.argv[4]);
const server = net.createServer({ noDelay: true, pauseOnConnect: mode === 'onread' }, (raw) => {
  let client;
  const upstream = net.connect({ host: '127.0.0.1', port: up, noDelay: true, onread: { buffer: Buffer.alloc(65536), callback: (n, b) => { client.write(Buffer.from(b.subarray(0, n))); return true; } } });
  if (mode === 'onread') {
    const handle = raw._handle; raw._handle = null;
    client = new net.Socket({ handle, readable: true, writable: true, onread: { buffer: Buffer.alloc(65536), callback: (n, b) => { upstream.write(Buffer.from(b.subarray(0, n))); return true; } } });
    raw.destroy();
  } else {
    client = raw;
    client.on('data', (c) => upstream.write(c));
  }
  client.setNoDelay(true);
  client.on('error', () => upstream.destroy()); upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy()); upstream.on('close', () => client.destroy());
});
server.listen(port, '127.0.0.1');
