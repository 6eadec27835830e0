// failover: promote a replica of a dead primary, repoint the others, fence what can be fenced,
// and write the new tree back to Git. The core decides each next step (src/core/failover.ts);
// this loop runs it through the operating module, journals it before asking again, and probes
// after every step that changed a server. A run killed half-way is finished (or undone) by the
// next run through the same loop.
import type { Analysis } from '../core/analysis.js';
import { decideFailover, failoverAnalysis, type FailoverStep } from '../core/failover.js';
import { failoverCommitMessage, failoverRecord, hookEnv, lostTransactions } from '../core/failover-record.js';
import { endpointOfRouter } from '../core/routing.js';
import { syncRouters } from './route.js';
import { isAlive, type ClusterSpec, type ProbeResult } from '../core/model.js';
import { DEFAULT_REPLICATION } from '../core/plan.js';
import type { FailoverPorts, WriteBackResult } from '../core/ports.js';
import { withoutJournal, type ClusterState, type FailoverJournal, type FailoverPhase, type FailoverRecord } from '../core/state.js';
import { promotionEdits, redactSecrets } from '../core/write-back.js';
import { notPushedReason, writeBackOrPend } from './write-back.js';
import type { ApplyEvent } from './apply.js';
import { fence, probeCluster, restartReplication, runAction, StepFailed, tryFence, type OperateContext } from './operate.js';

export type { FailoverPorts };

export type FailoverEvent =
  | ApplyEvent
  | { readonly type: 'failover-step'; readonly step: FailoverPhase; readonly detail: string; readonly atMs: number }
  | { readonly type: 'hook'; readonly phase: 'preFailover' | 'fence' | 'postFailover'; readonly command: string; readonly code: number; readonly output: string };

export interface FailoverRequest {
  readonly spec: ClusterSpec;
  readonly ctx: Omit<OperateContext, 'onEvent' | 'ports' | 'spec'>;
  readonly ports: FailoverPorts;
  readonly trigger: 'auto' | 'manual';
  readonly to?: string;
  /** Fail over although the primary answers (it is fenced read-only first). */
  readonly force?: boolean;
  /** Undo the failover in progress, if nothing was promoted yet. */
  readonly abort?: boolean;
  readonly repoDir: string;
  /** When the failure was first seen (the daemon's failed probe); defaults to now. */
  readonly detectedAt?: number;
  readonly onEvent: (e: FailoverEvent) => void;
}

export interface FailoverTimings {
  readonly detectedToWritableMs: number;
  readonly detectedToRepointedMs: number;
  readonly detectedToCommitMs: number;
}

export type FailoverOutcome =
  | { readonly kind: 'done'; readonly record: FailoverRecord; readonly timings: FailoverTimings; readonly writeBack: WriteBackResult; readonly notes: readonly string[] }
  | { readonly kind: 'refused'; readonly reason: string; readonly analysis?: Analysis }
  /** A failover in progress was undone (the primary came back, or an operator aborted it); nothing had been promoted. */
  | { readonly kind: 'undone'; readonly reason: string }
  | { readonly kind: 'vetoed'; readonly command: string; readonly output: string }
  | { readonly kind: 'failed'; readonly step: string; readonly error: string };

const DRAIN_SECONDS = 30;
/** One router call (read or change) during a failover: a router that does not answer must not hold it up. */
const ROUTER_TIMEOUT_MS = 1000;
const CONFIRM_WAIT_MS = 3000;
/** A failover is about ten steps; a loop that goes on past this is a bug, not a slow server. */
const MAX_STEPS = 40;

