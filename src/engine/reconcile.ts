// reconcileOnce: one pass over one cluster — finish an interrupted failover, fail over when the
// policy allows, fence and rejoin a returning old primary, then correct (or report) drift.
// The daemon repeats passes; `topogit reconcile` runs one.
import { analyzeCluster, triggersFailover, type Analysis } from '../core/analysis.js';
import { canReplicateFrom } from '../core/errant.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import { DEFAULT_PLAN, planCluster, type ClusterPlan } from '../core/plan.js';
import { fencedMap, type ClusterState, type FormerPrimary } from '../core/state.js';
import { applyPlan, probeCluster, runAction, type ApplyContext, type ApplyReport } from './apply.js';
import { failover, type FailoverEvent, type FailoverOutcome, type FailoverPorts, type FailoverRequest } from './failover.js';

export interface ReconcileRequest {
  readonly spec: ClusterSpec;
  readonly ctx: FailoverRequest['ctx'];
  readonly ports: FailoverPorts & {
    /** Has a human acknowledged the last failover by committing to the file after it? */
    readonly committedSince: (commit: string, file: string) => Promise<boolean>;
  };
  readonly repoDir: string;
  readonly onEvent: (e: FailoverEvent | ReconcileEvent) => void;
  /** When a probe of the primary first failed (the daemon knows; one-shot runs use now). */
  readonly detectedAt?: number;
  /** May drift correction move the primary role? The daemon allows it only after a commit changed
   *  the file's primary; a one-shot run by a human allows it. Default true. */
  readonly allowSwitchover?: boolean;
}

export type ReconcileEvent =
  | { readonly type: 'analysis'; readonly analysis: Analysis }
  | { readonly type: 'failover-blocked'; readonly reason: string }
  | { readonly type: 'fenced'; readonly instance: string; readonly errant: string }
  | { readonly type: 'rejoined'; readonly instance: string; readonly source: string }
  | { readonly type: 'drift'; readonly plan: ClusterPlan; readonly applied: boolean };

export interface ReconcileResult {
  readonly analysis: Analysis;
  readonly failover?: FailoverOutcome;
  readonly blocked?: string;
  readonly plan?: ClusterPlan;
  readonly applied?: ApplyReport;
  readonly fenced: ReadonlyMap<string, string>;
  /** The probe round the result was decided from (the last one). */
  readonly probes: ReadonlyMap<string, ProbeResult>;
}

export async function reconcileOnce(req: ReconcileRequest): Promise<ReconcileResult> {
  const { spec, ports } = req;
  const ctx: ApplyContext = { ...req.ctx, spec, ports, onEvent: req.onEvent };
  let state = await ports.state.read(spec.cluster);
  const failoverReq = { spec, ctx: req.ctx, ports, repoDir: req.repoDir, onEvent: req.onEvent, ...(req.detectedAt !== undefined ? { detectedAt: req.detectedAt } : {}) };

  // An interrupted failover is finished (or undone) before anything else.
  if (state.journal) {
    const outcome = await failover({ ...failoverReq, trigger: state.journal.trigger });
    state = await ports.state.read(spec.cluster);
    const probes = await probeCluster(ctx);
    return { analysis: analyzeCluster(spec, probes), failover: outcome, fenced: fencedMap(state), probes };
  }

  let probes = await probeCluster(ctx);
  const analysis = analyzeCluster(spec, probes);
  req.onEvent({ type: 'analysis', analysis });
  await rememberPrimaryGtid(spec, probes, state, ports);

  if (triggersFailover(analysis.code)) {
    const blocked = await blockedReason(spec, state, ports);
    if (blocked) {
      req.onEvent({ type: 'failover-blocked', reason: blocked });
      return { analysis, blocked, fenced: fencedMap(state), probes };
    }
    const outcome = await failover({ ...failoverReq, trigger: 'auto' });
    return { analysis, failover: outcome, fenced: fencedMap(await ports.state.read(spec.cluster)), probes: await probeCluster(ctx) };
  }

  // Former primaries: read-only the moment they answer, then rejoined only without errant GTIDs.
  const hadFormer = state.formerPrimaries.some((f) => probes.get(f.name)?.ok);
  state = await handleFormerPrimaries(spec, probes, state, ctx, req);
  // Fencing or a rejoin changed the servers: plan from what they are now.
  if (hadFormer) probes = await probeCluster(ctx);

  const fenced = fencedMap(state);
  const full = planCluster(spec, probes, { ...DEFAULT_PLAN, fenced });
  // Moving the primary role is a decision a commit makes, not something drift repair infers.
  const plan: ClusterPlan =
    req.allowSwitchover === false && full.steps.some((st) => st.substeps)
      ? {
          ...full,
          // The other steps were planned around the switchover: none of them runs without it.
          steps: [],
          notices: [...full.notices, { kind: 'refused', message: 'the live primary differs from the file, but no commit changed the file\'s primary since: no switchover, nothing applied' }],
        }
      : full;
  if (plan.steps.length === 0) return { analysis, plan, fenced, probes };
  const apply = spec.failover.reconcile === 'auto' && analysis.code === 'PrimaryReachable';
  req.onEvent({ type: 'drift', plan, applied: apply });
  if (!apply) return { analysis, plan, fenced, probes };
  const applied = await applyPlan(plan, ctx);
  return { analysis, plan, applied, fenced, probes: await probeCluster(ctx) };
}


