// Routers that send applications to the primary (and, optionally, to healthy replicas), declared in
// the topology file's `routing:` section. Pure: what each backend should look like for a live tree,
// and the changes that take a router from what it says to that. The adapters (HAProxy's runtime
// API today) read and change a router; they never decide.
import { endpointKey, type ClusterSpec, type ProbeResult } from './model.js';

/** One router of a cluster, as the file declares it. */
export interface RouterSpec {
  readonly kind: 'haproxy';
  /** HAProxy's runtime API: `host:port` or the path of a unix socket. */
  readonly address: string;
  /** The backend where only the primary is `ready`. */
  readonly writer: string;
  /** The backend where replicas that replicate without error and within maxLagSeconds are `ready`. */
  readonly reader?: string;
}

/** What a router says about one server of a backend. */
export interface RouterServer {
  readonly backend: string;
  /** Named after the instance it sends to (db001, db002, ...). */
  readonly server: string;
  /** Administrative state: `maint` takes it out (sessions stay unless shut down), `drain` takes no new ones. */
  readonly admin: 'ready' | 'maint' | 'drain';
  /** Operational state as the router sees it (health checks), informative. */
  readonly up: boolean;
}

export interface RouterChange {
  readonly backend: string;
  readonly server: string;
  readonly to: 'ready' | 'maint';
  /** Cut the sessions it holds (a writer backend's old primary: no write may reach it any more). */
  readonly shutdownSessions: boolean;
  readonly why: string;
}

/** The live facts routing is decided from, per instance of the file. */
export interface RoutedInstance {
  readonly name: string;
  /** The one writable primary of the cluster. */
  readonly primary: boolean;
  /** Replicates from the primary's line without error, within maxLagSeconds. */
  readonly healthyReplica: boolean;
}

export function endpointOfRouter(r: RouterSpec): string {
  return `${r.kind} ${r.address}`;
}

/**
 * The changes that make `actual` what the live tree needs: in the writer backend exactly the
 * primary `ready` and every other server `maint` with its sessions shut down; in the reader
 * backend the healthy replicas `ready` and the rest `maint`. With no single primary (`primary`
 * undefined) the writer backend gets every server `maint`: no write is better than a wrong one.
 * Servers of the backend that are not instances of the file are left alone.
 */
export function routerChanges(r: RouterSpec, actual: readonly RouterServer[], live: readonly RoutedInstance[]): RouterChange[] {
  const byName = new Map(live.map((i) => [i.name, i]));
  const primary = live.filter((i) => i.primary);
  const changes: RouterChange[] = [];
  for (const s of actual) {
    const i = byName.get(s.server);
    if (!i) continue;
    if (s.backend === r.writer) {
      const want = primary.length === 1 && i.primary ? 'ready' : 'maint';
      if (s.admin !== want) changes.push({ backend: s.backend, server: s.server, to: want, shutdownSessions: want === 'maint', why: want === 'ready' ? `${s.server} is the primary` : primary.length === 1 ? `${s.server} is not the primary` : 'no single writable primary: no writes at all' });
    } else if (r.reader !== undefined && s.backend === r.reader) {
      const want = i.healthyReplica ? 'ready' : 'maint';
      if (s.admin !== want) changes.push({ backend: s.backend, server: s.server, to: want, shutdownSessions: false, why: want === 'ready' ? `${s.server} replicates without error, within maxLagSeconds` : i.primary ? `${s.server} is the primary` : `${s.server} is not a healthy replica` });
    }
  }
  // Writes first go away from every wrong server, then the primary is enabled: never two at once.
  return [...changes.filter((c) => c.to === 'maint' && c.backend === r.writer), ...changes.filter((c) => !(c.to === 'maint' && c.backend === r.writer))];
}

/** What is wrong with a router's backends for this file (missing backend, an instance with no server). */
export function routerProblems(r: RouterSpec, actual: readonly RouterServer[], instances: readonly string[]): string[] {
  const problems: string[] = [];
  const strangers = actual.filter((s) => s.backend === r.writer && !instances.includes(s.server) && s.admin !== 'maint');
  for (const s of strangers) problems.push(`${endpointOfRouter(r)}: server ${s.server} in ${r.writer} is not an instance of the file and takes connections: it could take writes (set it to maint, or remove it)`);
  for (const backend of [r.writer, ...(r.reader ? [r.reader] : [])]) {
    const servers = actual.filter((s) => s.backend === backend).map((s) => s.server);
    if (servers.length === 0) {
      problems.push(`${endpointOfRouter(r)}: backend ${backend} has no servers (is the name right?)`);
      continue;
    }
    const missing = instances.filter((n) => !servers.includes(n));
    if (missing.length > 0) problems.push(`${endpointOfRouter(r)}: backend ${backend} has no server named ${missing.join(', ')} (servers are named after the instances)`);
  }
  return problems;
}

