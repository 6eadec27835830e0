// The etcd coordinator. Keys under the prefix (default /topogit/):
//   members/<name>   a live daemon (attached to its lease): the clusters it manages
//   leaders/<c>      the daemon that leads cluster c (attached to that daemon's lease)
//   locks/<c>        whoever acts on c now: a CLI command, or a leader during a pass that acts
//                    (attached to the holder's lease, so a holder that dies lets go after the TTL)
//   state/<c>        c's state: the failover journal, former primaries, anti-flap, maintenance, …
// A holder proves it still holds, before each irreversible step, with a transaction whose
// conditions are its keys' revisions (the fencing token); state writes carry the same conditions.
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { TopogitError } from '../core/errors.js';
import type { StatePort } from '../core/ports.js';
import { EMPTY_STATE, type ClusterState } from '../core/state.js';
import type { ClusterHold, Coordinator, ElectionOptions, Elections, LockRequest } from './coordinator.js';
import { EtcdClient, type Cmp, type EtcdConnect } from './etcd-client.js';

export interface EtcdOpen extends Omit<EtcdConnect, 'callMs'> {
  readonly prefix: string;
  readonly ttlSeconds: number;
}

export interface Keys {
  readonly prefix: string;
  member(name: string): string;
  leader(cluster: string): string;
  lock(cluster: string): string;
  state(cluster: string): string;
}

export function keysUnder(prefix: string): Keys {
  return {
    prefix,
    member: (n) => `${prefix}members/${n}`,
    leader: (c) => `${prefix}leaders/${c}`,
    lock: (c) => `${prefix}locks/${c}`,
    state: (c) => `${prefix}state/${c}`,
  };
}

/** One call's deadline: well below any TTL, so a fencing check never outlives the lease it proves. */
export function callMsFor(ttlSeconds: number): number {
  return Math.min(1000, Math.round((ttlSeconds * 1000) / 4));
}

export interface LockValue {
  readonly holder: string;
  readonly host: string;
  readonly pid: number;
  readonly command: string;
  readonly since: string;
}

/** The cluster's lock as one process holds it: taken once, shared by that process's holds on the
 *  cluster (a pass and a write-back retry beside it), let go by whoever owns the slot. */
export interface LockSlot {
  mod: string | undefined;
}

/** Deletes the lock the slot holds (only if it is still the one it took). */
export async function releaseSlot(etcd: EtcdClient, keys: Keys, cluster: string, slot: LockSlot): Promise<void> {
  const mod = slot.mod;
  slot.mod = undefined;
  if (mod !== undefined) await etcd.txn(`unlock ${cluster}`, [{ key: keys.lock(cluster), target: 'Mod', op: '==', value: mod }], [{ del: keys.lock(cluster) }]).catch(() => undefined);
}

/**
 * The right to act on one cluster. A CLI command's hold has its lock from the start; a daemon's
 * pass holds leadership and takes the lock at its first step (passes that only look write nothing).
 */
export class EtcdHold implements ClusterHold {
  refusal: string | undefined;

  constructor(
    private readonly etcd: EtcdClient,
    private readonly keys: Keys,
    private readonly cluster: string,
    private readonly lease: () => string | undefined,
    /** Why the holder's lease may have lapsed by its own (monotonic) clock; undefined: fresh. */
    private readonly stale: () => string | undefined,
    private readonly lockValue: LockValue,
    private readonly slot: LockSlot,
    private readonly leader?: { readonly mod: string },
  ) {}

  fresh(): boolean {
    return this.stale() === undefined;
  }

