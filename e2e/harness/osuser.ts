import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswdLine(line: string): OsUser | undefined {
  const [name, , uid, gid, , home] = line.trim().split(':');
  if (name === undefined || uid === undefined || gid === undefined) return undefined;
  const u = Number(uid);
  const g = Number(gid);
  if (!Number.isInteger(u) || !Number.isInteger(g)) return undefined;
  return { name, uid: u, gid: g, home: home ?? '/' };
}

/** Looks up an OS account (getent, so NSS sources count; /etc/passwd as a fallback). */
export function lookupOsUser(name: string): OsUser | undefined {
  const getent = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (getent.status === 0 && getent.stdout.trim() !== '') return parsePasswdLine(getent.stdout);
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      if (line.startsWith(`${name}:`)) return parsePasswdLine(line);
    }
  } catch {
    // No /etc/passwd: nothing to find.
  }
  return undefined;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The account the PostgreSQL server processes run as: PostgreSQL refuses to run as root, so
 * as root this is the `postgres` account (or $DBWARD_PG_OS_USER); otherwise undefined, meaning
 * the current user.
 */
export function serverOsUser(): OsUser | undefined {
  if (!isRoot()) return undefined;
  const name = process.env['DBWARD_PG_OS_USER'] ?? 'postgres';
  const user = lookupOsUser(name);
  if (user === undefined) {
    throw new Error(`running as root, but there is no OS user "${name}" to run PostgreSQL as (set DBWARD_PG_OS_USER)`);
  }
  if (user.uid === 0) throw new Error(`OS user "${name}" is root; PostgreSQL refuses to run as root`);
  return user;
}
