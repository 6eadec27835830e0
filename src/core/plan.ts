// plan: what differs between the file and one probe round, and what topogit would do about it.
// Pure: the same spec and probes always give the same plan. No SQL here: actions are data, and
// the MySQL adapter turns them into statements (for display, masked, and for execution).
import { canReplicateFrom } from './errant.js';
import type { RouterSpec } from './routing.js';
import type { ClusterSpec, Flavor, InstanceSpec, InstanceState, ProbeResult, ReplicaStatus } from './model.js';
import { endpointKey } from './model.js';

/** Replication settings topogit needs for fast, safe detection (seconds). */
export interface ReplicationSettings {
  readonly connectRetry: number;
  readonly heartbeatPeriod: number;
}
export const DEFAULT_REPLICATION: ReplicationSettings = { connectRetry: 2, heartbeatPeriod: 1 };

export type Action =
  | { readonly kind: 'set-read-only'; readonly instance: string; readonly readOnly: boolean }
  /** Stop replication, point at `source` with GTID auto-positioning and the settings, start. */
  | {
      readonly kind: 'change-source';
      readonly instance: string;
      readonly source: string;
      readonly host: string;
      readonly port: number;
      readonly settings: ReplicationSettings;
      /** Wait (bounded) for the source to have every transaction of the replica first. */
      readonly waitForSource: boolean;
      /** Set MASTER_DELAY / SOURCE_DELAY (a failover's catch-up sets 0); absent: keep the replica's own. */
      readonly delaySeconds?: number;
    }
  | { readonly kind: 'start-replication'; readonly instance: string }
  /** Wait until `instance` executed everything `target` had when the wait began. */
  | { readonly kind: 'wait-caught-up'; readonly instance: string; readonly target: string; readonly timeoutSeconds: number }
  /** Stop and forget replication, then read_only=0: the instance becomes the primary. */
  | { readonly kind: 'promote'; readonly instance: string }
  /** Failover: stop receiving from a dead source, and apply what was already received. */
  | { readonly kind: 'drain-relay-log'; readonly instance: string; readonly timeoutSeconds: number; readonly wait?: boolean }
  /** Failover: a delayed replica (MASTER_DELAY) applies its relay log now, without the delay. */
  | { readonly kind: 'undelay'; readonly instance: string; readonly timeoutSeconds: number }
  /** A router's server (named after `instance`) in `backend` goes `ready` or `maint` (sessions shut down when asked), read back. */
  | { readonly kind: 'route'; readonly instance: string; readonly router: RouterSpec; readonly backend: string; readonly to: 'ready' | 'maint'; readonly shutdownSessions: boolean };

export type Symbol = '~' | '+' | '-' | '!';

export interface Step {
  readonly id: string;
  readonly instance: string;
  readonly symbol: Symbol;
  /** e.g. `db003 source db001 -> db002` */
  readonly summary: string;
  readonly reason: string;
  readonly actions: readonly Action[];
  /** A compound step (switchover) shows its parts. */
  readonly substeps?: readonly Step[];
}

export type NoticeKind = 'unreachable' | 'sql-error' | 'errant' | 'unmanaged' | 'refused' | 'unknown-primary';

/** Something the plan does not act on, and why. */
export interface Notice {
  readonly kind: NoticeKind;
  /** Set when the notice is about moving the primary role (a refused switchover). */
  readonly about?: 'switchover';
  readonly instance?: string;
  readonly message: string;
}

export interface ClusterPlan {
  readonly cluster: string;
  readonly file: string;
  readonly flavor: Flavor | null;
  readonly steps: readonly Step[];
  readonly notices: readonly Notice[];
}

export interface PlanOptions {
  readonly replication: ReplicationSettings;
  /** A switchover candidate further behind than this is refused. */
  readonly maxSwitchoverLagSeconds: number;
  /** How long a switchover waits for the candidate to catch up. */
  readonly catchUpTimeoutSeconds: number;
  /** Former primaries kept fenced (read-only, not replicating) after a failover, with why. */
  readonly fenced?: ReadonlyMap<string, string>;
}

export const DEFAULT_PLAN: PlanOptions = { replication: DEFAULT_REPLICATION, maxSwitchoverLagSeconds: 10, catchUpTimeoutSeconds: 30 };

interface Live {
  readonly spec: InstanceSpec;
  readonly state: InstanceState;
  readonly channel: ReplicaStatus | undefined;
  /** The instance name the live source resolves to, or `host:port` outside the file, or null. */
  readonly source: string | null;
}

