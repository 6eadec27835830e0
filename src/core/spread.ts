// Which clusters a daemon leads when several share them (coordination on etcd). Pure: the
// elections adapter reads who is alive and who leads what, asks this what to take and what to
// give up, and does it with etcd transactions (which settle any race).
//
// - Fair share: with M clusters and N live daemons each leads about M/N: a daemon takes a free
//   cluster at once while it leads fewer than ceil(M/N), and the daemon that ranks first for that
//   cluster (rendezvous hashing, so every daemon agrees without talking) goes first; the others
//   wait `graceMs`, and after that anyone takes it (a free cluster never stays leaderless).
// - Hysteresis: a daemon gives clusters up only when it has led more than its share (or its share
//   while another leads fewer than floor(M/N)) without a break for `settleMs`, never one that is
//   busy (a failover journal, a pass in flight), and then starts counting again: a daemon that
//   joins takes what is free first, and leadership moves by a few releases, not a reshuffle.
import { createHash } from 'node:crypto';

export interface SpreadMember {
  readonly name: string;
  /** The clusters this daemon manages (the topology files in its clone). */
  readonly clusters: readonly string[];
}

export interface SpreadInput {
  readonly self: string;
  /** Every live daemon, this one included. */
  readonly members: readonly SpreadMember[];
  /** Who leads each cluster that has a leader. */
  readonly leaders: ReadonlyMap<string, string>;
  /** When this daemon first saw each cluster without a leader (ms, its own clock). */
  readonly freeSince: ReadonlyMap<string, number>;
  /** Since when this daemon has been over its share, or null. */
  readonly overloadedSince: number | null;
  /** Clusters this daemon leads that it must not give up now. */
  readonly busy: ReadonlySet<string>;
  readonly now: number;
  readonly graceMs: number;
  readonly settleMs: number;
}

export interface SpreadDecision {
  /** Free clusters to campaign for, best first. */
  readonly take: readonly string[];
  /** Clusters to give up now (quiet ones, least preferred first). */
  readonly release: readonly string[];
  readonly overloadedSince: number | null;
  readonly share: { readonly floor: number; readonly ceil: number };
}

/** Rendezvous hashing: how much `member` wants `cluster` (every daemon computes the same). */
export function affinity(member: string, cluster: string): number {
  return createHash('sha1').update(`${member}\0${cluster}`).digest().readUInt32BE(0);
}

export function fairShare(members: readonly SpreadMember[], self: SpreadMember): { floor: number; ceil: number } {
  const all = new Set<string>(self.clusters);
  for (const m of members) for (const c of m.clusters) all.add(c);
  // Only daemons that manage something share the work (one still loading its files does not).
  const names = new Set([...members.filter((m) => m.clusters.length > 0).map((m) => m.name), ...(self.clusters.length > 0 ? [self.name] : [])]);
  const n = Math.max(1, names.size);
  return { floor: Math.floor(all.size / n), ceil: Math.ceil(all.size / n) };
}

export function decideSpread(i: SpreadInput): SpreadDecision {
  const me = i.members.find((m) => m.name === i.self) ?? { name: i.self, clusters: [] };
  const share = fairShare(i.members, me);
  const counts = new Map<string, number>(i.members.map((m) => [m.name, 0]));
  for (const l of i.leaders.values()) counts.set(l, (counts.get(l) ?? 0) + 1);
  const mine = me.clusters.filter((c) => i.leaders.get(c) === i.self);

  const take: string[] = [];
  const free = me.clusters.filter((c) => !i.leaders.has(c)).sort((a, b) => affinity(i.self, b) - affinity(i.self, a));
  for (const c of free) {
    // The first in rank among the daemons under their share that manage it goes at once (a daemon
    // that reaches its share stops being one of them).
    const eligible = i.members.filter((m) => m.clusters.includes(c) && (counts.get(m.name) ?? 0) < share.ceil).sort((a, b) => affinity(b.name, c) - affinity(a.name, c));
    // A cluster this daemon just handed over (its freeSince lies ahead) is left to the others.
    const first = eligible[0]?.name === i.self && (i.freeSince.get(c) ?? i.now) <= i.now;
    const waited = i.now - (i.freeSince.get(c) ?? i.now) >= i.graceMs;
    if (first || waited) {
      take.push(c);
      counts.set(i.self, (counts.get(i.self) ?? 0) + 1);
    }
  }

  // Only what another live daemon manages can be handed over (else it would come straight back).
  const others = i.members.filter((m) => m.name !== i.self);
  const releasable = mine.filter((c) => !i.busy.has(c) && others.some((m) => m.clusters.includes(c)));
  const starved = others.some((m) => (counts.get(m.name) ?? 0) < share.floor && releasable.some((c) => m.clusters.includes(c)));
  const excess = mine.length > share.ceil ? mine.length - share.ceil : mine.length === share.ceil && starved && mine.length - 1 >= share.floor ? 1 : 0;
  if (excess === 0 || releasable.length === 0) return { take, release: [], overloadedSince: null, share };
  const since = i.overloadedSince ?? i.now;
  if (i.now - since < i.settleMs) return { take, release: [], overloadedSince: since, share };
  const release = [...releasable].sort((a, b) => affinity(i.self, a) - affinity(i.self, b)).slice(0, excess);
  return { take, release, overloadedSince: i.now, share };
}
