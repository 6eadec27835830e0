// reconcileOnce: one pass over one cluster. The core decides each next thing to do
// (src/core/reconcile.ts); this loop does it — a failover through the failover engine, everything
// else through the operating module — and probes again after anything that changed a server.
// The daemon repeats passes; `topogit reconcile` runs one.
import type { Analysis } from '../core/analysis.js';
import { analyzeCluster, triggersFailover } from '../core/analysis.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import { DEFAULT_PLAN, type ClusterPlan } from '../core/plan.js';
import type { ReconcilePorts } from '../core/ports.js';
import { decideReconcile, needsCommitAcknowledgement, relocationCommitMessage, rememberPrimary, type ReconcileStep } from '../core/reconcile.js';
import type { WriteBackResult } from '../core/ports.js';
import { isFailoverPending } from '../core/write-back.js';
import { effectiveSpecOf, writeBackOrPend } from './write-back.js';
import { activeMaintenance, fencedMap, type ClusterState, type Maintenance } from '../core/state.js';
import { describeChange, syncRouters, type RouterOutcome } from './route.js';
import { endpointOfRouter, routedInstances } from '../core/routing.js';
import { applyPlan, type ApplyContext, type ApplyReport } from './apply.js';
import { failover, type FailoverEvent, type FailoverOutcome, type FailoverRequest } from './failover.js';
import { fence, probeCluster, runAction, StepFailed } from './operate.js';

export interface ReconcileRequest {
  readonly spec: ClusterSpec;
  readonly ctx: FailoverRequest['ctx'];
  readonly ports: ReconcilePorts;
  readonly repoDir: string;
  readonly onEvent: (e: EngineEvent) => void;
  /** When a probe of the primary first failed (the daemon knows; one-shot runs use now). */
  readonly detectedAt?: number;
  /** May drift correction move the primary role? The daemon allows it only after a commit changed
   *  the file's primary; a one-shot run by a human allows it. Default true. */
  readonly allowSwitchover?: boolean;
}

export type ReconcileEvent =
  /** The pass's first look, before it acts: `probes` is the round the analysis came from. */
  | { readonly type: 'routed'; readonly router: string; readonly change: string; readonly why: string }
  | { readonly type: 'analysis'; readonly analysis: Analysis; readonly probes: ReadonlyMap<string, ProbeResult> }
  | { readonly type: 'failover-blocked'; readonly reason: string }
  | { readonly type: 'fenced'; readonly instance: string; readonly errant: string }
  | { readonly type: 'rejoined'; readonly instance: string; readonly source: string }
  | { readonly type: 'relocated'; readonly source: string; readonly target: string; readonly moved: readonly string[]; readonly skipped: readonly string[]; readonly commit: string | null }
  | { readonly type: 'drift'; readonly plan: ClusterPlan; readonly applied: boolean };

/** Everything a pass can report: plan steps, statements and waits, failover steps and hooks, decisions. */
export type EngineEvent = FailoverEvent | ReconcileEvent;

export interface ReconcileResult {
  readonly analysis: Analysis;
  readonly failover?: FailoverOutcome;
  readonly blocked?: string;
  /** A step failed on a server (fencing, a rejoin, a relocation): what happened. Nothing after it ran. */
  readonly error?: string;
  /** A dead intermediate source's replicas moved under its nearest healthy ancestor, and the write-back. */
  readonly relocation?: { readonly step: Extract<ReconcileStep, { kind: 'relocate' }>; readonly writeBack: WriteBackResult };
  readonly plan?: ClusterPlan;
  readonly applied?: ApplyReport;
  readonly fenced: ReadonlyMap<string, string>;
  /** Instances in maintenance at the end of the pass. */
  readonly maintenance?: ReadonlyMap<string, Maintenance>;
  /** The probe round the result was decided from (the last one). */
  readonly probes: ReadonlyMap<string, ProbeResult>;
  /** The routers after the pass (the file's `routing:`); absent without routers. */
  readonly routing?: RoutingReport;
}

export interface RoutingReport {
  /** False: the live tree was not one to route by (`why`); the routers were not touched. */
  readonly checked: boolean;
  readonly why?: string;
  readonly routers: readonly RouterOutcome[];
}

/** Each former primary takes at most three steps (fence, then rejoin or keep fenced, or forget). */
const MAX_STEPS = 32;
/** One router call at the end of a pass. */
const ROUTER_PASS_TIMEOUT_MS = 1000;

export async function reconcileOnce(asked: ReconcileRequest): Promise<ReconcileResult> {
  // While the file has not caught up with a failover (its write-back pending, or not pulled yet),
  // the pass judges the tree the servers have: a second failure is decided on the real tree.
  const effective = await effectiveSpecOf(asked.spec, asked.ports);
  const req = effective.spec === asked.spec ? asked : { ...asked, spec: effective.spec };
  const r = await reconcileSteps(req);
  const maintenance = activeMaintenance(await req.ports.state.read(req.spec.cluster), req.ports.now());
  const routing = await routeAfterPass(req, r);
  return { ...r, ...(maintenance.size > 0 ? { maintenance } : {}), ...(routing ? { routing } : {}) };
}

