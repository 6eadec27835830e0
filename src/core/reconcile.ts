// decideReconcile: the next thing one reconcile pass does, from the state, the analysis and one
// probe round. Pure. In order: finish an interrupted failover; fail over when the policy allows
// (or say why not); fence and then rejoin (or keep fenced) a former primary that answers again;
// then correct the drift between the file and the servers, or only report it.
import type { Analysis } from './analysis.js';
import { quorumMet, triggersFailover } from './analysis.js';
import { canReplicateFrom } from './errant.js';
import type { ClusterSpec, ProbeResult } from './model.js';
import { DEFAULT_PLAN, isSwitchover, planCluster, type ClusterPlan } from './plan.js';
import { leaveAlone, maintenanceBlocksFailover } from './maintenance.js';
import { activeMaintenance, fencedMap, type ClusterState } from './state.js';

export interface ReconcileInput {
  readonly spec: ClusterSpec;
  readonly state: ClusterState;
  readonly analysis: Analysis;
  readonly probes: ReadonlyMap<string, ProbeResult>;
  readonly now: number;
  /** Did a human commit to the file after the last failover's commit (an acknowledgement)? */
  readonly acknowledgedByCommit: boolean;
  /** May drift correction move the primary role? Only after a commit changed the file's primary. */
  readonly allowSwitchover: boolean;
}

export type ReconcileStep =
  | { readonly kind: 'resume-failover' }
  | { readonly kind: 'fail-over' }
  | { readonly kind: 'blocked'; readonly reason: string }
  /** A commit made it the primary again (a human repaired it): it is no longer a former primary. */
  | { readonly kind: 'forget-former'; readonly instance: string }
  /** It answers and is writable: that is how split brain starts. Read-only first, decide after. */
  | { readonly kind: 'fence-former'; readonly instance: string }
  /** No errant GTIDs and the policy rejoins: replicate from its source in the file. */
  | { readonly kind: 'rejoin-former'; readonly instance: string; readonly source: string }
  /** It stays read-only and out of replication (errant GTIDs, or `formerPrimary: fence`). */
  | { readonly kind: 'keep-fenced'; readonly instance: string; readonly errant: string }
  /** Terminal: the plan for the rest of the drift, applied or only reported. */
  | { readonly kind: 'drift'; readonly plan: ClusterPlan; readonly apply: boolean };

/** Why automatic failover may not happen now, or undefined when it may. */
export function blockedReason(spec: ClusterSpec, state: ClusterState, now: number, acknowledgedByCommit: boolean): string | undefined {
  if (!spec.failover.auto) return 'failover.auto is false: fail over by hand with `topogit failover`';
  const last = state.lastFailover;
  if (!last) return undefined;
  const since = now - Date.parse(last.at);
  if (since >= spec.failover.blockSeconds * 1000) return undefined;
  if (state.ackedAt && Date.parse(state.ackedAt) > Date.parse(last.at)) return undefined;
  if (acknowledgedByCommit) return undefined;
  const left = Math.ceil((spec.failover.blockSeconds * 1000 - since) / 1000);
  return `anti-flapping: the last failover (${last.from} -> ${last.to}) was ${Math.round(since / 1000)}s ago; automatic failover is blocked for ${left}s more unless acknowledged (\`topogit ack ${spec.cluster}\` or a commit to ${spec.file})`;
}

/** Does the anti-flapping rule need to know whether a commit acknowledged the last failover? */
export function needsCommitAcknowledgement(spec: ClusterSpec, state: ClusterState, now: number): string | undefined {
  const commit = state.lastFailover?.commit;
  if (!spec.failover.auto || !commit) return undefined;
  return blockedReason(spec, state, now, false) !== undefined ? commit : undefined;
}

