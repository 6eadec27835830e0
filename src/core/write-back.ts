// Pending write-backs, decided purely: when to try again, how a second edit of a file joins one
// that is still pending, what an attempt leaves in the record, how it is reported (never with a
// secret), and whether an edit is already what a file says. The engine (src/engine/write-back.ts)
// does the Git work; the state (src/core/state.ts) keeps the records.
import type { ClusterSpec, InstanceSpec } from './model.js';
import type { ClusterState, PendingWriteBack } from './state.js';

/** The first retry comes this long after the failed attempt; each further one waits twice as long... */
export const RETRY_FIRST_MS = 250;
/** ...up to this, so a commit reaches the remote within about 2 s (plus one push) of it coming back. */
export const RETRY_CAP_MS = 2000;

/** The wait after the `attempts`-th attempt failed: 250 ms, 500 ms, 1 s, 2 s, 2 s, ... */
export function writeBackRetryDelayMs(attempts: number): number {
  const n = Math.max(1, Math.floor(attempts));
  return Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** Math.min(n - 1, 10));
}

/** When the record may be tried again (ms since the epoch). */
export function nextWriteBackAttemptAt(p: PendingWriteBack): number {
  return Date.parse(p.lastAttemptAt) + writeBackRetryDelayMs(p.attempts);
}

/** The pending records of a cluster, oldest first. */
export function pendingWriteBacks(state: ClusterState): PendingWriteBack[] {
  return Object.values(state.pendingWriteBacks ?? {}).sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
}

export function pendingWriteBackOf(state: ClusterState, file: string): PendingWriteBack | undefined {
  return state.pendingWriteBacks?.[file];
}

/** Is this failover's write-back still not on the upstream? */
export function isFailoverPending(state: ClusterState, failoverId: string): boolean {
  return pendingWriteBacks(state).some((p) => p.failoverIds.includes(failoverId));
}

export type Sources = Readonly<Record<string, string | null>>;

/** A `sources` edit as the Map config/edit.ts's editSources takes. */
export function sourcesMap(sources: Sources): Map<string, string | null> {
  return new Map(Object.entries(sources));
}

/**
 * The edit that makes `newPrimary` the primary of the file's tree: it loses its source; the old
 * primary and the new primary's former siblings (the old primary's other direct replicas) get
 * `source: newPrimary`. Deeper subtrees stay under their intermediate sources.
 */
export function promotionEdits(instances: readonly { name: string; source?: string }[], newPrimary: string): Map<string, string | null> {
  const old = instances.find((i) => i.source === undefined);
  const edits = new Map<string, string | null>([[newPrimary, null]]);
  if (!old || old.name === newPrimary) return edits;
  edits.set(old.name, newPrimary);
  for (const i of instances) if (i.source === old.name && i.name !== newPrimary) edits.set(i.name, newPrimary);
  return edits;
}

/** An edit made while another edit of the same file is pending: the pending one's, then this one's on top. */
export function mergeSources(pending: PendingWriteBack | undefined, next: ReadonlyMap<string, string | null> | Sources): Record<string, string | null> {
  const entries = next instanceof Map ? [...next.entries()] : Object.entries(next);
  return { ...(pending?.sources ?? {}), ...Object.fromEntries(entries) };
}

/**
 * The message of a write-back made while `pending` has no commit of its own: the earlier change
 * goes into this commit, so it names the earlier failovers too (their `Failover-Id:` lines are
 * how a clone finds whether a failover is in its history).
 */
export function mergedMessage(message: string, pending: PendingWriteBack | undefined): string {
  if (!pending || pending.commit !== undefined) return message;
  const subject = pending.message.split('\n')[0] ?? '';
  const ids = pending.failoverIds.filter((id) => !message.includes(`Failover-Id: ${id}`));
  const also = [`Also records the earlier write-back that was never committed: ${subject}`, ...ids.map((id) => `Failover-Id: ${id}`)];
  return `${message.replace(/\n+$/, '')}\n${also.join('\n')}\n`;
}

