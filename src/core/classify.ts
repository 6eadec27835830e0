// classify: from one probe round and the file, the health of every instance. Pure.
import { gtidSummary, parseGtid } from './gtid.js';
import type { ClusterSpec, Flavor, InstanceSpec, InstanceState, ProbeResult, ReplicaStatus } from './model.js';
import { endpointKey } from './model.js';
import type { Maintenance } from './state.js';

/** Health words, most severe first: an instance shows the first that applies. */
export const HEALTH_ORDER = [
  'Unreachable',
  'Fenced',
  'SQL error',
  'Disconnected',
  'SQL stopped',
  'Drift',
  'Writable replica',
  'Read-only primary',
  'Lagging',
  'OK',
] as const;
export type Health = (typeof HEALTH_ORDER)[number];

export interface Problem {
  readonly health: Exclude<Health, 'OK'>;
  readonly detail: string;
}

export interface InstanceView {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** What the file says. */
  readonly role: 'primary' | 'replica';
  readonly source: string | null;
  /** What the server says: an instance name, `host:port` for a source outside the file, or null. */
  readonly liveSource: string | null;
  readonly liveRole: 'primary' | 'replica' | 'unknown';
  readonly health: Health;
  readonly problems: readonly Problem[];
  readonly readOnly: boolean | null;
  readonly lagSeconds: number | null;
  readonly gtid: string | null;
  readonly error: string | null;
  readonly promotion: InstanceSpec['promotion'];
  readonly serverId: number | null;
  readonly version: string | null;
  readonly ioThread: ReplicaStatus['ioThread'] | null;
  readonly sqlThread: ReplicaStatus['sqlThread'] | null;
  readonly probeMs: number;
  /** Set while an operator has it in maintenance (`topogit maintenance`). */
  readonly maintenance?: Maintenance;
}

export interface UnmanagedReplica {
  /** The member that reports it. */
  readonly of: string;
  readonly host: string;
  readonly port: number;
  readonly serverId: number;
}

export interface ClusterView {
  readonly name: string;
  readonly file: string;
  readonly flavor: Flavor | null;
  readonly version: string | null;
  /** The desired primary (the instance with no source in the file). */
  readonly primary: string;
  /** Reachable instances that are writable and replicate from nobody. */
  readonly livePrimaries: readonly string[];
  readonly instances: readonly InstanceView[];
  readonly unmanaged: readonly UnmanagedReplica[];
  readonly healthy: boolean;
  readonly inSync: boolean;
  readonly notes: readonly string[];
}

export interface ClassifyOptions {
  /** Seconds behind the source beyond which a replica is Lagging. */
  readonly lagWarnSeconds: number;
  /** Former primaries kept read-only after a failover, with why (e.g. their errant GTIDs). */
  readonly fenced?: ReadonlyMap<string, string>;
  /** Instances in maintenance (shown, not a health word). */
  readonly maintenance?: ReadonlyMap<string, Maintenance>;
}

export const DEFAULT_CLASSIFY: ClassifyOptions = { lagWarnSeconds: 10 };

export function classifyCluster(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, opts: ClassifyOptions = DEFAULT_CLASSIFY): ClusterView {
  const byEndpoint = new Map(spec.instances.map((i) => [endpointKey(i), i.name]));
  const byServerId = new Map<number, string>();
  for (const i of spec.instances) {
    const p = probes.get(i.name);
    if (p?.ok) byServerId.set(p.state.serverId, i.name);
  }
  const nameOfSource = (r: ReplicaStatus): string =>
    byEndpoint.get(`${r.sourceHost}:${r.sourcePort}`) ??
    (r.sourceServerId !== undefined && r.sourceServerId !== 0 ? byServerId.get(r.sourceServerId) : undefined) ??
    `${r.sourceHost}:${r.sourcePort}`;

  const instances = spec.instances.map((i) => classifyInstance(i, probes.get(i.name), nameOfSource, opts));
  const states = spec.instances.flatMap((i) => {
    const p = probes.get(i.name);
    return p?.ok ? [{ name: i.name, state: p.state }] : [];
  });
  const primary = spec.instances.find((i) => i.source === undefined)?.name ?? '';
  const livePrimaries = states.filter((s) => s.state.replication.length === 0 && !s.state.readOnly).map((s) => s.name);
  const unmanaged = findUnmanaged(spec, states, byEndpoint, byServerId);
  const flavors = new Set(states.map((s) => s.state.flavor));
  const notes: string[] = [];
  const [flavor] = flavors;
  if (flavors.size > 1) notes.push(`members report different flavors: ${[...flavors].join(', ')}`);
  if (spec.flavor !== 'auto' && flavor !== undefined && flavor !== spec.flavor) notes.push(`file says flavor ${spec.flavor}, servers report ${flavor}`);
  if (livePrimaries.length > 1) notes.push(`more than one writable primary: ${livePrimaries.join(', ')}`);
  return {
    name: spec.cluster,
    file: spec.file,
    flavor: flavor ?? null,
    version: states.find((s) => s.name === primary)?.state.version ?? states[0]?.state.version ?? null,
    primary,
    livePrimaries,
    instances,
    unmanaged,
    healthy: instances.every((i) => i.problems.every((p) => p.health === 'Drift')) && notes.length === 0,
    inSync: instances.every((i) => !i.problems.some((p) => p.health === 'Drift')) && unmanaged.length === 0,
    notes,
  };
}