export function planCluster(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, opts: PlanOptions = DEFAULT_PLAN): ClusterPlan {
  const notices: Notice[] = [];
  const live = new Map<string, Live>();
  const byEndpoint = new Map(spec.instances.map((i) => [endpointKey(i), i.name]));
  const byName = new Map(spec.instances.map((i) => [i.name, i]));
  const byServerId = new Map<number, string>();
  for (const i of spec.instances) {
    const p = probes.get(i.name);
    if (p?.ok) byServerId.set(p.state.serverId, i.name);
    else notices.push({ kind: 'unreachable', instance: i.name, message: `${i.name} is unreachable (${p?.ok === false ? p.error : 'not probed'}); nothing that depends on it is planned` });
  }
  for (const i of spec.instances) {
    const p = probes.get(i.name);
    if (!p?.ok) continue;
    const channel = p.state.replication[0];
    const source = channel
      ? (byEndpoint.get(`${channel.sourceHost}:${channel.sourcePort}`) ??
        (channel.sourceServerId ? byServerId.get(channel.sourceServerId) : undefined) ??
        `${channel.sourceHost}:${channel.sourcePort}`)
      : null;
    live.set(i.name, { spec: i, state: p.state, channel, source });
  }
  const flavor = [...live.values()][0]?.state.flavor ?? null;
  const desiredPrimary = spec.instances.find((i) => i.source === undefined) as InstanceSpec;
  const livePrimary = findLivePrimary(spec, live, probes);
  const steps: Step[] = [];

  // 1. Safety first: no replica stays writable while anything else changes. The live primary is
  // left alone here even when the file demotes it: only the switchover below may stop its writes.
  for (const l of live.values()) {
    if (l.spec.source !== undefined && !l.state.readOnly && l.spec.name !== livePrimary.name) {
      steps.push(step(l.spec.name, '~', `${l.spec.name} read_only OFF -> ON`, 'a replica must not accept writes', [{ kind: 'set-read-only', instance: l.spec.name, readOnly: true }]));
    }
  }

  // 2. The primary role moves (graceful switchover), when the file names another primary.
  let primaryLine = livePrimary.name;
  if (livePrimary.name && livePrimary.name !== desiredPrimary.name) {
    const sw = planSwitchover(spec, live, livePrimary.name, desiredPrimary, opts);
    if ('refused' in sw) notices.push({ kind: 'refused', about: 'switchover', instance: desiredPrimary.name, message: sw.refused });
    else {
      steps.push(sw.step);
      primaryLine = desiredPrimary.name;
    }
  } else if (!livePrimary.name) {
    notices.push({ kind: 'unknown-primary', message: livePrimary.why });
  }
  const switched = primaryLine === desiredPrimary.name && livePrimary.name !== desiredPrimary.name;
  const primaryState = primaryLine ? live.get(primaryLine)?.state : undefined;

  // 3. Repoint replicas whose live source differs, parents before children.
  // Members nothing may be moved under: whose own state was refused (errant, SQL error) or that
  // cannot be reached.
  const untouchable = new Map<string, string>();
  for (const i of spec.instances) if (!live.has(i.name)) untouchable.set(i.name, 'it is unreachable');
  for (const [name, why] of opts.fenced ?? []) {
    if (!live.has(name)) continue;
    untouchable.set(name, `it is fenced (${why})`);
    notices.push({ kind: 'refused', instance: name, message: `${name} is fenced: ${why}; not rejoined` });
  }
  for (const i of byDepth(spec)) {
    if (i.source === undefined) continue;
    const l = live.get(i.name);
    if (!l) continue;
    // The live primary moves only through a switchover: after one it already replicates from the
    // new primary (its own step); when the switchover was refused it stays as it is.
    const fromAfterSwitch = switched && i.name === livePrimary.name ? desiredPrimary.name : l.source;
    if (i.name === livePrimary.name && (!switched || i.source === desiredPrimary.name)) continue;
    if (opts.fenced?.has(i.name)) continue;
    const target = byName.get(i.source) as InstanceSpec;
    const targetLive = live.get(target.name);
    // A source must be on the live primary's line: the primary itself, or a member that replicates.
    // One that replicates from nobody and is not the primary (a former primary the file still names
    // after a failover whose write-back failed, a detached replica) would fork the tree.
    const detached = primaryLine !== null && targetLive !== undefined && targetLive.channel === undefined && target.name !== primaryLine && !(switched && target.name === livePrimary.name);
    if (detached && !untouchable.has(target.name)) untouchable.set(target.name, `it replicates from nobody and is not the live primary (${primaryLine ?? 'unknown'})`);
    const blocked = untouchable.get(target.name);
    if (blocked && fromAfterSwitch !== target.name) {
      notices.push(
        targetLive
          ? { kind: 'refused', instance: i.name, message: `${i.name} should replicate from ${target.name}, but ${blocked}; not repointed` }
          : { kind: 'unreachable', instance: i.name, message: `${i.name} should replicate from ${target.name}, which is unreachable; not repointed` },
      );
      untouchable.set(i.name, `it was not repointed under ${target.name}`);
      continue;
    }
    const sqlError = l.channel && (l.channel.lastSqlErrno !== 0 || (l.channel.sqlThread === 'no' && l.channel.lastSqlError !== ''));
    if (sqlError) {
      notices.push({ kind: 'sql-error', instance: i.name, message: `${i.name} stopped on an SQL error; left for a human (never skipped): ${l.channel?.lastSqlErrno}: ${l.channel?.lastSqlError}` });
      untouchable.set(i.name, 'it stopped on an SQL error');
      continue;
    }
    // An IO thread that gave up on an error (e.g. 1236: the source purged what it needs) needs a
    // human too; one still connecting is retrying on its own.
    if (l.channel && l.channel.ioThread === 'no' && l.channel.lastIoErrno !== 0 && l.source === i.source) {
      notices.push({ kind: 'refused', instance: i.name, message: `${i.name}: replication IO thread stopped on error ${l.channel.lastIoErrno}: ${l.channel.lastIoError}; left for a human` });
      continue;
    }
    // A replica with transactions the primary line lacks is left alone whatever else is wrong
    // with it: starting or repointing it would rejoin errant data silently.
    const lineName = switched ? livePrimary.name : primaryLine;
    const lineState = lineName ? live.get(lineName)?.state : undefined;
    if (flavor && lineState && i.name !== primaryLine) {
      const v = canReplicateFrom(flavor, l.state.gtid, lineState.gtid, lineState.gtid);
      if (v.kind === 'errant') {
        notices.push({ kind: 'errant', instance: i.name, message: `${i.name} has errant GTIDs ${v.errant} that ${lineName} does not have; refusing to start or repoint it` });
        untouchable.set(i.name, `it has errant GTIDs ${v.errant}`);
        continue;
      }
    }
    const wrongSource = fromAfterSwitch !== i.source;
    const settingsDiffer = l.channel !== undefined && !settingsMatch(l.channel, opts.replication);
    const notGtid = l.channel !== undefined && !l.channel.gtidAutoPosition;
    if (!wrongSource && !settingsDiffer && !notGtid) {
      if (l.channel && (l.channel.ioThread === 'no' || l.channel.sqlThread === 'no')) {
        if (!targetLive) {
          notices.push({ kind: 'unreachable', instance: i.name, message: `${i.name} is stopped, but its source ${target.name} is unreachable; not started` });
          continue;
        }
        steps.push(step(i.name, '+', `${i.name} start replication`, `replication is stopped without an error (IO ${l.channel.ioThread}, SQL ${l.channel.sqlThread})`, [{ kind: 'start-replication', instance: i.name }]));
      }
      continue;
    }
    if (!targetLive) {
      notices.push({ kind: 'unreachable', instance: i.name, message: `${i.name} should replicate from ${target.name}, which is unreachable; not repointed` });
      continue;
    }
    // Will the new source have everything this replica has? Errant transactions: refuse.
    // Errant means: not on the line of history the primary carries. During a switchover that
    // line is still the old primary's (the candidate catches up before anything is repointed).
    const reference = (switched ? live.get(livePrimary.name as string)?.state : primaryState) ?? targetLive.state;
    const verdict = flavor ? canReplicateFrom(flavor, l.state.gtid, targetLive.state.gtid, reference.gtid) : { kind: 'unknown' as const, why: 'flavor unknown' };
    if (verdict.kind === 'errant') {
      notices.push({ kind: 'errant', instance: i.name, message: `${i.name} has errant GTIDs ${verdict.errant} that ${primaryLine ?? target.name} does not have; refusing to repoint it under ${target.name}` });
      continue;
    }
    if (verdict.kind === 'unknown') {
      notices.push({ kind: 'refused', instance: i.name, message: `${i.name}: cannot compare GTIDs (${verdict.why}); not repointed` });
      continue;
    }
    const from = fromAfterSwitch ?? 'none';
    const reason = wrongSource
      ? fromAfterSwitch === null
        ? `not replicating; the file says source ${target.name}`
        : `replicates from ${fromAfterSwitch}${fromAfterSwitch !== l.source ? ' after the switchover' : ''}; the file says ${target.name}`
      : notGtid
        ? 'replicates without GTID auto-positioning'
        : `replication settings connect_retry=${l.channel?.connectRetry ?? '?'} heartbeat=${l.channel?.heartbeatPeriod ?? '?'}; topogit needs ${opts.replication.connectRetry} and ${opts.replication.heartbeatPeriod}`;
    const summary = wrongSource ? `${i.name} source ${from} -> ${target.name}` : `${i.name} replication settings`;
    steps.push(
      step(i.name, '~', summary, reason, [
        { kind: 'change-source', instance: i.name, source: target.name, host: target.host, port: target.port, settings: opts.replication, waitForSource: switched || verdict.kind === 'source-behind' },
      ]),
    );
  }

  // 4. The primary accepts writes, when it is the only one and replicates from nobody.
  if (!switched && livePrimary.name === desiredPrimary.name) {
    const p = live.get(desiredPrimary.name);
    const otherWritable = [...live.values()].some((l) => l.spec.name !== desiredPrimary.name && l.channel === undefined && !l.state.readOnly);
    if (p && p.channel === undefined && p.state.readOnly && !otherWritable) {
      steps.push(step(desiredPrimary.name, '~', `${desiredPrimary.name} read_only ON -> OFF`, 'the primary must accept writes', [{ kind: 'set-read-only', instance: desiredPrimary.name, readOnly: false }]));
    }
  }

  // 5. Replicas that members report but no file lists: drift, no action.
  const known = new Set(byServerId.keys());
  for (const l of live.values()) {
    for (const r of l.state.seenReplicas) {
      if (known.has(r.serverId) || byEndpoint.has(`${r.host}:${r.port}`)) continue;
      notices.push({ kind: 'unmanaged', instance: l.spec.name, message: `${r.host || '(no report_host)'}:${r.port} (server_id ${r.serverId}) replicates from ${l.spec.name} but is in no file; left alone` });
    }
  }
  return { cluster: spec.cluster, file: spec.file, flavor, steps: numbered(steps), notices };
}

