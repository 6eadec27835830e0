// What every command shares: the process's I/O, option parsers, loading valid topology files.
import { InvalidArgumentError } from 'commander';
import { TopogitError } from '../core/errors.js';
import type { ClusterSpec } from '../core/model.js';

export interface Io {
  /** Asks a yes/no question on a terminal; absent when stdin is not a terminal. */
  readonly confirm?: (question: string) => Promise<boolean>;
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  return n;
};

/** Loads and validates; any issue stops the command before a server is touched. */
/** `checkCredentials: false`: a command that never connects (e.g. `routes`) does not need the passwords. */
export async function loadValid(files: string[], io: Io, cluster?: string, o: { checkCredentials?: boolean } = {}): Promise<ClusterSpec[]> {
  const { loadTopologies, formatIssue } = await import('../config/load.js');
  const { specs, issues } = await loadTopologies(files, { env: io.env, cwd: io.cwd, ...(o.checkCredentials === false ? { checkCredentials: false } : {}) });
  if (issues.length > 0) {
    for (const i of issues) io.err(formatIssue(i) + '\n');
    throw new TopogitError('TOPOGIT_CONFIG_INVALID', `${issues.length} problem${issues.length === 1 ? '' : 's'} in the topology files; nothing was probed`, 'fix them (topogit validate) and run again');
  }
  if (!cluster) return specs;
  const picked = specs.filter((s) => s.cluster === cluster);
  if (picked.length === 0) throw new TopogitError('TOPOGIT_UNKNOWN_CLUSTER', `no cluster named ${cluster} in ${files.join(', ')}`, `clusters: ${specs.map((s) => s.cluster).join(', ')}`);
  return picked;
}