/** What the write-back that could not be pushed asks to be tried again. */
export interface NotPushed {
  readonly file: string;
  readonly kind: PendingWriteBack['kind'];
  readonly sources: Sources;
  readonly message: string;
  readonly author: PendingWriteBack['author'];
  readonly failoverId?: string;
  readonly at: string;
  readonly error: string;
  readonly commit?: string;
}

/** The state with the write-back recorded as pending (joined to the file's pending record, if any). */
export function withPendingWriteBack(state: ClusterState, n: NotPushed): ClusterState {
  const before = state.pendingWriteBacks?.[n.file];
  const ids = [...(before?.failoverIds ?? []), ...(n.failoverId && !before?.failoverIds.includes(n.failoverId) ? [n.failoverId] : [])];
  const commit = n.commit ?? before?.commit;
  const record: PendingWriteBack = {
    file: n.file,
    kind: before?.kind === 'failover' || n.kind === 'failover' ? 'failover' : 'relocation',
    sources: { ...(before?.sources ?? {}), ...n.sources },
    message: n.message,
    author: n.author,
    failoverIds: ids,
    since: before?.since ?? n.at,
    attempts: (before?.attempts ?? 0) + 1,
    lastAttemptAt: n.at,
    lastError: redactSecrets(n.error),
    ...(commit !== undefined ? { commit } : {}),
  };
  return { ...state, pendingWriteBacks: { ...state.pendingWriteBacks, [n.file]: record } };
}

export function withoutPendingWriteBack(state: ClusterState, file: string): ClusterState {
  if (!state.pendingWriteBacks?.[file]) return state;
  const { [file]: _gone, ...rest } = state.pendingWriteBacks;
  if (Object.keys(rest).length > 0) return { ...state, pendingWriteBacks: rest };
  const { pendingWriteBacks: _none, ...without } = state;
  return without;
}

/** The record after one more failed attempt. */
export function afterFailedAttempt(p: PendingWriteBack, at: string, error: string, commit?: string): PendingWriteBack {
  const c = commit ?? p.commit;
  return { ...p, attempts: p.attempts + 1, lastAttemptAt: at, lastError: redactSecrets(error), ...(c !== undefined ? { commit: c } : {}) };
}

/**
 * Git's messages may carry a remote's URL with its credentials (https://user:token@host/...), or
 * a helper's `password=`/`token=` line: those parts are replaced before anything is stored,
 * logged or shown.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@')
    .replace(/(password|passwd|token|secret|access_token|private_token|api_key|apikey)(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,]+)/gi, '$1$2***')
    .replace(/\b(authorization:\s*)(\S+\s+)?\S+/gi, '$1***');
}

/** One line about one record: what is not on the upstream, since when, how often tried, why. */
export function describePendingWriteBack(p: PendingWriteBack): string {
  const subject = p.message.split('\n')[0] ?? p.file;
  const commit = p.commit ? `; local commit ${p.commit.slice(0, 12)}` : '; no commit made yet';
  return `${subject} (${p.file}) not pushed since ${p.since}: ${p.attempts} attempt${p.attempts === 1 ? '' : 's'}${commit}; last error: ${redactSecrets(p.lastError)}`;
}

/** The WriteBackPending condition's reason, or undefined when nothing is pending. */
export function writeBackPendingReason(state: ClusterState): string | undefined {
  const all = pendingWriteBacks(state);
  return all.length === 0 ? undefined : all.map(describePendingWriteBack).join('; ');
}

/** Does the tree already say what the edit says (every named instance has that source)? Instances
 *  the tree lacks count as not applied. */
export function sourcesApplied(instances: readonly Pick<InstanceSpec, 'name' | 'source'>[], sources: Sources): boolean {
  return Object.entries(sources).every(([name, source]) => {
    const i = instances.find((x) => x.name === name);
    return i !== undefined && (i.source ?? null) === source;
  });
}

/** The spec with the edit applied to its instances (names the file lacks are skipped). */
export function applySources(spec: ClusterSpec, sources: Sources): ClusterSpec {
  const instances = spec.instances.map((i) => {
    if (!(i.name in sources)) return i;
    const source = sources[i.name];
    const { source: _old, ...rest } = i;
    return source === null || source === undefined ? rest : { ...rest, source };
  });
  return { ...spec, instances };
}

