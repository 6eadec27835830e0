// Failure shapes: what is wrong with a cluster as a whole, beyond one instance's health, in the
// words Orchestrator's replication analysis taught operators (DeadIntermediateMaster, ...). Pure,
// from one probe round and the primary's analysis. Only a dead primary (src/core/analysis.ts) and
// a dead intermediate source are recovered; the others are warned about.
import type { Analysis } from './analysis.js';
import { CONNECTION_ERRORS } from './analysis.js';
import type { ClusterSpec, InstanceSpec, InstanceState, ProbeResult, ReplicaStatus } from './model.js';
import { endpointKey, isAlive } from './model.js';

export type ShapeCode =
  /** The primary is unreachable and its replicas confirm it (see the analysis for the quorum). */
  | 'DeadPrimary'
  | 'DeadPrimaryAndSomeReplicas'
  /** topogit cannot reach the primary, but a replica still replicates from it. */
  | 'UnreachablePrimary'
  /** A replica that others replicate from is unreachable and its replicas lost it: they are orphaned. */
  | 'DeadIntermediateSource'
  /** topogit cannot reach an intermediate source, but one of its replicas still replicates from it. */
  | 'UnreachableIntermediateSource'
  /** The primary answers, but not one of its reachable replicas is replicating (threads stopped or failing). */
  | 'AllReplicasNotReplicating'
  /** The primary answers topogit, but every reachable replica lost it: on a connection error (a network split), or refused (the replication user, 1045). */
  | 'PrimaryLostByReplicas'
  /** Semi-sync is on for the primary, but no reachable replica can acknowledge: commits wait for the semi-sync timeout. */
  | 'SemiSyncPrimaryWithoutAcks';

export interface Shape {
  readonly code: ShapeCode;
  /** The instance the shape is about (the primary, or the intermediate source). */
  readonly instance: string;
  /** The replicas concerned (confirming, orphaned, not replicating). */
  readonly replicas: readonly string[];
  readonly summary: string;
}

/** Does `ch` replicate from `src` (by address, or by the server id the replica reports)? */
function channelFrom(s: InstanceState, src: InstanceSpec, srcId: number | undefined): ReplicaStatus | undefined {
  return s.replication.find((c) => `${c.sourceHost}:${c.sourcePort}` === endpointKey(src) || (srcId !== undefined && c.sourceServerId === srcId));
}

/** A channel that lost its source on a connection error. */
export function lostOnConnectionError(ch: ReplicaStatus): boolean {
  return ch.ioThread !== 'yes' && CONNECTION_ERRORS.has(ch.lastIoErrno);
}

/**
 * Errors with which a source that answered refused a replica's IO thread: access denied (1045, a
 * wrong replication password: what real MariaDB servers report), host blocked or not allowed
 * (1129, 1130), an authentication method the replica cannot use (1251, 2059, 2061). Proof that
 * the source is alive, so never evidence of a death; but the replica has lost it all the same.
 */
export const REFUSED_ERRORS = new Set([1045, 1129, 1130, 1251, 2059, 2061]);

/** A channel that lost its source: on a connection error, or refused by it. */
function lostOrRefused(ch: ReplicaStatus): boolean {
  return ch.ioThread !== 'yes' && (CONNECTION_ERRORS.has(ch.lastIoErrno) || REFUSED_ERRORS.has(ch.lastIoErrno));
}

/** The reason in an IO thread's error, without its boilerplate: `error connecting to master '...' -
 *  retry-time: 2  maximum-retries: 100000  message: Access denied ...` says why after `message:`. */
function ioReason(error: string): string {
  return (/message: (.*)$/s.exec(error)?.[1] ?? error).slice(0, 80);
}

function stateOf(probes: ReadonlyMap<string, ProbeResult>, name: string): InstanceState | undefined {
  const p = probes.get(name);
  return p?.ok ? p.state : undefined;
}

/**
 * An intermediate source (a replica the file puts other instances under) that topogit cannot reach
 * and gets no answer from. Dead when at least one of its replicas lost it on a connection error and
 * none still replicates from it; unreachable (not dead) when one does.
 */
export interface IntermediateLoss {
  readonly source: string;
  readonly dead: boolean;
  /** Its replicas in the file, with what each says. */
  readonly orphans: readonly { readonly name: string; readonly reachable: boolean; readonly lost: boolean; readonly connected: boolean; readonly moved: boolean }[];
}

