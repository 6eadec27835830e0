// chooseCandidate: which replica of a dead primary to promote, and why. Pure.
// Candidates are reachable replicas of the dead primary whose promotion is not `never`, that did
// not stop on an SQL error and whose lag is within the policy; `prefer` ranks before `neutral`,
// then the most advanced by GTID (executed and retrieved), then file order.
import { formatMysqlGtidSet, gtidUnion, parseGtid, parseMysqlGtidSet, subtractMysql, type GtidSet, type MysqlGtidSet } from './gtid.js';
import { primaryServerId } from './analysis.js';
import { hasAll, parseMariadbEntries } from './errant.js';
import type { ClusterSpec, Flavor, GtidState, InstanceSpec, InstanceState, ProbeResult, ReplicaStatus } from './model.js';
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
  /** The dead primary's server id as remembered, for replicas that name it by another address. */
  readonly primaryServerId?: number;
  /** Fenced former primaries: never promoted. */
  readonly fenced?: ReadonlySet<string>;
  /** Never promoted either, with why (e.g. in maintenance). */
  readonly excluded?: ReadonlyMap<string, string>;
}

/** The channel of `s` that replicates from `primary` (by address, or by the server id it reports). */
export function channelFrom(s: InstanceState, primary: InstanceSpec, primaryId: number | undefined): ReplicaStatus | undefined {
  return s.replication.find((c) => `${c.sourceHost}:${c.sourcePort}` === endpointKey(primary) || (primaryId !== undefined && c.sourceServerId === primaryId));
}

/** The replicas of the dead primary: replicating from it live, or (when they cannot say) under it in the file. */
export function replicasOf(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, primary: string, knownServerId?: number): InstanceSpec[] {
  const p = spec.instances.find((i) => i.name === primary);
  if (!p) return [];
  const primaryId = primaryServerId(p, probes) ?? knownServerId;
  return spec.instances.filter((i) => {
    if (i.name === primary) return false;
    const r = probes.get(i.name);
    if (r?.ok && r.state.replication.length > 0) return channelFrom(r.state, p, primaryId) !== undefined;
    return i.source === primary;
  });
}

/**
 * Transactions a replica wrote itself that no other member has: its own server id (MariaDB,
 * through gtid_binlog_state) or server_uuid (MySQL). Replicas are read-only, so these are errant;
 * promoting it would make them history and lose what the others have at the same positions.
 */
export function localWrites(flavor: Flavor, s: InstanceState, others: readonly InstanceState[]): string {
  if (flavor === 'mariadb') {
    const own = parseMariadbEntries(s.gtid.binlogState || s.gtid.executed).filter((e) => e.serverId === s.serverId);
    const unshared = own.filter((e) => !others.some((o) => hasAll(flavor, o.gtid, { executed: `${e.domain}-${e.serverId}-${e.seq}` })));
    return unshared.map((e) => `${e.domain}-${e.serverId}-${e.seq}`).join(',');
  }
  if (!s.serverUuid) return '';
  const uuid = s.serverUuid.toLowerCase();
  const mine = parseMysqlGtidSet(s.gtid.executed).filter((g) => g.uuid === uuid);
  let rest: MysqlGtidSet = mine;
  for (const o of others) rest = subtractMysql(rest, parseMysqlGtidSet(o.gtid.executed));
  return formatMysqlGtidSet(rest);
}

/** Everything a replica has or has received: what it will have once its relay log is applied. */
export function advancedSet(flavor: Flavor, s: InstanceState): GtidSet {
  const executed = parseGtid(flavor, s.gtid.executed);
  const ch: ReplicaStatus | undefined = s.replication[0];
  if (!ch?.retrievedGtid) return executed;
  return gtidUnion(executed, parseGtid(flavor, ch.retrievedGtid));
}

