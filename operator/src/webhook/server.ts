import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../controller/controller.js';
import type { CertManager } from '../tls/manager.js';
import { admit, AdmissionError, type AdmissionContext } from './admission.js';

/**
 * The HTTPS endpoint the API server calls: POST /mutate-pods (AdmissionReview v1), plus GET /healthz
 * and /readyz for the kubelet. TLS comes from the CertManager and follows its rotations.
 */

export interface WebhookServerOptions {
  host?: string;
  port: number;
  certs: CertManager;
  context: AdmissionContext;
  log: Logger;
  /** Ready when this returns true (informers synced). */
  ready?: () => boolean;
}

export interface WebhookServer {
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

const MAX_BODY = 8 * 1024 * 1024;

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { certs, log } = options;
  const initial = certs.current();
  const server = createServer({ cert: initial.cert, key: initial.key, minVersion: 'TLSv1.2' }, (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = new URL(req.url ?? '/', 'https://webhook').pathname;
    if (req.method === 'GET' && path === '/healthz') return send(200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') return options.ready?.() === false ? send(503, { status: 'not ready' }) : send(200, { status: 'ready' });
    if (req.method !== 'POST' || path !== '/mutate-pods') return send(404, { error: 'not found' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(400, { error: 'body is not JSON' });
      }
      try {
        const { review, reasons, injected } = admit(body, options.context);
        const r = (body as { request?: { namespace?: string; object?: { metadata?: { name?: string; generateName?: string } } } }).request;
        log.info({ namespace: r?.namespace, pod: r?.object?.metadata?.name ?? r?.object?.metadata?.generateName, injected, reasons }, 'admission');
        send(200, review);
      } catch (error) {
        if (error instanceof AdmissionError) return send(400, { error: error.message });
        log.error({ err: error }, 'admission failed');
        send(500, { error: 'internal error' });
      }
    });
  });
  const off = certs.onRotate((c) => {
    server.setSecureContext({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2' });
    log.info({ notAfter: c.notAfter.toISOString() }, 'webhook serving certificate rotated');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        off();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
