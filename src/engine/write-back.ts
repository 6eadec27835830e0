// Write-backs that outlive Git being away. A failover (or a relocation) makes one bounded attempt
// to commit and push its edit; when that does not reach the upstream, the edit is recorded as
// pending in the cluster's state and the failover finishes (the servers are right already). The
// daemon then retries every pending record, with backoff, until it is pushed or someone else
// pushed the same change. Until then the daemon acts on the tree the servers have (effectiveSpec).
import { editSources } from '../config/edit.js';
import type { ClusterSpec } from '../core/model.js';
import type { ClusterState, PendingWriteBack } from '../core/state.js';
import type { FailoverPorts, ReconcilePorts, WriteBackResult, WriteBackRetryPorts } from '../core/ports.js';
import {
  afterFailedAttempt,
  effectiveSpec,
  mergedMessage,
  mergeSources,
  needsLastFailoverCheck,
  nextWriteBackAttemptAt,
  pendingWriteBackOf,
  pendingWriteBacks,
  sourcesMap,
  withoutPendingWriteBack,
  withPendingWriteBack,
  type EffectiveSpec,
  type Sources,
} from '../core/write-back.js';

export interface WriteBackOrder {
  readonly spec: ClusterSpec;
  readonly repoDir: string;
  readonly kind: PendingWriteBack['kind'];
  /** The edit as data: instance -> its new source (null: none). */
  readonly sources: ReadonlyMap<string, string | null>;
  readonly message: string;
  readonly failoverId?: string;
}

/** Did the write-back not reach the upstream in a way a later attempt may fix? Its reason, or undefined. */
export function notPushedReason(wb: WriteBackResult): string | undefined {
  if (wb.kind === 'failed') return wb.error;
  if (wb.kind === 'committed' && !wb.pushed && wb.retriable === true) return wb.why;
  return undefined;
}

/**
 * One bounded attempt at the edit (joined to the file's pending one, if any: a second failover
 * while Git is away writes both); when it is not pushed, the state records it as pending. Never
 * waits for Git beyond that one attempt.
 */
export async function writeBackOrPend(ports: Pick<FailoverPorts, 'writeBack' | 'state' | 'now'>, o: WriteBackOrder): Promise<WriteBackResult> {
  const { spec } = o;
  const pending = pendingWriteBackOf(await ports.state.read(spec.cluster), spec.file);
  const sources = mergeSources(pending, o.sources);
  const message = mergedMessage(o.message, pending);
  const wb = await ports.writeBack({ repoDir: o.repoDir, file: spec.file, edit: (text) => editSources(text, sourcesMap(sources)), message, author: spec.writeBack.author, push: spec.writeBack.push });
  const why = notPushedReason(wb);
  if (wb.kind === 'committed' && wb.pushed) {
    // Pushed: the pending edit went with it (it was in this commit, or in a local commit under it).
    await ports.state.update(spec.cluster, (s) => withoutPendingWriteBack(s, spec.file));
  } else if (why !== undefined) {
    const commit = wb.kind === 'committed' ? wb.commit : wb.kind === 'failed' ? wb.commit : undefined;
    const at = new Date(ports.now()).toISOString();
    await ports.state.update(spec.cluster, (s) =>
      withPendingWriteBack(s, { file: spec.file, kind: o.kind, sources, message, author: spec.writeBack.author, at, error: why, ...(o.failoverId ? { failoverId: o.failoverId } : {}), ...(commit ? { commit } : {}) }),
    );
  }
  return wb;
}

/** The spec a pass acts on: the file's, or, while the file has not caught up, the tree the servers have. */
export async function effectiveSpecOf(spec: ClusterSpec, ports: Pick<ReconcilePorts, 'state' | 'failoverInHistory'>): Promise<EffectiveSpec> {
  const state = await ports.state.read(spec.cluster);
  const f = state.lastFailover;
  const inHistory = f && needsLastFailoverCheck(spec, state) && ports.failoverInHistory ? await ports.failoverInHistory({ id: f.id, commit: f.commit }, spec.file) : true;
  return effectiveSpec(spec, state, inHistory);
}