export function chooseCandidate(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, deadPrimary: string, o: CandidateOptions): CandidateChoice {
  const replicas = replicasOf(spec, probes, deadPrimary, o.primaryServerId);
  const states = new Map<string, InstanceState>();
  for (const r of replicas) {
    const p = probes.get(r.name);
    if (p?.ok) states.set(r.name, p.state);
  }
  const flavor = [...states.values()][0]?.flavor;
  const deadSpec = spec.instances.find((i) => i.name === deadPrimary);
  const deadId = (deadSpec ? primaryServerId(deadSpec, probes) : undefined) ?? o.primaryServerId;
  const contenders: Contender[] = replicas.map((r) => {
    const s = states.get(r.name);
    const base = { name: r.name, promotion: r.promotion };
    if (!s) return { ...base, executed: '', retrieved: '', lagSeconds: null, eligible: false, why: 'unreachable' };
    const ch = deadSpec ? channelFrom(s, deadSpec, deadId) : s.replication[0];
    const lag = ch?.secondsBehindSource ?? o.lastLag?.get(r.name) ?? null;
    const known = { ...base, executed: s.gtid.executed, retrieved: ch?.retrievedGtid ?? '', lagSeconds: lag };
    if (r.promotion === 'never') return { ...known, eligible: false, why: 'promotion: never' };
    if (o.fenced?.has(r.name)) return { ...known, eligible: false, why: 'fenced former primary' };
    const excluded = o.excluded?.get(r.name);
    if (excluded !== undefined) return { ...known, eligible: false, why: excluded };
    // Only a member that was really replicating from the dead primary has its data.
    if (!ch) return { ...known, eligible: false, why: 'not replicating from it' };
    if (ch && (ch.lastSqlErrno !== 0 || (ch.sqlThread === 'no' && ch.lastSqlError !== ''))) {
      return { ...known, eligible: false, why: `stopped on an SQL error (${ch.lastSqlErrno}); its data cannot be trusted` };
    }
    // A delayed replica (MASTER_DELAY) is behind on purpose: never an automatic candidate unless
    // `promotion: prefer` (or named by --to); then it is caught up from a donor, and its lag
    // counts without the delay.
    const delay = ch.sqlDelay ?? 0;
    if (delay > 0 && r.promotion !== 'prefer' && o.to !== r.name) return { ...known, eligible: false, why: `delayed ${delay}s (MASTER_DELAY): not an automatic candidate unless promotion: prefer` };
    const realLag = lag !== null && delay > 0 ? Math.max(0, lag - delay) : lag;
    if (realLag !== null && realLag > o.maxLagSeconds) return { ...known, eligible: false, why: `${realLag}s behind (limit ${o.maxLagSeconds}s)` };
    const others = [...states.entries()].filter(([n]) => n !== r.name).map(([, x]) => x);
    const local = flavor ? localWrites(flavor, s, others) : '';
    if (local) return { ...known, eligible: false, why: `has errant local writes no other member has (${local})` };
    return { ...known, eligible: true, why: lag === null ? 'eligible (lag unknown: its source is gone)' : `eligible (${lag}s behind)` };
  });

  // Rank: prefer before neutral, then how many others it is ahead of, then file order.
  const aheadOf = new Map<string, number>();
  // What each holds (executed and received), computed once: the comparison is pairwise.
  const holds = new Map(contenders.flatMap((c) => {
    const s = states.get(c.name);
    return s ? [[c.name, withRetrieved(s)] as const] : [];
  }));
  for (const a of contenders) {
    const ga = holds.get(a.name);
    let n = 0;
    for (const b of contenders) {
      const gb = holds.get(b.name);
      if (!ga || !gb || a === b || !flavor) continue;
      // The same state is not ahead (most replicas of a healthy cluster: no GTID parsing needed).
      if (ga.executed === gb.executed && ga.binlogState === gb.binlogState) continue;
      // Ahead: it has (or has received) everything the other has, and more. Diverged is not ahead.
      if (hasAll(flavor, ga, gb) && !hasAll(flavor, gb, ga)) n++;
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

/** Its GTID state as if the relay log were applied: executed plus retrieved (what it holds). */
export function withRetrieved(s: InstanceState): GtidState {
  const r = s.replication[0]?.retrievedGtid;
  if (!r) return s.gtid;
  if (s.flavor === 'mysql') return { ...s.gtid, executed: s.gtid.executed ? `${s.gtid.executed},${r}` : r };
  // MariaDB: a retrieved GTID is also "had" at its own (domain, server) through the binlog state.
  const union = gtidUnion(parseGtid('mariadb', s.gtid.executed), parseGtid('mariadb', r));
  const text = union.flavor === 'mariadb' ? [...union.pos.values()].map((e) => `${e.domain}-${e.serverId}-${e.seq}`).join(',') : s.gtid.executed;
  return { ...s.gtid, executed: text, binlogState: [s.gtid.binlogState, r].filter(Boolean).join(',') };
}