function settingsMatch(c: ReplicaStatus, s: ReplicationSettings): boolean {
  return (c.connectRetry === undefined || c.connectRetry === s.connectRetry) && (c.heartbeatPeriod === undefined || c.heartbeatPeriod === s.heartbeatPeriod);
}

function findLivePrimary(spec: ClusterSpec, live: ReadonlyMap<string, Live>, probes: ReadonlyMap<string, ProbeResult>): { name: string | null; why: string } {
  const roots = [...live.values()].filter((l) => l.channel === undefined);
  const desired = spec.instances.find((i) => i.source === undefined) as InstanceSpec;
  if (roots.length === 1) return { name: (roots[0] as Live).spec.name, why: '' };
  if (roots.length === 0) {
    const dead = !probes.get(desired.name)?.ok;
    return { name: null, why: dead ? `the primary ${desired.name} is unreachable and no reachable member replicates from nobody; this is a failover, not a plan` : 'every reachable member replicates from another: no primary' };
  }
  // Several members replicate from nobody. A single writable one is the primary: it may hold
  // acknowledged writes, so it is never the one demoted (the others are read-only for a reason,
  // e.g. a switchover that stopped half-way); else the one the others follow.
  const writableRoots = roots.filter((r) => !r.state.readOnly);
  if (writableRoots.length === 1) return { name: (writableRoots[0] as Live).spec.name, why: '' };
  const followers = (n: string) => [...live.values()].filter((l) => l.source === n).length;
  const ranked = [...roots].sort((a, b) => followers(b.spec.name) - followers(a.spec.name));
  const [first, second] = ranked;
  if (first && second && followers(first.spec.name) === followers(second.spec.name)) {
    const writable = roots.filter((r) => !r.state.readOnly);
    if (writable.length === 1) return { name: (writable[0] as Live).spec.name, why: '' };
    return { name: null, why: `several members replicate from nobody (${roots.map((r) => r.spec.name).join(', ')}); cannot tell the primary` };
  }
  return { name: first?.spec.name ?? null, why: '' };
}