/**
 * What the routers should follow, from one probe round: exactly one writable instance that
 * replicates from nobody, and it must be the primary topogit expects (the file's, or the one a
 * failover just promoted): a writable old primary that came back, a new instance nobody seeded,
 * must never get the writes. Anything else (the primary unreachable from here, two writable
 * instances, the wrong one) is not a tree to route by: the routers are left as they are, and why
 * is said. Readers: replicas that replicate without error, without delay and within
 * `maxLagSeconds` from the primary, directly or through healthy replicas; never an instance in
 * `exclude` (fenced former primaries, instances in maintenance).
 */
export function routedInstances(
  spec: ClusterSpec,
  probes: ReadonlyMap<string, ProbeResult>,
  maxLagSeconds: number,
  o: { readonly expectedPrimary?: string | readonly string[]; readonly exclude?: ReadonlySet<string> } = {},
): { readonly ok: true; readonly instances: RoutedInstance[] } | { readonly ok: false; readonly why: string } {
  const writable = spec.instances.filter((i) => {
    const p = probes.get(i.name);
    return p?.ok === true && !p.state.readOnly && p.state.replication.length === 0;
  });
  if (writable.length !== 1) {
    return { ok: false, why: writable.length === 0 ? 'no writable primary seen from here: routers left as they are' : `${writable.map((w) => w.name).join(' and ')} are all writable: routers left as they are` };
  }
  const primary = writable[0]?.name as string;
  const fileP = spec.instances.find((i) => i.source === undefined)?.name;
  const expected = o.expectedPrimary === undefined ? (fileP ? [fileP] : []) : typeof o.expectedPrimary === 'string' ? [o.expectedPrimary] : o.expectedPrimary;
  if (!expected.includes(primary)) return { ok: false, why: `${primary} is the writable one, but the primary is ${expected.join(' or ') || '(none)'}: routers left as they are` };
  if (o.exclude?.has(primary)) return { ok: false, why: `${primary} is fenced or in maintenance: routers left as they are` };
  const byEndpoint = new Map(spec.instances.map((i) => [endpointKey(i), i.name]));
  const direct = new Map<string, string | undefined>();
  for (const i of spec.instances) {
    const p = probes.get(i.name);
    const ch = p?.ok ? p.state.replication[0] : undefined;
    const ok =
      ch !== undefined &&
      ch.ioThread === 'yes' &&
      ch.sqlThread === 'yes' &&
      ch.lastSqlErrno === 0 &&
      ch.lastIoErrno === 0 &&
      ch.secondsBehindSource !== null &&
      ch.secondsBehindSource <= maxLagSeconds &&
      (ch.sqlDelay ?? 0) === 0 &&
      !o.exclude?.has(i.name);
    direct.set(i.name, ok && ch ? byEndpoint.get(`${ch.sourceHost}:${ch.sourcePort}`) : undefined);
  }
  // Healthy: a chain of healthy replicas up to the primary (a stalled intermediate spoils its subtree).
  const healthy = (name: string, seen = new Set<string>()): boolean => {
    const source = direct.get(name);
    if (source === undefined || seen.has(name)) return false;
    seen.add(name);
    return source === primary || healthy(source, seen);
  };
  return { ok: true, instances: spec.instances.map((i) => ({ name: i.name, primary: i.name === primary, healthyReplica: i.name !== primary && healthy(i.name) })) };
}

/**
 * HAProxy backends that agree with the file: in the writer backend the file's primary enabled and
 * every other instance `disabled`; in the reader backend the replicas enabled and the primary
 * `disabled`. A reload from this config starts in the state topogit would set (topogit still
 * corrects it after a failover the file has not caught up with).
 */
export function haproxyBackends(spec: ClusterSpec, r: RouterSpec): string {
  const primary = spec.instances.find((i) => i.source === undefined)?.name;
  const at = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  const backend = (name: string, balance: string, enabled: (n: string) => boolean) =>
    [`backend ${name}`, '    mode tcp', `    balance ${balance}`, ...spec.instances.map((i) => `    server ${i.name} ${at(i.host, i.port)}${enabled(i.name) ? '' : ' disabled'}`)].join('\n');
  const parts = [
    `# ${spec.file}: cluster ${spec.cluster}, primary ${primary ?? '(none)'}; generated by \`topogit routes ${spec.cluster}\`, runtime API ${r.address}`,
    backend(r.writer, 'first', (n) => n === primary),
    ...(r.reader ? [backend(r.reader, 'roundrobin', (n) => n !== primary)] : []),
  ];
  return `${parts.join('\n\n')}\n`;
}
