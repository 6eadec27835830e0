// The records topogit keeps per cluster across runs and crashes: the journal of a failover in
// progress, the last failover (anti-flapping), acknowledgements, former primaries awaiting fencing
// or rejoin, and what was last seen of the primary. Plain data; the adapter stores it as JSON.
import type { Contender } from './candidate.js';

/** The steps a failover journals, in the order they happen (some are skipped when not needed). */
export const FAILOVER_PHASES = ['started', 'stonith', 'fenced-old', 'drained', 'undelayed', 'chosen', 'caught-up', 'promoted', 'routed', 'repointed', 'written-back', 'fence-attempted'] as const;
export type FailoverPhase = (typeof FAILOVER_PHASES)[number];

export interface JournalStep {
  readonly step: FailoverPhase;
  readonly at: string;
  readonly detail?: string;
}

export interface FailoverJournal {
  readonly id: string;
  readonly cluster: string;
  readonly failedPrimary: string;
  readonly startedAt: string;
  readonly trigger: 'auto' | 'manual';
  readonly candidate?: string;
  /** A human's choice (`failover --to`), kept so a resumed run promotes the same instance. */
  readonly to?: string;
  /** Replicas that could not apply their relay log in time: never promoted by this failover. */
  readonly undrained?: readonly string[];
  /** Every replica as the choice saw it (for the commit's evidence). */
  readonly ranked?: readonly Contender[];
  /** What the operator should know (a replica left behind, a catch-up, a failed write-back). */
  readonly notes?: readonly string[];
  /** `failover --force`: a primary that answers is fenced rather than the failover undone. */
  readonly forced?: boolean;
  /** The fence commands (failover.fence) that must succeed before anything is promoted. */
  readonly stonith?: readonly string[];
  /** The write-back commit, once made (null: nothing to commit or it failed before committing). */
  readonly commit?: string | null;
  readonly steps: readonly JournalStep[];
}

export interface FailoverRecord {
  readonly id: string;
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly trigger: 'auto' | 'manual';
  readonly commit: string | null;
  /** GTIDs the failed primary had that no survivor received, when known. */
  readonly lostGtids: string | null;
  readonly lostGtidsKnown: boolean;
}

export interface FormerPrimary {
  readonly name: string;
  readonly failoverId: string;
  readonly newPrimary: string;
  /** Set once it came back: its errant GTIDs (empty string: none). */
  readonly errant?: string;
  readonly fencedAt?: string;
}

export interface ClusterState {
  readonly journal?: FailoverJournal;
  readonly lastFailover?: FailoverRecord;
  readonly ackedAt?: string;
  readonly formerPrimaries: readonly FormerPrimary[];
  /** The failed primary's executed GTIDs from its last successful probe (daemon), for lost-GTID reports. */
  readonly lastPrimaryGtid?: { readonly name: string; readonly executed: string; readonly at: string };
  /** Each replica's last known seconds behind its source, while the primary was alive: once it is
   *  gone, Seconds_Behind_Master is NULL and only this says how far behind a candidate was. */
  readonly lastLag?: Readonly<Record<string, number>>;
  /** Instances an operator is working on (`topogit maintenance`), by name; see activeMaintenance. */
  readonly maintenance?: Readonly<Record<string, Maintenance>>;
  /** Each instance's server_id as last probed: a dead primary is recognised by it when its replicas
   *  name it by another address (an alias, a proxy). */
  readonly serverIds?: Readonly<Record<string, number>>;
  /** Write-backs that did not reach the upstream (the remote down, a push rejected, no commit
   *  possible), by file: the daemon retries them until pushed (src/engine/write-back.ts). */
  readonly pendingWriteBacks?: Readonly<Record<string, PendingWriteBack>>;
}

/**
 * A failover's or a relocation's edit of a topology file that is not on the upstream yet. The edit
 * is kept as data (instance -> source, null: no source), so it can be made again on any text, in
 * any clone. A second write-back of the same file while one is pending is merged into it.
 */
export interface PendingWriteBack {
  readonly file: string;
  readonly kind: 'failover' | 'relocation';
  /** The `sources` edit (config/edit.ts editSources), every pending change of the file merged, later ones winning. */
  readonly sources: Readonly<Record<string, string | null>>;
  /** The commit message; a merged record names every failover it records (`Failover-Id:` lines). */
  readonly message: string;
  readonly author: { readonly name: string; readonly email: string };
  /** The failovers this edit records, oldest first (empty for a relocation). */
  readonly failoverIds: readonly string[];
  /** ISO time the first write-back of the record was not pushed. */
  readonly since: string;
  /** Attempts so far, the first (the failover's own) included. */
  readonly attempts: number;
  readonly lastAttemptAt: string;
  /** Why the last attempt did not push (secrets redacted). */
  readonly lastError: string;
  /** The local commit, when one was made (it may be rebased later, or only in another clone). */
  readonly commit?: string;
}

/** An instance in maintenance: no failover because it is gone, no fencing, no drift repair on it,
 *  never promoted. ISO times; `until` null: until `topogit maintenance ... off`. */
export interface Maintenance {
  readonly since: string;
  readonly until: string | null;
  readonly reason: string | null;
}

export const EMPTY_STATE: ClusterState = { formerPrimaries: [] };

export function withoutJournal(s: ClusterState): ClusterState {
  const { journal: _journal, ...rest } = s;
  return rest;
}

export function journaled(j: FailoverJournal | undefined, phase: FailoverPhase): boolean {
  return j?.steps.some((s) => s.step === phase) ?? false;
}

/** Former primaries that came back and stay fenced, with why (errant GTIDs, or the policy). */
export function fencedMap(state: ClusterState): Map<string, string> {
  return new Map(
    state.formerPrimaries
      .filter((f) => f.errant !== undefined)
      .map((f) => [f.name, f.errant ? `former primary with errant GTIDs ${f.errant}` : 'former primary; formerPrimary: fence']),
  );
}

/** The instances in maintenance at `now`, by name (entries whose `until` has passed are ignored). */
export function activeMaintenance(state: ClusterState, now: number): Map<string, Maintenance> {
  return new Map(Object.entries(state.maintenance ?? {}).filter(([, m]) => m.until === null || Date.parse(m.until) > now));
}
