// What every command shares: the process's I/O, option parsers, loading valid topology files.
import { InvalidArgumentError } from 'commander';
import { TopogitError } from '../core/errors.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';

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
export async function loadValid(files: string[], io: Io, cluster?: string): Promise<ClusterSpec[]> {
  const { loadTopologies, formatIssue } = await import('../config/load.js');
  const { specs, issues } = await loadTopologies(files, { env: io.env, cwd: io.cwd });
  if (issues.length > 0) {
    for (const i of issues) io.err(formatIssue(i) + '\n');
    throw new TopogitError('TOPOGIT_CONFIG_INVALID', `${issues.length} problem${issues.length === 1 ? '' : 's'} in the topology files; nothing was probed`, 'fix them (topogit validate) and run again');
  }
  if (!cluster) return specs;
  const picked = specs.filter((s) => s.cluster === cluster);
  if (picked.length === 0) throw new TopogitError('TOPOGIT_UNKNOWN_CLUSTER', `no cluster named ${cluster} in ${files.join(', ')}`, `clusters: ${specs.map((s) => s.cluster).join(', ')}`);
  return picked;
}

/**
 * Clusters that could not be observed at all (every instance unreachable), or instances that
 * refused the admin credentials: what is planned from that is not "no changes", it is an error.
 */
export function unobservable(observed: readonly { cluster: string; probes: ReadonlyMap<string, ProbeResult> }[]): string[] {
  const out: string[] = [];
  for (const o of observed) {
    const failed = [...o.probes.entries()].filter(([, p]) => !p.ok);
    const denied = failed.filter(([, p]) => !p.ok && /ACCESS_DENIED/.test(p.code));
    const first = failed[0]?.[1];
    if (denied.length > 0) out.push(`cluster ${o.cluster}: access denied on ${denied.map(([n]) => n).join(', ')} (check the admin credentials)`);
    else if (failed.length > 0 && failed.length === o.probes.size) out.push(`cluster ${o.cluster}: no instance could be probed (${first && !first.ok ? first.error : 'unknown'})`);
  }
  return out;
}
