import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/errors.js';
import { parseKeyValues, resolveAuditConfig } from './config.js';

describe('resolveAuditConfig', () => {
  it('is off without an endpoint, with the default service name', () => {
    expect(resolveAuditConfig(undefined, {})).toEqual({ serviceName: 'dbward-sidecar', resource: { 'service.name': 'dbward-sidecar' }, export: undefined });
  });

  it.each([
    // [flag, env, protocol, tracesTarget, metricsTarget]
    ['http://c:4318', {}, 'http/protobuf', 'http://c:4318/v1/traces', 'http://c:4318/v1/metrics'],
    ['http://c:4318/', {}, 'http/protobuf', 'http://c:4318/v1/traces', 'http://c:4318/v1/metrics'],
    [undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4318' }, 'http/protobuf', 'https://c:4318/v1/traces', 'https://c:4318/v1/metrics'],
    ['http://flag:4318', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }, 'http/protobuf', 'http://flag:4318/v1/traces', 'http://flag:4318/v1/metrics'],
    ['http://c:4317', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'grpc', 'c:4317', 'c:4317'],
    [undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom/traces' }, 'http/protobuf', 'http://c:4318/custom/traces', 'http://c:4318/v1/metrics'],
    ['http://c:4317', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }, 'grpc', 'c:4317', 'c:4317'],
  ] as const)('%s %j -> %s %s', (flag, env, protocol, traces, metrics) => {
    const config = resolveAuditConfig(flag, env);
    expect(config.export).toMatchObject({ protocol, tracesTarget: traces, metricsTarget: metrics });
  });

  it('reads the service name, resource attributes, headers and the metrics exporter', () => {
    const config = resolveAuditConfig('http://c:4318', {
      OTEL_SERVICE_NAME: 'orders-sidecar',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,team=a%20b',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20x,x-tenant=t1',
      OTEL_METRICS_EXPORTER: 'none',
    });
    expect(config.serviceName).toBe('orders-sidecar');
    expect(config.resource).toEqual({ 'deployment.environment.name': 'prod', team: 'a b', 'service.name': 'orders-sidecar' });
    expect(config.export?.headers).toEqual({ authorization: 'Bearer x', 'x-tenant': 't1' });
    expect(config.export?.metrics).toBe(false);
  });

  it.each([
    ['ftp://c:21', {}, /--otlp-endpoint: must be an http/],
    ['not a url', {}, /--otlp-endpoint: must be an http/],
    ['http://c:4318', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, /http\/json is not supported/],
    ['http://c:4318', { OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }, /must be grpc or http\/protobuf/],
    ['http://c:4318', { OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, /OTEL_EXPORTER_OTLP_HEADERS: expected key=value/],
    ['http://c:4318', { OTEL_METRICS_EXPORTER: 'prometheus' }, /OTEL_METRICS_EXPORTER: must be otlp or none/],
    ['http://c:4318', { OTEL_METRIC_EXPORT_INTERVAL: '10' }, /OTEL_METRIC_EXPORT_INTERVAL/],
    [undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'c:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http/],
  ] as const)('rejects %s %j', (flag, env, message) => {
    expect(() => resolveAuditConfig(flag, env)).toThrow(ConfigError);
    expect(() => resolveAuditConfig(flag, env)).toThrow(message);
  });
});

describe('parseKeyValues', () => {
  it.each([
    ['', {}],
    ['a=1', { a: '1' }],
    [' a = 1 , b=x%3Dy ,', { a: '1', b: 'x=y' }],
  ])('%j', (raw, expected) => {
    expect(parseKeyValues(raw, 'X')).toEqual(expected);
  });

  it('reads the batch span processor variables, with OTel defaults where the sidecar has none of its own', () => {
    expect(resolveAuditConfig('http://c:4318', {}).export).toMatchObject({ maxBatchSpans: 512, flushIntervalMs: 500, exportTimeoutMs: 10_000 });
    const config = resolveAuditConfig('http://c:4318', { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048', OTEL_BSP_SCHEDULE_DELAY: '5000', OTEL_BSP_EXPORT_TIMEOUT: '3000' });
    expect(config.export).toMatchObject({ maxBatchSpans: 2048, flushIntervalMs: 5000, exportTimeoutMs: 3000 });
    expect(resolveAuditConfig('http://c:4318', { OTEL_BSP_EXPORT_TIMEOUT: '3000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '7000' }).export?.exportTimeoutMs).toBe(7000);
  });

  it.each([
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', '0'],
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'lots'],
    ['OTEL_BSP_SCHEDULE_DELAY', '2.5'],
    ['OTEL_BSP_EXPORT_TIMEOUT', '-1'],
  ])('%s=%s is refused, naming the variable', (name, value) => {
    expect(() => resolveAuditConfig('http://c:4318', { [name]: value })).toThrow(ConfigError);
    expect(() => resolveAuditConfig('http://c:4318', { [name]: value })).toThrow(name);
  });
});
