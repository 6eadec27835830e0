// One cluster's loop: a pass every detection.intervalMs, an immediate re-probe when something
// looks wrong, one pass at a time (triggers during a pass collapse into one more pass), each pass
// deciding from a fresh probe, exponential backoff on errors.
import type { Logger } from 'pino';
import { classifyCluster, DEFAULT_CLASSIFY, type ClusterView } from '../core/classify.js';
import type { ClusterSpec } from '../core/model.js';
import type { AnalysisCode } from '../core/analysis.js';
import type { ProbeResult } from '../core/model.js';
import { reportCluster, shapeChanges, type ClusterReport } from '../core/report.js';
import { EMPTY_STATE, type ClusterState } from '../core/state.js';
import { resolveCredentials, type ResolvedCredentials } from '../config/load.js';
import type { Login, ProbeFn, Timeouts } from '../core/ports.js';
import { probeCluster } from '../engine/probe-round.js';
import type { ReconcileEvent, ReconcileResult } from '../engine/reconcile.js';
import type { FailoverEvent } from '../engine/failover.js';
import type { Condition, ConditionType, FailoverSummary, MetricsSink, PassSummary } from './model.js';
import type { HistoryEntry } from '../core/history.js';
import type { RouterStatus } from '../core/report.js';

/** What one active pass asks of the engine; the daemon turns it into a reconcileOnce call. */
export interface PassRequest {
  readonly spec: ClusterSpec;
  readonly credentials: ResolvedCredentials;
  /** May drift correction move the primary role (only after a committed change of the file's primary)? */
  readonly allowSwitchover: boolean;
  /** When a probe of the primary first looked wrong (the start of the first suspicious pass). */
  readonly detectedAt?: number;
  readonly onEvent: (e: FailoverEvent | ReconcileEvent) => void;
}

/** The loop's clock and timer; tests drive them by hand. */
export interface LoopTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: LoopTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface LoopDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly timeouts: Timeouts;
  /** The standby's probe (an active pass probes inside `reconcile`). */
  readonly probe: ProbeFn;
  readonly metrics: MetricsSink;
  readonly log: Logger;
  /** One reconcile pass (reconcileOnce, wired by the daemon with its ports and repository). */
  readonly reconcile: (req: PassRequest) => Promise<ReconcileResult>;
  /** Act only while this daemon leads the cluster (the lease, or its etcd election); otherwise observe. */
  readonly isActive: (cluster: string) => boolean;
  /** Why it does not lead the cluster (for the pass's detail). */
  readonly standbyReason?: (cluster: string) => string;
  /** Runs `fn` holding the cluster's apply lock, or returns undefined when someone else holds it. */
  readonly withClusterLock: <T>(cluster: string, fn: () => Promise<T>) => Promise<T | undefined>;
  /** After a pass wrote the file back to Git: its new text, so the reload it causes is not a trigger. */
  readonly onSelfWrite: (file: string) => Promise<void>;
  /** The commit checked out now (a switchover's history entry names the commit that asked for it). */
  readonly headCommit?: () => Promise<string | null>;
  /** After every observation (a pass or a standby's probe round): open status pages are updated. */
  readonly onObserved?: (cluster: string) => void;
  /** Is anyone watching (an open status page)? Then every pass's first look is shown at once. */
  readonly watched?: () => boolean;
  /** The cluster's state records (fenced former primaries, the last failover), for the readiness. */
  readonly readState?: (cluster: string) => Promise<ClusterState>;
  /** Default: the real clock and setTimeout. */
  readonly timers?: LoopTimers;
}

const FAST_REPROBE_MS = 50;
const MAX_FAST_REPROBES = 5;
const MAX_BACKOFF_MS = 30_000;

export class ClusterLoop {
  private lastState: ClusterState = EMPTY_STATE;
  /** The state read last holds a failover journal (a failover started and has not finished). */
  get failoverInProgress(): boolean {
    return this.lastState.journal !== undefined;
  }
  private timer: unknown;
  private inFlight: Promise<void> | undefined;
  private pending = false;
  private stopped = false;
  private errors = 0;
  private fast = 0;
  private passNo = 0;
  private suspectSince: number | undefined;
  private allowSwitchover = false;
  view: ClusterView | null = null;
  analysis: AnalysisCode | null = null;
  lastPass: PassSummary | null = null;
  lastFailover: FailoverSummary | null = null;
  /** Failure shapes and failover readiness from the last pass's probes (null before the first). */
  report: ClusterReport | null = null;
  driftCount = 0;
  /** What `plan` would propose (or just applied), one line per step. */
  driftSteps: string[] = [];
  /** Switchovers this daemon applied from a committed change of the file's primary. */
  switchovers: HistoryEntry[] = [];
  /** The routers after the last pass (the file's `routing:`), as the page and the API show them. */
  routers: RouterStatus[] = [];
  probedOnce = false;
  private conds = new Map<ConditionType, Condition>();
  /** The last pass's fenced and maintenance marks, for a view drawn before the pass ends. */
  private classifyOptions: Parameters<typeof classifyCluster>[2] = DEFAULT_CLASSIFY;
  private readonly t: LoopTimers;

