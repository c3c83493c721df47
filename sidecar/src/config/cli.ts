import { accessSync, constants as fsConstants, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import { LabelsFileError, parseLabelsFile } from './labels-file.js';
import { parseUpstreamUrl, type UpstreamTarget } from './upstream-url.js';

/** Where the sidecar listens for clients. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Where the policy comes from when it is not a file: the gRPC control plane (docs/control-plane.md). */
export interface ControlPlaneConfig {
  /** `host:port` as given. */
  target: string;
  host: string;
  /** Projected service-account token, re-read on each connect. */
  tokenFile: string;
  /** PEM CA of the control plane's certificate; undefined: plaintext (loopback only). */
  ca: Buffer | undefined;
  /** Last-known-good snapshot directory; undefined: none. */
  cacheDir: string | undefined;
}

/** Everything `dbward-sidecar` was told, validated. */
export interface SidecarConfig {
  upstream: UpstreamTarget;
  listen: ListenAddress;
  policyFiles: string[];
  environment: string;
  /** --control-plane and its companions; exclusive with --policy. */
  controlPlane: ControlPlaneConfig | undefined;
  /** Workload identity given with --identity k=v (labels.x=y for labels) and --identity-labels-file. */
  identity: { fields: Record<string, string>; labels: Record<string, string> };
  otlpEndpoint: string | undefined;
  admin: ListenAddress | undefined;
  /** TLS offered to clients (answers SSLRequest with 'S'); absent: clients are told 'N'. */
  clientTls: { cert: Buffer; key: Buffer } | undefined;
  /** Upstream connect + TLS handshake deadline. */
  connectTimeoutMs: number;
  /** A client must complete startup and authentication within this time. */
  startupTimeoutMs: number;
  /** On SIGTERM, how long in-flight statements may run before connections are closed. */
  drainTimeoutMs: number;
  /** Largest message a client may send (header included). */
  maxClientMessageBytes: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Socket I/O of plain-TCP sessions through the C addon (docs/adr/0010, 0022): `auto` (default:
   * on Linux when the addon is built), `on` (--native-io: warn when it is not), `off` (--no-native-io).
   */
  nativeIo: NativeIoMode;
  /**
   * DBWARD_FAST_RELAY=off: pass-through sessions on the addon still give every message to the
   * session instead of letting the addon relay them (diagnostics, and the benchmark's baseline
   * for what a policy costs). Environment only.
   */
  fastRelay: boolean;
  /**
   * DBWARD_IO_URING=off: the addon makes one read() or write() per socket operation instead of
   * batching a loop iteration's operations into io_uring (docs/adr/0023). Environment only; the
   * ring is used only where the kernel allows it.
   */
  ioUring: boolean;
  /**
   * DBWARD_RELAY_THREAD=off: pass-through pairs stay on Node's loop instead of going to the addon's
   * relay thread (docs/adr/0024). Environment only; the thread needs io_uring and is not used
   * with DBWARD_IO_URING=off.
   */
  relayThread: boolean;
}

export type NativeIoMode = 'auto' | 'on' | 'off';

interface FlagSpec {
  env: string;
  multiple?: boolean;
}

/** Every flag reads an environment variable too (SPEC §2); flags win. */
const FLAGS = {
  upstream: { env: 'DBWARD_UPSTREAM' },
  policy: { env: 'DBWARD_POLICY', multiple: true },
  listen: { env: 'DBWARD_LISTEN' },
  environment: { env: 'DBWARD_ENVIRONMENT' },
  identity: { env: 'DBWARD_IDENTITY', multiple: true },
  'otlp-endpoint': { env: 'DBWARD_OTLP_ENDPOINT' },
  admin: { env: 'DBWARD_ADMIN' },
  'tls-cert': { env: 'DBWARD_TLS_CERT' },
  'tls-key': { env: 'DBWARD_TLS_KEY' },
  'connect-timeout': { env: 'DBWARD_CONNECT_TIMEOUT' },
  'startup-timeout': { env: 'DBWARD_STARTUP_TIMEOUT' },
  'drain-timeout': { env: 'DBWARD_DRAIN_TIMEOUT' },
  'max-message-size': { env: 'DBWARD_MAX_MESSAGE_SIZE' },
  'log-level': { env: 'DBWARD_LOG_LEVEL' },
  'control-plane': { env: 'DBWARD_CONTROL_PLANE' },
  'control-plane-token-file': { env: 'DBWARD_CONTROL_PLANE_TOKEN_FILE' },
  'control-plane-ca-file': { env: 'DBWARD_CONTROL_PLANE_CA_FILE' },
  'policy-cache-dir': { env: 'DBWARD_POLICY_CACHE_DIR' },
  'identity-labels-file': { env: 'DBWARD_IDENTITY_LABELS_FILE' },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

export const USAGE = `usage: dbward-sidecar --upstream postgres://[user[:password]@]host:port[/db][?sslmode=...]
                      [--policy ./policy.yaml]... [--listen 127.0.0.1:6432]
                      [--environment production] [--identity key=value]...
                      [--otlp-endpoint http://127.0.0.1:4318] [--admin 127.0.0.1:9901]
                      [--tls-cert cert.pem --tls-key key.pem] [--connect-timeout 10s] [--startup-timeout 60s]
                      [--drain-timeout 30s] [--max-message-size 64MB] [--log-level info]
                      [--control-plane host:port --control-plane-token-file token
                       [--control-plane-ca-file ca.pem] [--policy-cache-dir dir]]   (instead of --policy)
                      [--identity-labels-file /etc/podinfo/labels] [--[no-]native-io]
Every flag also reads an environment variable: --upstream -> DBWARD_UPSTREAM, --listen -> DBWARD_LISTEN, ...
Multi-valued variables (DBWARD_POLICY, DBWARD_IDENTITY) are comma-separated.`;

/** The result of reading argv: run with a config, or print help/version. */
export type CliCommand = { kind: 'run'; config: SidecarConfig } | { kind: 'help' } | { kind: 'version' };

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliCommand {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? 'arguments';
    throw new ConfigError(flag, message.replace(/\. To specify.*$/s, ''), { cause });
  }
  if (parsed.values.help === true) return { kind: 'help' };
  if (parsed.values.version === true) return { kind: 'version' };
  if (parsed.positionals.length > 0) throw new ConfigError('arguments', `unexpected argument "${parsed.positionals[0]}"`);

  const one = (name: FlagName): string | undefined => {
    const value = parsed.values[name];
    if (typeof value === 'string') return value;
    const fromEnv = env[FLAGS[name].env];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const many = (name: FlagName): string[] => {
    const value = parsed.values[name];
    if (Array.isArray(value) && value.length > 0) return value.filter((v): v is string => typeof v === 'string');
    const fromEnv = env[FLAGS[name].env];
    return fromEnv === undefined || fromEnv === '' ? [] : fromEnv.split(',').map((s) => s.trim()).filter(Boolean);
  };

  const upstreamRaw = one('upstream');
  if (upstreamRaw === undefined) throw new ConfigError('--upstream', 'is required (or set DBWARD_UPSTREAM)');
  const upstream = parseUpstreamUrl(upstreamRaw);
  const listen = parseListen(one('listen') ?? '127.0.0.1:6432', '--listen');
  if (upstream.credentials !== undefined && !isLoopback(listen.host)) {
    throw new ConfigError(
      '--listen',
      `must be a loopback address when --upstream carries credentials (got ${listen.host}): anyone who can reach the listener would act as ${upstream.credentials.user}`,
    );
  }
  const adminRaw = one('admin');
  const certFile = one('tls-cert');
  const keyFile = one('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? '--tls-cert' : '--tls-key', '--tls-cert and --tls-key go together');
  }
  const logLevel = one('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new ConfigError('--log-level', `must be debug, info, warn or error, got "${logLevel}"`);
  }
  const otlpEndpoint = one('otlp-endpoint');
  if (otlpEndpoint !== undefined && !/^https?:\/\//.test(otlpEndpoint)) {
    throw new ConfigError('--otlp-endpoint', `must be an http:// or https:// URL, got "${otlpEndpoint}"`);
  }
  const policyFiles = many('policy');
  const controlPlane = parseControlPlane(one, policyFiles);
  const identity = parseIdentity(many('identity'));
  const labelsFile = one('identity-labels-file');
  if (labelsFile !== undefined) identity.labels = { ...readLabelsFile(labelsFile), ...identity.labels };
  return {
    kind: 'run',
    config: {
      upstream,
      listen,
      policyFiles,
      controlPlane,
      environment: one('environment') ?? '',
      identity,
      otlpEndpoint,
      admin: adminRaw === undefined ? undefined : parseAdmin(adminRaw),
      clientTls:
        certFile !== undefined && keyFile !== undefined
          ? { cert: readFlagFile(certFile, '--tls-cert'), key: readFlagFile(keyFile, '--tls-key') }
          : undefined,
      connectTimeoutMs: parseDuration(one('connect-timeout') ?? '10s', '--connect-timeout'),
      startupTimeoutMs: parseDuration(one('startup-timeout') ?? '60s', '--startup-timeout'),
      drainTimeoutMs: parseDuration(one('drain-timeout') ?? '30s', '--drain-timeout'),
      maxClientMessageBytes: parseSize(one('max-message-size') ?? '64MB', '--max-message-size'),
      logLevel: logLevel as SidecarConfig['logLevel'],
      nativeIo: parsed.values['native-io'] === true ? 'on' : parsed.values['native-io'] === false ? 'off' : parseNativeIoEnv(env['DBWARD_NATIVE_IO']),
      fastRelay: parseSwitchEnv('DBWARD_FAST_RELAY', env['DBWARD_FAST_RELAY']),
      ioUring: parseSwitchEnv('DBWARD_IO_URING', env['DBWARD_IO_URING']),
      relayThread: parseSwitchEnv('DBWARD_RELAY_THREAD', env['DBWARD_RELAY_THREAD']),
    },
  };
}

/** An on/off environment switch: unset, empty, on, 1 or true; off, 0 or false. Anything else is an error. */
function parseSwitchEnv(name: string, value: string | undefined): boolean {
  const v = value?.toLowerCase();
  if (v === undefined || v === '' || v === 'on' || v === '1' || v === 'true') return true;
  if (v === 'off' || v === '0' || v === 'false') return false;
  throw new ConfigError(name, `must be on, 1, true, off, 0 or false, got "${value}"`);
}

/** DBWARD_NATIVE_IO: unset, empty or auto; 1, true or on; 0, false or off. Anything else is an error. */
function parseNativeIoEnv(value: string | undefined): NativeIoMode {
  const v = value?.toLowerCase();
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === '1' || v === 'true' || v === 'on') return 'on';
  if (v === '0' || v === 'false' || v === 'off') return 'off';
  throw new ConfigError('DBWARD_NATIVE_IO', `must be auto, 1/true/on or 0/false/off, got "${value}"`);
}

function parseFlags(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    allowNegative: true,
    options: {
      upstream: { type: 'string' },
      policy: { type: 'string', multiple: true },
      listen: { type: 'string' },
      environment: { type: 'string' },
      identity: { type: 'string', multiple: true },
      'otlp-endpoint': { type: 'string' },
      admin: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'startup-timeout': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'max-message-size': { type: 'string' },
      'log-level': { type: 'string' },
      'control-plane': { type: 'string' },
      'control-plane-token-file': { type: 'string' },
      'control-plane-ca-file': { type: 'string' },
      'policy-cache-dir': { type: 'string' },
      'identity-labels-file': { type: 'string' },
      'native-io': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
}

/**
 * --control-plane and its companions. The control plane delivers the policy, so --policy with it
 * is a configuration error (two sources of truth would disagree silently).
 */
function parseControlPlane(one: (name: FlagName) => string | undefined, policyFiles: readonly string[]): ControlPlaneConfig | undefined {
  const target = one('control-plane');
  const tokenFile = one('control-plane-token-file');
  const caFile = one('control-plane-ca-file');
  const cacheDir = one('policy-cache-dir');
  if (target === undefined) {
    const orphan = tokenFile !== undefined ? '--control-plane-token-file' : caFile !== undefined ? '--control-plane-ca-file' : cacheDir !== undefined ? '--policy-cache-dir' : undefined;
    if (orphan !== undefined) throw new ConfigError(orphan, 'needs --control-plane (or DBWARD_CONTROL_PLANE)');
    return undefined;
  }
  if (policyFiles.length > 0) {
    throw new ConfigError('--control-plane', 'cannot be combined with --policy: the control plane delivers the policy (use one or the other)');
  }
  const address = parseListen(target, '--control-plane');
  if (address.port === 0) throw new ConfigError('--control-plane', 'port 0 is not a port to connect to');
  if (tokenFile === undefined) throw new ConfigError('--control-plane-token-file', 'is required with --control-plane (the projected service-account token)');
  const token = readFlagFile(tokenFile, '--control-plane-token-file');
  if (token.toString('utf8').trim() === '') throw new ConfigError('--control-plane-token-file', `${tokenFile} is empty`);
  if (caFile === undefined && !isLoopback(address.host)) {
    throw new ConfigError('--control-plane-ca-file', `is required for a control plane outside loopback (got ${address.host}): the policy and approvals must not travel in plaintext`);
  }
  if (cacheDir !== undefined) {
    try {
      mkdirSync(cacheDir, { recursive: true });
      accessSync(cacheDir, fsConstants.W_OK | fsConstants.R_OK);
    } catch (cause) {
      throw new ConfigError('--policy-cache-dir', `${cacheDir} is not a writable directory: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
    }
  }
  return {
    target,
    host: address.host,
    tokenFile,
    ca: caFile === undefined ? undefined : readFlagFile(caFile, '--control-plane-ca-file'),
    cacheDir,
  };
}

function readLabelsFile(path: string): Record<string, string> {
  const text = readFlagFile(path, '--identity-labels-file').toString('utf8');
  try {
    return parseLabelsFile(text);
  } catch (cause) {
    if (cause instanceof LabelsFileError) throw new ConfigError('--identity-labels-file', `${path}: ${cause.message}`, { cause });
    throw cause;
  }
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces of 127.0.0.1 is NOT implied: host is required). */
export function parseListen(raw: string, flag: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  if (match === null) throw new ConfigError(flag, `expected host:port, got "${raw}"`);
  const host = (match[1] ?? match[2])!;
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(flag, `invalid port ${port}`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** The admin endpoint decides approvals: it must not be reachable from outside the pod/host. */
function parseAdmin(raw: string): ListenAddress {
  const address = parseListen(raw, '--admin');
  if (!isLoopback(address.host)) {
    throw new ConfigError('--admin', `must be a loopback address (got ${address.host}): it can approve held statements`);
  }
  return address;
}

export function parseIdentity(pairs: string[]): SidecarConfig['identity'] {
  const fields: Record<string, string> = {};
  const labels: Record<string, string> = {};
  const known = new Set(['namespace', 'serviceAccount', 'pod', 'application', 'user', 'database']);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError('--identity', `expected key=value, got "${pair}"`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (key.startsWith('labels.')) labels[key.slice('labels.'.length)] = value;
    else if (known.has(key)) fields[key] = value;
    else throw new ConfigError('--identity', `unknown key "${key}" (use ${[...known].join(', ')} or labels.<name>)`);
  }
  return { fields, labels };
}

/** `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds. */
export function parseDuration(raw: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (match === null) throw new ConfigError(flag, `expected a duration like 500ms, 10s or 5m, got "${raw}"`);
  const n = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** `65536`, `64kB`, `64MB`, `1GB` (powers of 1024, as PostgreSQL's memory units). */
export function parseSize(raw: string, flag: string): number {
  const match = /^(\d+)\s*(B|kB|KB|MB|GB)?$/.exec(raw.trim());
  if (match === null) throw new ConfigError(flag, `expected a size like 64MB, got "${raw}"`);
  const n = Number(match[1]);
  const unit = match[2] ?? 'B';
  const factor = unit === 'B' ? 1 : unit === 'GB' ? 1024 ** 3 : unit === 'MB' ? 1024 ** 2 : 1024;
  const bytes = n * factor;
  if (bytes < 1024 || bytes > 1024 ** 3) throw new ConfigError(flag, 'must be between 1kB and 1GB');
  return bytes;
}

function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new ConfigError(flag, `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
}