export function decideReconcile(i: ReconcileInput): ReconcileStep {
  const { spec, state, probes } = i;
  if (state.journal) return { kind: 'resume-failover' };
  const maintenance = activeMaintenance(state, i.now);
  if (triggersFailover(i.analysis.code)) {
    const m = maintenance.get(i.analysis.primary);
    if (m) return { kind: 'blocked', reason: maintenanceBlocksFailover(spec.cluster, i.analysis.primary, m) };
    const blocked = blockedReason(spec, state, i.now, i.acknowledgedByCommit);
    if (blocked) return { kind: 'blocked', reason: blocked };
    if (!quorumMet(i.analysis, spec.failover.quorum) && spec.failover.fence.command.length === 0) {
      return {
        kind: 'blocked',
        reason: `quorum: ${i.analysis.confirmedBy.join(', ')} confirm${i.analysis.confirmedBy.length === 1 ? 's' : ''} ${i.analysis.primary} is dead, but not a majority of its replicas (silent: ${i.analysis.silent.join(', ') || 'none'}); no automatic failover without failover.fence`,
      };
    }
    return { kind: 'fail-over' };
  }

  const filePrimary = spec.instances.find((x) => x.source === undefined);
  for (const f of state.formerPrimaries) {
    if (f.name === filePrimary?.name) return { kind: 'forget-former', instance: f.name };
    // An operator is working on it: no fencing, no rejoin until the maintenance ends.
    if (maintenance.has(f.name)) continue;
    const p = probes.get(f.name);
    if (!p?.ok) continue;
    if (!p.state.readOnly) return { kind: 'fence-former', instance: f.name };
    const np = filePrimary ? probes.get(filePrimary.name) : undefined;
    if (!filePrimary || !np?.ok) continue;
    const v = canReplicateFrom(p.state.flavor, p.state.gtid, np.state.gtid, np.state.gtid);
    const errant = v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : v.kind === 'unknown' ? `unknown (${v.why})` : '';
    const inFile = spec.instances.find((x) => x.name === f.name);
    const source = inFile?.source !== undefined ? spec.instances.find((x) => x.name === inFile.source) : undefined;
    if (errant === '' && spec.failover.formerPrimary === 'rejoin' && source) return { kind: 'rejoin-former', instance: f.name, source: source.name };
    if (f.errant === undefined) return { kind: 'keep-fenced', instance: f.name, errant };
  }

  const full = leaveAlone(planCluster(spec, probes, { ...DEFAULT_PLAN, fenced: fencedMap(state) }), spec, maintenance);
  // Moving the primary role is a decision a commit makes, not something drift repair infers.
  const plan: ClusterPlan =
    !i.allowSwitchover && full.steps.some(isSwitchover)
      ? {
          ...full,
          // The other steps were planned around the switchover: none of them runs without it.
          steps: [],
          notices: [...full.notices, { kind: 'refused', about: 'switchover', message: "the live primary differs from the file, but no commit changed the file's primary since: no switchover, nothing applied" }],
        }
      : full;
  return { kind: 'drift', plan, apply: plan.steps.length > 0 && spec.failover.reconcile === 'auto' && i.analysis.code === 'PrimaryReachable' };
}

/** The primary's executed GTIDs and every replica's lag from a good probe: what a later failover
 *  may lose, and how far behind each candidate was. Undefined when nothing changed. */
export function rememberPrimary(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, state: ClusterState, now: number): ClusterState | undefined {
  const primary = spec.instances.find((x) => x.source === undefined);
  const p = primary ? probes.get(primary.name) : undefined;
  if (!primary || !p?.ok) return undefined;
  const lastLag: Record<string, number> = {};
  for (const inst of spec.instances) {
    const r = probes.get(inst.name);
    const lag = r?.ok ? r.state.replication[0]?.secondsBehindSource : undefined;
    if (lag !== undefined && lag !== null) lastLag[inst.name] = lag;
  }
  const sameLag = JSON.stringify(lastLag) === JSON.stringify(state.lastLag ?? {});
  if (state.lastPrimaryGtid?.name === primary.name && state.lastPrimaryGtid.executed === p.state.gtid.executed && sameLag) return undefined;
  return { ...state, lastLag, lastPrimaryGtid: { name: primary.name, executed: p.state.gtid.executed, at: new Date(now).toISOString() } };
}