  constructor(
    public spec: ClusterSpec,
    private readonly deps: LoopDeps,
  ) {
    this.t = deps.timers ?? REAL_TIMERS;
  }

  get conditions(): Condition[] {
    return [...this.conds.values()];
  }

  setCondition(type: ConditionType, status: boolean, reason: string): void {
    const cur = this.conds.get(type);
    if (cur && cur.status === status && cur.reason === reason) return;
    this.conds.set(type, { type, status, reason, since: cur && cur.status === status ? cur.since : new Date(this.t.now()).toISOString() });
  }

  start(): void {
    this.schedule(0);
  }

  /**
   * A new valid version of the file. `byHuman`: not our own write-back (then it triggers a pass).
   * `committed`: the text is what HEAD has; only then may a changed primary move the primary role.
   */
  update(spec: ClusterSpec, byHuman: boolean, committed = byHuman): void {
    const oldPrimary = this.spec.instances.find((i) => i.source === undefined)?.name;
    const newPrimary = spec.instances.find((i) => i.source === undefined)?.name;
    this.spec = spec;
    if (!byHuman) return;
    if (oldPrimary !== newPrimary && committed) this.allowSwitchover = true;
    this.trigger('file changed');
  }

  /** Level-triggered: the reason is logged, the pass decides from a fresh probe. */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.deps.log.debug({ reason }, 'trigger');
    if (this.inFlight) this.pending = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.t.clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.t.clearTimeout(this.timer);
    this.timer = this.t.setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, ms);
  }

  private async run(): Promise<void> {
    if (this.stopped || this.inFlight) return;
    this.pending = false;
    this.inFlight = this.pass().finally(() => {
      this.inFlight = undefined;
    });
    await this.inFlight;
    if (this.stopped) return;
    this.schedule(this.pending ? 0 : this.nextDelay());
  }

  private nextDelay(): number {
    const interval = this.spec.failover.detection.intervalMs;
    if (this.errors > 0) return Math.min(MAX_BACKOFF_MS, interval * 2 ** Math.min(this.errors, 10));
    // Something looked wrong: look again at once instead of a full interval (bounded).
    if (this.analysis && this.analysis !== 'PrimaryReachable' && this.fast < MAX_FAST_REPROBES) {
      this.fast++;
      return FAST_REPROBE_MS;
    }
    if (this.analysis === 'PrimaryReachable') this.fast = 0;
    return interval;
  }

  private async pass(): Promise<void> {
    const id = `${this.spec.cluster}-${++this.passNo}`;
    const log = this.deps.log.child({ pass: id });
    const started = this.t.now();
    const spec = this.spec;
    try {
      const creds = resolveCredentials(spec, this.deps.env);
      const active = this.deps.isActive(spec.cluster);
      const result = active
        ? await this.deps.withClusterLock(spec.cluster, () =>
            this.deps.reconcile({
              spec,
              credentials: creds,
              allowSwitchover: this.allowSwitchover,
              ...(this.suspectSince !== undefined ? { detectedAt: this.suspectSince } : {}),
              onEvent: (e) => {
                if (e.type === 'statement') this.deps.metrics.statements(spec.cluster, e.instance, 'action', 1);
                logEvent(log, e);
                // Something is wrong: show it now (open pages included), not when the pass, which
                // may be a failover and its write-back, is over.
                if (e.type === 'analysis' && (e.analysis.code !== 'PrimaryReachable' || this.deps.watched?.())) this.observeEarly(spec, e.analysis.code, e.probes);
              },
            }),
          )
        : undefined;
      if (active && !result) {
        this.finish(id, started, 'standby', 'another topogit holds the cluster lock; pass skipped', log);
        return;
      }
      if (!result) {
        await this.observe(spec, creds.admin, log);
        this.finish(id, started, 'standby', this.deps.standbyReason?.(spec.cluster) || 'standing by: another daemon holds the lease', log);
        return;
      }
      this.errors = 0;
      await this.record(spec, result, started, log);
      const outcome = result.error ? 'error' : result.failover ? (result.failover.kind === 'done' ? 'failover' : 'error') : result.blocked ? 'blocked' : result.applied || result.relocation ? 'applied' : result.plan?.steps.length ? 'reported' : 'ok';
      const detail = result.error
        ? `stopped: ${result.error}`
        : result.failover
        ? result.failover.kind === 'done'
          ? `failover ${result.failover.record.from} -> ${result.failover.record.to}`
          : `failover ${result.failover.kind}: ${'reason' in result.failover ? result.failover.reason : 'error' in result.failover ? result.failover.error : result.failover.command}`
        : result.blocked ?? result.analysis.summary;
      if (outcome === 'error') this.deps.metrics.reconcileError(spec.cluster);
      this.finish(id, started, outcome, detail, log);
    } catch (e) {
      this.errors++;
      this.deps.metrics.reconcileError(spec.cluster);
      this.setCondition('Degraded', true, `pass failed: ${(e as Error).message}`);
      this.finish(id, started, 'error', (e as Error).message, log);
    }
  }

  private finish(id: string, started: number, outcome: PassSummary['outcome'], detail: string, log: Logger): void {
    this.lastPass = { id, startedAt: new Date(started).toISOString(), durationMs: this.t.now() - started, outcome, detail };
    this.told(this.spec.cluster);
    const level = outcome === 'error' ? 'warn' : outcome === 'ok' || outcome === 'standby' ? 'debug' : 'info';
    log[level]({ outcome, ms: this.lastPass.durationMs }, detail);
  }

  /** The pass's first look at a cluster in trouble, published before the pass acts on it. */
  private observeEarly(spec: ClusterSpec, analysis: AnalysisCode, probes: ReadonlyMap<string, ProbeResult>): void {
    this.analysis = analysis;
    this.view = classifyCluster(spec, probes, this.classifyOptions);
    this.told(spec.cluster);
  }

  /** Tells the pages; whatever goes wrong there is never the pass's problem. */
  private told(cluster: string): void {
    try {
      this.deps.onObserved?.(cluster);
    } catch {
      // the page is best effort; the daemon's work is not
    }
  }

  /** Standing by: probe and show, never act. */
  private async observe(spec: ClusterSpec, admin: Login, log: Logger): Promise<void> {
    const probes = await probeCluster(spec, this.deps.probe, admin, this.deps.timeouts);
    this.view = classifyCluster(spec, probes, DEFAULT_CLASSIFY);
    this.probedOnce = true;
    await this.assess(spec, probes, log);
  }

  /**
   * Failure shapes and failover readiness from this pass's probes: a shape is logged once when it
   * appears (warn) and once when it clears (info), not every pass; both go to the metrics.
   */
  private async assess(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, log: Logger): Promise<void> {
    // The state may be out of reach (etcd without a quorum): the last one read stands in.
    const state = this.deps.readState ? await this.deps.readState(spec.cluster).then((x) => (this.lastState = x), () => this.lastState) : EMPTY_STATE;
    const report = reportCluster(spec, probes, state, this.t.now());
    const { appeared, cleared } = shapeChanges(this.report?.shapes ?? [], report.shapes);
    for (const s of appeared) log.warn({ shape: s.code, instance: s.instance, replicas: s.replicas }, `${s.code}: ${s.summary}`);
    for (const s of cleared) log.info({ shape: s.code, instance: s.instance }, `${s.code} cleared (${s.instance})`);
    this.report = report;
    this.deps.metrics.setFailoverReady(spec.cluster, report.failover.ready);
    this.deps.metrics.setShapes(spec.cluster, report.shapes.map((s) => s.code));
    // Read from the state every observation (a standby sees what the active daemon recorded).
    const pending = report.writeBackPending;
    this.setCondition('WriteBackPending', pending.length > 0, pending.length > 0 ? pending.map((p) => p.reason).join('; ') : 'every write-back is on the upstream');
    this.deps.metrics.setWriteBackPending?.(spec.cluster, pending.length);
  }

  private async record(spec: ClusterSpec, r: ReconcileResult, started: number, log: Logger): Promise<void> {
    this.probedOnce = true;
    this.analysis = r.analysis.code;
    if (r.analysis.code !== 'PrimaryReachable') this.suspectSince ??= started;
    else this.suspectSince = undefined;
    this.classifyOptions = { ...DEFAULT_CLASSIFY, ...(r.fenced.size ? { fenced: r.fenced } : {}), ...(r.maintenance?.size ? { maintenance: r.maintenance } : {}) };
    this.view = classifyCluster(spec, r.probes, this.classifyOptions);
    for (const i of this.view.instances) {
      this.deps.metrics.observeProbe(spec.cluster, i.name, i.probeMs / 1000, i.health !== 'Unreachable');
      this.deps.metrics.setInstance(spec.cluster, i.name, { up: i.health !== 'Unreachable', lagSeconds: i.lagSeconds, readOnly: i.readOnly, maintenance: i.maintenance !== undefined });
    }
    this.driftCount = r.plan?.steps.length ?? 0;
    this.driftSteps = (r.plan?.steps ?? []).map((s) => s.summary);
    this.deps.metrics.setDrift(spec.cluster, this.driftCount);
    // A switchover that ran counts, even when a later step of the same plan failed.
    const switchover = r.applied?.ran.map((x) => x.step).find((s) => s.actions.some((a) => a.kind === 'promote'));
    if (switchover) {
      const entry: HistoryEntry = { kind: 'switchover', cluster: spec.cluster, at: new Date(this.t.now()).toISOString(), summary: switchover.summary.replace(/^switchover /, ''), analysis: 'the file names a new primary (a committed change)', writableMs: null, repointedMs: null, commit: this.deps.headCommit ? await this.deps.headCommit() : null };
      this.switchovers = [entry, ...this.switchovers].slice(0, 10);
    }
    if (r.applied && !r.applied.failed) this.allowSwitchover = false;
    // Once the live primary is the file's, an old permission to move it must not linger.
    if (this.view.livePrimaries.length === 1 && this.view.livePrimaries[0] === this.view.primary) this.allowSwitchover = false;
    if (r.failover?.kind === 'done') {
      const f = r.failover.record;
      this.lastFailover = { at: f.at, from: f.from, to: f.to, commit: f.commit, trigger: f.trigger };
      this.deps.metrics.failover(spec.cluster, Date.parse(f.at) / 1000);
      this.suspectSince = undefined;
      this.allowSwitchover = false;
      await this.deps.onSelfWrite(spec.file);
    }
    if (r.relocation?.writeBack.kind === 'committed') await this.deps.onSelfWrite(spec.file);
    const unhealthy = this.view.instances.filter((i) => i.health !== 'OK' && i.health !== 'Drift');
    this.setCondition('Degraded', unhealthy.length > 0, unhealthy.map((i) => `${i.name}: ${i.health}`).join('; ') || 'every instance healthy');
    this.setCondition('Drifted', this.driftCount > 0 || !this.view.inSync, this.driftCount > 0 ? `${this.driftCount} correction(s) ${r.applied ? 'applied' : 'pending'}` : this.view.inSync ? 'live tree matches the file' : 'live tree differs from the file');
    this.setCondition('FailoverBlocked', r.blocked !== undefined, r.blocked ?? 'not blocked');
    this.setCondition('Ready', this.view.healthy && this.view.inSync, `${r.analysis.code}: ${r.analysis.summary}`);
    this.routers = !r.routing
      ? []
      : !r.routing.checked
        ? (spec.routing ?? []).map((x) => ({ router: `${x.kind} ${x.address}`, inStep: false, detail: `not checked: ${r.routing?.why ?? ''}` }))
        : r.routing.routers.map((x) => ({ router: `${x.router.kind} ${x.router.address}`, inStep: x.inStep, detail: x.error ?? '' }));
    if (r.routing) {
      const stale = r.routing.routers.filter((x) => !x.inStep);
      const reason = !r.routing.checked ? (r.routing.why ?? 'not checked') : stale.length > 0 ? stale.map((x) => `${x.router.kind} ${x.router.address}: ${x.error ?? 'not in step'}`).join('; ') : 'every router in step with the primary';
      this.setCondition('RoutingStale', !r.routing.checked || stale.length > 0, reason);
      for (const x of r.routing.routers) this.deps.metrics.setRouterInStep?.(spec.cluster, `${x.router.kind} ${x.router.address}`, x.inStep);
    }
    await this.assess(spec, r.probes, log);
  }
}