/** Must the engine ask Git whether the last failover's commit is in the file's history? Only when
 *  no write-back of the file is pending and the file still names the failed primary the primary. */
export function needsLastFailoverCheck(spec: ClusterSpec, state: ClusterState): boolean {
  const f = state.lastFailover;
  if (!f || pendingWriteBackOf(state, spec.file)) return false;
  const primary = spec.instances.find((i) => i.source === undefined)?.name;
  return primary === f.from && spec.instances.some((i) => i.name === f.to);
}

export interface EffectiveSpec {
  readonly spec: ClusterSpec;
  /** Why it differs from the file: its pending write-back, or the last failover's promotion; absent when it does not. */
  readonly why?: string;
}

/**
 * The tree the servers have while the file has not caught up: the file's spec with its pending
 * write-back applied, or, when none is pending, the last failover's promotion when the file still
 * names its failed primary the primary and its commit is not in the file's history
 * (`lastFailoverInHistory`, asked of Git only when needsLastFailoverCheck). A file the edit is
 * already in is returned as it is.
 */
export function effectiveSpec(spec: ClusterSpec, state: ClusterState, lastFailoverInHistory = true): EffectiveSpec {
  const pending = pendingWriteBackOf(state, spec.file);
  if (pending) {
    if (sourcesApplied(spec.instances, pending.sources)) return { spec };
    // The file no longer has an instance the edit names (a human removed it): no tree to make of it.
    const names = new Set(spec.instances.map((i) => i.name));
    if (Object.entries(pending.sources).some(([n, src]) => !names.has(n) || (src !== null && !names.has(src)))) return { spec };
    return { spec: applySources(spec, pending.sources), why: `the write-back ${pending.message.split('\n')[0] ?? ''} is not in ${spec.file} yet` };
  }
  const f = state.lastFailover;
  if (!f || lastFailoverInHistory || !needsLastFailoverCheck(spec, state)) return { spec };
  return { spec: applySources(spec, Object.fromEntries(promotionEdits(spec.instances, f.to))), why: `${spec.file} predates failover ${f.id} (${f.from} -> ${f.to})` };
}

/**
 * Why `apply` must not act on this file: it predates the last failover recorded in the state —
 * the file names the failed primary the primary, the live writable primary is the one it
 * promoted, and its commit is not in HEAD's history (or was never made and is pending). Undefined
 * when the file is not stale.
 */
export function staleFileReason(spec: ClusterSpec, state: ClusterState, livePrimaries: readonly string[], commitInHead: boolean): string | undefined {
  const f = state.lastFailover;
  if (!f) return undefined;
  const primary = spec.instances.find((i) => i.source === undefined)?.name;
  if (primary !== f.from || livePrimaries.length !== 1 || livePrimaries[0] !== f.to) return undefined;
  const notInGit = f.commit !== null ? !commitInHead : isFailoverPending(state, f.id) && !commitInHead;
  return notInGit ? predatesMessage({ id: f.id, from: f.from, to: f.to, at: f.at }) : undefined;
}

/** The refusal's words, the same from the state and from an upstream commit. */
export function predatesMessage(f: { readonly id: string; readonly from: string; readonly to: string; readonly at: string }): string {
  return `the file predates failover ${f.id} (${f.from} -> ${f.to} at ${f.at}); pull first`;
}

/** A topogit commit on the upstream that HEAD lacks, as the refusal names it. */
export function predatesCommitMessage(c: { readonly commit: string; readonly date: string; readonly subject: string; readonly body: string }): string | undefined {
  const m = /^(failover|relocate)\(([^)]+)\): (.+)$/.exec(c.subject.trim());
  if (!m) return undefined;
  const [, kind, , summary = ''] = m;
  if (kind === 'relocate') return `the file predates relocation ${c.commit.slice(0, 12)} (${summary} at ${c.date}); pull first`;
  const id = /^Failover-Id: (.+)$/m.exec(c.body)?.[1]?.trim() ?? c.commit.slice(0, 12);
  const [from = '?', to = '?'] = summary.split(' -> ');
  return predatesMessage({ id, from, to, at: c.date });
}
