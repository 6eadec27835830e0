// analyze: the holistic state of one cluster from one probe round, as Orchestrator's replication
// analysis does it: the primary's health is judged by its replicas too, not only by whether
// topogit can reach it. Pure.
import type { ClusterSpec, InstanceSpec, ProbeResult, ReplicaStatus } from './model.js';
import { endpointKey } from './model.js';

export type AnalysisCode =
  /** Primary unreachable and every reachable replica lost it: the only states that fail over. */
  | 'DeadPrimary'
  | 'DeadPrimaryAndSomeReplicas'
  /** Primary unreachable from topogit, but a replica still has it: topogit's network is suspect. */
  | 'UnreachablePrimary'
  /** Primary unreachable and none of its replicas either: nothing to promote, nothing confirms. */
  | 'NoReplicasReachable'
  /** Primary unreachable and it has no replicas in the file. */
  | 'DeadPrimaryWithoutReplicas'
  | 'PrimaryReachable';

export interface ReplicaEvidence {
  readonly name: string;
  readonly reachable: boolean;
  /** Is its IO thread connected to the primary? null when it cannot be probed. */
  readonly connected: boolean | null;
  readonly detail: string;
}

export interface Analysis {
  readonly code: AnalysisCode;
  /** The primary the analysis is about: the file's primary. */
  readonly primary: string;
  readonly replicas: readonly ReplicaEvidence[];
  readonly summary: string;
  /** Replicas that confirm the primary's death (their IO thread lost it on a connection error). */
  readonly confirmedBy: readonly string[];
  /** Replicas that say nothing: unreachable from topogit, or without evidence either way. */
  readonly silent: readonly string[];
  /** More than half of the primary's replicas confirm; replicas topogit cannot reach count against. */
  readonly quorum: boolean;
}

/**
 * May a failover go ahead on this analysis under `quorum`? `majority` (the default) needs more
 * than half of the primary's replicas to confirm its death, so topogit and a minority of replicas
 * cut off from the primary never promote one of their own while the primary takes writes.
 */
export function quorumMet(a: Analysis, quorum: 'majority' | 'any'): boolean {
  return triggersFailover(a.code) && (quorum === 'any' || a.quorum);
}

export function triggersFailover(code: AnalysisCode): boolean {
  return code === 'DeadPrimary' || code === 'DeadPrimaryAndSomeReplicas';
}

/** Does this channel point at `primary` (by address, or by the server id the replica reports)? */
function pointsAt(ch: ReplicaStatus, primary: InstanceSpec, primaryServerId: number | undefined): boolean {
  if (`${ch.sourceHost}:${ch.sourcePort}` === endpointKey(primary)) return true;
  return primaryServerId !== undefined && ch.sourceServerId === primaryServerId;
}

/**
 * The primary's server id as its replicas report it (Master_Server_Id of a channel that points at
 * its address), so a replica that names the primary differently (a DNS alias) still counts.
 */
export function primaryServerId(primary: InstanceSpec, probes: ReadonlyMap<string, ProbeResult>): number | undefined {
  for (const r of probes.values()) {
    if (!r.ok) continue;
    for (const c of r.state.replication) {
      if (`${c.sourceHost}:${c.sourcePort}` === endpointKey(primary) && c.sourceServerId) return c.sourceServerId;
    }
  }
  return undefined;
}

/** MySQL and MariaDB client errors that mean "could not reach the source" (CR_* 2002-2013). */
export const CONNECTION_ERRORS = new Set([2002, 2003, 2005, 2006, 2013, 2026, 1158, 1159, 1160, 1161]);