export function intermediateLosses(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>): IntermediateLoss[] {
  const out: IntermediateLoss[] = [];
  // One pass over the file (fleets of thousands: no instance × instance scan).
  const childrenOf = new Map<string, InstanceSpec[]>();
  for (const i of spec.instances) if (i.source !== undefined) childrenOf.set(i.source, [...(childrenOf.get(i.source) ?? []), i]);
  for (const src of spec.instances) {
    if (src.source === undefined) continue;
    const children = childrenOf.get(src.name) ?? [];
    if (children.length === 0 || isAlive(probes.get(src.name))) continue;
    const srcId = serverIdSeenBy(src, children, probes);
    const orphans = children.map((c) => {
      const s = stateOf(probes, c.name);
      const ch = s ? channelFrom(s, src, srcId) : undefined;
      // Moved: it replicates from someone else already (a relocation whose write-back is pending).
      const moved = s !== undefined && ch === undefined && s.replication.length > 0;
      return { name: c.name, reachable: s !== undefined, lost: ch !== undefined && lostOnConnectionError(ch), connected: ch?.ioThread === 'yes', moved };
    });
    if (!orphans.some((o) => o.lost || o.connected || o.moved)) continue;
    out.push({ source: src.name, dead: orphans.some((o) => o.lost || o.moved) && !orphans.some((o) => o.connected), orphans });
  }
  return out;
}

/** The server id of `src` as its replicas report it (Master_Server_Id of a channel at its address). */
function serverIdSeenBy(src: InstanceSpec, replicas: readonly InstanceSpec[], probes: ReadonlyMap<string, ProbeResult>): number | undefined {
  for (const r of replicas) {
    const s = stateOf(probes, r.name);
    const c = s?.replication.find((x) => `${x.sourceHost}:${x.sourcePort}` === endpointKey(src));
    if (c?.sourceServerId) return c.sourceServerId;
  }
  return undefined;
}

export function detectShapes(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, analysis: Analysis): Shape[] {
  const shapes: Shape[] = [];
  const primary = spec.instances.find((i) => i.source === undefined);
  if (!primary) return shapes;
  if (analysis.code === 'DeadPrimary' || analysis.code === 'DeadPrimaryAndSomeReplicas' || analysis.code === 'UnreachablePrimary') {
    shapes.push({ code: analysis.code, instance: primary.name, replicas: analysis.confirmedBy, summary: analysis.summary });
  }
  for (const loss of intermediateLosses(spec, probes)) {
    const lost = loss.orphans.filter((o) => o.lost).map((o) => o.name);
    const following = loss.orphans.filter((o) => o.connected).map((o) => o.name);
    shapes.push(
      loss.dead
        ? { code: 'DeadIntermediateSource', instance: loss.source, replicas: loss.orphans.map((o) => o.name), summary: `${loss.source} is dead (unreachable${lost.length ? `, and ${lost.join(', ')} lost it` : ''}); its replicas ${loss.orphans.map((o) => o.name).join(', ')} are orphaned` }
        : { code: 'UnreachableIntermediateSource', instance: loss.source, replicas: following, summary: `${loss.source} is unreachable from topogit, but ${following.join(', ')} still replicate${following.length === 1 ? 's' : ''} from it` },
    );
  }

  const p = stateOf(probes, primary.name);
  if (!p) return shapes;
  // The primary answers: how do its replicas see it?
  const replicas = spec.instances.filter((i) => i.source === primary.name).flatMap((i) => {
    const s = stateOf(probes, i.name);
    const ch = s ? channelFrom(s, primary, p.serverId) : undefined;
    return s && ch ? [{ name: i.name, state: s, ch }] : [];
  });
  if (replicas.length > 0) {
    if (replicas.every((r) => lostOrRefused(r.ch))) {
      shapes.push({
        code: 'PrimaryLostByReplicas',
        instance: primary.name,
        replicas: replicas.map((r) => r.name),
        summary: `${primary.name} answers topogit, but every replica lost it: ${replicas.map((r) => `${r.name} (${r.ch.lastIoErrno}: ${ioReason(r.ch.lastIoError)})`).join('; ')}`,
      });
    } else if (replicas.every((r) => r.ch.ioThread !== 'yes' || r.ch.sqlThread !== 'yes')) {
      shapes.push({
        code: 'AllReplicasNotReplicating',
        instance: primary.name,
        replicas: replicas.map((r) => r.name),
        summary: `no replica of ${primary.name} is replicating: ${replicas.map((r) => `${r.name} IO ${r.ch.ioThread} SQL ${r.ch.sqlThread}`).join(', ')}`,
      });
    }
  }
  if (p.semiSync?.source) {
    const ackers = replicas.filter((r) => r.state.semiSync?.replica && r.ch.ioThread === 'yes');
    if (ackers.length === 0) {
      shapes.push({
        code: 'SemiSyncPrimaryWithoutAcks',
        instance: primary.name,
        replicas: [],
        summary: `${primary.name} waits for semi-sync acknowledgements, but no reachable replica with semi-sync on is connected: each commit waits out rpl_semi_sync_master_timeout`,
      });
    }
  }
  return shapes;
}
