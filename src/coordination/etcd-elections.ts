// A daemon's leaderships on etcd: one lease for the daemon (renewed every TTL/4), a member key
// that says which clusters it manages, and a leader key per cluster it leads, all attached to
// that lease, so a daemon that dies (or is paused) past its TTL loses them all at once in etcd.
// Which free clusters to take and which to give up comes from core/spread.ts; a transaction
// (create only if absent) settles every race. The daemon acts on a cluster only while
// `leads()`: the key is ours and the last renewal is younger than 3/4 of the TTL, by its own
// clock; and each step is proven again in etcd by the pass's hold (EtcdHold.confirm).
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { decideSpread, type SpreadMember } from '../core/spread.js';
import type { ClusterHold, ClusterLeadership, CoordinationView, CoordinatorMember, ElectionOptions, Elections } from './coordinator.js';
import { oneLine, type Kv } from './etcd-client.js';
import { EtcdHold, releaseSlot, type EtcdCoordinator, type LockSlot, type LockValue } from './etcd.js';

interface Member {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly since: string;
  readonly clusters: readonly string[];
}
interface Leader {
  readonly name: string;
  readonly since: string;
}

const GRACE_MS = 300;

export class EtcdElections implements Elections {
  readonly #ttlMs: number;
  readonly #since = new Date().toISOString();
  #lease: string | undefined;
  /** When the last renewal that etcd accepted was sent (our clock). */
  #renewedAt = 0;
  #clusters: readonly string[] = [];
  #registered: string | undefined;
  /** The clusters we lead: the leader key's revision (the fencing token) and since when. */
  readonly #leading = new Map<string, { mod: string; since: string }>();
  readonly #releasing = new Set<string>();
  readonly #inPass = new Map<string, Set<Promise<unknown>>>();
  /** The cluster locks this daemon's holds share, and how many holds use each. */
  readonly #slots = new Map<string, { slot: LockSlot; holds: number }>();
  /** A lock being let go, per cluster: the next pass waits for it before it looks. */
  readonly #unlocking = new Map<string, Promise<void>>();
  #members: Member[] = [];
  #leaders = new Map<string, Leader>();
  readonly #freeSince = new Map<string, number>();
  #overloadedSince: number | null = null;
  #problem: string | null = 'not started';
  /** Another live daemon has this one's name: it does not campaign. */
  #conflict: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #watches: { cancel(): Promise<void> }[] = [];
  #stopped = false;

  constructor(
    private readonly c: EtcdCoordinator,
    private readonly o: ElectionOptions,
  ) {
    this.#ttlMs = c.ttlSeconds * 1000;
  }

