import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli, parseDuration, parseListen, parseSize } from './cli.js';
import { ConfigError } from './errors.js';
import { parseUpstreamUrl } from './upstream-url.js';

const UPSTREAM = 'postgres://db.example:5432/app?sslmode=require';

function run(args: string[], env: Record<string, string> = {}) {
  const command = parseCli(args, env);
  if (command.kind !== 'run') throw new Error(`expected run, got ${command.kind}`);
  return command.config;
}

function flagOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.flag;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseCli', () => {
  it.each([
    [[], {}, 'auto'],
    [['--native-io'], {}, 'on'],
    [['--no-native-io'], {}, 'off'],
    [[], { DBWARD_NATIVE_IO: '1' }, 'on'],
    [[], { DBWARD_NATIVE_IO: 'TRUE' }, 'on'],
    [[], { DBWARD_NATIVE_IO: 'on' }, 'on'],
    [[], { DBWARD_NATIVE_IO: '0' }, 'off'],
    [[], { DBWARD_NATIVE_IO: 'false' }, 'off'],
    [[], { DBWARD_NATIVE_IO: 'Off' }, 'off'],
    [[], { DBWARD_NATIVE_IO: 'auto' }, 'auto'],
    [[], { DBWARD_NATIVE_IO: '' }, 'auto'],
    [['--native-io'], { DBWARD_NATIVE_IO: '0' }, 'on'],
    [['--no-native-io'], { DBWARD_NATIVE_IO: '1' }, 'off'],
  ] as const)('--native-io %j with env %j -> %s', (args, env, expected) => {
    expect(run(['--upstream', UPSTREAM, ...args], { ...env }).nativeIo).toBe(expected);
  });

  // The environment-only switches: on unless set to off.
  it.each([
    ['fastRelay', {}, true],
    ['fastRelay', { DBWARD_FAST_RELAY: 'on' }, true],
    ['fastRelay', { DBWARD_FAST_RELAY: 'off' }, false],
    ['fastRelay', { DBWARD_FAST_RELAY: '0' }, false],
    ['ioUring', {}, true],
    ['ioUring', { DBWARD_IO_URING: 'on' }, true],
    ['ioUring', { DBWARD_IO_URING: 'off' }, false],
    ['ioUring', { DBWARD_IO_URING: 'false' }, false],
  ] as const)('%s with %j -> %s', (field, env, expected) => {
    expect(run(['--upstream', UPSTREAM], { ...env })[field]).toBe(expected);
  });

  it('refuses a DBWARD_IO_URING that is not on or off', () => {
    expect(flagOf(() => run(['--upstream', UPSTREAM], { DBWARD_IO_URING: 'maybe' }))).toBe('DBWARD_IO_URING');
  });

  it('DBWARD_RELAY_THREAD: on unless set to off; anything else is refused', () => {
    expect(run(['--upstream', UPSTREAM], {}).relayThread).toBe(true);
    expect(run(['--upstream', UPSTREAM], { DBWARD_RELAY_THREAD: '1' }).relayThread).toBe(true);
    expect(run(['--upstream', UPSTREAM], { DBWARD_RELAY_THREAD: 'off' }).relayThread).toBe(false);
    expect(flagOf(() => run(['--upstream', UPSTREAM], { DBWARD_RELAY_THREAD: 'later' }))).toBe('DBWARD_RELAY_THREAD');
  });

  it('refuses a DBWARD_FAST_RELAY that is not on or off', () => {
    expect(flagOf(() => run(['--upstream', UPSTREAM], { DBWARD_FAST_RELAY: 'sometimes' }))).toBe('DBWARD_FAST_RELAY');
  });

  it('refuses a DBWARD_NATIVE_IO that is not auto, on or off', () => {
    expect(flagOf(() => run(['--upstream', UPSTREAM], { DBWARD_NATIVE_IO: 'yes please' }))).toBe('DBWARD_NATIVE_IO');
  });

  it('applies the documented defaults', () => {
    const config = run(['--upstream', UPSTREAM]);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6432 });
    expect(config.upstream).toMatchObject({ host: 'db.example', port: 5432, database: 'app', sslmode: 'require', credentials: undefined });
    expect(config.policyFiles).toEqual([]);
    expect(config.connectTimeoutMs).toBe(10_000);
    expect(config.startupTimeoutMs).toBe(60_000);
    expect(config.drainTimeoutMs).toBe(30_000);
    expect(config.maxClientMessageBytes).toBe(64 * 1024 * 1024);
    expect(config.clientTls).toBeUndefined();
  });

  it('reads every flag from its DBWARD_ environment variable, flags winning', () => {
    const env = { DBWARD_UPSTREAM: UPSTREAM, DBWARD_LISTEN: '127.0.0.1:7000', DBWARD_IDENTITY: 'namespace=shop,labels.team=ai', DBWARD_POLICY: 'a.yaml,b.yaml', DBWARD_ENVIRONMENT: 'staging' };
    const config = run([], env);
    expect(config.listen.port).toBe(7000);
    expect(config.identity).toEqual({ fields: { namespace: 'shop' }, labels: { team: 'ai' } });
    expect(config.policyFiles).toEqual(['a.yaml', 'b.yaml']);
    expect(config.environment).toBe('staging');
    expect(run(['--listen', '127.0.0.1:7001'], env).listen.port).toBe(7001);
  });

  it('collects repeated --identity and --policy flags', () => {
    const config = run(['--upstream', UPSTREAM, '--identity', 'serviceAccount=checkout', '--identity', 'labels.dbward.io/kind=ai-agent', '--policy', 'p.yaml']);
    expect(config.identity).toEqual({ fields: { serviceAccount: 'checkout' }, labels: { 'dbward.io/kind': 'ai-agent' } });
    expect(config.policyFiles).toEqual(['p.yaml']);
  });

  it('detects credential injection and redacts the password', () => {
    const config = run(['--upstream', 'postgres://svc:s3cr%40t@db:5433/orders']);
    expect(config.upstream.credentials).toEqual({ user: 'svc', password: 's3cr@t' });
    expect(config.upstream.redacted).not.toContain('s3cr');
    expect(config.upstream.sslmode).toBe('prefer');
  });

  it.each([
    [[], '--upstream'],
    [['--upstream', 'mysql://h/db'], '--upstream'],
    [['--upstream', 'not a url'], '--upstream'],
    [['--upstream', 'postgres://h:99999'], '--upstream'],
    [['--upstream', 'postgres://h?sslmode=bogus'], '--upstream'],
    [['--upstream', 'postgres://h?sslmod=require'], '--upstream'],
    [['--upstream', 'postgres://:pw@h'], '--upstream'],
    [['--upstream', 'postgres://u:pw@h', '--listen', '0.0.0.0:6432'], '--listen'],
    [['--upstream', UPSTREAM, '--listen', 'localhost'], '--listen'],
    [['--upstream', UPSTREAM, '--drain-timeout', 'soon'], '--drain-timeout'],
    [['--upstream', UPSTREAM, '--max-message-size', '10'], '--max-message-size'],
    [['--upstream', UPSTREAM, '--tls-cert', 'c.pem'], '--tls-key'],
    [['--upstream', UPSTREAM, '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], '--tls-cert'],
    [['--upstream', UPSTREAM, '--identity', 'noequals'], '--identity'],
    [['--upstream', UPSTREAM, '--identity', 'color=blue'], '--identity'],
    [['--upstream', UPSTREAM, '--log-level', 'loud'], '--log-level'],
    [['--upstream', UPSTREAM, '--otlp-endpoint', 'collector:4318'], '--otlp-endpoint'],
    [['--upstream', UPSTREAM, '--bogus'], '--bogus'],
    [['--upstream', UPSTREAM, 'stray'], 'arguments'],
  ])('rejects %j naming %s', (args, flag) => {
    expect(flagOf(() => parseCli(args, {}))).toBe(flag);
  });

  it('allows a non-loopback listener in pass-through mode', () => {
    expect(run(['--upstream', UPSTREAM, '--listen', '0.0.0.0:6432']).listen.host).toBe('0.0.0.0');
  });

  it('answers --help and --version', () => {
    expect(parseCli(['--help'], {}).kind).toBe('help');
    expect(parseCli(['--version'], {}).kind).toBe('version');
  });
});

