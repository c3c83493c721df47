// A PostgreSQL relay with no framing or logic, with its socket I/O done either by Node or by the
// C addon sidecar/native/fdio.c (`make native`); see docs/adr/0010-node-data-plane-floor.md,
// "Native I/O experiment". Modes:
//   data         Node sockets, 'data' events (the bare Node relay of ADR 0010's first table)
//   onread       Node sockets, the onread option (one reused buffer per leg)
//   c-splice     fdio.splice(): both directions forwarded in C, no JavaScript per message
//   js-callback  fdio.open() on both legs, JS forwards each chunk with fdio.write();
//                callbacks through napi_make_callback (microtasks + nextTick after each)
//   js-call      the same with napi_call_function in a handle scope (no microtask checkpoint)
//   js-batch     napi_call_function per event, nextTick + microtasks once per loop iteration
//
//   node e2e/bench/experiments/native-relay.mjs <mode> <upstream-port> <listen-port>
// Prints "listening" once the port is open.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import net from 'node:net';

const [mode, upArg, portArg] = process.argv.slice(2);
const up = Number(upArg);
const port = Number(portArg);
const modes = ['data', 'onread', 'c-splice', 'js-callback', 'js-call', 'js-batch'];
if (!modes.includes(mode) || !Number.isInteger(up) || !Number.isInteger(port)) {
  process.stderr.write(`usage: native-relay.mjs ${modes.join('|')} <upstream-port> <listen-port>\n`);
  process.exit(2);
}
const native = mode === 'c-splice' || mode.startsWith('js-');
const fdio = native ? createRequire(import.meta.url)('../../../sidecar/native/build/fdio.node') : undefined;
if (mode === 'js-call') fdio.setCallMode(1);
if (mode === 'js-batch') fdio.setCallMode(2);

function nodeRelay(raw) {
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
}

function nativeRelay(raw) {
  const upstream = net.connect({ host: '127.0.0.1', port: up, noDelay: true });
  upstream.on('error', () => { upstream.destroy(); raw.destroy(); });
  upstream.once('connect', () => {
    const a = raw._handle.fd; const b = upstream._handle.fd;
    if (mode === 'c-splice') {
      fdio.splice(a, b, () => {});
    } else {
      let hc, hu;
      const closeBoth = () => { fdio.close(hc); fdio.close(hu); };
      // Backpressure: a leg whose peer has a write backlog stops reading until it drains.
      hc = fdio.open(a, (buf, n) => { if (!fdio.write(hu, buf, n)) fdio.pause(hc); }, closeBoth, () => fdio.resume(hu));
      hu = fdio.open(b, (buf, n) => { if (!fdio.write(hc, buf, n)) fdio.pause(hu); }, closeBoth, () => fdio.resume(hc));
    }
    raw.destroy(); upstream.destroy();
  });
}

const server = net.createServer({ noDelay: true, pauseOnConnect: mode !== 'data' }, native ? nativeRelay : nodeRelay);
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
