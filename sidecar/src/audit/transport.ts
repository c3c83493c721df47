import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import type { ExportConfig } from './config.js';

/** Sends one encoded ExportTraceServiceRequest to the collector. */
export interface TraceTransport {
  send(body: Buffer, timeoutMs: number): Promise<void>;
  close(): void;
}

/** The collector did not take a batch (unreachable, refused, timed out, or answered an error). */
export class ExportError extends Error {
  override readonly name = 'ExportError';
}

const GRPC_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export function createTransport(config: ExportConfig): TraceTransport {
  return config.protocol === 'grpc' ? grpcTransport(config) : httpTransport(config);
}

/** OTLP/HTTP with protobuf bodies: POST {endpoint}/v1/traces, one keep-alive connection. */
function httpTransport(config: ExportConfig): TraceTransport {
  const url = new URL(config.tracesTarget);
  const secure = url.protocol === 'https:';
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const request = secure ? httpsRequest : httpRequest;
  return {
    send: (body, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => req.destroy(new ExportError(`no answer within ${timeoutMs} ms`)), timeoutMs);
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: { ...config.headers, 'content-type': 'application/x-protobuf', 'content-length': body.length },
          },
          (res) => {
            res.resume();
            res.on('error', (cause) => {
              clearTimeout(timer);
              reject(new ExportError(`reading the answer failed: ${cause.message}`, { cause }));
            });
            res.on('end', () => {
              clearTimeout(timer);
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) resolve();
              else reject(new ExportError(`collector answered HTTP ${status}`));
            });
          },
        );
        req.on('error', (cause: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(cause instanceof ExportError ? cause : new ExportError(cause.code ?? cause.message, { cause }));
        });
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/** OTLP/gRPC: the TraceService/Export unary call with the request bytes as they are. */
function grpcTransport(config: ExportConfig): TraceTransport {
  const client = new Client(config.tracesTarget, config.secure ? credentials.createSsl() : credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  return {
    send: (body, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const metadata = new Metadata();
        for (const [key, value] of Object.entries(config.headers)) metadata.set(key.toLowerCase(), value);
        client.makeUnaryRequest(GRPC_EXPORT, identity, identity, body, metadata, { deadline: Date.now() + timeoutMs }, (error) => {
          if (error === null) resolve();
          else reject(new ExportError(`gRPC ${error.code} ${error.details}`, { cause: error }));
        });
      }),
    close: () => client.close(),
  };
}