/**
 * Every pass ends with the routers in step with what the servers are now (the reader backends
 * included, which a failover's own route step leaves to it), or says why not. `reconcile: report`
 * (or a process that may not act) only looks. A tree that is not one writable primary seen from
 * here leaves the routers as they are: a daemon cut off from the primary must not take it out.
 */
async function routeAfterPass(req: ReconcileRequest, r: ReconcileResult): Promise<RoutingReport | undefined> {
  const routers = req.spec.routing ?? [];
  if (routers.length === 0) return undefined;
  // Only after a pass that ended on a known tree: not blocked, not stopped on an error, and any
  // failover finished; the writes then go to the primary the file names or the one just promoted.
  if (r.blocked !== undefined) return { checked: false, why: `the pass is blocked (${r.blocked}): routers left as they are`, routers: [] };
  if (r.error !== undefined) return { checked: false, why: `the pass stopped on an error: routers left as they are`, routers: [] };
  if (r.failover && r.failover.kind !== 'done') return { checked: false, why: 'the failover did not finish: routers left as they are', routers: [] };
  // The file may not have caught up with the last failover yet (the write-back is reloaded a moment
  // later, or it could not be pushed): then the primary that failover promoted is the expected one.
  // Never a former primary that has not rejoined (it may come back writable).
  const filePrimary = req.spec.instances.find((i) => i.source === undefined)?.name;
  const state = await req.ports.state.read(req.spec.cluster);
  const former = new Set(state.formerPrimaries.map((f) => f.name));
  const last = state.lastFailover;
  const expectedPrimary =
    r.failover?.kind === 'done' ? [r.failover.record.to] : [filePrimary, ...(last && last.from === filePrimary ? [last.to] : [])].filter((n): n is string => n !== undefined && !former.has(n));
  const exclude = new Set([...r.fenced.keys(), ...(r.maintenance?.keys() ?? [])]);
  const live = routedInstances(req.spec, r.probes, req.spec.failover.maxLagSeconds, { expectedPrimary, exclude });
  if (!live.ok) return { checked: false, why: live.why, routers: [] };
  const dryRun = req.spec.failover.reconcile === 'report' || (req.ports.mayAct !== undefined && !(await req.ports.mayAct()));
  const outcomes = await syncRouters(routers, req.spec.instances.map((i) => i.name), live.instances, req.ports.router, { timeoutMs: ROUTER_PASS_TIMEOUT_MS, dryRun, ...(req.ports.mayAct ? { mayAct: req.ports.mayAct } : {}) });
  for (const o of outcomes) for (const c of o.applied) req.onEvent({ type: 'routed', router: endpointOfRouter(o.router), change: describeChange(c), why: c.why });
  return { checked: true, routers: outcomes };
}

