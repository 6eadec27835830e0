// Who may act on a cluster, and where its state lives. Chosen by `--coordinator` (or
// TOPOGIT_COORDINATOR):
//   file  (default) — single-host: the lease and the locks are files in `<clone>/.topogit`, the
//                     state is JSON there (one host, daemons sharing one directory).
//   etcd://HOST:PORT[,HOST:PORT...] / etcds://… — etcd v3: a leader per cluster spread across the
//                     daemons, fencing checks in transactions, the state shared by every host.
import { TopogitError } from '../core/errors.js';
import type { OpenSession, StatePort } from '../core/ports.js';

export interface CoordinatorConfig {
  /** `file`, or `etcd://h:p[,h:p]`, `etcds://…` */
  readonly url: string;
  /** Keys live under this prefix (etcd); default `/topogit/`. */
  readonly prefix: string;
  /** The etcd lease's TTL in seconds: a daemon (or CLI command) that stops renewing loses its role after this long. */
  readonly ttlSeconds: number;
  /** TLS for etcds:// (file paths). */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export const DEFAULT_PREFIX = '/topogit/';
export const DEFAULT_TTL_SECONDS = 5;

/** The right to act on one cluster: a CLI command's lock, or a daemon's leadership for one pass. */
export interface ClusterHold {
  /** Proves, now, that this process may still act on the cluster (with etcd: one transaction). Never throws. */
  confirm(): Promise<boolean>;
  /** Why the last confirm() said no. */
  readonly refusal: string | undefined;
  /** Instant, by this process's own clock: may it still send a statement (its lease is young enough)? */
  fresh(): boolean;
  release(): Promise<void>;
}

export interface LockRequest {
  readonly command: string;
  readonly timeoutMs: number;
  readonly onWait?: (holder: string, waitedMs: number) => void;
}

export interface CoordinatorMember {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly since: string;
  readonly leads: number;
}

export interface ClusterLeadership {
  readonly cluster: string;
  readonly leader: string | null;
  readonly since: string | null;
  readonly mine: boolean;
}

/** What `/api/coordination` and `status` show. */
export interface CoordinationView {
  readonly kind: 'file' | 'etcd';
  readonly endpoints: string;
  readonly self: string;
  readonly ttlSeconds: number;
  /** Can this daemon reach its coordinator and does it hold its lease? */
  readonly healthy: boolean;
  /** Why this daemon does not act, when it cannot (etcd unreachable, lease lost). */
  readonly problem: string | null;
  readonly members: readonly CoordinatorMember[];
  readonly clusters: readonly ClusterLeadership[];
}

export interface ElectionOptions {
  /** This daemon's identity (`watch --name`, default host:pid). */
  readonly name: string;
  /** A cluster it must not give up now (a failover journal, a pass in flight). */
  readonly busy: (cluster: string) => boolean;
  /** Called when this daemon starts or stops leading a cluster. */
  readonly onChange: (cluster: string, leads: boolean, why: string) => void;
  /** Called when the coordinator becomes unusable or usable again. */
  readonly onHealth?: (healthy: boolean, problem: string | null) => void;
}

export interface Elections {
  start(): Promise<void>;
  /** The clusters this daemon manages (its topology files); it campaigns only for these. */
  setClusters(names: readonly string[]): void;
  /** Local and instant: does this daemon lead the cluster now? */
  leads(cluster: string): boolean;
  /** Why it does not (another leads it, the coordinator is unreachable, …). */
  whyNot(cluster: string): string;
  /**
   * Runs one pass holding the cluster: `hold.confirm()` proves leadership before each step.
   * Undefined when the cluster is busy (a CLI command holds its lock).
   */
  pass<T>(cluster: string, fn: (hold: ClusterHold) => Promise<T>): Promise<T | undefined>;
  view(): CoordinationView;
  stop(): Promise<void>;
}

export interface Coordinator {
  readonly kind: 'file' | 'etcd';
  /** Every cluster's state; writes through it are not fenced (reads, and file mode). */
  readonly state: StatePort;
  /** The state, its writes fenced by `hold`: refused once the hold is lost. */
  stateFor(hold: ClusterHold | undefined): StatePort;
  /** A command's exclusive hold on a cluster; waits up to timeoutMs, then throws TOPOGIT_LOCKED. */
  lockCluster(cluster: string, r: LockRequest): Promise<ClusterHold>;
  elections(o: ElectionOptions): Promise<Elections>;
  /** Who leads each cluster now (for `status`): a daemon's name, or null when none does. */
  leaders(clusters: readonly string[]): Promise<Map<string, { readonly name: string; readonly since: string } | null>>;
  close(): Promise<void>;
}

export function parseCoordinatorUrl(url: string): { kind: 'file' } | { kind: 'etcd'; tls: boolean; hosts: string[] } {
  if (url === 'file') return { kind: 'file' };
  const m = /^(etcds?):\/\/(.+)$/.exec(url);
  if (!m) throw new TopogitError('TOPOGIT_USAGE', `--coordinator ${url}: expected file, etcd://HOST:PORT[,HOST:PORT...] or etcds://...`, 'e.g. --coordinator etcd://10.0.0.5:2379,10.0.0.6:2379,10.0.0.7:2379');
  const hosts = (m[2] as string).split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  for (const h of hosts) {
    if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(h)) throw new TopogitError('TOPOGIT_USAGE', `--coordinator ${url}: ${h} is not HOST:PORT`, 'e.g. etcd://10.0.0.5:2379');
  }
  if (hosts.length === 0) throw new TopogitError('TOPOGIT_USAGE', `--coordinator ${url}: no endpoint`, 'e.g. etcd://10.0.0.5:2379');
  return { kind: 'etcd', tls: m[1] === 'etcds', hosts };
}

