// The file coordinator (the default): one host. One lease record in `<clone>/.topogit` says which
// daemon acts on every cluster; commands and passes take a per-cluster lock file; the state is
// JSON under `.topogit/state`. Exactly the behaviour topogit had before coordinators existed.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { acquireLock } from '../adapters/lock.js';
import { topogitPaths } from '../adapters/paths.js';
import { StateStore } from '../adapters/state.js';
import type { StatePort } from '../core/ports.js';
import { Lease, readLeaseRecord } from '../daemon/lease.js';
import type { ClusterHold, CoordinationView, Coordinator, ElectionOptions, Elections, LockRequest } from './coordinator.js';

const FILE_TTL_MS = 3000;

export class FileCoordinator implements Coordinator {
  readonly kind = 'file' as const;
  readonly state: StatePort;

  constructor(private readonly cwd: string) {
    this.state = new StateStore(topogitPaths(cwd).state);
  }

  stateFor(_hold: ClusterHold | undefined): StatePort {
    return this.state;
  }

  async lockCluster(cluster: string, r: LockRequest): Promise<ClusterHold> {
    const lock = await acquireLock(cluster, {
      dir: topogitPaths(this.cwd).locks,
      timeoutMs: r.timeoutMs,
      command: r.command,
      ...(r.onWait ? { onWait: (h, ms) => r.onWait?.(h ? `pid ${h.pid} (${h.command})` : "another command", ms) } : {}),
    });
    return { confirm: async () => true, fresh: () => true, refusal: undefined, release: () => lock.release() };
  }

  async elections(o: ElectionOptions): Promise<Elections> {
    return new FileElections(this.cwd, o);
  }

  /** The lease's holder leads every cluster (while its claim stands). */
  async leaders(clusters: readonly string[]): Promise<Map<string, { name: string; since: string } | null>> {
    const r = await readLeaseRecord(topogitPaths(this.cwd).lease);
    const holder = r && Date.parse(r.expiresAt) > Date.now() ? { name: `${r.host}:${r.pid}`, since: r.acquiredAt } : null;
    return new Map(clusters.map((c) => [c, holder]));
  }

  async close(): Promise<void> {}
}

/** Every cluster follows the one lease: the daemon that holds it leads them all. */
class FileElections implements Elections {
  readonly #lease: Lease;
  #clusters: readonly string[] = [];
  #leading = false;

  constructor(
    private readonly cwd: string,
    private readonly o: ElectionOptions,
  ) {
    this.#lease = new Lease({
      dir: topogitPaths(cwd).lease,
      ttlMs: FILE_TTL_MS,
      renewEveryMs: 1000,
      identity: { id: randomUUID(), pid: process.pid, host: hostname() },
      onChange: (role, holder) => {
        this.#leading = role === 'active';
        const why = role === 'active' ? 'this daemon holds the lease and acts' : `standing by: another daemon holds the lease${holder ? ` (${holder.pid}@${holder.host})` : ''}`;
        // One lease for every cluster: one change ('' = all of them).
        o.onChange('', this.#leading, why);
      },
    });
  }

  async start(): Promise<void> {
    await this.#lease.tick();
    this.#lease.start();
  }

  setClusters(names: readonly string[]): void {
    this.#clusters = names;
  }

  leads(_cluster: string): boolean {
    return this.#lease.isActive();
  }

  whyNot(_cluster: string): string {
    return this.#lease.isActive() ? '' : 'standing by: another daemon holds the lease';
  }

  async pass<T>(cluster: string, fn: (hold: ClusterHold) => Promise<T>): Promise<T | undefined> {
    let lock;
    try {
      lock = await acquireLock(cluster, { dir: topogitPaths(this.cwd).locks, timeoutMs: 0, command: 'topogit watch' });
    } catch {
      return undefined;
    }
    try {
      const lease = this.#lease;
      return await fn({
        confirm: async () => lease.isActive(),
        fresh: () => lease.isActive(),
        get refusal() {
          return lease.isActive() ? undefined : 'this daemon no longer holds the lease';
        },
        release: async () => undefined,
      });
    } finally {
      await lock.release();
    }
  }

  view(): CoordinationView {
    const leads = this.#lease.isActive();
    return {
      kind: 'file',
      endpoints: topogitPaths(this.cwd).lease,
      self: `${hostname()}:${process.pid}`,
      ttlSeconds: FILE_TTL_MS / 1000,
      healthy: this.#lease.lastError === null,
      problem: this.#lease.lastError?.message ?? null,
      members: [],
      clusters: this.#clusters.map((c) => ({ cluster: c, leader: leads ? `${hostname()}:${process.pid}` : null, since: null, mine: leads })),
    };
  }

  async stop(): Promise<void> {
    await this.#lease.stop();
  }
}
