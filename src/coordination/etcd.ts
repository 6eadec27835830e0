// The etcd coordinator. Keys under the prefix (default /topogit/):
//   members/<name>   a live daemon (attached to its lease): the clusters it manages
//   leaders/<c>      the daemon that leads cluster c (attached to that daemon's lease)
//   locks/<c>        whoever acts on c now: a CLI command, or a leader during a pass that acts
//                    (attached to the holder's lease, so a holder that dies lets go after the TTL)
//   state/<c>        c's state: the failover journal, former primaries, anti-flap, maintenance, …
// A holder proves it still holds, before each irreversible step, with a transaction whose
// conditions are its keys' revisions (the fencing token); state writes carry the same conditions.
import { hostname } from 'node:os';
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

/**
 * The right to act on one cluster. A CLI command's hold has its lock from the start; a daemon's
 * pass holds leadership and takes the lock at its first step (passes that only look write nothing).
 */
export class EtcdHold implements ClusterHold {
  refusal: string | undefined;
  #lockMod: string | undefined;
  /** The lease of this daemon's other hold that has the lock (shared, never released here). */
  #sharedWith: string | undefined;

  constructor(
    private readonly etcd: EtcdClient,
    private readonly keys: Keys,
    private readonly cluster: string,
    private readonly lease: () => string | undefined,
    /** Why the holder's lease may have lapsed by its own clock (undefined: fresh). */
    private readonly stale: () => string | undefined,
    private readonly lockValue: LockValue,
    private readonly leader?: { readonly mod: string },
    lockMod?: string,
  ) {
    this.#lockMod = lockMod;
  }

  /** The conditions every fenced write carries; takes the lock first when this hold has none yet. */
  async fence(): Promise<Cmp[]> {
    const stale = this.stale();
    if (stale) throw new Error(stale);
    const leader: Cmp[] = this.leader ? [{ key: this.keys.leader(this.cluster), target: 'Mod', op: '==', value: this.leader.mod }] : [];
    const lease = this.lease();
    if (!lease) throw new Error('no etcd lease');
    // The same daemon's other work on the cluster (a pass, and a write-back retry beside it) holds
    // the lock under the same lease: shared, never released by this hold.
    if (this.#sharedWith === lease) return [...leader, { key: this.keys.lock(this.cluster), target: 'Lease', op: '==', value: lease }];
    if (this.#lockMod === undefined) {
      const r = await this.etcd.txn(`lock ${this.cluster}`, [...leader, { key: this.keys.lock(this.cluster), target: 'Create', op: '==', value: 0 }], [{ put: this.keys.lock(this.cluster), value: JSON.stringify(this.lockValue), lease }]);
      if (!r.succeeded) {
        const held = this.leader ? await this.etcd.get(this.keys.lock(this.cluster)) : null;
        if (held && held.lease === lease) {
          this.#sharedWith = lease;
          return [...leader, { key: this.keys.lock(this.cluster), target: 'Lease', op: '==', value: lease }];
        }
        throw new Error(this.leader ? `no longer the leader of ${this.cluster}, or a command holds its lock` : `${this.cluster} is locked`);
      }
      this.#lockMod = r.revision;
    }
    return [...leader, { key: this.keys.lock(this.cluster), target: 'Mod', op: '==', value: this.#lockMod }];
  }

  async confirm(): Promise<boolean> {
    try {
      const had = this.#lockMod !== undefined || this.#sharedWith !== undefined;
      const cmps = await this.fence();
      if (had) {
        // Read-only: the conditions alone, checked by the etcd leader with a quorum read.
        const r = await this.etcd.txn(`confirm ${this.cluster}`, cmps, []);
        if (!r.succeeded) throw new Error(this.leader ? `another daemon leads ${this.cluster} now` : `the lock on ${this.cluster} was lost`);
      }
      if (this.stale()) throw new Error(this.stale());
      this.refusal = undefined;
      return true;
    } catch (e) {
      this.refusal = (e as Error).message;
      return false;
    }
  }

  async release(): Promise<void> {
    if (this.#lockMod === undefined) return;
    const mod = this.#lockMod;
    this.#lockMod = undefined;
    await this.etcd.txn(`unlock ${this.cluster}`, [{ key: this.keys.lock(this.cluster), target: 'Mod', op: '==', value: mod }], [{ del: this.keys.lock(this.cluster) }]).catch(() => undefined);
  }
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
      const fence = this.hold ? await this.hold.fence() : [];
      const same: Cmp = kv ? { key, target: 'Mod', op: '==', value: kv.mod } : { key, target: 'Create', op: '==', value: 0 };
      const r = await this.etcd.txn(`write the state of ${cluster}`, [same, ...fence], [{ put: key, value: JSON.stringify(next) }]);
      if (r.succeeded) return next;
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
    try {
      lease = await this.etcd.grant(this.ttlSeconds);
    } catch (e) {
      throw new TopogitError('TOPOGIT_COORDINATOR', `cannot lock ${cluster}: ${(e as Error).message}`, 'check that etcd is up and has a quorum (--coordinator)');
    }
    let renewedAt = started;
    let lost: string | undefined;
    const renew = setInterval(() => {
      const sent = Date.now();
      this.etcd.keepalive(lease).then(
        (ttl) => (ttl > 0 ? (renewedAt = sent) : (lost = 'the lock lease expired')),
        () => undefined,
      );
    }, Math.round(ttlMs / 4));
    renew.unref();
    const value: LockValue = { holder: `${hostname()}:${process.pid}`, host: hostname(), pid: process.pid, command: r.command, since: new Date().toISOString() };
    const stale = () => lost ?? (Date.now() - renewedAt > (ttlMs * 3) / 4 ? `the lock on ${cluster} was not renewed for ${Date.now() - renewedAt} ms` : undefined);
    const giveUp = async (e: TopogitError): Promise<never> => {
      clearInterval(renew);
      await this.etcd.revoke(lease);
      throw e;
    };
    for (let waited = 0; ; waited = Date.now() - started) {
      const hold = new EtcdHold(this.etcd, this.keys, cluster, () => lease, stale, value);
      try {
        await hold.fence();
        const release = hold.release.bind(hold);
        return Object.assign(hold, {
          release: async () => {
            await release();
            clearInterval(renew);
            await this.etcd.revoke(lease);
          },
        });
      } catch (e) {
        if (/did not answer|etcd /.test((e as Error).message)) return giveUp(new TopogitError('TOPOGIT_COORDINATOR', `cannot lock ${cluster}: ${(e as Error).message}`, 'check that etcd is up and has a quorum'));
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
