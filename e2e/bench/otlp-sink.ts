// A discarding OTLP/HTTP trace receiver for the benchmark: it stands for a collector on another
// machine. It answers every POST /v1/traces with 200 after reading the body and counting its spans
// (walking only the protobuf envelope: ResourceSpans > ScopeSpans > spans), so the benchmark can
// check that the spans arrived, and it costs the benchmark's two cores almost nothing, unlike a
// Jaeger that stores and indexes every span (the benchmark reports this process's CPU too).
//
//   node --import tsx e2e/bench/otlp-sink.ts            prints `listening <port>`, then serves
//   GET /stats                                           {"requests":n,"spans":n,"bytes":n,"malformed":n}
import { createServer } from 'node:http';

interface SinkStats {
  requests: number;
  spans: number;
  bytes: number;
  malformed: number;
}

/** The number of spans in an ExportTraceServiceRequest, or -1 when the envelope is malformed. */
export function countSpans(buf: Buffer): number {
  let spans = 0;
  const walk = (start: number, end: number, depth: number): boolean => {
    let i = start;
    while (i < end) {
      let tag = 0;
      let shift = 0;
      for (;;) {
        if (i >= end) return false;
        const b = buf[i++]!;
        tag += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
      }
      const wire = tag & 7;
      const field = Math.floor(tag / 8);
      if (wire === 0) {
        while (i < end && (buf[i]! & 0x80) !== 0) i++;
        i++;
      } else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        let len = 0;
        shift = 0;
        for (;;) {
          if (i >= end) return false;
          const b = buf[i++]!;
          len += (b & 0x7f) * 2 ** shift;
          if ((b & 0x80) === 0) break;
          shift += 7;
        }
        if (i + len > end) return false;
        // depth 0: ExportTraceServiceRequest.resource_spans (1); 1: ResourceSpans.scope_spans (2);
        // 2: ScopeSpans.spans (2).
        if (depth === 0 && field === 1) {
          if (!walk(i, i + len, 1)) return false;
        } else if (depth === 1 && field === 2) {
          if (!walk(i, i + len, 2)) return false;
        } else if (depth === 2 && field === 2) spans++;
        i += len;
      } else return false;
    }
    return i === end;
  };
  return walk(0, buf.length, 0) ? spans : -1;
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
