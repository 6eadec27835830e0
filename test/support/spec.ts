// Cluster and instance specs for tests, built one way everywhere: the sandbox the MariaDB fixture
// rows were captured from (db00N on 127.0.0.1N:3306, server_id N), the cluster the MySQL manual's
// rows describe, and the topology file text the sandbox writes.
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import type { ClusterSpec, CredentialsSpec, InstanceSpec, Promotion } from '../../src/core/model.js';

export const CREDENTIALS: CredentialsSpec = {
  admin: { user: 'topogit', passwordEnv: 'TOPOGIT_PASSWORD' },
  replication: { user: 'repl', passwordEnv: 'TOPOGIT_REPL_PASSWORD' },
};

/** A cluster with the defaults a file without `flavor`, `credentials`, `failover` or `writeBack` gets. */
export function clusterSpec(cluster: string, instances: readonly InstanceSpec[], over: Partial<Omit<ClusterSpec, 'cluster' | 'instances'>> = {}): ClusterSpec {
  return { cluster, flavor: 'auto', credentials: CREDENTIALS, instances, failover: DEFAULT_FAILOVER, writeBack: DEFAULT_WRITE_BACK, file: `topologies/${cluster}.yaml`, ...over };
}

/** One instance on port 3306 (or `port`), `neutral` (the file's default) unless told. */
export function instance(name: string, host: string, o: { source?: string; promotion?: Promotion; port?: number } = {}): InstanceSpec {
  return { name, host, port: o.port ?? 3306, ...(o.source !== undefined ? { source: o.source } : {}), promotion: o.promotion ?? 'neutral' };
}

// --- The captured sandbox -------------------------------------------------------------------

/** Members of the sandbox the fixture rows come from; `Rows.as(n)` prints server n's rows. */
export const SANDBOX_HOST = {
  db001: '127.0.0.11',
  db002: '127.0.0.12',
  db003: '127.0.0.13',
  db004: '127.0.0.14',
  db005: '127.0.0.15',
} as const;
export type SandboxName = keyof typeof SANDBOX_HOST;
export const SERVER_ID: Readonly<Record<SandboxName, number>> = { db001: 1, db002: 2, db003: 3, db004: 4, db005: 5 };

/**
 * A sandbox cluster from `name: source` pairs (null: the primary), in the order given (file
 * order). Every member is `prefer` unless `promotion` says otherwise.
 */
export function sandboxSpec(
  cluster: string,
  sources: Readonly<Partial<Record<SandboxName, SandboxName | null>>>,
  promotion: Readonly<Partial<Record<SandboxName, Promotion>>> = {},
  over: Partial<Omit<ClusterSpec, 'cluster' | 'instances'>> = {},
): ClusterSpec {
  const instances = (Object.entries(sources) as [SandboxName, SandboxName | null][]).map(([name, source]) =>
    instance(name, SANDBOX_HOST[name], { ...(source ? { source } : {}), promotion: promotion[name] ?? 'prefer' }),
  );
  return clusterSpec(cluster, instances, over);
}

// --- The MySQL manual's cluster ---------------------------------------------------------------

/**
 * The cluster the MySQL fixture rows (written from the manual) describe: `source` on
 * 127.0.0.1:13000, `replica84` (8.4, prefer) on :13001 and `replica80` (8.0.21, neutral) on :13002.
 */
export function manualSpec(promotion: { replica84?: Promotion; replica80?: Promotion } = {}): ClusterSpec {
  return clusterSpec(
    'manual',
    [
      instance('source', '127.0.0.1', { port: 13000, promotion: 'prefer' }),
      instance('replica84', '127.0.0.1', { port: 13001, source: 'source', promotion: promotion.replica84 ?? 'prefer' }),
      instance('replica80', '127.0.0.1', { port: 13002, source: 'source', promotion: promotion.replica80 ?? 'neutral' }),
    ],
    { flavor: 'mysql' },
  );
}

// --- Topology file text -----------------------------------------------------------------------

/** The file's `failover:` block replaced by `block` (its indented lines, each ending in a newline). */
export function withFailover(text: string, block: string): string {
  const FAILOVER = /^failover:\n(?: {2}.*\n)+/m;
  if (!FAILOVER.test(text)) throw new Error(`no failover: block to replace in:\n${text}`);
  return text.replace(FAILOVER, `failover:\n${block}`);
}

/** The file's primary: the instance line without a source, as `sandbox up` and write-back write it. */
export function primaryOfText(text: string): string {
  const m = /^ {2}(db\d{3}): \{ host: [\d.]+, port: 3306 \}/m.exec(text);
  if (!m?.[1]) throw new Error(`no primary line in:\n${text}`);
  return m[1];
}
