// failoverReadiness: could an automatic failover happen right now if the primary died, which
// replica would it promote, and if none, why not. Asked before the failure, from the same probe
// round `status` shows, so an operator learns that a failover would be refused while the primary
// is still alive to fix it. Pure. Instances in maintenance: no failover for the primary's death,
// never a candidate.
import { blockedReason } from './reconcile.js';
import { chooseCandidate, channelFrom, type Contender } from './candidate.js';
import { CONNECTION_ERRORS, primaryServerId } from './analysis.js';
import { describeMaintenance, maintenanceExclusions } from './maintenance.js';
import type { ClusterSpec, InstanceSpec, ProbeResult, ReplicaStatus } from './model.js';
import { activeMaintenance, fencedMap, type ClusterState } from './state.js';

export interface Readiness {
  /** Would the daemon fail over automatically if the primary died now? */
  readonly ready: boolean;
  /** The replica it would promote; when not ready, the one a failover by hand would choose (if any). */
  readonly candidate?: string;
  /** Ready: what it would do, in one line. Not ready: each reason, one line each. */
  readonly reasons: readonly string[];
}

/** `ready: would promote db002 (...)` or `not ready: a; b`. */
export function readinessLine(r: Readiness): string {
  return `${r.ready ? 'ready' : 'not ready'}: ${r.reasons.join('; ')}`;
}

export function failoverReadiness(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, state: ClusterState, now: number): Readiness {
  const primary = spec.instances.find((i) => i.source === undefined);
  if (!primary) return { ready: false, reasons: ['the file has no primary'] };
  const reasons: string[] = [];

  // The policy.
  if (state.journal) reasons.push(`a failover of ${state.journal.failedPrimary} is in progress (started ${state.journal.startedAt})`);
  const maintenance = activeMaintenance(state, now).get(primary.name);
  if (maintenance) reasons.push(`${describeMaintenance(primary.name, maintenance)}: no failover`);
  if (!spec.failover.auto) reasons.push('failover.auto is false');
  else {
    const flapping = blockedReason(spec, state, now, false);
    const last = state.lastFailover;
    if (flapping !== undefined && last) {
      const left = Math.ceil((spec.failover.blockSeconds * 1000 - (now - Date.parse(last.at))) / 1000);
      reasons.push(`anti-flapping: the last failover (${last.from} -> ${last.to}) blocks another for ${left}s unless acknowledged`);
    }
  }

  // Quorum: who could confirm the primary's death? A replica of it in the file that is reachable
  // and whose IO thread is connected to it (or already lost it on a connection error).
  const replicas = spec.instances.filter((i) => i.source === primary.name);
  const id = primaryServerId(primary, probes);
  const confirmers = replicas.filter((r) => couldConfirm(probes.get(r.name), primary, id));
  const fence = spec.failover.fence.command.length > 0;
  const needed = spec.failover.quorum === 'majority' && !fence ? Math.floor(replicas.length / 2) + 1 : 1;
  if (replicas.length > 0 && confirmers.length < needed) {
    const how = spec.failover.quorum === 'majority' ? (fence ? 'failover.fence needs one' : 'quorum majority') : 'quorum any needs one';
    reasons.push(`only ${confirmers.length} of ${replicas.length} replica${replicas.length === 1 ? '' : 's'} could confirm a death (${how})`);
  }

  // The candidate, as if the primary were dead: its replicas replicate from it live, so the choice
  // works on the current probes. Delayed replicas (SQL_Delay > 0) are only promoted by `prefer`.
  const delayed = new Map<string, number>();
  for (const r of spec.instances) {
    const d = delayOf(probes.get(r.name), primary, id);
    if (d > 0 && r.promotion !== 'prefer') delayed.set(r.name, d);
  }
  const fenced = new Set([...fencedMap(state).keys(), ...delayed.keys()]);
  const choice = chooseCandidate(spec, probes, primary.name, {
    maxLagSeconds: spec.failover.maxLagSeconds,
    fenced,
    excluded: maintenanceExclusions(state, now),
    lastLag: new Map(Object.entries(state.lastLag ?? {})),
  });
  if (choice.kind === 'refuse') {
    const why = (c: Contender) => (delayed.has(c.name) ? `delayed ${delayed.get(c.name)} s` : shortWhy(c));
    const order = spec.instances.map((i) => i.name);
    const inFileOrder = [...choice.ranked].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    reasons.push(inFileOrder.length === 0 ? `${primary.name} has no replicas` : inFileOrder.map((c) => `${c.name} ${why(c)}`).join(', '));
    return { ready: false, reasons };
  }
  const best = choice.ranked.find((c) => c.name === choice.candidate);
  if (reasons.length > 0) return { ready: false, candidate: choice.candidate, reasons };
  const lag = best?.lagSeconds === null || best?.lagSeconds === undefined ? 'lag unknown' : `${best.lagSeconds}s behind`;
  return { ready: true, candidate: choice.candidate, reasons: [`would promote ${choice.candidate} (promotion: ${best?.promotion ?? 'neutral'}, ${lag})`] };
}

function couldConfirm(p: ProbeResult | undefined, primary: InstanceSpec, id: number | undefined): boolean {
  if (!p?.ok) return false;
  const ch = channelFrom(p.state, primary, id);
  return ch !== undefined && (ch.ioThread === 'yes' || CONNECTION_ERRORS.has(ch.lastIoErrno));
}

function delayOf(p: ProbeResult | undefined, primary: InstanceSpec, id: number | undefined): number {
  if (!p?.ok) return 0;
  const ch: ReplicaStatus | undefined = channelFrom(p.state, primary, id);
  return ch?.sqlDelay ?? 0;
}

/** A contender's why, short enough for one line: `stopped on an SQL error (1062)`, `promotion: never`. */
function shortWhy(c: Contender): string {
  return c.why.split(';')[0] ?? c.why;
}