function logEvent(log: Logger, e: FailoverEvent | ReconcileEvent): void {
  switch (e.type) {
    case 'statement':
      log.info({ instance: e.instance, sql: e.sql }, 'statement');
      return;
    case 'failover-step':
      log.warn({ step: e.step, atMs: e.atMs }, `failover ${e.step}: ${e.detail}`);
      return;
    case 'analysis':
      if (e.analysis.code !== 'PrimaryReachable') log.warn({ analysis: e.analysis.code }, e.analysis.summary);
      return;
    case 'failover-blocked':
      log.warn(e.reason);
      return;
    case 'fenced':
      log.warn({ instance: e.instance, errant: e.errant }, `${e.instance} is back: fenced read-only`);
      return;
    case 'rejoined':
      log.info({ instance: e.instance, source: e.source }, `${e.instance} rejoined under ${e.source}`);
      return;
    case 'relocated':
      log.warn({ source: e.source, target: e.target, moved: e.moved, skipped: e.skipped, commit: e.commit }, `${e.source} is dead: relocated ${e.moved.join(', ')} under ${e.target}`);
      return;
    case 'drift':
      log.info({ steps: e.plan.steps.map((s) => s.summary), applied: e.applied }, 'drift');
      return;
    case 'routed':
      log.warn({ router: e.router, change: e.change }, `router ${e.router}: ${e.change} (${e.why})`);
      return;
    case 'hook':
      log.info({ phase: e.phase, command: e.command, code: e.code }, 'hook');
      return;
    default:
      log.debug({ event: e.type }, 'event');
  }
}
