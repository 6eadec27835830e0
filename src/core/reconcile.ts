// decideReconcile: the next thing one reconcile pass does, from the state, the analysis and one
// probe round. Pure. In order: finish an interrupted failover; fail over when the policy allows
// (or say why not); fence and then rejoin (or keep fenced) a former primary that answers again;
// then correct the drift between the file and the servers, or only report it.
import type { Analysis } from './analysis.js';
import { quorumMet, triggersFailover } from './analysis.js';
import { canReplicateFrom } from './errant.js';
import type { ClusterSpec, ProbeResult } from './model.js';
import { intermediateLosses } from './shapes.js';
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
  /** A commit after the last failover's own names a former primary the primary again (a human repaired it). */
  readonly formerMadePrimaryByCommit?: boolean;
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
  /** A dead intermediate source: its orphaned replicas move under its nearest healthy ancestor
   *  (`moves`; `already` replicate from it), then the file is written back. Nothing is promoted. */
  | {
      readonly kind: 'relocate';
      readonly source: string;
      readonly target: string;
      readonly moves: readonly { readonly name: string; readonly waitForTarget: boolean }[];
      readonly already: readonly string[];
      readonly skipped: readonly { readonly name: string; readonly why: string }[];
    }
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

  const relocation = spec.failover.auto ? relocationStep(spec, probes, new Set(maintenance.keys())) : undefined;
  if (relocation) return relocation;

  const filePrimary = spec.instances.find((x) => x.source === undefined);
  for (const f of state.formerPrimaries) {
    // The file names it the primary: a human's commit after the failover made it so (forget it
    // as a former primary), or the failover's write-back never landed and the file is stale
    // (keep it fenced: a stale file is not a decision).
    if (f.name === filePrimary?.name && i.formerMadePrimaryByCommit) return { kind: 'forget-former', instance: f.name };
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
  const serverIds: Record<string, number> = { ...state.serverIds };
  for (const inst of spec.instances) {
    const r = probes.get(inst.name);
    const lag = r?.ok ? r.state.replication[0]?.secondsBehindSource : undefined;
    if (lag !== undefined && lag !== null) lastLag[inst.name] = lag;
    if (r?.ok) serverIds[inst.name] = r.state.serverId;
  }
  const same = JSON.stringify(lastLag) === JSON.stringify(state.lastLag ?? {}) && JSON.stringify(serverIds) === JSON.stringify(state.serverIds ?? {});
  if (state.lastPrimaryGtid?.name === primary.name && state.lastPrimaryGtid.executed === p.state.gtid.executed && same) return undefined;
  return { ...state, lastLag, serverIds, lastPrimaryGtid: { name: primary.name, executed: p.state.gtid.executed, at: new Date(now).toISOString() } };
}

/**
 * Orchestrator's DeadIntermediateMaster recovery: the replicas of a dead intermediate source move
 * under its nearest ancestor that answers, each only when that ancestor has (or, for one it lags,
 * will get within the wait) every transaction the replica has; one with errant transactions stays
 * where it is, reported. The first dead intermediate with something to do, or undefined.
 */
export function relocationStep(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, inMaintenance: ReadonlySet<string> = new Set()): ReconcileStep | undefined {
  const byName = new Map(spec.instances.map((i) => [i.name, i]));
  const primary = spec.instances.find((i) => i.source === undefined);
  const primaryProbe = primary ? probes.get(primary.name) : undefined;
  for (const loss of intermediateLosses(spec, probes)) {
    // A source in maintenance is down on purpose: its replicas wait for it.
    if (!loss.dead || inMaintenance.has(loss.source)) continue;
    // The nearest ancestor that answers (the dead source's source, or further up).
    let target = byName.get(loss.source)?.source;
    while (target !== undefined && !probes.get(target)?.ok) target = byName.get(target)?.source;
    const t = target !== undefined ? probes.get(target) : undefined;
    const targetSpec = target !== undefined ? byName.get(target) : undefined;
    if (!t?.ok || !targetSpec) continue;
    const moves: { name: string; waitForTarget: boolean }[] = [];
    const already: string[] = [];
    const skipped: { name: string; why: string }[] = [];
    for (const o of loss.orphans) {
      const p = probes.get(o.name);
      if (!p?.ok || inMaintenance.has(o.name)) {
        skipped.push({ name: o.name, why: p?.ok ? 'in maintenance' : 'unreachable' });
        continue;
      }
      const ch = p.state.replication[0];
      if (ch && `${ch.sourceHost}:${ch.sourcePort}` === `${targetSpec.host}:${targetSpec.port}`) {
        already.push(o.name);
        continue;
      }
      if (!o.lost) {
        skipped.push({ name: o.name, why: 'it has not lost its source on a connection error' });
        continue;
      }
      const reference = primaryProbe?.ok ? primaryProbe.state.gtid : t.state.gtid;
      const v = canReplicateFrom(p.state.flavor, p.state.gtid, t.state.gtid, reference);
      if (v.kind === 'errant') skipped.push({ name: o.name, why: `it has errant GTIDs ${v.errant}` });
      else if (v.kind === 'unknown') skipped.push({ name: o.name, why: `cannot compare GTIDs (${v.why})` });
      else moves.push({ name: o.name, waitForTarget: v.kind === 'source-behind' });
    }
    if (moves.length > 0 || already.length > 0) return { kind: 'relocate', source: loss.source, target: targetSpec.name, moves, already, skipped };
  }
  return undefined;
}

/** The write-back commit of a relocation: `relocate(shop): db003 db002 -> db001`, then the evidence. */
export function relocationCommitMessage(spec: ClusterSpec, step: Extract<ReconcileStep, { kind: 'relocate' }>): string {
  const moved = [...step.moves.map((m) => m.name), ...step.already];
  return [
    `relocate(${spec.cluster}): ${moved.join(' ')} ${step.source} -> ${step.target}`,
    '',
    `Analysis: DeadIntermediateSource - ${step.source} is unreachable and its replicas lost it on a connection error.`,
    `Moved under ${step.target}, its nearest source that answers, after a GTID check: ${moved.join(', ')}.`,
    ...step.skipped.map((s) => `Not moved: ${s.name}: ${s.why}.`),
    'Nothing was promoted.',
    '',
  ].join('\n');
}
