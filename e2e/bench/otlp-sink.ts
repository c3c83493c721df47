// A discarding OTLP/HTTP trace receiver for the benchmark: it stands for a collector on another
// machine. It answers every POST /v1/traces with 200 after reading the body and counting its spans
// (walking only the protobuf envelope: ResourceSpans > ScopeSpans > spans), so the benchmark can
// check that the spans arrived, and it costs the benchmark's two cores almost nothing, unlike a
// Jaeger that stores and indexes every span (the benchmark reports this process's CPU too).
//
//   node --import tsx e2e/bench/otlp-sink.ts            prints `listening <port>`, then serves
//   GET /stats                                           {"requests":n,"spans":n,"bytes":n,"malformed":n}
import { createServer } from 'node:http';
import { decodeFields, ProtoDecodeError, type ProtoField } from '../../sidecar/src/audit/otlp-decode.js';

interface SinkStats {
  requests: number;
  spans: number;
  bytes: number;
  malformed: number;
}

/**
 * The number of spans in an ExportTraceServiceRequest (resource_spans = 1 > scope_spans = 2 >
 * spans = 2; the spans themselves are not decoded), or -1 when the envelope is malformed.
 */
export function countSpans(buf: Buffer): number {
  const bodies = (fields: Map<number, ProtoField[]>, n: number): Buffer[] => (fields.get(n) ?? []).map((f) => f.value).filter((v): v is Buffer => Buffer.isBuffer(v));
  try {
    let spans = 0;
    for (const resourceSpans of bodies(decodeFields(buf), 1)) {
      for (const scopeSpans of bodies(decodeFields(resourceSpans), 2)) spans += bodies(decodeFields(scopeSpans), 2).length;
    }
    return spans;
  } catch (error) {
    if (error instanceof ProtoDecodeError) return -1;
    throw error;
  }
}

function main(): void {
  const stats: SinkStats = { requests: 0, spans: 0, bytes: 0, malformed: 0 };
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      stats.requests++;
      stats.bytes += body.length;
      const n = countSpans(body);
      if (n < 0) {
        stats.malformed++;
        res.writeHead(400).end();
        return;
      }
      stats.spans += n;
      // An empty ExportTraceServiceResponse.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    process.stdout.write(`listening ${address.port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
