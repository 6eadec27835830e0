// chooseCandidate: which replica of a dead primary to promote, and why. Pure.
// Candidates are reachable replicas of the dead primary whose promotion is not `never`, that did
// not stop on an SQL error and whose lag is within the policy; `prefer` ranks before `neutral`,
// then the most advanced by GTID (executed and retrieved), then file order.
import { compareGtid, gtidUnion, parseGtid, type GtidSet } from './gtid.js';
import type { ClusterSpec, Flavor, InstanceSpec, InstanceState, ProbeResult, ReplicaStatus } from './model.js';
import { endpointKey } from './model.js';

export interface Contender {
  readonly name: string;
  readonly promotion: InstanceSpec['promotion'];
  readonly executed: string;
  readonly retrieved: string;
  readonly lagSeconds: number | null;
  readonly eligible: boolean;
  /** Why it is or is not eligible. */
  readonly why: string;
}

export type CandidateChoice =
  | { readonly kind: 'promote'; readonly candidate: string; readonly ranked: readonly Contender[]; readonly reason: string }
  | { readonly kind: 'refuse'; readonly reason: string; readonly ranked: readonly Contender[] };

export interface CandidateOptions {
  readonly maxLagSeconds: number;
  /** A human's choice (`failover --to`): must still be eligible. */
  readonly to?: string;
  /** The last lag seen while the primary was alive (seconds behind is NULL once it is gone). */
  readonly lastLag?: ReadonlyMap<string, number>;
  /** Fenced former primaries: never promoted. */
  readonly fenced?: ReadonlySet<string>;
}

/** The replicas of the dead primary: in the file under it, or replicating from it live. */
export function replicasOf(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, primary: string): InstanceSpec[] {
  const p = spec.instances.find((i) => i.name === primary);
  if (!p) return [];
  return spec.instances.filter((i) => {
    if (i.name === primary) return false;
    const r = probes.get(i.name);
    const ch = r?.ok ? r.state.replication[0] : undefined;
    if (ch) return `${ch.sourceHost}:${ch.sourcePort}` === endpointKey(p);
    return i.source === primary;
  });
}

/** Everything a replica has or has received: what it will have once its relay log is applied. */
export function advancedSet(flavor: Flavor, s: InstanceState): GtidSet {
  const executed = parseGtid(flavor, s.gtid.executed);
  const ch: ReplicaStatus | undefined = s.replication[0];
  if (!ch?.retrievedGtid) return executed;
  return gtidUnion(executed, parseGtid(flavor, ch.retrievedGtid));
}

export function chooseCandidate(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, deadPrimary: string, o: CandidateOptions): CandidateChoice {
  const replicas = replicasOf(spec, probes, deadPrimary);
  const states = new Map<string, InstanceState>();
  for (const r of replicas) {
    const p = probes.get(r.name);
    if (p?.ok) states.set(r.name, p.state);
  }
  const flavor = [...states.values()][0]?.flavor;
  const contenders: Contender[] = replicas.map((r) => {
    const s = states.get(r.name);
    const base = { name: r.name, promotion: r.promotion };
    if (!s) return { ...base, executed: '', retrieved: '', lagSeconds: null, eligible: false, why: 'unreachable' };
    const ch = s.replication[0];
    const lag = ch?.secondsBehindSource ?? o.lastLag?.get(r.name) ?? null;
    const known = { ...base, executed: s.gtid.executed, retrieved: ch?.retrievedGtid ?? '', lagSeconds: lag };
    if (r.promotion === 'never') return { ...known, eligible: false, why: 'promotion: never' };
    if (o.fenced?.has(r.name)) return { ...known, eligible: false, why: 'fenced former primary' };
    // Only a member that was really replicating from the dead primary has its data.
    if (!ch) return { ...known, eligible: false, why: 'not replicating from it' };
    if (ch && (ch.lastSqlErrno !== 0 || (ch.sqlThread === 'no' && ch.lastSqlError !== ''))) {
      return { ...known, eligible: false, why: `stopped on an SQL error (${ch.lastSqlErrno}); its data cannot be trusted` };
    }
    if (lag !== null && lag > o.maxLagSeconds) return { ...known, eligible: false, why: `${lag}s behind (limit ${o.maxLagSeconds}s)` };
    return { ...known, eligible: true, why: lag === null ? 'eligible (lag unknown: its source is gone)' : `eligible (${lag}s behind)` };
  });

  // Rank: prefer before neutral, then how many others it is ahead of, then file order.
  const aheadOf = new Map<string, number>();
  for (const a of contenders) {
    const sa = states.get(a.name);
    let n = 0;
    for (const b of contenders) {
      const sb = states.get(b.name);
      if (!sa || !sb || a === b || !flavor) continue;
      if (compareGtid(advancedSet(flavor, sa), advancedSet(flavor, sb)) === 'ahead') n++;
    }
    aheadOf.set(a.name, n);
  }
  const order = new Map(spec.instances.map((i, n) => [i.name, n]));
  const rank = (c: Contender) => (c.promotion === 'prefer' ? 0 : 1);
  const ranked = [...contenders].sort(
    (a, b) => Number(b.eligible) - Number(a.eligible) || rank(a) - rank(b) || (aheadOf.get(b.name) ?? 0) - (aheadOf.get(a.name) ?? 0) || (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0),
  );
  if (o.to) {
    const chosen = ranked.find((c) => c.name === o.to);
    if (!chosen) return { kind: 'refuse', reason: `${o.to} is not a replica of ${deadPrimary}`, ranked };
    if (!chosen.eligible) return { kind: 'refuse', reason: `${o.to} cannot be promoted: ${chosen.why}`, ranked };
    return { kind: 'promote', candidate: chosen.name, ranked, reason: `chosen by the operator (--to ${o.to})` };
  }
  const best = ranked[0];
  if (!best || !best.eligible) {
    const why = contenders.length === 0 ? `${deadPrimary} has no replicas` : contenders.map((c) => `${c.name}: ${c.why}`).join('; ');
    return { kind: 'refuse', reason: `no replica of ${deadPrimary} can be promoted (${why})`, ranked };
  }
  const parts = [best.promotion === 'prefer' ? 'promotion: prefer' : 'promotion: neutral'];
  const ahead = aheadOf.get(best.name) ?? 0;
  if (ahead > 0) parts.push(`most advanced (ahead of ${ahead} other replica${ahead === 1 ? '' : 's'})`);
  else parts.push('as advanced as any other eligible replica');
  return { kind: 'promote', candidate: best.name, ranked, reason: parts.join(', ') };
}
