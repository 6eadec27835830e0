// Finds a MariaDB or MySQL server binary and its bootstrap tool on this machine.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Flavor } from '../../core/model.js';

const run = promisify(execFile);

export interface ServerBinary {
  readonly flavor: Flavor;
  readonly server: string;
  /** mariadb-install-db for MariaDB; MySQL bootstraps with `mysqld --initialize-insecure`. */
  readonly installDb?: string;
  readonly version: string;
}

// Debian puts servers in /usr/sbin, which a non-root PATH often lacks.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/mysql/bin', '/usr/bin'];

export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export async function findServerBinary(env: NodeJS.ProcessEnv = process.env): Promise<ServerBinary | undefined> {
  for (const name of ['mariadbd', 'mysqld']) {
    const server = which(name, env);
    if (!server) continue;
    const { stdout } = await run(server, ['--version']);
    // Debian's mysqld is a link to mariadbd: trust the version text, not the file name.
    const flavor: Flavor = /mariadb/i.test(stdout) ? 'mariadb' : 'mysql';
    const version = /Ver\s+(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
    if (flavor === 'mariadb') {
      const installDb = which('mariadb-install-db', env) ?? which('mysql_install_db', env);
      if (!installDb) continue;
      return { flavor, server, installDb, version };
    }
    return { flavor, server, version };
  }
  return undefined;
}

export const INSTALL_HINT =
  'no MariaDB or MySQL server binary found (looked for mariadbd and mysqld on PATH and in /usr/sbin) and no Docker engine answered; ' +
  'on Debian/Ubuntu install one with `sudo apt-get install -y mariadb-server`';
