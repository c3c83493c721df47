import { describe, expect, it } from 'vitest';
import { OperatorConfigError, parseOperatorConfig } from './config.js';

describe('parseOperatorConfig', () => {
  it('reads flags over env, derives the control-plane address', () => {
    const c = parseOperatorConfig(['--namespace', 'ops', '--webhook-port', '8443'], { DBWARD_SIDECAR_IMAGE: 'img:1', DBWARD_WEBHOOK_PORT: '1', KUBECONFIG: '/k' });
    expect(c).not.toBe('help');
    if (c === 'help') return;
    expect(c.options).toMatchObject({ namespace: 'ops', webhookPort: 8443, kubeconfig: '/k', inCluster: false, inject: { image: 'img:1', controlPlane: 'dbward-operator.ops.svc:9444' }, controlPlane: { port: 9444 } });
    expect(c.options.controlPlane?.host).toBeUndefined();
  });

  it('the control-plane listener: port and host from flags or env', () => {
    const c = parseOperatorConfig(['--namespace', 'ops', '--control-plane-port', '7000'], { DBWARD_SIDECAR_IMAGE: 'i', DBWARD_CONTROL_PLANE_HOST: '127.0.0.1' });
    expect(c !== 'help' && c.options.controlPlane).toEqual({ port: 7000, host: '127.0.0.1' });
    expect(c !== 'help' && c.options.inject.controlPlane).toBe('dbward-operator.ops.svc:7000');
  });

  it('in a cluster: service account credentials and the pod namespace', () => {
    const c = parseOperatorConfig([], { DBWARD_SIDECAR_IMAGE: 'img', KUBERNETES_SERVICE_HOST: '10.0.0.1' }, () => 'dbward-system');
    expect(c !== 'help' && c.options).toMatchObject({ inCluster: true, namespace: 'dbward-system' });
  });

  const bad: { name: string; argv: string[]; env: NodeJS.ProcessEnv; message: RegExp }[] = [
    { name: 'no namespace outside a cluster', argv: [], env: { DBWARD_SIDECAR_IMAGE: 'i' }, message: /--namespace is required/ },
    { name: 'no image', argv: ['--namespace', 'x'], env: {}, message: /--sidecar-image is required/ },
    { name: 'bad port', argv: ['--namespace', 'x', '--webhook-port', 'http'], env: { DBWARD_SIDECAR_IMAGE: 'i' }, message: /not a port/ },
    { name: 'unknown flag', argv: ['--nope'], env: {}, message: /Unknown option '--nope'/ },
    { name: 'bad log level', argv: ['--namespace', 'x', '--log-level', 'loud'], env: { DBWARD_SIDECAR_IMAGE: 'i' }, message: /--log-level/ },
  ];
  it.each(bad)('$name', ({ argv, env, message }) => {
    expect(() => parseOperatorConfig(argv, env, () => undefined)).toThrow(OperatorConfigError);
    expect(() => parseOperatorConfig(argv, env, () => undefined)).toThrow(message);
  });
});