/** The primary's executed GTIDs from its last good probe: what a failover may lose, later. */
async function rememberPrimaryGtid(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, state: ClusterState, ports: FailoverPorts): Promise<void> {
  const primary = spec.instances.find((i) => i.source === undefined);
  const p = primary ? probes.get(primary.name) : undefined;
  if (!primary || !p?.ok) return;
  const lastLag: Record<string, number> = {};
  for (const i of spec.instances) {
    const r = probes.get(i.name);
    const lag = r?.ok ? r.state.replication[0]?.secondsBehindSource : undefined;
    if (lag !== undefined && lag !== null) lastLag[i.name] = lag;
  }
  const sameLag = JSON.stringify(lastLag) === JSON.stringify(state.lastLag ?? {});
  if (state.lastPrimaryGtid?.name === primary.name && state.lastPrimaryGtid.executed === p.state.gtid.executed && sameLag) return;
  await ports.state.update(spec.cluster, (s) => ({ ...s, lastLag, lastPrimaryGtid: { name: primary.name, executed: p.state.gtid.executed, at: new Date(ports.now()).toISOString() } }));
}

export async function blockedReason(spec: ClusterSpec, state: ClusterState, ports: ReconcileRequest['ports']): Promise<string | undefined> {
  if (!spec.failover.auto) return 'failover.auto is false: fail over by hand with `topogit failover`';
  const last = state.lastFailover;
  if (!last) return undefined;
  const since = ports.now() - Date.parse(last.at);
  if (since >= spec.failover.blockSeconds * 1000) return undefined;
  if (state.ackedAt && Date.parse(state.ackedAt) > Date.parse(last.at)) return undefined;
  if (last.commit && (await ports.committedSince(last.commit, spec.file))) return undefined;
  const left = Math.ceil((spec.failover.blockSeconds * 1000 - since) / 1000);
  return `anti-flapping: the last failover (${last.from} -> ${last.to}) was ${Math.round(since / 1000)}s ago; automatic failover is blocked for ${left}s more unless acknowledged (\`topogit ack ${spec.cluster}\` or a commit to ${spec.file})`;
}

async function handleFormerPrimaries(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, state: ClusterState, ctx: ApplyContext, req: ReconcileRequest): Promise<ClusterState> {
  let next = state;
  const filePrimary = spec.instances.find((i) => i.source === undefined)?.name;
  for (const f of state.formerPrimaries) {
    // A commit made it the primary again (a human repaired it): it is no longer a former primary.
    if (f.name === filePrimary) {
      next = await req.ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.filter((x) => x.name !== f.name) }));
      continue;
    }
    const p = probes.get(f.name);
    if (!p?.ok) continue;
    // It restarted writable: that is how split brain starts. Fence first, decide after.
    if (!p.state.readOnly) await runAction({ kind: 'set-read-only', instance: f.name, readOnly: true }, ctx);
    const primary = spec.instances.find((i) => i.source === undefined);
    const np = primary ? probes.get(primary.name) : undefined;
    if (!primary || !np?.ok) continue;
    const v = canReplicateFrom(p.state.flavor, p.state.gtid, np.state.gtid, np.state.gtid);
    const errant = v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : v.kind === 'unknown' ? `unknown (${v.why})` : '';
    const inFile = spec.instances.find((i) => i.name === f.name);
    const rejoin = errant === '' && spec.failover.formerPrimary === 'rejoin' && inFile?.source !== undefined;
    if (rejoin && inFile?.source) {
      const src = spec.instances.find((i) => i.name === inFile.source);
      if (!src) continue;
      await runAction({ kind: 'change-source', instance: f.name, source: src.name, host: src.host, port: src.port, settings: DEFAULT_PLAN.replication, waitForSource: false }, ctx);
      req.onEvent({ type: 'rejoined', instance: f.name, source: src.name });
      next = await req.ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.filter((x) => x.name !== f.name) }));
      continue;
    }
    if (f.errant === undefined) {
      req.onEvent({ type: 'fenced', instance: f.name, errant });
      const fenced: FormerPrimary = { ...f, errant, fencedAt: new Date(ctx.ports.now()).toISOString() };
      next = await req.ports.state.update(spec.cluster, (s) => ({ ...s, formerPrimaries: s.formerPrimaries.map((x) => (x.name === f.name ? fenced : x)) }));
    }
  }
  return next;
}