  async start(): Promise<void> {
    await this.tick();
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(Math.round(this.#ttlMs / 4), () => void this.#renew());
    every(Math.min(1000, Math.round(this.#ttlMs / 4)), () => void this.tick());
    // A leader key that goes (a daemon died, or let a cluster go) or a daemon that comes is seen at once.
    const soon = () => setImmediate(() => void this.tick());
    this.#watches.push(this.c.etcd.watchPrefix(`${this.c.keys.prefix}leaders/`, { onDelete: soon }));
    this.#watches.push(this.c.etcd.watchPrefix(`${this.c.keys.prefix}members/`, { onDelete: soon, onPut: soon }));
  }

  setClusters(names: readonly string[]): void {
    this.#clusters = [...names].sort();
    void this.tick();
  }

  #stale(): string | undefined {
    if (!this.#lease) return this.#problem ?? 'no etcd lease';
    const age = Math.round(performance.now() - this.#renewedAt);
    return age > (this.#ttlMs * 3) / 4 ? `the etcd lease was not renewed for ${age} ms${this.#problem ? ` (${this.#problem})` : ''}` : undefined;
  }

  leads(cluster: string): boolean {
    return this.#leading.has(cluster) && !this.#releasing.has(cluster) && this.#stale() === undefined && !this.#stopped;
  }

  whyNot(cluster: string): string {
    const stale = this.#stale();
    if (stale) return `not acting: ${stale}`;
    if (this.#releasing.has(cluster)) return `handing ${cluster} over to another daemon`;
    const l = this.#leaders.get(cluster);
    return l ? `standing by: ${l.name} leads ${cluster}` : `standing by: nobody leads ${cluster} yet`;
  }

  async pass<T>(cluster: string, fn: (hold: ClusterHold) => Promise<T>): Promise<T | undefined> {
    const token = this.#leading.get(cluster);
    if (!token || !this.leads(cluster)) return undefined;
    const lockValue: LockValue = { holder: this.o.name, host: hostname(), pid: process.pid, command: 'topogit watch', since: new Date().toISOString() };
    // This daemon's holds on the cluster (a pass, a write-back retry) share one lock; the last one
    // out lets it go. The hold is counted before anything is awaited, so a release in between
    // cannot leave a stale revision behind.
    const entry = this.#slots.get(cluster) ?? { slot: { mod: undefined }, holds: 0 };
    this.#slots.set(cluster, entry);
    entry.holds++;
    const done = async (): Promise<void> => {
      if (--entry.holds > 0) return;
      if (this.#slots.get(cluster) === entry) this.#slots.delete(cluster);
      const unlocking = releaseSlot(this.c.etcd, this.c.keys, cluster, entry.slot);
      this.#unlocking.set(cluster, unlocking);
      await unlocking;
      if (this.#unlocking.get(cluster) === unlocking) this.#unlocking.delete(cluster);
    };
    let run: Promise<T> | undefined;
    const running = this.#inPass.get(cluster) ?? new Set<Promise<unknown>>();
    try {
      // The lock a previous pass is letting go is gone before this one looks.
      await this.#unlocking.get(cluster);
      if (entry.slot.mod === undefined) {
        // A command holds the cluster: skip the pass. A lock of ours nothing here holds (a release
        // that failed) is taken back, and let go at the end.
        const lock = await this.c.etcd.get(this.c.keys.lock(cluster)).catch(() => undefined);
        if (lock === undefined || (lock && lock.lease !== this.#lease)) return undefined;
        if (lock && entry.slot.mod === undefined) entry.slot.mod = lock.mod;
      }
      const hold = new EtcdHold(this.c.etcd, this.c.keys, cluster, () => this.#lease, () => this.#stale(), lockValue, entry.slot, { mod: token.mod });
      run = Promise.resolve().then(() => fn(hold));
      running.add(run);
      this.#inPass.set(cluster, running);
      return await run;
    } finally {
      if (run) running.delete(run);
      if (running.size === 0 && this.#inPass.get(cluster) === running) this.#inPass.delete(cluster);
      await done();
    }
  }

  view(): CoordinationView {
    const counts = new Map<string, number>();
    for (const l of this.#leaders.values()) counts.set(l.name, (counts.get(l.name) ?? 0) + 1);
    const members: CoordinatorMember[] = this.#members.map((m) => ({ name: m.name, host: m.host, pid: m.pid, since: m.since, leads: counts.get(m.name) ?? 0 }));
    const clusters: ClusterLeadership[] = this.#clusters.map((c) => {
      const l = this.#leaders.get(c);
      return { cluster: c, leader: l?.name ?? null, since: l?.since ?? null, mine: this.leads(c) };
    });
    const stale = this.#stale();
    // One failed call (a member down) is not a problem; a lease not renewed, or a name taken, is.
    const problem = stale ?? this.#conflict ?? null;
    return { kind: 'etcd', endpoints: this.c.etcd.endpoints, self: this.o.name, ttlSeconds: this.c.ttlSeconds, healthy: problem === null, problem, members, clusters };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    // Bounded: a frozen etcd must not keep the daemon from exiting (the lease then expires by itself).
    await Promise.race([Promise.all(this.#watches.map((w) => w.cancel())), new Promise((r) => setTimeout(r, 500).unref())]);
    await this.#chain;
    // Revoking the lease deletes our member, leader and lock keys: the others take over now, not after the TTL.
    if (this.#lease) await this.c.etcd.revoke(this.#lease);
    for (const c of [...this.#leading.keys()]) this.#lost(c, 'stopping');
  }

  // ---------------------------------------------------------------------------------------------

  /** One look at etcd and what to do about it; never two at once. */
  tick(): Promise<void> {
    const next = this.#chain.then(() => (this.#stopped ? undefined : this.#tick()));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #renew(): Promise<void> {
    const lease = this.#lease;
    if (!lease || this.#stopped) return;
    const sent = performance.now();
    try {
      const ttl = await this.c.etcd.keepalive(lease);
      if (lease !== this.#lease) return;
      if (ttl > 0) {
        this.#renewedAt = sent;
        this.#health(null);
      } else {
        this.#dropLease('the etcd lease expired (this daemon was paused or cut off longer than its TTL)');
      }
    } catch (e) {
      this.#health(oneLine((e as Error).message));
    }
  }

  #dropLease(why: string): void {
    this.#lease = undefined;
    this.#registered = undefined;
    for (const c of [...this.#leading.keys()]) this.#lost(c, why);
    this.#health(why);
    void this.tick();
  }

  /** Told once when the coordinator stops answering and once when it answers again. */
  #health(problem: string | null): void {
    const was = this.#problem === null;
    this.#problem = problem;
    if (was !== (problem === null)) this.o.onHealth?.(problem === null, problem);
  }

  #lost(cluster: string, why: string): void {
    if (!this.#leading.delete(cluster)) return;
    this.#dropLock(cluster);
    this.#releasing.delete(cluster);
    this.o.onChange(cluster, false, why);
  }

  /** A cluster no longer ours: a lock of ours on it (none of our holds may use it now) goes too. */
  #dropLock(cluster: string): void {
    const lease = this.#lease;
    if (!lease || this.#slots.has(cluster)) return;
    void this.c.etcd.txn(`unlock ${cluster}`, [{ key: this.c.keys.lock(cluster), target: 'Lease', op: '==', value: lease }], [{ del: this.c.keys.lock(cluster) }]).catch(() => undefined);
  }

  async #tick(): Promise<void> {
    const k = this.c.keys;
    try {
      if (!this.#lease) {
        const sent = performance.now();
        this.#lease = await this.c.etcd.grant(this.c.ttlSeconds);
        this.#renewedAt = sent;
      }
      const lease = this.#lease;
      const me: Member = { name: this.o.name, host: hostname(), pid: process.pid, since: this.#since, clusters: this.#clusters };
      const text = JSON.stringify(me);
      if (this.#registered !== text) {
        // A name is one daemon's: another live daemon with it (another lease) is waited out, never overwritten.
        const r = await this.c.etcd.txn('register', [{ key: k.member(me.name), target: 'Create', op: '==', value: 0 }], [{ put: k.member(me.name), value: text, lease }]);
        if (!r.succeeded) {
          const other = await this.c.etcd.txn('register', [{ key: k.member(me.name), target: 'Lease', op: '==', value: lease }], [{ put: k.member(me.name), value: text, lease }]);
          if (!other.succeeded) {
            this.#conflict = `another live daemon is named ${me.name} (watch --name): not campaigning until it is gone`;
            throw new Error(this.#conflict);
          }
        }
        this.#conflict = undefined;
        this.#registered = text;
      }
      const all = await this.c.etcd.getPrefix(k.prefix + 'members/');
      const leaders = await this.c.etcd.getPrefix(k.prefix + 'leaders/');
      this.#members = all.flatMap((kv) => parse<Member>(kv)).filter((m) => typeof m.name === 'string');
      const leaderOf = new Map<string, Leader & { kv: Kv }>();
      for (const kv of leaders) for (const l of parse<Leader>(kv)) leaderOf.set(kv.key.slice((k.prefix + 'leaders/').length), { ...l, kv });
      this.#leaders = new Map([...leaderOf].map(([c, l]) => [c, { name: l.name, since: l.since }]));
      this.#health(this.#stale() === undefined ? null : this.#problem);

      // What we believed we lead and etcd no longer says we do.
      for (const [c, t] of this.#leading) {
        const l = leaderOf.get(c);
        if (!l || l.kv.mod !== t.mod || l.kv.lease !== lease) this.#lost(c, l ? `${l.name} leads ${c} now` : `the leader key of ${c} is gone`);
      }
      // A leader key with our lease that we do not know of (a campaign whose answer was lost): ours
      // when we manage the cluster, else given back.
      for (const [c, l] of leaderOf) {
        if (l.kv.lease !== lease || this.#leading.has(c) || this.#releasing.has(c)) continue;
        // (Not one we just handed over and whose resign failed: that one is resigned again.)
        const handedOver = (this.#freeSince.get(c) ?? 0) > Date.now();
        if (this.#clusters.includes(c) && l.name === me.name && !handedOver) {
          this.#leading.set(c, { mod: l.kv.mod, since: l.since });
          this.o.onChange(c, true, `this daemon leads ${c} (etcd, revision ${l.kv.mod})`);
        } else {
          await this.c.etcd.txn(`resign ${c}`, [{ key: k.leader(c), target: 'Mod', op: '==', value: l.kv.mod }], [{ del: k.leader(c) }]).catch(() => undefined);
        }
      }
      // Leadership of a cluster no longer managed here is given up.
      for (const c of [...this.#leading.keys()]) if (!this.#clusters.includes(c)) await this.#release(c, 'no longer managed by this daemon');

      const now = Date.now();
      for (const c of this.#clusters) {
        if (leaderOf.has(c)) this.#freeSince.delete(c);
        else if (!this.#freeSince.has(c)) this.#freeSince.set(c, now);
      }
      const members: SpreadMember[] = this.#members.map((m) => ({ name: m.name, clusters: m.clusters }));
      if (!members.some((m) => m.name === me.name)) members.push({ name: me.name, clusters: me.clusters });
      const decision = decideSpread({
        self: me.name,
        members,
        leaders: new Map([...leaderOf].map(([c, l]) => [c, l.name])),
        freeSince: this.#freeSince,
        overloadedSince: this.#overloadedSince,
        busy: new Set(this.#clusters.filter((c) => this.o.busy(c) || this.#inPass.has(c))),
        now,
        graceMs: GRACE_MS,
        settleMs: 2 * this.#ttlMs,
      });
      this.#overloadedSince = decision.overloadedSince;
      for (const c of decision.take) {
        if (this.#stale()) break;
        const since = new Date().toISOString();
        const r = await this.c.etcd.txn(`campaign ${c}`, [{ key: k.leader(c), target: 'Create', op: '==', value: 0 }], [{ put: k.leader(c), value: JSON.stringify({ name: me.name, since }), lease }]);
        if (!r.succeeded) continue;
        this.#leading.set(c, { mod: r.revision, since });
        this.#leaders.set(c, { name: me.name, since });
        this.#freeSince.delete(c);
        this.o.onChange(c, true, `this daemon leads ${c} (etcd, revision ${r.revision})`);
      }
      for (const c of decision.release) await this.#release(c, `handed over to spread the clusters (${decision.share.floor}-${decision.share.ceil} per daemon)`);
    } catch (e) {
      this.#health(oneLine((e as Error).message));
    }
  }

  /** Stops acting on `cluster`, lets its pass in flight finish, then deletes our leader key. */
  async #release(cluster: string, why: string): Promise<void> {
    const t = this.#leading.get(cluster);
    if (!t) return;
    this.#releasing.add(cluster);
    this.o.onChange(cluster, false, why);
    await Promise.all([...(this.#inPass.get(cluster) ?? [])].map((p) => p.catch(() => undefined)));
    await this.c.etcd.txn(`resign ${cluster}`, [{ key: this.c.keys.leader(cluster), target: 'Mod', op: '==', value: t.mod }], [{ del: this.c.keys.leader(cluster) }]).catch(() => undefined);
    this.#leading.delete(cluster);
    this.#releasing.delete(cluster);
    this.#dropLock(cluster);
    // Not taken back before the others had their chance.
    this.#freeSince.set(cluster, Date.now() + 2 * this.#ttlMs);
  }
}

function parse<T>(kv: Kv): T[] {
  try {
    return [JSON.parse(kv.value) as T];
  } catch {
    return [];
  }
}
