import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

/** How the sidecar protects its connection to the upstream server (libpq's sslmode). */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export const SSL_MODES: readonly SslMode[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

export interface UpstreamTarget {
  host: string;
  port: number;
  /** Database to connect to; when absent the client's own choice is used. */
  database: string | undefined;
  /** With a password, the sidecar logs in itself (credential injection); else auth passes through. */
  credentials: { user: string; password: string } | undefined;
  /** User named in the URL without a password: used as the upstream user in pass-through too. */
  user: string | undefined;
  sslmode: SslMode;
  /** PEM file of trusted CAs for verify-ca / verify-full (libpq's sslrootcert). */
  sslrootcert: string | undefined;
  /** The URL with the password replaced by `***`, for logs. */
  redacted: string;
}

/**
 * Parses `postgres://[user[:password]@]host[:port][/db][?sslmode=...&sslrootcert=...]`.
 * Unknown query parameters are rejected so that a typo never silently weakens TLS.
 */
export function parseUpstreamUrl(raw: string, flag = '--upstream'): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new ConfigError(flag, `not a URL: expected postgres://[user[:password]@]host:port[/db]`, { cause });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(flag, `scheme must be postgres:// or postgresql://, got ${url.protocol}//`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new ConfigError(flag, 'host is missing');
  const port = url.port === '' ? 5432 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(flag, `invalid port ${url.port}`);
  const path = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (path.includes('/')) throw new ConfigError(flag, `invalid database name "${path}"`);
  const user = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  if (password !== undefined && user === undefined) throw new ConfigError(flag, 'a password needs a user');

  let sslmode: SslMode = 'prefer';
  let sslrootcert: string | undefined;
  for (const [key, value] of url.searchParams) {
    if (key === 'sslmode') {
      if (!(SSL_MODES as readonly string[]).includes(value)) {
        throw new ConfigError(flag, `sslmode must be one of ${SSL_MODES.join(', ')}, got "${value}"`);
      }
      sslmode = value as SslMode;
    } else if (key === 'sslrootcert') {
      sslrootcert = value;
    } else {
      throw new ConfigError(flag, `unsupported parameter "${key}" (supported: sslmode, sslrootcert)`);
    }
  }
  if (sslmode === 'verify-full' && isIP(host) === 0 && host.length === 0) {
    throw new ConfigError(flag, 'verify-full needs a host name to verify');
  }
  const shown = new URL(url.toString());
  if (shown.password !== '') shown.password = '***';
  return {
    host,
    port,
    database: path === '' ? undefined : path,
    credentials: user !== undefined && password !== undefined ? { user, password } : undefined,
    user,
    sslmode,
    sslrootcert,
    redacted: shown.toString(),
  };
}