function classifyInstance(
  spec: InstanceSpec,
  probe: ProbeResult | undefined,
  nameOfSource: (r: ReplicaStatus) => string,
  opts: ClassifyOptions,
): InstanceView {
  const base = {
    name: spec.name,
    host: spec.host,
    port: spec.port,
    role: spec.source === undefined ? ('primary' as const) : ('replica' as const),
    source: spec.source ?? null,
    promotion: spec.promotion,
    probeMs: probe?.ms ?? 0,
    ...(opts.maintenance?.has(spec.name) ? { maintenance: opts.maintenance.get(spec.name) as Maintenance } : {}),
  };
  if (!probe || !probe.ok) {
    const error = probe?.ok === false ? probe.error : 'not probed';
    return {
      ...base,
      liveSource: null,
      liveRole: 'unknown',
      health: 'Unreachable',
      problems: [{ health: 'Unreachable', detail: error }],
      readOnly: null,
      lagSeconds: null,
      gtid: null,
      error,
      serverId: null,
      version: null,
      ioThread: null,
      sqlThread: null,
    };
  }
  const s = probe.state;
  const channel = s.replication[0];
  const liveSource = channel ? nameOfSource(channel) : null;
  const fencedWhy = opts.fenced?.get(spec.name);
  const problems = fencedWhy !== undefined ? [{ health: 'Fenced' as const, detail: fencedWhy }, ...instanceProblems(spec, s, channel, liveSource, opts).filter((p) => p.health !== 'Drift' && p.health !== 'Disconnected')] : instanceProblems(spec, s, channel, liveSource, opts);
  const top = HEALTH_ORDER.find((h) => problems.some((p) => p.health === h)) ?? 'OK';
  return {
    ...base,
    liveSource,
    liveRole: channel ? 'replica' : 'primary',
    health: top,
    problems,
    readOnly: s.readOnly,
    lagSeconds: channel?.secondsBehindSource ?? null,
    gtid: summarizeGtid(s),
    error: channel?.lastSqlError || channel?.lastIoError || null,
    serverId: s.serverId,
    version: s.version,
    ioThread: channel?.ioThread ?? null,
    sqlThread: channel?.sqlThread ?? null,
  };
}

function instanceProblems(spec: InstanceSpec, s: InstanceState, channel: ReplicaStatus | undefined, liveSource: string | null, opts: ClassifyOptions): Problem[] {
  const out: Problem[] = [];
  if (s.replication.length > 1) out.push({ health: 'Drift', detail: `replicates over ${s.replication.length} channels; topogit manages one` });
  if (spec.source === undefined) {
    if (channel) out.push({ health: 'Drift', detail: `the file's primary replicates from ${liveSource}` });
    if (s.readOnly) out.push({ health: 'Read-only primary', detail: 'read_only=ON on the primary' });
    return out;
  }
  if (!channel) {
    out.push({ health: 'Drift', detail: `not replicating; the file says source ${spec.source}` });
  } else {
    if (liveSource !== spec.source) out.push({ health: 'Drift', detail: `replicates from ${liveSource}; the file says ${spec.source}` });
    const sqlError = channel.lastSqlErrno !== 0 || (channel.sqlThread === 'no' && channel.lastSqlError !== '');
    const stoppedByHand = channel.ioThread === 'no' && channel.sqlThread === 'no' && !sqlError && channel.lastIoErrno === 0;
    if (sqlError) {
      out.push({ health: 'SQL error', detail: `${channel.lastSqlErrno}: ${channel.lastSqlError}` });
    } else if (channel.sqlThread !== 'yes' && !stoppedByHand) {
      out.push({ health: 'SQL stopped', detail: 'SQL thread stopped without an error' });
    }
    if (stoppedByHand) {
      out.push({ health: 'Disconnected', detail: 'replication stopped (IO and SQL threads not running, no error)' });
    } else if (channel.ioThread !== 'yes') {
      const state = channel.ioThread === 'connecting' ? 'IO thread connecting' : 'IO thread not running';
      out.push({ health: 'Disconnected', detail: channel.lastIoError ? `${state}: ${channel.lastIoError}` : state });
    }
    if (channel.secondsBehindSource !== null && channel.secondsBehindSource > opts.lagWarnSeconds) {
      out.push({ health: 'Lagging', detail: `${channel.secondsBehindSource}s behind its source` });
    }
  }
  if (!s.readOnly) out.push({ health: 'Writable replica', detail: 'read_only=OFF on a replica' });
  return out;
}

function summarizeGtid(s: InstanceState): string | null {
  if (!s.gtid.executed) return null;
  try {
    return gtidSummary(parseGtid(s.flavor, s.gtid.executed));
  } catch {
    return s.gtid.executed;
  }
}

function findUnmanaged(
  spec: ClusterSpec,
  states: readonly { name: string; state: InstanceState }[],
  byEndpoint: ReadonlyMap<string, string>,
  byServerId: ReadonlyMap<number, string>,
): UnmanagedReplica[] {
  const out: UnmanagedReplica[] = [];
  const specServerIds = new Set(byServerId.keys());
  for (const { name, state } of states) {
    for (const r of state.seenReplicas) {
      if (specServerIds.has(r.serverId) || byEndpoint.has(`${r.host}:${r.port}`)) continue;
      // A replica of a member that is in the file but unreachable right now has an unknown server id.
      if (spec.instances.some((i) => i.host === r.host && i.port === r.port)) continue;
      out.push({ of: name, host: r.host, port: r.port, serverId: r.serverId });
    }
  }
  return out;
}
