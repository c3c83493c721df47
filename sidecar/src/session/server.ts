import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { listenTcp } from '../util/listen.js';
import { Session, type SessionContext } from './session.js';

/**
 * The listener: accepts clients, starts a {@link Session} for each, and shuts down gracefully:
 * stop accepting, let in-flight statements and open transactions finish until the deadline,
 * then close what remains.
 */
export class ProxyServer {
  private readonly server: Server;
  private readonly sessions = new Set<Session>();
  private closing: Promise<void> | null = null;

  constructor(
    private readonly ctx: SessionContext,
    private readonly log: Logger,
  ) {
    this.server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    this.server.on('error', (error) => this.log.error({ err: error.message }, 'listener error'));
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenTcp(this.server, host, port, 'the listener');
  }


  get connections(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const session = new Session(socket, this.ctx);
    this.sessions.add(session);
    session.onClosed(() => this.sessions.delete(session));
  }

  /** Graceful shutdown; resolves when every session has closed. */
  shutdown(deadlineMs: number): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      this.server.close();
      this.log.info({ sessions: this.sessions.size, deadlineMs }, 'draining');
      for (const session of this.sessions) session.drain();
      const timer = setTimeout(() => {
        if (this.sessions.size > 0) this.log.warn({ sessions: this.sessions.size }, 'drain deadline reached; closing sessions');
        for (const session of this.sessions) session.forceClose();
      }, deadlineMs);
      const poll = setInterval(() => {
        if (this.sessions.size === 0) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    return this.closing;
  }
}
