// What the daemon does when it reloads its topology files, decided without doing it: given what it
// knew of each file, what the load found, the files' texts and what Git and the daemon itself wrote,
// a list of actions (start, stop, update a cluster's loop, mark a file invalid) and the new per-file
// state. daemon.ts applies the actions in order.
//
// Per file: an invalid file keeps its cluster on the last valid spec (FileInvalid); a valid file
// whose cluster has no loop starts one; a file that renamed its cluster stops the old loop first (two
// loops must never act on the same servers); a changed text updates the loop — a human's change
// (anything but our own write-back) triggers a pass, and only a change HEAD has (committed) may move
// the primary. A file that disappeared stops its loop, unless another file now names its cluster.
import type { ClusterSpec } from '../core/model.js';

export interface FileState {
  /** The last valid spec (kept while the file does not validate). */
  readonly spec?: ClusterSpec;
  /** The text of that spec's file when it was loaded (absent when it could not be read). */
  readonly text?: string;
  /** One line per problem; empty when the file validates. */
  readonly issues: readonly string[];
}

export interface ReloadFacts {
  /** What the previous reload left, by file (relative to the repository). */
  readonly files: ReadonlyMap<string, FileState>;
  /** Clusters that have a loop now. */
  readonly running: ReadonlySet<string>;
  /** loadTopologies' specs (a file with issues may still be among them: then it is invalid). */
  readonly specs: readonly ClusterSpec[];
  /** Formatted issues by file. */
  readonly issues: ReadonlyMap<string, readonly string[]>;
  /** Each file's text now (undefined: could not be read). */
  readonly texts: ReadonlyMap<string, string | undefined>;
  /** The text the daemon itself last wrote to a file (its write-back). */
  readonly selfWritten: ReadonlyMap<string, string>;
}

export interface ReloadInput extends ReloadFacts {
  /** HEAD's text of a file (undefined: not in HEAD); asked only for the files committedTextWanted names. */
  readonly committed: (file: string) => string | undefined;
}

export type ReloadAction =
  /** Keep the cluster (if the file had a valid version) on its last valid spec; mark it FileInvalid. */
  | { readonly kind: 'invalid'; readonly file: string; readonly issues: readonly string[]; readonly cluster?: string }
  /** Stop the cluster's loop: the file now names another cluster, or is gone. */
  | { readonly kind: 'stop'; readonly file: string; readonly cluster: string; readonly why: 'renamed'; readonly to: string }
  | { readonly kind: 'stop'; readonly file: string; readonly cluster: string; readonly why: 'removed' }
  /** Start a loop for a cluster that has none. */
  | { readonly kind: 'start'; readonly file: string; readonly spec: ClusterSpec }
  /** The loop goes on unchanged; the file validates. */
  | { readonly kind: 'valid'; readonly file: string; readonly spec: ClusterSpec }
  /** The file validates and its text changed: loop.update(spec, byHuman, committed). */
  | { readonly kind: 'update'; readonly file: string; readonly spec: ClusterSpec; readonly byHuman: boolean; readonly committed: boolean };

export interface ReloadPlan {
  readonly files: Map<string, FileState>;
  readonly actions: ReloadAction[];
  /** Files whose text was our own write-back, seen now: that record is used up (a human who later
   *  commits the same text, a switchover back, say, is a human). */
  readonly consumed: readonly string[];
}

/** Groups issue lines by file, in the order they come. */
export function issuesByFile(issues: readonly { readonly file: string; readonly line: string }[]): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  for (const i of issues) byFile.set(i.file, [...(byFile.get(i.file) ?? []), i.line]);
  return byFile;
}

/** Every file the load mentions: those with a spec, then those with issues only. */
export function loadedFiles(f: Pick<ReloadFacts, 'specs' | 'issues'>): string[] {
  return [...new Set([...f.specs.map((s) => s.file), ...f.issues.keys()])];
}

export function planReload(input: ReloadInput): ReloadPlan {
  const files = new Map(input.files);
  const running = new Set(input.running);
  const actions: ReloadAction[] = [];
  const consumed: string[] = [];
  const seen = loadedFiles(input);
  for (const file of seen) {
    const prev = input.files.get(file) ?? { issues: [] };
    const issues = input.issues.get(file) ?? [];
    const spec = issues.length === 0 ? input.specs.find((s) => s.file === file) : undefined;
    const text = input.texts.get(file);
    if (!spec) {
      // An invalid file never reaches a server: the cluster keeps running on its last valid version.
      files.set(file, { ...prev, issues });
      actions.push({ kind: 'invalid', file, issues, ...(prev.spec ? { cluster: prev.spec.cluster } : {}) });
      continue;
    }
    files.set(file, { spec, ...(text !== undefined ? { text } : {}), issues: [] });
    if (prev.spec && prev.spec.cluster !== spec.cluster) {
      actions.push({ kind: 'stop', file, cluster: prev.spec.cluster, why: 'renamed', to: spec.cluster });
      running.delete(prev.spec.cluster);
    }
    if (!running.has(spec.cluster)) {
      actions.push({ kind: 'start', file, spec });
      running.add(spec.cluster);
      continue;
    }
    if (prev.text === text) {
      actions.push({ kind: 'valid', file, spec });
      continue;
    }
    const ours = input.selfWritten.get(file) === text;
    if (ours) consumed.push(file);
    // Only a committed change may move the primary: an edit not yet committed in the daemon's own
    // working tree is reconciled like any change, but never allowed a switchover.
    const committed = !ours && text !== undefined && input.committed(file) === text;
    actions.push({ kind: 'update', file, spec, byHuman: !ours, committed });
  }
  // A file that disappeared: its cluster is no longer managed.
  for (const [file, st] of input.files) {
    if (seen.includes(file)) continue;
    files.delete(file);
    // Moved (`git mv`): another file still names the cluster, and its loop goes on from there.
    const movedTo = [...files.values()].some((f) => f.spec?.cluster === st.spec?.cluster);
    if (st.spec && !movedTo) {
      actions.push({ kind: 'stop', file, cluster: st.spec.cluster, why: 'removed' });
      running.delete(st.spec.cluster);
    }
  }
  return { files, actions, consumed };
}

/** The files whose HEAD text planReload will ask for (valid, changed, and not our own write-back). */
export function committedTextWanted(facts: ReloadFacts): string[] {
  const asked: string[] = [];
  planReload({
    ...facts,
    committed: (file) => {
      asked.push(file);
      return undefined;
    },
  });
  return asked;
}