  /** The conditions every fenced write carries; takes the lock first when the slot has none yet. */
  async fence(): Promise<{ cmps: Cmp[]; proven: boolean }> {
    const stale = this.stale();
    if (stale) throw new Error(stale);
    const leader: Cmp[] = this.leader ? [{ key: this.keys.leader(this.cluster), target: 'Mod', op: '==', value: this.leader.mod }] : [];
    const lease = this.lease();
    if (!lease) throw new Error('no etcd lease');
    let proven = false;
    if (this.slot.mod === undefined) {
      const r = await this.etcd.txn(`lock ${this.cluster}`, [...leader, { key: this.keys.lock(this.cluster), target: 'Create', op: '==', value: 0 }], [{ put: this.keys.lock(this.cluster), value: JSON.stringify(this.lockValue), lease }]);
      if (r.succeeded) {
        this.slot.mod = r.revision;
        proven = true;
      } else {
        // Ours already (taken by a transaction whose answer was lost): adopted, then proven below.
        const held = await this.etcd.get(this.keys.lock(this.cluster));
        if (!held || held.lease !== lease) throw new Error(this.leader ? `no longer the leader of ${this.cluster}, or a command holds its lock` : `${this.cluster} is locked`);
        this.slot.mod = held.mod;
      }
    }
    return { cmps: [...leader, { key: this.keys.lock(this.cluster), target: 'Mod', op: '==', value: this.slot.mod }], proven };
  }

  async confirm(): Promise<boolean> {
    try {
      const { cmps, proven } = await this.fence();
      if (!proven) {
        // Read-only: the conditions alone, checked by the etcd leader with a quorum read.
        const r = await this.etcd.txn(`confirm ${this.cluster}`, cmps, []);
        if (!r.succeeded) throw new Error(this.leader ? `another daemon leads ${this.cluster} now` : `the lock on ${this.cluster} was lost`);
      }
      const stale = this.stale();
      if (stale) throw new Error(stale);
      this.refusal = undefined;
      return true;
    } catch (e) {
      this.refusal = (e as Error).message;
      return false;
    }
  }

  /** The slot's owner lets the lock go (the last pass out, or the command). */
  async release(): Promise<void> {}
}

/** The cluster state records in etcd; writes through a hold are refused once it is lost. */
export class EtcdStateStore implements StatePort {
  constructor(
    private readonly etcd: EtcdClient,
    private readonly keys: Keys,
    private readonly hold?: EtcdHold,
  ) {}

  async read(cluster: string): Promise<ClusterState> {
    const kv = await this.etcd.get(this.keys.state(cluster));
    return kv ? { ...EMPTY_STATE, ...(JSON.parse(kv.value) as ClusterState) } : EMPTY_STATE;
  }

  async update(cluster: string, f: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    const key = this.keys.state(cluster);
    for (let attempt = 1; attempt <= 5; attempt++) {
      const kv = await this.etcd.get(key);
      const next = f(kv ? { ...EMPTY_STATE, ...(JSON.parse(kv.value) as ClusterState) } : EMPTY_STATE);
      const fence = this.hold ? (await this.hold.fence()).cmps : [];
      const same: Cmp = kv ? { key, target: 'Mod', op: '==', value: kv.mod } : { key, target: 'Create', op: '==', value: 0 };
      const text = JSON.stringify(next);
      const r = await this.etcd.txn(`write the state of ${cluster}`, [same, ...fence], [{ put: key, value: text }]);
      if (r.succeeded) return next;
      // A write whose first answer was lost may have been applied: then the state is already this.
      const now = await this.etcd.get(key);
      if (now && now.value === text && (!kv || BigInt(now.mod) > BigInt(kv.mod))) return next;
      if (this.hold && !(await this.hold.confirm())) throw new Error(`not writing the state of ${cluster}: ${this.hold.refusal ?? 'no longer holding it'}`);
    }
    throw new Error(`the state of ${cluster} kept changing under this write (5 attempts)`);
  }
}

export class EtcdCoordinator implements Coordinator {
  readonly kind = 'etcd' as const;
  readonly state: StatePort;
  readonly keys: Keys;

  private constructor(
    readonly etcd: EtcdClient,
    readonly ttlSeconds: number,
    prefix: string,
  ) {
    this.keys = keysUnder(prefix);
    this.state = new EtcdStateStore(etcd, this.keys);
  }

  static async open(o: EtcdOpen): Promise<EtcdCoordinator> {
    const etcd = await EtcdClient.connect({ ...o, callMs: callMsFor(o.ttlSeconds) });
    return new EtcdCoordinator(etcd, o.ttlSeconds, o.prefix);
  }

  stateFor(hold: ClusterHold | undefined): StatePort {
    return hold instanceof EtcdHold ? new EtcdStateStore(this.etcd, this.keys, hold) : this.state;
  }