export function analyzeCluster(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, lastPrimaryServerId?: number): Analysis {
  const primary = spec.instances.find((i) => i.source === undefined) as InstanceSpec;
  // Its replicas say who it is (by address); a remembered id covers replicas that reach it through another address.
  const primaryId = primaryServerId(primary, probes) ?? lastPrimaryServerId;
  const p = probes.get(primary.name);
  const fileReplicas = spec.instances.filter((i) => i.source === primary.name);
  const alive = { primary: primary.name, replicas: [], confirmedBy: [], silent: [], quorum: false };
  if (p?.ok) return { ...alive, code: 'PrimaryReachable', summary: `${primary.name} is reachable` };
  // Proof of life: an answer, even an error (too many connections, access denied, a query that
  // timed out after the handshake), means the primary is alive. Never a reason to fail over.
  if (p?.answered) return { ...alive, code: 'PrimaryReachable', summary: `${primary.name} answers, with an error: ${p.error}` };
  const why = p?.ok === false ? p.error : 'not probed';
  // Replicas of the primary: the file's direct replicas, plus any member whose live channel points
  // at the primary (the file may be behind the servers).
  const members = spec.instances.filter((i) => i.name !== primary.name);
  const evidence: ReplicaEvidence[] = [];
  for (const m of members) {
    const r = probes.get(m.name);
    if (!r?.ok) {
      if (fileReplicas.includes(m)) evidence.push({ name: m.name, reachable: false, connected: null, detail: `unreachable: ${r?.ok === false ? r.error : 'not probed'}` });
      continue;
    }
    // Only a member replicating from the primary can say anything about it.
    const ch = r.state.replication.find((c) => pointsAt(c, primary, primaryId));
    if (!ch) continue;
    // Evidence that the primary is gone: the replica's IO thread lost it on a connection error
    // (reconnecting, or given up). Connecting without one yet, stopped by hand, or another error
    // (1045, 1236: the primary answered) says nothing either way.
    const lost = ch.ioThread !== 'yes' && CONNECTION_ERRORS.has(ch.lastIoErrno);
    const connected = ch.ioThread === 'yes' ? true : lost ? false : null;
    evidence.push({
      name: m.name,
      reachable: true,
      connected,
      detail: connected ? 'IO thread still connected to the primary' : `IO thread ${ch.ioThread}${ch.lastIoError ? `: ${ch.lastIoError}` : connected === null ? ' (stopped without a connection error: no evidence)' : ''}`,
    });
  }
  const reachable = evidence.filter((e) => e.reachable);
  const confirmedBy = evidence.filter((e) => e.connected === false).map((e) => e.name);
  const silent = evidence.filter((e) => e.connected === null).map((e) => e.name);
  const base = { primary: primary.name, replicas: evidence, confirmedBy, silent, quorum: confirmedBy.length * 2 > evidence.length };
  if (evidence.length === 0) return { ...base, code: 'DeadPrimaryWithoutReplicas', summary: `${primary.name} unreachable (${why}) and it has no replicas` };
  if (reachable.length === 0) return { ...base, code: 'NoReplicasReachable', summary: `${primary.name} unreachable (${why}) and none of its replicas can be reached or replicates from it` };
  const stillConnected = reachable.filter((e) => e.connected === true);
  if (stillConnected.length > 0) {
    return {
      ...base,
      code: 'UnreachablePrimary',
      summary: `${primary.name} unreachable from topogit (${why}), but ${stillConnected.map((e) => e.name).join(', ')} still replicate${stillConnected.length === 1 ? 's' : ''} from it: not failing over`,
    };
  }
  const confirming = reachable.filter((e) => e.connected === false);
  if (confirming.length === 0) {
    return { ...base, code: 'UnreachablePrimary', summary: `${primary.name} unreachable from topogit (${why}), and no reachable replica confirms it lost the primary: not failing over` };
  }
  const confirmers = confirming.map((e) => e.name).join(', ');
  if (reachable.length < evidence.length || confirming.length < reachable.length) {
    const quorum = base.quorum ? 'a majority' : `no majority (${confirming.length} of ${evidence.length})`;
    return {
      ...base,
      code: 'DeadPrimaryAndSomeReplicas',
      summary: `${primary.name} is dead (${why}); confirmed by ${confirmers}, ${quorum}; silent: ${silent.join(', ')} (unreachable or without evidence)`,
    };
  }
  return { ...base, code: 'DeadPrimary', summary: `${primary.name} is dead (${why}); confirmed by every replica: ${confirmers}` };
}
