// Is a topology file older than the servers it describes? `apply` and `plan` ask before acting on
// a cluster: a file that still names a failed primary the primary while the failover that replaced
// it is recorded in the state (or is on the upstream and not pulled) would undo that failover. The
// rule is core/write-back.ts staleFileReason; this gathers its facts from the state and Git.
import type { CommitText } from '../core/history.js';
import type { StatePort } from '../core/ports.js';
import { predatesCommitMessage, staleFileReason } from '../core/write-back.js';
import type { Observation } from './gather.js';

export interface StaleFilePorts {
  readonly state: StatePort;
  /** Is the failover's commit in HEAD's history of `file`? */
  readonly failoverInHistory: (failover: { readonly id: string; readonly commit: string | null }, file: string) => Promise<boolean>;
  /** topogit's commits touching `file` that the upstream has and HEAD lacks, newest first (fetching first when `fetch`). */
  readonly upstreamCommits: (file: string, fetch: boolean) => Promise<{ readonly upstream: boolean; readonly fetchError?: string; readonly commits: readonly CommitText[] }>;
}

export interface StaleFile {
  readonly cluster: string;
  readonly file: string;
  /** `the file predates failover <id> (<from> -> <to> at <at>); pull first` */
  readonly reason: string;
}

/** The clusters whose file predates a failover (or relocation), and what could not be checked. */
export async function staleFiles(observations: readonly Observation[], ports: StaleFilePorts): Promise<{ stale: StaleFile[]; warnings: string[] }> {
  const stale: StaleFile[] = [];
  const warnings: string[] = [];
  let fetched = false;
  for (const o of observations) {
    const { spec } = o;
    // From the state (the daemon's clone, or a shared coordinator): the last failover.
    const state = await ports.state.read(spec.cluster);
    const f = state.lastFailover;
    const filePrimary = spec.instances.find((i) => i.source === undefined)?.name;
    const inHead = f && filePrimary === f.from ? await ports.failoverInHistory({ id: f.id, commit: f.commit }, spec.file) : true;
    const fromState = staleFileReason(spec, state, o.view.livePrimaries, inHead);
    if (fromState) {
      stale.push({ cluster: spec.cluster, file: spec.file, reason: fromState });
      continue;
    }
    // From the upstream (a CI runner has no state): a failover or relocation commit HEAD lacks.
    const up = await ports.upstreamCommits(spec.file, !fetched);
    if (!fetched && up.fetchError) warnings.push(`could not fetch the upstream to look for failover commits (${up.fetchError}); checked against what was fetched before`);
    fetched = true;
    const newest = up.commits.map(predatesCommitMessage).find((m): m is string => m !== undefined);
    if (newest) stale.push({ cluster: spec.cluster, file: spec.file, reason: newest });
  }
  return { stale, warnings };
}

/** staleFiles with the real adapters: the state through the coordinator's port, Git in `cwd`. */
export async function staleFilesIn(observations: readonly Observation[], c: { readonly cwd: string; readonly state: StatePort }): Promise<{ stale: StaleFile[]; warnings: string[] }> {
  const { failoverInHistory, upstreamTopogitCommits } = await import('../adapters/git-sync.js');
  return staleFiles(observations, {
    state: c.state,
    failoverInHistory: (f, file) => failoverInHistory(c.cwd, f, file).catch(() => false),
    // Outside a repository, or a branch without an upstream: nothing to compare with.
    upstreamCommits: (file, fetch) => upstreamTopogitCommits(c.cwd, file, { fetch }).catch(() => ({ upstream: false, commits: [] })),
  });
}