/** Opens the coordinator the configuration names (etcd's client is loaded only when used). */
export async function openCoordinator(c: CoordinatorConfig, cwd: string, env: NodeJS.ProcessEnv): Promise<Coordinator> {
  const parsed = parseCoordinatorUrl(c.url);
  if (parsed.kind === 'file') {
    const { FileCoordinator } = await import('./file.js');
    return new FileCoordinator(cwd);
  }
  if (c.tls && !parsed.tls) throw new TopogitError('TOPOGIT_USAGE', '--etcd-ca/--etcd-cert/--etcd-key need an etcds:// coordinator', `use etcds://${parsed.hosts.join(',')}`);
  if (!/^\/[\w./-]*\/$/.test(c.prefix)) throw new TopogitError('TOPOGIT_USAGE', `--coordinator-prefix ${c.prefix}: expected a path that starts and ends with /`, 'e.g. /topogit/');
  if (!(c.ttlSeconds >= 2 && c.ttlSeconds <= 600)) throw new TopogitError('TOPOGIT_USAGE', `--coordinator-ttl ${c.ttlSeconds}: between 2 and 600 seconds (etcd's shortest lease is about 2 s)`, 'e.g. --coordinator-ttl 5');
  // Empty counts as unset (a CI secret that is not defined arrives as an empty variable).
  const user = env.TOPOGIT_ETCD_USER || undefined;
  const password = env.TOPOGIT_ETCD_PASSWORD || undefined;
  if ((user === undefined) !== (password === undefined)) throw new TopogitError('TOPOGIT_USAGE', 'TOPOGIT_ETCD_USER and TOPOGIT_ETCD_PASSWORD go together', 'set both, or neither');
  const { EtcdCoordinator } = await import('./etcd.js');
  return EtcdCoordinator.open({
    hosts: parsed.hosts,
    tls: parsed.tls,
    prefix: c.prefix,
    ttlSeconds: c.ttlSeconds,
    ...(c.tls ? { files: c.tls } : {}),
    ...(user !== undefined && password !== undefined ? { auth: { user, password } } : {}),
    cwd,
  });
}

/**
 * A coordinator opened on first use (a command that needs no lock and no state never loads the
 * etcd client), closed by whoever made it.
 */
export function lazyCoordinator(kind: 'file' | 'etcd', open: () => Promise<Coordinator>): Coordinator & { readonly opened: boolean } {
  let opening: Promise<Coordinator> | undefined;
  const get = () => (opening ??= open());
  return {
    kind,
    get opened() {
      return opening !== undefined;
    },
    state: {
      read: async (cluster) => (await get()).state.read(cluster),
      update: async (cluster, f) => (await get()).state.update(cluster, f),
    },
    stateFor(hold) {
      return {
        read: async (cluster) => (await get()).stateFor(hold).read(cluster),
        update: async (cluster, f) => (await get()).stateFor(hold).update(cluster, f),
      };
    },
    lockCluster: async (cluster, r) => (await get()).lockCluster(cluster, r),
    elections: async (o) => (await get()).elections(o),
    leaders: async (clusters) => (await get()).leaders(clusters),
    close: async () => {
      if (opening) await (await opening.catch(() => undefined))?.close();
    },
  };
}

/**
 * Connections whose every statement first asks `hold.fresh()`: a check proven in etcd a moment
 * ago is not trusted across a long wait (a catch-up, a verification, a pause of this process).
 */
export function guardedOpen(open: OpenSession, hold: ClusterHold): OpenSession {
  const refuse = () => new Error(`not acting: this process may no longer act on the cluster (${hold.refusal ?? 'its lease is not fresh'})`);
  return async (e, login, t) => {
    if (!hold.fresh()) throw refuse();
    const session = await open(e, login, t);
    return {
      query: (sql, values, timeoutMs) => (hold.fresh() ? session.query(sql, values, timeoutMs) : Promise.reject(refuse())),
      close: () => session.close(),
    };
  };
}
