// Where a cluster's secrets come from: the defaults when a file has no credentials block, the
// load-time check that every source exists, and reading the secrets when they are needed.

import { constants as fsConstants, readFileSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { ClusterSpec, CredentialsSpec } from '../core/model.js';
import { TopogitError } from '../core/errors.js';
import { DEFAULT_ADMIN_USER, DEFAULT_REPLICATION_USER } from './defaults.js';
import { displayPath } from './positions.js';
import type { Problem } from './schema.js';

/**
 * Used, by identity, when a file has no `credentials` block. resolveCredentials then lets
 * TOPOGIT_USER / TOPOGIT_REPL_USER override the user names (a copy of the object does not).
 */
export const DEFAULT_CREDENTIALS: CredentialsSpec = Object.freeze({
  admin: Object.freeze({ user: DEFAULT_ADMIN_USER, passwordEnv: 'TOPOGIT_PASSWORD' }),
  replication: Object.freeze({ user: DEFAULT_REPLICATION_USER, passwordEnv: 'TOPOGIT_REPL_PASSWORD' }),
});
const DEFAULT_USER_ENV = { admin: 'TOPOGIT_USER', replication: 'TOPOGIT_REPL_USER' } as const;
const ROLES = ['admin', 'replication'] as const;
type Role = (typeof ROLES)[number];
const USER_RE = /^[A-Za-z0-9_.-]{1,80}$/;
const USER_RULE = "use 1-80 letters, digits, '_', '.', '-'";

export function usesDefaultCredentials(spec: ClusterSpec): boolean {
  return spec.credentials === DEFAULT_CREDENTIALS;
}

/**
 * Problems with where one spec's secrets would come from: unset variables, missing or unreadable
 * password files. Reads no secret. Relative passwordFile paths resolve against `cwd`.
 */
export async function secretSourceProblems(spec: ClusterSpec, env: NodeJS.ProcessEnv, cwd: string): Promise<Problem[]> {
  const problems: Problem[] = [];
  if (usesDefaultCredentials(spec)) {
    for (const role of ROLES) {
      const passwordEnv = DEFAULT_CREDENTIALS[role].passwordEnv ?? '';
      const userEnv = DEFAULT_USER_ENV[role];
      if (env[passwordEnv] === undefined) {
        problems.push({ path: ['credentials'], at: 'file', message: `no credentials block and ${passwordEnv} is not set` });
      }
      const user = env[userEnv];
      if (user !== undefined && !USER_RE.test(user)) {
        problems.push({
          path: ['credentials'],
          at: 'file',
          message: `no credentials block and ${userEnv} is not a valid user name: ${USER_RULE}`,
        });
      }
    }
    return problems;
  }
  for (const role of ROLES) {
    const ref = spec.credentials[role];
    if (ref.passwordEnv !== undefined && env[ref.passwordEnv] === undefined) {
      problems.push({
        path: ['credentials', role, 'passwordEnv'],
        at: 'value',
        message: `environment variable ${ref.passwordEnv} is not set`,
      });
    }
    if (ref.passwordFile !== undefined) {
      const abs = nodePath.resolve(cwd, ref.passwordFile);
      // Quoted: a path is the user's text and must not be able to forge an extra output line.
      const shown = JSON.stringify(displayPath(abs, cwd));
      let message: string | undefined;
      try {
        if (!(await stat(abs)).isFile()) message = `password file ${shown} is not a regular file`;
        else await access(abs, fsConstants.R_OK);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        message =
          code === 'ENOENT' || code === 'ENOTDIR'
            ? `password file ${shown} does not exist`
            : `cannot read password file ${shown} (${code ?? 'error'})`;
      }
      if (message) problems.push({ path: ['credentials', role, 'passwordFile'], at: 'value', message });
    }
  }
  return problems;
}

export interface ResolvedAccount {
  readonly user: string;
  readonly password: string;
}

export interface ResolvedCredentials {
  readonly admin: ResolvedAccount;
  readonly replication: ResolvedAccount;
}

/**
 * Reads the passwords a spec points at, now. Throws TOPOGIT_SECRET_MISSING naming the variable or
 * file, never a value. Without a credentials block, TOPOGIT_USER / TOPOGIT_REPL_USER override the
 * default user names. One trailing newline is trimmed from password files. A relative
 * passwordFile (only from parseTopologyText; loadTopologies makes them absolute) resolves against
 * the process's working directory.
 */
export function resolveCredentials(spec: ClusterSpec, env: NodeJS.ProcessEnv): ResolvedCredentials {
  const defaulted = usesDefaultCredentials(spec);
  const account = (role: Role): ResolvedAccount => {
    const ref = spec.credentials[role];
    const where = `cluster ${spec.cluster}: credentials.${role}`;
    let user = ref.user;
    if (defaulted) {
      const userEnv = DEFAULT_USER_ENV[role];
      const fromEnv = env[userEnv];
      if (fromEnv !== undefined) {
        if (!USER_RE.test(fromEnv)) {
          throw new TopogitError('TOPOGIT_CONFIG_INVALID', `${userEnv} is not a valid user name`, USER_RULE);
        }
        user = fromEnv;
      }
    }
    if (ref.passwordEnv !== undefined) {
      const password = env[ref.passwordEnv];
      if (password === undefined) {
        throw new TopogitError(
          'TOPOGIT_SECRET_MISSING',
          defaulted
            ? `cluster ${spec.cluster} has no credentials block and ${ref.passwordEnv} is not set`
            : `${where}: environment variable ${ref.passwordEnv} is not set`,
          `export ${ref.passwordEnv}, or set credentials.${role}.passwordFile in ${spec.file}`,
        );
      }
      return { user, password };
    }
    if (ref.passwordFile !== undefined) {
      let password: string;
      try {
        password = readFileSync(ref.passwordFile, 'utf8');
      } catch (e) {
        throw new TopogitError(
          'TOPOGIT_SECRET_MISSING',
          `${where}: cannot read password file ${JSON.stringify(ref.passwordFile)} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
          `create the file, or fix credentials.${role}.passwordFile in ${spec.file}`,
        );
      }
      return { user, password: password.replace(/\r?\n$/, '') };
    }
    throw new TopogitError('TOPOGIT_SECRET_MISSING', `${where}: neither passwordEnv nor passwordFile is set`);
  };
  return { admin: account('admin'), replication: account('replication') };
}