export type RetryOutcome =
  | { readonly file: string; readonly kind: 'pushed'; readonly commit: string }
  | { readonly file: string; readonly kind: 'already'; readonly upstream: string }
  | { readonly file: string; readonly kind: 'failed'; readonly error: string; readonly attempts: number }
  | { readonly file: string; readonly kind: 'not-due'; readonly at: number }
  | { readonly file: string; readonly kind: 'not-acting' };

export interface RetryReport {
  readonly outcomes: readonly RetryOutcome[];
  /** What is still pending afterwards. */
  readonly pending: readonly PendingWriteBack[];
  /** When the earliest of those may be tried again (ms since the epoch); absent when none is pending. */
  readonly nextAt?: number;
}

/**
 * One round over the cluster's pending write-backs: each one that is due (or every one, `force`)
 * is tried again, after asking `mayAct`, never forcing a push. Pushed, or found already on the
 * upstream: the record goes (and the last failover's commit becomes the one the upstream has).
 * Failed: the record counts the attempt and keeps the error for WriteBackPending.
 */
export async function retryPendingWriteBacks(spec: ClusterSpec, ports: WriteBackRetryPorts, repoDir: string, o: { readonly force?: boolean } = {}): Promise<RetryReport> {
  const outcomes: RetryOutcome[] = [];
  for (const r of pendingWriteBacks(await ports.state.read(spec.cluster))) {
    const due = nextWriteBackAttemptAt(r);
    if (!o.force && ports.now() < due) {
      outcomes.push({ file: r.file, kind: 'not-due', at: due });
      continue;
    }
    if (ports.mayAct && !(await ports.mayAct())) {
      outcomes.push({ file: r.file, kind: 'not-acting' });
      break;
    }
    const map = sourcesMap(r.sources);
    const res = await ports.retryWriteBack({
      repoDir,
      file: r.file,
      applied: (text) => editApplied(text, r.sources),
      edit: (text) => editSources(text, map),
      message: r.message,
      author: r.author,
      failoverIds: r.failoverIds,
    });
    const at = new Date(ports.now()).toISOString();
    // Only the record as this attempt saw it is settled: one a new failover joined meanwhile stays.
    const same = (s: ClusterState) => {
      const now = pendingWriteBackOf(s, r.file);
      return now !== undefined && now.since === r.since && now.attempts === r.attempts;
    };
    switch (res.kind) {
      case 'pushed':
      case 'already': {
        const commitOf = (id: string) => (res.kind === 'pushed' ? (res.commits[id] ?? res.head) : res.upstream);
        await ports.state.update(spec.cluster, (s) => {
          const last = s.lastFailover;
          const next = same(s) ? withoutPendingWriteBack(s, r.file) : s;
          return last && r.failoverIds.includes(last.id) ? { ...next, lastFailover: { ...last, commit: commitOf(last.id) } } : next;
        });
        outcomes.push(res.kind === 'pushed' ? { file: r.file, kind: 'pushed', commit: res.head } : { file: r.file, kind: 'already', upstream: res.upstream });
        break;
      }
      case 'failed': {
        const after = afterFailedAttempt(r, at, res.error, res.commit);
        await ports.state.update(spec.cluster, (s) => (same(s) ? { ...s, pendingWriteBacks: { ...s.pendingWriteBacks, [r.file]: after } } : s));
        outcomes.push({ file: r.file, kind: 'failed', error: after.lastError, attempts: after.attempts });
        break;
      }
    }
  }
  const pending = pendingWriteBacks(await ports.state.read(spec.cluster));
  const nextAt = pending.length > 0 ? Math.min(...pending.map(nextWriteBackAttemptAt)) : undefined;
  return { outcomes, pending, ...(nextAt !== undefined ? { nextAt } : {}) };
}

/** Does the text already say what the edit says? (A text the edit cannot be made on does not.) */
function editApplied(text: string, sources: Sources): boolean {
  try {
    return editSources(text, sourcesMap(sources)) === text;
  } catch {
    return false;
  }
}