async function reconcileSteps(req: ReconcileRequest): Promise<ReconcileResult> {
  const { spec, ports } = req;
  const ctx: ApplyContext = { ...req.ctx, spec, ports, onEvent: req.onEvent };
  let state: ClusterState = await ports.state.read(spec.cluster);
  const failoverReq = { spec, ctx: req.ctx, ports, repoDir: req.repoDir, onEvent: req.onEvent, ...(req.detectedAt !== undefined ? { detectedAt: req.detectedAt } : {}) };
  let probes = await probeCluster(ctx);
  // The lease (or the coordinator's fencing check) is asked right before each change to a server.
  const mayStillAct = async (): Promise<boolean> => ports.mayAct === undefined || (await ports.mayAct());
  const primaryId = (s: ClusterState) => s.serverIds?.[spec.instances.find((x) => x.source === undefined)?.name ?? ''];
  const analysis = analyzeCluster(spec, probes, primaryId(state));
  if (!state.journal) {
    req.onEvent({ type: 'analysis', analysis, probes });
    const remembered = rememberPrimary(spec, probes, state, ports.now());
    if (remembered) state = await ports.state.update(spec.cluster, (s) => ({ ...s, lastLag: remembered.lastLag, serverIds: remembered.serverIds, lastPrimaryGtid: remembered.lastPrimaryGtid }));
  }
  // The anti-flapping rule asks Git only when a failover is on the table and a commit could matter.
  const commit = !state.journal && triggersFailover(analysis.code) ? needsCommitAcknowledgement(spec, state, ports.now()) : undefined;
  // A failover whose write-back is still pending has no commit anyone could have committed after.
  const lastPending = state.lastFailover !== undefined && isFailoverPending(state, state.lastFailover.id);
  const acknowledgedByCommit = commit !== undefined && !lastPending && (await ports.committedSince(commit, spec.file));

  // A former primary the file names the primary again: only a commit after the failover's makes
  // that a decision — not a file that is behind, and not while that failover's write-back is pending.
  const filePrimary = spec.instances.find((x) => x.source === undefined)?.name;
  const lastCommit = state.lastFailover?.commit;
  const former = state.formerPrimaries.find((f) => f.name === filePrimary);
  const formerMadePrimaryByCommit = former !== undefined && lastCommit && !lastPending && !isFailoverPending(state, former.failoverId) ? await ports.committedSince(lastCommit, spec.file) : false;

  try {
    for (let n = 0; n < MAX_STEPS; n++) {
      const step = decideReconcile({ spec, state, analysis, probes, now: ports.now(), acknowledgedByCommit, allowSwitchover: req.allowSwitchover !== false, formerMadePrimaryByCommit });
      switch (step.kind) {
        case 'resume-failover':
        case 'fail-over': {
          // An interrupted failover is finished (or undone) before anything else.
          const outcome = await failover({ ...failoverReq, trigger: step.kind === 'fail-over' ? 'auto' : (state.journal?.trigger ?? 'auto') });
          state = await ports.state.read(spec.cluster);
          probes = await probeCluster(ctx);
          return { analysis: step.kind === 'fail-over' ? analysis : analyzeCluster(spec, probes, primaryId(state)), failover: outcome, fenced: fencedMap(state), probes };
        }
        case 'blocked':
          req.onEvent({ type: 'failover-blocked', reason: step.reason });
          return { analysis, blocked: step.reason, fenced: fencedMap(state), probes };
        case 'relocate': {
          if (!(await mayStillAct())) return { analysis, fenced: fencedMap(state), probes };
          const target = spec.instances.find((x) => x.name === step.target) as ClusterSpec['instances'][number];
          for (const m of step.moves) {
            await runAction({ kind: 'change-source', instance: m.name, source: target.name, host: target.host, port: target.port, settings: DEFAULT_PLAN.replication, waitForSource: m.waitForTarget }, ctx);
          }
          const moved = [...step.moves.map((m) => m.name), ...step.already];
          // Not pushed: recorded as pending and retried by the daemon (engine/write-back.ts).
          const writeBack = await writeBackOrPend(ports, { spec, repoDir: req.repoDir, kind: 'relocation', sources: new Map(moved.map((n) => [n, target.name])), message: relocationCommitMessage(spec, step) });
          const commit = writeBack.kind === 'committed' ? writeBack.commit : null;
          req.onEvent({ type: 'relocated', source: step.source, target: target.name, moved, skipped: step.skipped.map((s) => `${s.name}: ${s.why}`), commit });
          return { analysis, relocation: { step, writeBack }, fenced: fencedMap(state), probes: await probeCluster(ctx) };
        }
        case 'forget-former':
          state = await ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.filter((x) => x.name !== step.instance) }));
          continue;
        case 'fence-former':
          if (!(await mayStillAct())) return { analysis, fenced: fencedMap(state), probes };
          await fence(ctx, step.instance);
          break;
        case 'rejoin-former': {
          if (!(await mayStillAct())) return { analysis, fenced: fencedMap(state), probes };
          const src = spec.instances.find((x) => x.name === step.source) as ClusterSpec['instances'][number];
          await runAction({ kind: 'change-source', instance: step.instance, source: src.name, host: src.host, port: src.port, settings: DEFAULT_PLAN.replication, waitForSource: false }, ctx);
          req.onEvent({ type: 'rejoined', instance: step.instance, source: src.name });
          state = await ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.filter((x) => x.name !== step.instance) }));
          break;
        }
        case 'keep-fenced': {
          req.onEvent({ type: 'fenced', instance: step.instance, errant: step.errant });
          const fencedAt = new Date(ports.now()).toISOString();
          state = await ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.map((x) => (x.name === step.instance ? { ...x, errant: step.errant, fencedAt } : x)) }));
          continue;
        }
        case 'drift': {
          const fenced = fencedMap(state);
          if (step.plan.steps.length === 0) return { analysis, plan: step.plan, fenced, probes };
          req.onEvent({ type: 'drift', plan: step.plan, applied: step.apply });
          if (!step.apply || !(await mayStillAct())) return { analysis, plan: step.plan, fenced, probes };
          const applied = await applyPlan(step.plan, ctx);
          return { analysis, plan: step.plan, applied, fenced, probes: await probeCluster(ctx) };
        }
      }
      // A former primary was fenced or rejoined: decide the rest from what the servers are now.
      probes = await probeCluster(ctx);
    }
  } catch (e) {
    // A server refused or did not show a change (fencing, a rejoin, a relocation): the pass
    // reports it; the next pass decides again from what the servers show then.
    if (e instanceof StepFailed) return { analysis, error: e.message, fenced: fencedMap(state), probes };
    throw e;
  }
  throw new Error(`reconcile of ${spec.cluster} did not settle within ${MAX_STEPS} steps`);
}
