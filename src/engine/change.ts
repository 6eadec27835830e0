// What every command that changes servers shares: observe the live servers (an error when a
// cluster cannot be observed at all, never "no changes"), plan from the observation, take the
// clusters' locks in a fixed order, check that what was shown still holds, and run the plans.
import type { ClusterSpec } from '../core/model.js';
import { unobservable } from '../core/observable.js';
import type { ClusterPlan, PlanOptions } from '../core/plan.js';
import type { RouterRead } from '../core/route-plan.js';
import type { RouterPort, Timeouts } from '../core/ports.js';
import { TopogitError } from '../core/errors.js';
import { resolveCredentials } from '../config/load.js';
import { guardedOpen, type ClusterHold, type Coordinator } from '../coordination/coordinator.js';
import { activeMaintenance, fencedMap } from '../core/state.js';
import { applyPlan, type ApplyEvent, type ApplyReport } from './apply.js';
import type { Observation } from './gather.js';
import { liveFingerprint, planObservations, stalePlanReasons } from './plan-run.js';

export interface ChangeContext {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly timeouts: Timeouts;
  readonly concurrency: number;
  /** Where the locks and the state are (`--coordinator`). */
  readonly coordinator: Coordinator;
  /** One line for the operator (a cluster that cannot be observed, a lock being waited for, a changed state). */
  readonly warn: (line: string) => void;
}

/** One probe round of the clusters, with the former primaries the state keeps fenced and the instances in maintenance. */
export async function gatherLive(specs: readonly ClusterSpec[], c: ChangeContext): Promise<Observation[]> {
  const [{ gather }, { probe }] = await Promise.all([import('./gather.js'), import('../adapters/mysql/probe.js')]);
  const states = await Promise.all(specs.map(async (s) => [s.cluster, await c.coordinator.state.read(s.cluster)] as const));
  const fenced = new Map(states.map(([n, st]) => [n, fencedMap(st)]));
  const maintenance = new Map(states.map(([n, st]) => [n, activeMaintenance(st, Date.now())]));
  const observations = await gather(specs, { env: c.env, timeouts: c.timeouts, concurrency: c.concurrency, probe, fenced, maintenance });
  // The routers are read too, so that a plan corrects their drift (nothing is changed here).
  if (!specs.some((s) => (s.routing?.length ?? 0) > 0)) return observations;
  const { haproxyRouter } = await import('../adapters/haproxy.js');
  return Promise.all(observations.map(async (o) => ((o.spec.routing?.length ?? 0) > 0 ? { ...o, routers: await readRouters(o.spec, haproxyRouter, c.timeouts.queryMs) } : o)));
}

async function readRouters(spec: ClusterSpec, port: RouterPort, timeoutMs: number): Promise<RouterRead[]> {
  return Promise.all(
    (spec.routing ?? []).map((router) =>
      port.read(router, [router.writer, ...(router.reader ? [router.reader] : [])], timeoutMs).then(
        (servers) => ({ router, servers }),
        (e: Error) => ({ router, error: e.message.split('\n')[0] ?? 'failed' }),
      ),
    ),
  );
}

/** Like gatherLive, but refuses (nothing is changed) when a cluster cannot be observed or refuses the credentials. */
export async function observeForChange(specs: readonly ClusterSpec[], c: ChangeContext, nothingChanged: string): Promise<Observation[]> {
  const observations = await gatherLive(specs, c);
  const blind = unobservable(observations.map((x) => ({ cluster: x.spec.cluster, probes: x.probes })));
  if (blind.length > 0) {
    for (const b of blind) c.warn(`topogit: ${b}`);
    throw new TopogitError('TOPOGIT_UNREACHABLE', `cannot observe the servers; ${nothingChanged}`, 'fix the connection or credentials and run again');
  }
  return observations;
}

export function makePlans(observations: readonly Observation[], opts: PlanOptions, env: NodeJS.ProcessEnv): ReturnType<typeof planObservations> {
  return planObservations(observations, opts, env);
}

/** Takes every cluster's apply lock, sorted by name so two commands over overlapping clusters cannot deadlock. */
export async function lockClusters(clusters: readonly string[], c: ChangeContext, o: { timeoutMs: number; command: string }): Promise<Map<string, ClusterHold>> {
  const locks = new Map<string, ClusterHold>();
  try {
    for (const cluster of [...clusters].sort((a, b) => a.localeCompare(b))) {
      locks.set(
        cluster,
        await c.coordinator.lockCluster(cluster, {
          timeoutMs: o.timeoutMs,
          command: o.command,
          onWait: (holder, ms) => c.warn(`waiting for the lock on ${cluster}, held by ${holder} (${Math.round(ms / 1000)}s of ${Math.round(o.timeoutMs / 1000)}s)`),
        }),
      );
    }
    return locks;
  } catch (e) {
    await releaseAll(locks);
    throw e;
  }
}

export async function releaseAll(locks: ReadonlyMap<string, ClusterHold>): Promise<void> {
  for (const l of locks.values()) await l.release();
}

/**
 * Under the lock: refuse when the servers changed since what the operator saw (the plan shown, or
 * confirmed, is what runs — or nothing does).
 */
export function assertUnchanged(shown: readonly Observation[], now: readonly Observation[], c: ChangeContext, what: { prefix: string; message: string; hint: string }): void {
  const reasons = stalePlanReasons({ gitCommit: null, files: {}, live: liveFingerprint(shown) }, {}, liveFingerprint(now));
  if (reasons.length === 0) return;
  for (const r of reasons) c.warn(`${what.prefix}: ${r}`);
  throw new TopogitError('TOPOGIT_STALE_PLAN', what.message, what.hint);
}

/** Runs one cluster's plan with the real adapters, reporting each step through onEvent. */
export async function runPlan(plan: ClusterPlan, spec: ClusterSpec, c: ChangeContext, onEvent: (e: ApplyEvent) => void, hold?: ClusterHold): Promise<ApplyReport> {
  const [{ probe }, { openSession }, { haproxyRouter }, { hookRunner }] = await Promise.all([import('../adapters/mysql/probe.js'), import('../adapters/mysql/session.js'), import('../adapters/haproxy.js'), import('../adapters/ports.js')]);
  const creds = resolveCredentials(spec, c.env);
  return applyPlan(plan, {
    spec,
    admin: creds.admin,
    replication: creds.replication,
    timeouts: c.timeouts,
    // The router port and the hooks ride along for a switchover (through HAProxy, with the failover hooks).
    ports: { open: openSession, probe, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now(), router: haproxyRouter, runHook: hookRunner(c.cwd, c.env), ...(hold ? { mayAct: () => hold.confirm(), open: guardedOpen(openSession, hold) } : {}) },
    onEvent,
  });
}