export async function failover(req: FailoverRequest): Promise<FailoverOutcome> {
  const { spec, ports } = req;
  const detectedAt = req.detectedAt ?? ports.now();
  const ctx: OperateContext = { ...req.ctx, spec, ports, onEvent: req.onEvent };
  let state: ClusterState = await ports.state.read(spec.cluster);
  const resumed = state.journal !== undefined;
  const confirmUntil = ports.now() + CONFIRM_WAIT_MS;
  const request = { trigger: req.trigger, ...(req.to ? { to: req.to } : {}), ...(req.force ? { force: true } : {}), ...(req.abort ? { abort: true } : {}) };
  let probes = await probeCluster(ctx);
  let writableAt: number | undefined;
  let repointedAt: number | undefined;
  let wb: WriteBackResult | undefined;

  const journal = (): FailoverJournal => {
    if (!state.journal) throw new Error('failover: no journal'); // decideFailover starts one before any other step
    return state.journal;
  };
  const mark = async (phase: FailoverPhase, detail: string, extra: Partial<FailoverJournal> = {}) => {
    const at = new Date(ports.now()).toISOString();
    state = await ports.state.update(spec.cluster, (s) => {
      const j = s.journal ?? journal();
      return { ...s, journal: { ...j, ...extra, steps: [...j.steps, { step: phase, at, detail }] } };
    });
    req.onEvent({ type: 'failover-step', step: phase, detail, atMs: ports.now() - detectedAt });
    ports.faultPoint(phase);
  };
  const note = (text: string): readonly string[] => [...(state.journal?.notes ?? []), text];
  // postFailover hooks run once per run, beside the repoint and the write-back; finish awaits them.
  let postHooks: Promise<string[]> | undefined;
  const startPostHooks = (failed: string, newPrimary: string): Promise<string[]> =>
    (postHooks ??= (async () => {
      const out: string[] = [];
      for (const command of spec.failover.hooks.postFailover) {
        const r = await ports.runHook(command, hookEnv(spec, failed, newPrimary));
        req.onEvent({ type: 'hook', phase: 'postFailover', command, code: r.code, output: r.output });
        if (r.code !== 0) out.push(`postFailover hook ${command} exited ${r.code}`);
      }
      return out;
    })());
  // Lost the lease mid-way: stop before the next change; the journal lets the daemon that holds
  // it now finish. (Checked before acting, never between an action and its journal entry.)
  // The candidate died while being caught up or promoted: the next decision chooses another one.
  // Any other failure stops the failover (the journal keeps where it was).
  const unlessCandidateDied = async (candidate: string, act: () => Promise<void>): Promise<boolean> => {
    try {
      await act();
      return true;
    } catch (e) {
      const now = await probeCluster(ctx);
      if (now.get(candidate)?.ok !== false) throw e;
      req.onEvent({ type: 'failover-step', step: 'chosen', detail: `${candidate} died before it was promoted (${(e as Error).message}); choosing again`, atMs: ports.now() - detectedAt });
      return false;
    }
  };
  const mustAct = async (next: string): Promise<void> => {
    if (ports.mayAct && !(await ports.mayAct())) throw new StepFailed(`lost the lease before ${next}; the active daemon finishes from the journal`);
  };

  try {
    for (let n = 0; n < MAX_STEPS; n++) {
      const analysis = failoverAnalysis(spec, probes, state.journal, state.serverIds);
      const step: FailoverStep = decideFailover({ spec, journal: state.journal, resumed, request, analysis, probes, state, mayWaitForConfirmation: ports.now() < confirmUntil, now: ports.now() });
      if (step.kind === 'repoint' || step.kind === 'fence-attempt' || step.kind === 'write-back' || step.kind === 'finish') writableAt ??= ports.now();
      if (step.kind === 'fence-attempt' || step.kind === 'write-back' || step.kind === 'finish') repointedAt ??= ports.now();
      switch (step.kind) {
        case 'refuse':
          return { kind: 'refused', reason: step.reason, analysis };
        case 'wait-confirmation':
          await ports.sleep(200);
          probes = await probeCluster(ctx);
          continue;
        case 'start': {
          // A second look at the primary alone before anything changes: a connection reset that
          // healed, or a probe that lost a race, must not start a failover. Any answer is life.
          if (!step.forced) {
            const f = instance(spec, step.failed);
            const again = await ports.probe({ host: f.host, port: f.port }, ctx.admin, ctx.timeouts);
            if (isAlive(again)) return { kind: 'refused', reason: `${step.failed} answered a second probe (${again.ok ? 'it is reachable' : again.error}): it is alive; no failover`, analysis };
          }
          // Nothing starts (no hook, no journal) unless this process may act on the cluster.
          await mustAct('starting');
          // A human's veto comes before anything changes.
          for (const command of step.hooks) {
            const r = await ports.runHook(command, hookEnv(spec, step.failed, req.to));
            req.onEvent({ type: 'hook', phase: 'preFailover', command, code: r.code, output: r.output });
            if (r.code !== 0) return { kind: 'vetoed', command, output: r.output };
          }
          const startedAt = new Date(ports.now()).toISOString();
          const fresh: FailoverJournal = {
            id: `${spec.cluster}-${startedAt}`,
            cluster: spec.cluster,
            failedPrimary: step.failed,
            startedAt,
            trigger: req.trigger,
            ...(req.to ? { to: req.to } : {}),
            ...(step.forced ? { forced: true } : {}),
            ...(step.fence.length > 0 ? { stonith: step.fence } : {}),
            steps: [],
          };
          state = await ports.state.update(spec.cluster, (s) => ({ ...s, journal: fresh }));
          await mark('started', step.why);
          continue;
        }
        case 'undo':
        case 'abandon':
          await mustAct('restarting replication');
          await restartReplication(ctx, step.restart);
          state = await ports.state.update(spec.cluster, withoutJournal);
          return step.kind === 'undo' ? { kind: 'undone', reason: step.reason } : { kind: 'refused', reason: step.reason, analysis };
        case 'stonith': {
          await mustAct('the fence commands');
          // The old primary must be powered off or cut off before a replica that only a minority
          // vouched for is promoted; any failure leaves everything as it is.
          for (const command of step.commands) {
            const r = await ports.runHook(command, hookEnv(spec, step.instance), step.timeoutSeconds * 1000);
            req.onEvent({ type: 'hook', phase: 'fence', command, code: r.code, output: r.output });
            if (r.code !== 0) {
              state = await ports.state.update(spec.cluster, withoutJournal);
              return { kind: 'refused', reason: `the fence command ${command} exited ${r.code}${r.output ? ` (${r.output.split('\n')[0]})` : ''}: ${step.instance} may still be alive; nothing was promoted`, analysis };
            }
          }
          await mark('stonith', `${step.instance} fenced by ${step.commands.join('; ')}`);
          break;
        }
        case 'fence-old':
          await mustAct('fencing the old primary');
          // Writes are taken away at the routers first (best effort, writer backends only, no
          // server ready): an application with a read_only bypass must not keep writing to it.
          if ((spec.routing?.length ?? 0) > 0) {
            const none = spec.instances.map((i) => ({ name: i.name, primary: false, healthyReplica: false }));
            await syncRouters(spec.routing ?? [], spec.instances.map((i) => i.name), none, ports.router, { timeoutMs: ROUTER_TIMEOUT_MS, writerOnly: true, ...(ports.mayAct ? { mayAct: ports.mayAct } : {}) });
          }
          await fence(ctx, step.instance);
          // Its last commits must reach the replicas before their IO threads stop.
          for (const r of step.replicas) {
            await runAction({ kind: 'wait-caught-up', instance: r, target: step.instance, timeoutSeconds: DRAIN_SECONDS }, ctx).catch(() => undefined);
          }
          await mark('fenced-old', `${step.instance} set read-only before the failover`);
          break;
        case 'drain': {
          await mustAct('stopping the replicas');
          // A half-dead primary must not keep feeding replicas while we decide; each applies what it
          // has. One that cannot finish in time is not promoted, but does not block the others.
          const results = await Promise.all([
            ...step.replicas.map((r) => runAction({ kind: 'drain-relay-log', instance: r, timeoutSeconds: DRAIN_SECONDS }, ctx).then(() => undefined, (e: unknown) => ({ name: r, error: (e as Error).message }))),
            ...step.delayed.map((r) => runAction({ kind: 'drain-relay-log', instance: r, timeoutSeconds: DRAIN_SECONDS, wait: false }, ctx).then(() => undefined, (e: unknown) => ({ name: r, error: (e as Error).message }))),
          ]);
          const undrained = results.filter((x) => x !== undefined);
          let notes = state.journal?.notes ?? [];
          for (const u of undrained) notes = [...notes, `${u.name} did not apply its relay log in time (${u.error}); not promoted`];
          const drained = step.replicas.filter((r) => !undrained.some((u) => u.name === r));
          const delayedNote = step.delayed.length > 0 ? `; delayed, not waited out: ${step.delayed.join(', ')}` : '';
          await mark('drained', `IO threads stopped and relay logs applied on ${drained.join(', ') || 'no replica'}${delayedNote}`, { undrained: undrained.map((u) => u.name), notes });
          break;
        }
        case 'undelay':
          await mustAct('undelaying');
          await runAction({ kind: 'undelay', instance: step.instance, timeoutSeconds: DRAIN_SECONDS }, ctx);
          await mark('undelayed', `${step.instance} applied its relay log without its delay (it held transactions no other replica had)`);
          break;
        case 'choose':
          // Probed again before the promotion: the old primary must still be gone, the candidate alive.
          await mark('chosen', `${step.candidate}: ${step.reason}`, { candidate: step.candidate, ranked: step.ranked });
          break;
        case 'catch-up': {
          await mustAct('catching up');
          const d = instance(spec, step.donor);
          const ok = await unlessCandidateDied(step.candidate, async () => {
            // Without any delay the candidate may have: it is caught up, not waited out.
            await runAction({ kind: 'change-source', instance: step.candidate, source: d.name, host: d.host, port: d.port, settings: DEFAULT_REPLICATION, waitForSource: false, delaySeconds: 0 }, ctx);
            await runAction({ kind: 'wait-caught-up', instance: step.candidate, target: d.name, timeoutSeconds: DRAIN_SECONDS }, ctx);
          });
          if (ok) await mark('caught-up', `${step.candidate} caught up from ${d.name}`, { notes: note(`${step.candidate} caught up from ${d.name}, which was ahead of it`) });
          break;
        }
        case 'promote': {
          await mustAct('promoting');
          const ok = await unlessCandidateDied(step.candidate, () => runAction({ kind: 'promote', instance: step.candidate }, ctx));
          if (!ok) break;
          await mark('promoted', `${step.candidate} is writable and replicates from nobody`);
          writableAt = ports.now();
          // Hooks (a DNS change, a proxy) never wait for the repoint or Git; with routers, after them.
          if ((spec.routing?.length ?? 0) === 0) void startPostHooks(journal().failedPrimary, step.candidate);
          break;
        }
        case 'route': {
          await mustAct('changing the routers');
          const live = spec.instances.map((i) => ({ name: i.name, primary: i.name === step.newPrimary, healthyReplica: false }));
          const outcomes = await syncRouters(step.routers, spec.instances.map((i) => i.name), live, ports.router, { timeoutMs: ROUTER_TIMEOUT_MS, writerOnly: true, ...(ports.mayAct ? { mayAct: ports.mayAct } : {}) });
          const stale = outcomes.filter((x) => !x.inStep);
          const done = outcomes.filter((x) => x.inStep).map((x) => `${endpointOfRouter(x.router)} ${x.router.writer} -> ${step.newPrimary}`);
          let notes = state.journal?.notes ?? [];
          for (const x of stale) notes = [...notes, `router ${endpointOfRouter(x.router)} not in step (${x.error ?? 'unknown'}): the daemon retries it every pass (RoutingStale)`];
          void startPostHooks(journal().failedPrimary, step.newPrimary);
          await mark('routed', done.length > 0 ? `writer backends send to ${step.newPrimary}: ${done.join('; ')}${stale.length ? `; ${stale.length} router(s) not in step` : ''}` : `no router in step yet (${stale.map((x) => x.error).join('; ')})`, { notes });
          continue;
        }
        case 'repoint': {
          await mustAct('repointing');
          // Their own subtrees stay under them.
          const np = instance(spec, step.newPrimary);
          for (const r of step.moves) {
            await runAction({ kind: 'change-source', instance: r, source: np.name, host: np.host, port: np.port, settings: DEFAULT_REPLICATION, waitForSource: false }, ctx);
          }
          let notes = state.journal?.notes ?? [];
          for (const s of step.skipped) notes = [...notes, `${s.name} ${s.why}`];
          await mark('repointed', `replicas of ${journal().failedPrimary} now replicate from ${step.newPrimary}`, { notes });
          repointedAt = ports.now();
          continue;
        }
        case 'fence-attempt': {
          await mustAct('fencing the old primary');
          // The old primary may be merely partitioned: try to stop its writes (it is fenced on return too).
          // (Not one an operator is working on: it is in maintenance.)
          const fenced = step.skip === undefined && (await tryFence(ctx, step.instance));
          await mark('fence-attempted', step.skip !== undefined ? `not fenced: ${step.skip}` : fenced ? `${step.instance} answered and was set read-only` : `${step.instance} did not answer; it is fenced when it returns`);
          continue;
        }
        case 'write-back': {
          await mustAct('the write-back');
          const j = journal();
          const record = failoverRecord(j, step.newPrimary, new Date(ports.now()).toISOString(), lostOf(state, j, probes, step.newPrimary), null);
          const message = failoverCommitMessage(spec, j, record, { detectedToWritableMs: (writableAt ?? ports.now()) - detectedAt, detectedToRepointedMs: (repointedAt ?? ports.now()) - detectedAt });
          // One bounded attempt; one that does not reach the upstream is recorded as pending and
          // retried by the daemon (engine/write-back.ts): the failover does not wait for Git.
          wb = await writeBackOrPend(ports, { spec, repoDir: req.repoDir, kind: 'failover', sources: promotionEdits(spec.instances, step.newPrimary), message, failoverId: j.id });
          const commit = wb.kind === 'committed' ? wb.commit : wb.kind === 'failed' ? (wb.commit ?? null) : null;
          const pending = notPushedReason(wb) !== undefined ? '; pending: the daemon pushes it when it can' : '';
          // Git's words may carry a remote's credentials: redacted before the journal and the logs.
          await mark('written-back', (wb.kind === 'committed' ? `commit ${wb.commit.slice(0, 12)}${wb.pushed ? ' pushed' : ` (not pushed: ${redactSecrets(wb.why)})`}` : wb.kind) + pending, {
            commit,
            ...(wb.kind === 'failed' ? { notes: note(`write-back failed: ${redactSecrets(wb.error)}${pending}`) } : {}),
          });
          continue;
        }
        case 'finish': {
          const j = journal();
          const commitAt = ports.now();
          const final = failoverRecord(j, step.newPrimary, new Date(commitAt).toISOString(), lostOf(state, j, probes, step.newPrimary), j.commit ?? null);
          state = await ports.state.update(spec.cluster, (s) => ({
            ...withoutJournal(s),
            lastFailover: final,
            formerPrimaries: [...s.formerPrimaries.filter((f) => f.name !== j.failedPrimary), { name: j.failedPrimary, failoverId: j.id, newPrimary: step.newPrimary }],
          }));
          // Started as soon as the applications could follow (a resumed failover starts them here).
          const notes = [...(j.notes ?? []), ...(await startPostHooks(j.failedPrimary, step.newPrimary))];
          return {
            kind: 'done',
            record: final,
            writeBack: wb ?? { kind: 'unchanged' },
            notes,
            timings: { detectedToWritableMs: (writableAt ?? commitAt) - detectedAt, detectedToRepointedMs: (repointedAt ?? commitAt) - detectedAt, detectedToCommitMs: commitAt - detectedAt },
          };
        }
      }
      // The step changed servers: decide the next one from what they show now.
      probes = await probeCluster(ctx);
    }
    throw new StepFailed(`the failover did not finish within ${MAX_STEPS} steps`);
  } catch (e) {
    const last = state.journal?.steps[state.journal.steps.length - 1]?.step ?? 'start';
    return { kind: 'failed', step: last, error: (e as Error).message };
  }
}

function instance(spec: ClusterSpec, name: string): ClusterSpec['instances'][number] {
  const i = spec.instances.find((x) => x.name === name);
  if (!i) throw new StepFailed(`${name} is not an instance of cluster ${spec.cluster}`);
  return i;
}

function lostOf(state: ClusterState, j: FailoverJournal, probes: ReadonlyMap<string, ProbeResult>, newPrimary: string): { gtids: string | null; known: boolean } {
  const np = probes.get(newPrimary);
  return np?.ok ? lostTransactions(state, j.failedPrimary, np.state) : { gtids: null, known: false };
}