function planSwitchover(spec: ClusterSpec, live: ReadonlyMap<string, Live>, oldName: string, target: InstanceSpec, opts: PlanOptions): { step: Step } | { refused: string } {
  const cand = live.get(target.name);
  const old = live.get(oldName) as Live;
  if (!cand) return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} is unreachable; nothing changed` };
  if (target.promotion === 'never') return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} has promotion: never` };
  const fencedWhy = opts.fenced?.get(target.name);
  if (fencedWhy !== undefined) return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} is fenced (${fencedWhy})` };
  if (cand.source !== oldName) return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} does not replicate from ${oldName} (it replicates from ${cand.source ?? 'nobody'})` };
  const lag = cand.channel?.secondsBehindSource;
  if (lag === null || lag === undefined) return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} is not replicating (lag unknown)` };
  if (lag > opts.maxSwitchoverLagSeconds) return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} is ${lag}s behind (limit ${opts.maxSwitchoverLagSeconds}s)` };
  const flavor = cand.state.flavor;
  const v = canReplicateFrom(flavor, cand.state.gtid, old.state.gtid, old.state.gtid);
  if (v.kind === 'errant') return { refused: `switchover ${oldName} -> ${target.name} refused: ${target.name} has errant GTIDs ${v.errant}` };
  // The old primary first replicates from the new one; if the file puts it deeper in the tree, a
  // later repoint moves it once its new source has moved (parents before children).
  const oldDesiredSource = target;
  // Writes are taken away at the router first (sessions cut), so that no application keeps
  // writing to the old primary while it is set read-only; the new primary is routed once writable.
  const routers = spec.routing ?? [];
  const routeTo = (instance: string, to: 'ready' | 'maint', why: string): Step[] =>
    routers.map((r) =>
      step(instance, '~', `${r.kind} ${r.address}: ${r.writer}/${instance} -> ${to}${to === 'maint' ? ', sessions shut down' : ''}`, why, [{ kind: 'route', instance, router: r, backend: r.writer, to, shutdownSessions: to === 'maint' }]),
    );
  const sub = [
    ...routeTo(oldName, 'maint', 'applications stop writing to the old primary first'),
    step(oldName, '~', `${oldName} read_only OFF -> ON`, 'stop writes on the old primary', [{ kind: 'set-read-only', instance: oldName, readOnly: true }]),
    step(target.name, '~', `${target.name} wait until it executed everything ${oldName} has`, `bounded by ${opts.catchUpTimeoutSeconds}s`, [
      { kind: 'wait-caught-up', instance: target.name, target: oldName, timeoutSeconds: opts.catchUpTimeoutSeconds },
    ]),
    step(target.name, '~', `${target.name} promote: stop and reset replication, read_only OFF`, 'the file makes it the primary', [{ kind: 'promote', instance: target.name }]),
    ...routeTo(target.name, 'ready', 'applications write to the new primary'),
    step(oldName, '~', `${oldName} source none -> ${oldDesiredSource.name}`, 'the old primary becomes a replica', [
      { kind: 'change-source', instance: oldName, source: oldDesiredSource.name, host: oldDesiredSource.host, port: oldDesiredSource.port, settings: opts.replication, waitForSource: true },
    ]),
  ];
  return {
    step: { id: '', instance: target.name, symbol: '~', summary: `switchover ${oldName} -> ${target.name}`, reason: `the file names ${target.name} as the primary; ${oldName} is the live primary`, actions: sub.flatMap((s) => s.actions), substeps: sub },
  };
}