describe('value parsers', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2', 2000],
    ['1.5s', 1500],
  ])('duration %s = %d ms', (raw, ms) => expect(parseDuration(raw, '--x')).toBe(ms));

  it.each([
    ['64MB', 64 * 1024 * 1024],
    ['1GB', 1024 ** 3],
    ['16kB', 16 * 1024],
    ['2048', 2048],
  ])('size %s = %d bytes', (raw, bytes) => expect(parseSize(raw, '--x')).toBe(bytes));

  it.each([
    ['127.0.0.1:6432', { host: '127.0.0.1', port: 6432 }],
    ['[::1]:6432', { host: '::1', port: 6432 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('listen %s', (raw, expected) => expect(parseListen(raw, '--listen')).toEqual(expected));

  it('parses IPv6 upstream hosts and percent-encoded database names', () => {
    expect(parseUpstreamUrl('postgres://[::1]:5433/my%20db')).toMatchObject({ host: '::1', port: 5433, database: 'my db' });
  });
});

describe('control plane flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbward-cli-cp-'));
  const token = join(dir, 'token');
  const empty = join(dir, 'empty');
  const ca = join(dir, 'ca.pem');
  const labels = join(dir, 'labels');
  writeFileSync(token, 'eyJhbGciOi...\n');
  writeFileSync(empty, '\n');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
  writeFileSync(labels, 'app="checkout"\ntier="backend"\n');
  const base = ['--upstream', UPSTREAM];

  it('reads --control-plane and its companions (flags and env)', () => {
    const config = run([...base, '--control-plane', 'dbward-operator.dbward-system.svc:9443', '--control-plane-token-file', token, '--control-plane-ca-file', ca, '--policy-cache-dir', join(dir, 'cache')]);
    expect(config.controlPlane).toEqual({ target: 'dbward-operator.dbward-system.svc:9443', host: 'dbward-operator.dbward-system.svc', tokenFile: token, ca: Buffer.from('-----BEGIN CERTIFICATE-----\n'), cacheDir: join(dir, 'cache') });
    const fromEnv = run([], { DBWARD_UPSTREAM: UPSTREAM, DBWARD_CONTROL_PLANE: '127.0.0.1:9443', DBWARD_CONTROL_PLANE_TOKEN_FILE: token });
    expect(fromEnv.controlPlane).toMatchObject({ target: '127.0.0.1:9443', ca: undefined, cacheDir: undefined });
    expect(run(base).controlPlane).toBeUndefined();
  });

  it('--identity-labels-file gives identity.labels; --identity labels.* win', () => {
    expect(run([...base, '--identity-labels-file', labels]).identity.labels).toEqual({ app: 'checkout', tier: 'backend' });
    expect(run([...base, '--identity-labels-file', labels, '--identity', 'labels.tier=batch']).identity.labels).toEqual({ app: 'checkout', tier: 'batch' });
    expect(run([], { DBWARD_UPSTREAM: UPSTREAM, DBWARD_IDENTITY_LABELS_FILE: labels }).identity.labels).toEqual({ app: 'checkout', tier: 'backend' });
  });

  it.each([
    ['with --policy', ['--control-plane', '127.0.0.1:9443', '--control-plane-token-file', token, '--policy', 'p.yaml'], '--control-plane', /cannot be combined with --policy/],
    ['without a token file', ['--control-plane', '127.0.0.1:9443'], '--control-plane-token-file', /is required/],
    ['an unreadable token file', ['--control-plane', '127.0.0.1:9443', '--control-plane-token-file', join(dir, 'missing')], '--control-plane-token-file', /ENOENT/],
    ['an empty token file', ['--control-plane', '127.0.0.1:9443', '--control-plane-token-file', empty], '--control-plane-token-file', /is empty/],
    ['plaintext off loopback', ['--control-plane', '10.0.0.5:9443', '--control-plane-token-file', token], '--control-plane-ca-file', /is required for a control plane outside loopback/],
    ['a bad address', ['--control-plane', 'operator', '--control-plane-token-file', token], '--control-plane', /expected host:port/],
    ['port 0', ['--control-plane', '127.0.0.1:0', '--control-plane-token-file', token], '--control-plane', /port 0/],
    ['a companion without --control-plane', ['--control-plane-token-file', token], '--control-plane-token-file', /needs --control-plane/],
    ['a cache dir that is a file', ['--control-plane', '127.0.0.1:9443', '--control-plane-token-file', token, '--policy-cache-dir', token], '--policy-cache-dir', /is not a writable directory/],
    ['a malformed labels file', ['--identity-labels-file', token], '--identity-labels-file', /line 1/],
  ])('rejects %s', (_name, args, flag, message) => {
    expect(flagOf(() => parseCli([...base, ...args], {}))).toBe(flag);
    expect(() => parseCli([...base, ...args], {})).toThrow(message);
  });
});
