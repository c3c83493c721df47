import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { PgAuthMethod, PgCluster } from '../../../e2e/harness/index.js';
import { startSidecar, type RunningSidecar } from './sidecar.js';

/**
 * The compatibility matrix: one PostgreSQL cluster per authentication method (started with TLS
 * so that the same cluster serves both a plaintext and a TLS upstream leg), reached either
 * directly or through a sidecar in pass-through or credential-injection mode, with TLS on the
 * upstream leg and on the client leg chosen independently.
 */

export const AUTH_METHODS = ['trust', 'md5', 'scram-sha-256'] as const satisfies readonly PgAuthMethod[];
export type CompatAuth = (typeof AUTH_METHODS)[number];

/** pass-through: the upstream URL has no password; inject: the sidecar logs in with app/app_pw. */
export type SidecarMode = 'pass-through' | 'inject';

/** A password no role has: credential injection must let the client in regardless. */
export const WRONG_PASSWORD = 'definitely-not-the-password';

export interface SidecarCell {
  mode: SidecarMode;
  upstreamTls: boolean;
}

/** Everything a client needs to reach the database, directly or through a sidecar. */
export interface Target {
  label: string;
  host: string;
  port: number;
  /** The client leg is TLS (verified against the cluster's CA, host name included). */
  clientTls: boolean;
  /** node-postgres configuration for the app role. */
  pg: pg.ClientConfig;
  /** libpq environment (psql, pgbench) for the app role. */
  env: Record<string, string>;
}

/** PostgreSQL reached directly, as the app role with its real password. */
export function directTarget(db: PgCluster, clientTls: boolean): Target {
  const sslmode = clientTls ? 'verify-full' : 'disable';
  return {
    label: `direct / client ${clientTls ? 'tls' : 'plain'}`,
    host: db.host,
    port: db.port,
    clientTls,
    pg: db.clientConfig({ sslmode }),
    env: db.env({ sslmode }),
  };
}

/** The upstream URL a sidecar cell uses. */
export function upstreamUrl(db: PgCluster, cell: SidecarCell): string {
  const sslmode = cell.upstreamTls ? 'verify-full' : 'disable';
  return cell.mode === 'inject' ? db.url({ sslmode }) : db.url({ password: null, sslmode });
}

/** Starts a sidecar for a cell; it accepts TLS from clients (certificate from the cluster's CA) and plaintext. */
export async function startCellSidecar(db: PgCluster, cell: SidecarCell): Promise<RunningSidecar> {
  const leaf = db.tls?.leaves['sidecar'];
  if (leaf === undefined) throw new Error('the compatibility cluster needs tls and certNames: [sidecar]');
  return startSidecar({
    upstream: upstreamUrl(db, cell),
    args: ['--tls-cert', leaf.cert, '--tls-key', leaf.key],
    name: `sidecar-${db.auth}-${cell.mode}-${cell.upstreamTls ? 'tls' : 'plain'}`,
  });
}

/**
 * The sidecar reached as a client would: with the app role's real password in pass-through mode,
 * with a wrong one in injection mode (the sidecar never asks for it). Pass-through SCRAM with TLS
 * on both legs needs channel binding off in libpq (the known, refused combination).
 */
export function sidecarTarget(db: PgCluster, sidecar: RunningSidecar, cell: SidecarCell, clientTls: boolean): Target {
  const password = cell.mode === 'inject' ? WRONG_PASSWORD : db.app.password;
  const ca = clientTls ? readFileSync(db.tls!.caCert, 'utf8') : undefined;
  const env: Record<string, string> = {
    PGHOST: sidecar.host,
    PGPORT: String(sidecar.port),
    PGUSER: db.app.user,
    PGPASSWORD: password,
    PGDATABASE: db.app.database,
    PGSSLMODE: clientTls ? 'verify-full' : 'disable',
    PGCONNECT_TIMEOUT: '10',
  };
  if (clientTls) env['PGSSLROOTCERT'] = db.tls!.caCert;
  if (clientTls && cell.upstreamTls && cell.mode === 'pass-through' && db.auth === 'scram-sha-256') env['PGCHANNELBINDING'] = 'disable';
  return {
    label: `${cellLabel(db.auth, cell)} / client ${clientTls ? 'tls' : 'plain'}`,
    host: sidecar.host,
    port: sidecar.port,
    clientTls,
    pg: {
      host: sidecar.host,
      port: sidecar.port,
      user: db.app.user,
      password,
      database: db.app.database,
      ssl: ca === undefined ? false : { ca },
    },
    env,
  };
}

export function cellLabel(auth: PgAuthMethod, cell: SidecarCell): string {
  return `${auth} / ${cell.mode} / upstream ${cell.upstreamTls ? 'tls' : 'plain'}`;
}

/** The four sidecar configurations of one cluster. */
export const SIDECAR_CELLS: readonly SidecarCell[] = [
  { mode: 'pass-through', upstreamTls: false },
  { mode: 'pass-through', upstreamTls: true },
  { mode: 'inject', upstreamTls: false },
  { mode: 'inject', upstreamTls: true },
];