  /** A command's lock: its own lease, renewed until release; waits for the holder to finish. */
  async lockCluster(cluster: string, r: LockRequest): Promise<ClusterHold> {
    const ttlMs = this.ttlSeconds * 1000;
    const started = Date.now();
    let lease: string;
    // Freshness by the monotonic clock, from before the grant was sent (never later than etcd's).
    let renewedAt = performance.now();
    try {
      lease = await this.etcd.grant(this.ttlSeconds);
    } catch (e) {
      throw new TopogitError('TOPOGIT_COORDINATOR', `cannot lock ${cluster}: ${(e as Error).message}`, 'check that etcd is up and has a quorum (--coordinator)');
    }
    let lost: string | undefined;
    const renew = setInterval(() => {
      const sent = performance.now();
      this.etcd.keepalive(lease).then(
        (ttl) => (ttl > 0 ? (renewedAt = sent) : (lost = 'the lock lease expired')),
        () => undefined,
      );
    }, Math.round(ttlMs / 4));
    renew.unref();
    const value: LockValue = { holder: `${hostname()}:${process.pid}`, host: hostname(), pid: process.pid, command: r.command, since: new Date().toISOString() };
    const stale = () => lost ?? (performance.now() - renewedAt > (ttlMs * 3) / 4 ? `the lock on ${cluster} was not renewed for ${Math.round(performance.now() - renewedAt)} ms` : undefined);
    const slot: LockSlot = { mod: undefined };
    const giveUp = async (e: TopogitError): Promise<never> => {
      clearInterval(renew);
      await this.etcd.revoke(lease);
      throw e;
    };
    for (let waited = 0; ; waited = Date.now() - started) {
      const hold = new EtcdHold(this.etcd, this.keys, cluster, () => lease, stale, value, slot);
      try {
        await hold.fence();
        return Object.assign(hold, {
          release: async () => {
            await releaseSlot(this.etcd, this.keys, cluster, slot);
            clearInterval(renew);
            await this.etcd.revoke(lease);
          },
        });
      } catch (e) {
        const m = (e as Error).message;
        if (/did not answer|etcd /.test(m)) return giveUp(new TopogitError('TOPOGIT_COORDINATOR', `cannot lock ${cluster}: ${m}`, 'check that etcd is up and has a quorum'));
        if (stale()) return giveUp(new TopogitError('TOPOGIT_COORDINATOR', `cannot lock ${cluster}: ${stale()}`, 'check that etcd is up and has a quorum'));
      }
      const holder = await this.etcd.get(this.keys.lock(cluster)).catch(() => null);
      const who = holder ? describeLock(holder.value) : 'someone';
      if (waited >= r.timeoutMs) return giveUp(new TopogitError('TOPOGIT_LOCKED', `cluster ${cluster} is locked by ${who} (etcd ${this.etcd.endpoints}); gave up after ${Math.round(waited / 1000)} s`, 'wait for it to finish, or raise --lock-timeout; the lock goes by itself when its holder dies'));
      r.onWait?.(who, waited);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async elections(o: ElectionOptions): Promise<Elections> {
    const { EtcdElections } = await import('./etcd-elections.js');
    return new EtcdElections(this, o);
  }

  async leaders(clusters: readonly string[]): Promise<Map<string, { name: string; since: string } | null>> {
    const kvs = await this.etcd.getPrefix(`${this.keys.prefix}leaders/`);
    const byCluster = new Map<string, { name: string; since: string }>();
    for (const kv of kvs) {
      try {
        const v = JSON.parse(kv.value) as { name: string; since: string };
        byCluster.set(kv.key.slice(`${this.keys.prefix}leaders/`.length), { name: v.name, since: v.since });
      } catch {
        // a key topogit did not write: nobody
      }
    }
    return new Map(clusters.map((c) => [c, byCluster.get(c) ?? null]));
  }

  async close(): Promise<void> {
    this.etcd.close();
  }
}

export function describeLock(text: string): string {
  try {
    const v = JSON.parse(text) as Partial<LockValue>;
    return `${v.holder ?? '?'} (${v.command ?? '?'}, since ${v.since ?? '?'})`;
  } catch {
    return 'an unreadable holder';
  }
}
