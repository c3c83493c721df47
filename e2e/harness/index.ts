export { makeCertificates } from './certs.js';
export type { CertificateOptions, Certificates, KeyPair } from './certs.js';
export { onExit } from './cleanup.js';
export type { SyncCleanup } from './cleanup.js';
export { isRoot, lookupOsUser, serverOsUser } from './osuser.js';
export type { OsUser } from './osuser.js';
export { freePort, isPortOpen } from './ports.js';
export { APP_USER, SUPERUSER, pgBinDir, reapStaleClusters, startPostgres } from './postgres.js';
export type {
  ConnectOptions,
  CreateUserOptions,
  EnvOptions,
  PasswordEncryption,
  PgAuthMethod,
  PgClientConfig,
  PgCluster,
  PgTlsFiles,
  SqlOptions,
  SslMode,
  StartPostgresOptions,
} from './postgres.js';
export { CommandError, ManagedProcess, run, runChecked, spawnProcess } from './process.js';
export type { ExitInfo, RunOptions, RunResult, SpawnOptions, WaitForOptions } from './process.js';
export { startKube, toolsBin } from './kube.js';
export type { KubeCluster, KubeUser, StartKubeOptions } from './kube.js';