/** The file's instances, each after its source (breadth-first from the primary). */
export function byDepth(spec: ClusterSpec): InstanceSpec[] {
  const out: InstanceSpec[] = [];
  let frontier = spec.instances.filter((i) => i.source === undefined);
  while (frontier.length > 0) {
    out.push(...frontier);
    const names = new Set(frontier.map((f) => f.name));
    frontier = spec.instances.filter((i) => i.source !== undefined && names.has(i.source));
  }
  return out;
}

export function step(instance: string, symbol: Symbol, summary: string, reason: string, actions: Action[]): Step {
  return { id: '', instance, symbol, summary, reason, actions };
}

export function numbered(steps: Step[]): Step[] {
  return steps.map((s, n) => ({ ...s, id: String(n + 1), ...(s.substeps ? { substeps: s.substeps.map((x, k) => ({ ...x, id: `${n + 1}.${k + 1}` })) } : {}) }));
}

/** A switchover is the compound step that promotes: recognised by its actions, never by its text. */
export function isSwitchover(step: Step): boolean {
  return step.substeps?.some((s) => s.actions.some((a) => a.kind === 'promote')) ?? false;
}

/** The notice that says why the file's primary change was refused, if the plan has one. */
export function switchoverRefusal(plan: ClusterPlan): Notice | undefined {
  return plan.notices.find((n) => n.about === 'switchover' || n.kind === 'unknown-primary');
}

export function planIsEmpty(plans: readonly ClusterPlan[]): boolean {
  return plans.every((p) => p.steps.length === 0);
}
