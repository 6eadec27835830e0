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
const CONNECTION_ERRORS = new Set([2002, 2003, 2005, 2006, 2013, 2026, 1158, 1159, 1160, 1161]);

export function analyzeCluster(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, lastPrimaryServerId?: number): Analysis {
  const primary = spec.instances.find((i) => i.source === undefined) as InstanceSpec;
  const primaryId = lastPrimaryServerId ?? primaryServerId(primary, probes);
  const p = probes.get(primary.name);
  const fileReplicas = spec.instances.filter((i) => i.source === primary.name);
  if (p?.ok) {
    return { code: 'PrimaryReachable', primary: primary.name, replicas: [], summary: `${primary.name} is reachable` };
  }
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
    // Evidence that the primary is gone: the replica is trying to reconnect, or gave up on a
    // connection error. An IO thread stopped by hand, or on another error (1236: the primary
    // answered), says nothing either way.
    const lost = ch.ioThread === 'connecting' || (ch.ioThread === 'no' && CONNECTION_ERRORS.has(ch.lastIoErrno));
    const connected = ch.ioThread === 'yes' ? true : lost ? false : null;
    evidence.push({
      name: m.name,
      reachable: true,
      connected,
      detail: connected ? 'IO thread still connected to the primary' : `IO thread ${ch.ioThread}${ch.lastIoError ? `: ${ch.lastIoError}` : connected === null ? ' (stopped without a connection error: no evidence)' : ''}`,
    });
  }
  const reachable = evidence.filter((e) => e.reachable);
  const base = { primary: primary.name, replicas: evidence };
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
  const confirmedBy = confirming.map((e) => e.name).join(', ');
  if (reachable.length < evidence.length || confirming.length < reachable.length) {
    const silent = evidence.length - confirming.length;
    return { ...base, code: 'DeadPrimaryAndSomeReplicas', summary: `${primary.name} is dead (${why}); confirmed by ${confirmedBy}; ${silent} replica(s) unreachable or without evidence` };
  }
  return { ...base, code: 'DeadPrimary', summary: `${primary.name} is dead (${why}); confirmed by every replica: ${confirmedBy}` };
}
