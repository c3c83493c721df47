import { pino, type Logger as PinoLogger } from 'pino';

/** Structured JSON logs (one object per line on stdout). */
export type Logger = PinoLogger;

export function createLogger(level: 'debug' | 'info' | 'warn' | 'error', bindings: Record<string, string> = {}): Logger {
  return pino({ level, base: { component: 'dbward-sidecar', ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}
