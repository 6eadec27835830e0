// What the daemon knows about each cluster at a moment: the data behind /readyz, /metrics and
// /api/clusters. Plain data, updated by the cluster loops and read by the HTTP server.
import type { CoordinationView } from '../coordination/coordinator.js';
import type { ClusterView } from '../core/classify.js';
import type { AnalysisCode } from '../core/analysis.js';
import type { Readiness } from '../core/readiness.js';
import type { Shape, ShapeCode } from '../core/shapes.js';
import type { HistoryEntry } from '../core/history.js';
import type { RouterStatus } from '../core/report.js';

export type ConditionType = 'Ready' | 'Degraded' | 'Drifted' | 'FailoverBlocked' | 'FileInvalid' | 'RoutingStale' | 'WriteBackPending';

export interface Condition {
  readonly type: ConditionType;
  readonly status: boolean;
  readonly reason: string;
  /** ISO time the status last changed. */
  readonly since: string;
}

export interface PassSummary {
  readonly id: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly outcome: 'ok' | 'failover' | 'applied' | 'reported' | 'blocked' | 'error' | 'standby';
  readonly detail: string;
}

export interface FailoverSummary {
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly commit: string | null;
  readonly trigger: 'auto' | 'manual';
}

export interface ClusterSnapshot {
  readonly name: string;
  readonly file: string;
  /** The live tree from the last probe round (null before the first one). */
  readonly view: ClusterView | null;
  readonly analysis: AnalysisCode | null;
  readonly conditions: readonly Condition[];
  readonly lastPass: PassSummary | null;
  readonly lastFailover: FailoverSummary | null;
  readonly fileValid: boolean;
  /** One line per problem when the file stopped validating (the cluster runs on its last valid version). */
  readonly fileIssues: readonly string[];
  readonly driftCount: number;
  /** Failure shapes seen in the last probe round (empty before the first). */
  readonly shapes: readonly Shape[];
  /** Could it fail over now if the primary died (null before the first probe round)? */
  readonly failover: Readiness | null;
  /** What `plan` would propose now, one line per step (empty without drift). */
  readonly drift: readonly string[];
  /** Recent failovers, relocations and switchovers, newest first. */
  readonly history: readonly HistoryEntry[];
  /** The routers after the last pass; empty without a routing section. */
  readonly routers: readonly RouterStatus[];
}

export interface DaemonSnapshot {
  readonly startedAt: string;
  /** Files loaded and every cluster probed at least once. */
  readonly ready: boolean;
  /** Does this daemon hold the lease (acts), or stand by? */
  readonly role: 'active' | 'standby';
  readonly clusters: readonly ClusterSnapshot[];
  /** Who leads what (`/api/coordination`); absent in tests that build snapshots by hand. */
  readonly coordination?: CoordinationView;
}

/** Counters and observations the metrics endpoint exposes; the loops call these. */
export interface MetricsSink {
  /** Statements sent to an instance (probes and changes), for topogit_statements_total. */
  statements(cluster: string, instance: string, kind: 'variables' | 'replica-status' | 'replicas' | 'action', n: number): void;
  observeProbe(cluster: string, instance: string, seconds: number, up: boolean): void;
  setInstance(cluster: string, instance: string, v: { up: boolean; lagSeconds: number | null; readOnly: boolean | null; maintenance?: boolean }): void;
  failover(cluster: string, atSeconds: number): void;
  reconcileError(cluster: string): void;
  setDrift(cluster: string, count: number): void;
  setFileValid(cluster: string, valid: boolean): void;
  setFailoverReady(cluster: string, ready: boolean): void;
  /** Is this router in step with the primary after the pass (topogit_router_in_step)? */
  setRouterInStep?(cluster: string, router: string, inStep: boolean): void;
  /** How many write-backs of the cluster are not on the upstream yet (topogit_write_back_pending). */
  setWriteBackPending?(cluster: string, pending: number): void;
  /** The failure shapes present now; any other shape the cluster had goes to 0. */
  setShapes(cluster: string, present: readonly ShapeCode[]): void;
}
