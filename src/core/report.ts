// What `status` and the daemon report about a cluster as a whole, beyond each instance's health:
// its failure shapes (core/shapes.ts) and its failover readiness (core/readiness.ts), from one
// probe round. Pure.
import { analyzeCluster, type Analysis } from './analysis.js';
import type { ClusterSpec, ProbeResult } from './model.js';
import { failoverReadiness, type Readiness } from './readiness.js';
import { detectShapes, type Shape } from './shapes.js';
import type { ClusterState } from './state.js';
import { describePendingWriteBack, pendingWriteBacks } from './write-back.js';

export interface ClusterReport {
  readonly shapes: readonly Shape[];
  readonly failover: Readiness;
  /** MariaDB: accounts other than topogit's that can write through read_only (SUPER or READ ONLY
   *  ADMIN), as `status` audits them; absent when not audited. */
  readonly readOnlyBypass?: readonly string[];
  /** The file's routers as `status` read them (nothing changed); absent without a routing section. */
  readonly routers?: readonly RouterStatus[];
  /** Write-backs not on the upstream yet (WriteBackPending), oldest first; empty when none. */
  readonly writeBackPending: readonly WriteBackPendingJson[];
  /** Which daemon leads the cluster, as the coordinator says (`status`); absent when not asked. */
  readonly leader?: LeaderJson;
}

/** Who leads a cluster: a daemon's name (etcd) or the file lease's holder, null when nobody does. */
export interface LeaderJson {
  readonly coordinator: 'file' | 'etcd';
  readonly name: string | null;
  readonly since: string | null;
}

/** A pending write-back as `status`, `/api/clusters` and the page show it (no secret: errors are redacted when recorded). */
export interface WriteBackPendingJson {
  readonly file: string;
  /** The commit's subject, e.g. `failover(shop): db001 -> db002`. */
  readonly subject: string;
  readonly since: string;
  readonly attempts: number;
  readonly lastAttemptAt: string;
  readonly lastError: string;
  /** The local commit, when one was made. */
  readonly commit: string | null;
  readonly failoverIds: readonly string[];
  /** One line: all of the above. */
  readonly reason: string;
}

export interface RouterStatus {
  /** e.g. `haproxy 127.0.0.1:9999`. */
  readonly router: string;
  readonly inStep: boolean;
  /** Why not: what would change, the router unreachable, a backend or server missing, or why it was not checked. */
  readonly detail: string;
}

/** The readiness as `status --json` and `/api/clusters` show it: candidate null when there is none. */
export interface ReadinessJson {
  readonly ready: boolean;
  readonly candidate: string | null;
  readonly reasons: readonly string[];
}

export function reportCluster(
  spec: ClusterSpec,
  probes: ReadonlyMap<string, ProbeResult>,
  state: ClusterState,
  now: number,
  analysis: Analysis = analyzeCluster(spec, probes),
): ClusterReport {
  return { shapes: detectShapes(spec, probes, analysis), failover: failoverReadiness(spec, probes, state, now), writeBackPending: writeBackPendingJson(state) };
}

export function writeBackPendingJson(state: ClusterState): WriteBackPendingJson[] {
  return pendingWriteBacks(state).map((p) => ({
    file: p.file,
    subject: p.message.split('\n')[0] ?? '',
    since: p.since,
    attempts: p.attempts,
    lastAttemptAt: p.lastAttemptAt,
    lastError: p.lastError,
    commit: p.commit ?? null,
    failoverIds: p.failoverIds,
    reason: describePendingWriteBack(p),
  }));
}

export function readinessJson(r: Readiness): ReadinessJson {
  return { ready: r.ready, candidate: r.candidate ?? null, reasons: [...r.reasons] };
}

/** A shape is the same shape while its code and instance stay the same (its summary may change). */
export function shapeKey(s: Shape): string {
  return `${s.code}:${s.instance}`;
}

/** Shapes that appeared and cleared between two rounds (by shapeKey). */
export function shapeChanges(before: readonly Shape[], after: readonly Shape[]): { readonly appeared: Shape[]; readonly cleared: Shape[] } {
  const was = new Set(before.map(shapeKey));
  const is = new Set(after.map(shapeKey));
  return { appeared: after.filter((s) => !was.has(shapeKey(s))), cleared: before.filter((s) => !is.has(shapeKey(s))) };
}
