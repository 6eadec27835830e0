// failover: promote a replica of a dead primary, repoint the others, fence what can be fenced,
// and write the new tree back to Git. Every step is journaled first, so a run killed half-way is
// finished (or undone) by the next run instead of leaving a silent half-state.
import { analyzeCluster, triggersFailover, type Analysis } from '../core/analysis.js';
import { chooseCandidate, localWrites, replicasOf, type Contender } from '../core/candidate.js';
import { canReplicateFrom } from '../core/errant.js';
import { gtidIsEmpty, gtidSubtract, parseGtid } from '../core/gtid.js';
import type { ClusterSpec, InstanceState, ProbeResult } from '../core/model.js';
import { DEFAULT_REPLICATION } from '../core/plan.js';
import { editSources, promotionEdits } from '../config/edit.js';
import type { FailoverJournal, FailoverRecord, ClusterState } from '../core/state.js';
import { withoutJournal } from '../core/state.js';
import type { FailoverPorts, WriteBackResult } from '../core/ports.js';
import { fresh, probeCluster, runAction, StepFailed, type ApplyContext, type ApplyEvent, type ApplyPorts } from './apply.js';

export type { FailoverPorts };

export type FailoverEvent =
  | ApplyEvent
  | { readonly type: 'failover-step'; readonly step: string; readonly detail: string; readonly atMs: number }
  | { readonly type: 'hook'; readonly phase: 'preFailover' | 'postFailover'; readonly command: string; readonly code: number; readonly output: string };

export interface FailoverRequest {
  readonly spec: ClusterSpec;
  readonly ctx: Omit<ApplyContext, 'onEvent' | 'ports' | 'spec'>;
  readonly ports: FailoverPorts;
  readonly trigger: 'auto' | 'manual';
  readonly to?: string;
  /** Fail over although the primary answers (it is fenced read-only first). */
  readonly force?: boolean;
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
  | { readonly kind: 'vetoed'; readonly command: string; readonly output: string }
  | { readonly kind: 'failed'; readonly step: string; readonly error: string };

const DRAIN_SECONDS = 30;
const CONFIRM_WAIT_MS = 3000;

export async function failover(req: FailoverRequest): Promise<FailoverOutcome> {
  const { spec, ports } = req;
  const detectedAt = req.detectedAt ?? ports.now();
  const ctx: ApplyContext = { ...req.ctx, spec, ports, onEvent: req.onEvent };
  const state = await ports.state.read(spec.cluster);
  const resumed = state.journal;
  // Resuming, the journal says who failed: the file may already name the new primary (the
  // write-back may have happened just before the crash).
  const failed = resumed ? spec.instances.find((i) => i.name === resumed.failedPrimary) : spec.instances.find((i) => i.source === undefined);
  if (!failed) return { kind: 'refused', reason: resumed ? `the journal names ${resumed.failedPrimary}, which is not in ${spec.file} any more` : 'the file has no primary' };

  let probes = await probeCluster(ctx);
  let analysis = resumed ? analyzeAbout(spec, probes, failed.name) : analyzeCluster(spec, probes);
  // Asked by a human right after a crash, the replicas may not have noticed yet (they notice at
  // once on a closed connection, within the heartbeat period on a silent one): look again briefly.
  const patience = ports.now() + CONFIRM_WAIT_MS;
  while (!resumed && req.trigger === 'manual' && analysis.code === 'UnreachablePrimary' && ports.now() < patience) {
    await ports.sleep(200);
    probes = await probeCluster(ctx);
    analysis = analyzeCluster(spec, probes);
  }
  if (!resumed && !triggersFailover(analysis.code)) {
    // --force is for a primary that answers (it is fenced first). One that does not answer while
    // replicas still follow it may be alive and writable: never promote past it.
    if (!req.force || analysis.code !== 'PrimaryReachable') {
      const hint = analysis.code === 'PrimaryReachable' ? '; it is alive: use `topogit switchover` (or --force to fail over anyway)' : '';
      return { kind: 'refused', reason: `${analysis.code}: ${analysis.summary}${hint}`, analysis };
    }
  }

  const journal: FailoverJournal = resumed ?? {
    id: `${spec.cluster}-${new Date(ports.now()).toISOString()}`,
    cluster: spec.cluster,
    failedPrimary: failed.name,
    startedAt: new Date(ports.now()).toISOString(),
    trigger: req.trigger,
    ...(req.to ? { to: req.to } : {}),
    steps: [],
  };
  const to = req.to ?? journal.to;
  // Lost the lease mid-way: stop before the next change; the journal lets the daemon that holds
  // it now finish. (Checked before acting, never between an action and its journal entry.)
  const mustAct = (next: string) => {
    if (ports.mayAct && !ports.mayAct()) throw new StepFailed(`lost the lease before ${next}; the active daemon finishes from the journal`);
  };
  const mark = async (step: string, detail: string, extra: Partial<FailoverJournal> = {}) => {
    Object.assign(journal, extra, { steps: [...journal.steps, { step, at: new Date(ports.now()).toISOString(), detail }] });
    await ports.state.update(spec.cluster, (s) => ({ ...s, journal }));
    req.onEvent({ type: 'failover-step', step, detail, atMs: ports.now() - detectedAt });
    ports.faultPoint(step);
  };
  const done = (step: string) => journal.steps.some((s) => s.step === step);
  const env = hookEnv(spec, failed.name, journal.candidate);
  const notes: string[] = [];

  try {
    if (!resumed) {
      // A human's veto comes before anything changes.
      for (const command of spec.failover.hooks.preFailover) {
        const r = await ports.runHook(command, hookEnv(spec, failed.name, req.to));
        req.onEvent({ type: 'hook', phase: 'preFailover', command, code: r.code, output: r.output });
        if (r.code !== 0) return { kind: 'vetoed', command, output: r.output };
      }
      await mark('started', `${analysis.code}: ${analysis.summary}`);
    } else if (!done('promoted') && !done('fenced-old') && (analysis.code === 'PrimaryReachable' || analysis.replicas.some((e) => e.connected === true))) {
      // Interrupted before anything was promoted, and the primary is back (it answers, or a
      // replica follows it again): undo, do not promote. Replicas whose IO threads this failover
      // stopped say nothing either way, so they do not count.
      await restartIoThreads(ctx, spec, probes, failed.name);
      await ports.state.update(spec.cluster, (s) => withoutJournal(s));
      return { kind: 'refused', reason: `an interrupted failover of ${failed.name} was undone: ${analysis.code}: ${analysis.summary}; nothing had been promoted` };
    }

    // If the primary still answers (forced failover), fence it first: never two writable primaries.
    if (probes.get(failed.name)?.ok && !done('fenced-old')) {
      await runAction({ kind: 'set-read-only', instance: failed.name, readOnly: true }, ctx);
      // Its last commits must reach the replicas before their IO threads stop.
      for (const r of replicasOf(spec, probes, failed.name).filter((x) => probes.get(x.name)?.ok)) {
        await runAction({ kind: 'wait-caught-up', instance: r.name, target: failed.name, timeoutSeconds: DRAIN_SECONDS }, ctx).catch(() => undefined);
      }
      await mark('fenced-old', `${failed.name} set read-only before the failover`);
    }

    const replicas = replicasOf(spec, probes, failed.name).filter((r) => probes.get(r.name)?.ok);
    let candidate = journal.candidate;
    let ranked: readonly Contender[] = [];
    if (!done('promoted')) {
      let after = probes;
      if (!(done('chosen') && candidate)) {
        // A half-dead primary must not keep feeding replicas while we decide; each applies what it
        // has. One that cannot finish in time is not promoted, but does not block the others.
        const undrained = new Set<string>();
        for (const r of replicas) {
          await runAction({ kind: 'drain-relay-log', instance: r.name, timeoutSeconds: DRAIN_SECONDS }, ctx).catch((e: unknown) => {
            undrained.add(r.name);
            notes.push(`${r.name} did not apply its relay log in time (${(e as Error).message}); not promoted`);
          });
        }
        await mark('drained', `IO threads stopped and relay logs applied on ${replicas.filter((r) => !undrained.has(r.name)).map((r) => r.name).join(', ') || 'no replica'}`);

        after = await probeCluster(ctx);
        const known = await ports.state.read(spec.cluster);
        const fencedNow = new Set([...known.formerPrimaries.filter((f) => f.errant !== undefined).map((f) => f.name), ...undrained]);
        const lastLag = new Map(Object.entries(known.lastLag ?? {}));
        const choice = chooseCandidate(spec, after, failed.name, { maxLagSeconds: spec.failover.maxLagSeconds, fenced: fencedNow, lastLag, ...(to ? { to } : {}) });
        ranked = choice.ranked;
        if (choice.kind === 'refuse') {
          await restartIoThreads(ctx, spec, after, failed.name);
          await ports.state.update(spec.cluster, (s) => withoutJournal(s));
          return { kind: 'refused', reason: choice.reason, analysis };
        }
        candidate = choice.candidate;
        await mark('chosen', `${candidate}: ${choice.reason}`, { candidate });
      } else {
        // Resumed after the choice (perhaps in the middle of a catch-up): keep that candidate.
        after = await probeCluster(ctx);
      }
      if (!candidate) throw new StepFailed('no candidate');

      // A replica that may not be promoted but is ahead: the candidate takes what it lacks from it.
      const donor = done('caught-up') ? undefined : pickDonor(after, replicas.map((r) => r.name), candidate);
      if (donor) {
        const d = spec.instances.find((i) => i.name === donor) as ClusterSpec['instances'][number];
        await runAction({ kind: 'change-source', instance: candidate, source: donor, host: d.host, port: d.port, settings: DEFAULT_REPLICATION, waitForSource: false }, ctx);
        await runAction({ kind: 'wait-caught-up', instance: candidate, target: donor, timeoutSeconds: DRAIN_SECONDS }, ctx);
        notes.push(`${candidate} caught up from ${donor}, which was ahead of it`);
        await mark('caught-up', `${candidate} caught up from ${donor}`);
      }
      mustAct('promoting');
      await runAction({ kind: 'promote', instance: candidate }, ctx);
      await mark('promoted', `${candidate} is writable and replicates from nobody`);
    }
    const newPrimary = candidate as string;
    const writableAt = ports.now();
    const np = spec.instances.find((i) => i.name === newPrimary) as ClusterSpec['instances'][number];

    mustAct('repointing');
    // Repoint the other replicas of the failed primary; their own subtrees stay under them.
    const npState = await fresh(ctx, newPrimary);
    for (const r of replicas) {
      if (r.name === newPrimary) continue;
      const rs = await fresh(ctx, r.name).catch(() => undefined);
      if (!rs) {
        notes.push(`${r.name} unreachable: not repointed`);
        continue;
      }
      const ch = rs.replication[0];
      if (ch && `${ch.sourceHost}:${ch.sourcePort}` === `${np.host}:${np.port}` && ch.ioThread !== 'no') continue;
      const v = canReplicateFrom(rs.flavor, rs.gtid, npState.gtid, npState.gtid);
      if (v.kind !== 'ok') {
        notes.push(`${r.name} not repointed: it has transactions ${newPrimary} lacks (${v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : v.why}); left stopped for a human`);
        continue;
      }
      await runAction({ kind: 'change-source', instance: r.name, source: newPrimary, host: np.host, port: np.port, settings: DEFAULT_REPLICATION, waitForSource: false }, ctx);
    }
    await mark('repointed', `replicas of ${failed.name} now replicate from ${newPrimary}`);
    const repointedAt = ports.now();

    // The old primary may be merely partitioned: try to stop its writes (it is fenced on return too).
    await tryFence(ctx, failed.name);

    const lost = lostTransactions(state, failed.name, npState);
    const record: FailoverRecord = {
      id: journal.id,
      at: new Date(ports.now()).toISOString(),
      from: failed.name,
      to: newPrimary,
      trigger: journal.trigger,
      commit: null,
      lostGtids: lost.gtids,
      lostGtidsKnown: lost.known,
    };
    const message = commitMessage(spec, journal, analysis, ranked, record, notes, {
      detectedToWritableMs: writableAt - detectedAt,
      detectedToRepointedMs: repointedAt - detectedAt,
    });
    mustAct('the write-back');
    const wb = await ports.writeBack({
      repoDir: req.repoDir,
      file: spec.file,
      edit: (text) => editSources(text, promotionEdits(spec.instances, newPrimary)),
      message,
      author: spec.writeBack.author,
      push: spec.writeBack.push,
    });
    const commitAt = ports.now();
    const commit = wb.kind === 'committed' ? wb.commit : wb.kind === 'failed' ? (wb.commit ?? null) : null;
    if (wb.kind === 'failed') notes.push(`write-back failed: ${wb.error}`);
    await mark('written-back', wb.kind === 'committed' ? `commit ${wb.commit.slice(0, 12)}${wb.pushed ? ' pushed' : ` (not pushed: ${wb.why})`}` : wb.kind);
    const final: FailoverRecord = { ...record, commit };
    await ports.state.update(spec.cluster, (s) => ({
      ...withoutJournal(s),
      lastFailover: final,
      formerPrimaries: [...s.formerPrimaries.filter((f) => f.name !== failed.name), { name: failed.name, failoverId: journal.id, newPrimary }],
    }));
    for (const command of spec.failover.hooks.postFailover) {
      const r = await ports.runHook(command, { ...env, ...hookEnv(spec, failed.name, newPrimary) });
      req.onEvent({ type: 'hook', phase: 'postFailover', command, code: r.code, output: r.output });
      if (r.code !== 0) notes.push(`postFailover hook ${command} exited ${r.code}`);
    }
    return {
      kind: 'done',
      record: final,
      writeBack: wb,
      notes,
      timings: { detectedToWritableMs: writableAt - detectedAt, detectedToRepointedMs: repointedAt - detectedAt, detectedToCommitMs: commitAt - detectedAt },
    };
  } catch (e) {
    const error = e instanceof StepFailed ? e.message : (e as Error).message;
    const last = journal.steps[journal.steps.length - 1]?.step ?? 'start';
    return { kind: 'failed', step: last, error };
  }
}

/** The analysis of a failover being resumed: about the primary that failed, whatever the file says now. */
function analyzeAbout(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, failed: string): Analysis {
  const asBefore: ClusterSpec = {
    ...spec,
    instances: spec.instances.map((i) => {
      if (i.name === failed) return { name: i.name, host: i.host, port: i.port, promotion: i.promotion };
      return i.source === undefined ? { ...i, source: failed } : i;
    }),
  };
  return analyzeCluster(asBefore, probes);
}

/** The reachable replica that has the most the candidate lacks (and nothing the candidate has that it lacks). */
function pickDonor(probes: ReadonlyMap<string, ProbeResult>, names: readonly string[], candidate: string): string | undefined {
  const c = probes.get(candidate);
  if (!c?.ok) return undefined;
  let best: { name: string; state: InstanceState } | undefined;
  for (const n of names) {
    const p = probes.get(n);
    if (n === candidate || !p?.ok) continue;
    const v = canReplicateFrom(c.state.flavor, c.state.gtid, p.state.gtid, p.state.gtid);
    const lacks = canReplicateFrom(c.state.flavor, p.state.gtid, c.state.gtid, c.state.gtid);
    // The donor must have everything the candidate has (v ok) and something more (lacks not ok).
    if (v.kind !== 'ok' || lacks.kind === 'ok') continue;
    // A donor's own local (errant) writes must not become the new primary's history.
    const others = names.filter((x) => x !== n).flatMap((x) => {
      const o = probes.get(x);
      return o?.ok ? [o.state] : [];
    });
    if (localWrites(c.state.flavor, p.state, others)) continue;
    if (!best || canReplicateFrom(c.state.flavor, best.state.gtid, p.state.gtid, p.state.gtid).kind === 'ok') best = { name: n, state: p.state };
  }
  return best?.name;
}

async function restartIoThreads(ctx: ApplyContext, spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, primary: string): Promise<void> {
  for (const r of replicasOf(spec, probes, primary)) {
    const p = probes.get(r.name);
    const ch = p?.ok ? p.state.replication[0] : undefined;
    if (ch && ch.ioThread === 'no' && ch.lastSqlErrno === 0) await runAction({ kind: 'start-replication', instance: r.name }, ctx).catch(() => undefined);
  }
}

async function tryFence(ctx: ApplyContext, name: string): Promise<void> {
  const quick = { ...ctx, timeouts: { connectMs: Math.min(ctx.timeouts.connectMs, 500), queryMs: Math.min(ctx.timeouts.queryMs, 500) }, verifyTimeoutMs: 1000 };
  await runAction({ kind: 'set-read-only', instance: name, readOnly: true }, quick).catch(() => undefined);
}

/** What the failed primary had that the new primary lacks, from its last probe, when there is one. */
function lostTransactions(state: ClusterState, failed: string, np: InstanceState): { gtids: string | null; known: boolean } {
  const last = state.lastPrimaryGtid;
  if (!last || last.name !== failed) return { gtids: null, known: false };
  try {
    const lost = gtidSubtract(parseGtid(np.flavor, last.executed), parseGtid(np.flavor, np.gtid.executed));
    const v = canReplicateFrom(np.flavor, { executed: last.executed }, np.gtid, np.gtid);
    if (gtidIsEmpty(lost) || v.kind === 'ok') return { gtids: '', known: true };
    return { gtids: v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : last.executed, known: true };
  } catch {
    return { gtids: null, known: false };
  }
}

export function hookEnv(spec: ClusterSpec, failed: string, next?: string): Record<string, string> {
  const f = spec.instances.find((i) => i.name === failed);
  const n = next ? spec.instances.find((i) => i.name === next) : undefined;
  return {
    TOPOGIT_CLUSTER: spec.cluster,
    TOPOGIT_FAILED_PRIMARY: failed,
    TOPOGIT_FAILED_PRIMARY_HOST: f?.host ?? '',
    TOPOGIT_FAILED_PRIMARY_PORT: String(f?.port ?? ''),
    TOPOGIT_NEW_PRIMARY: n?.name ?? '',
    TOPOGIT_NEW_PRIMARY_HOST: n?.host ?? '',
    TOPOGIT_NEW_PRIMARY_PORT: n ? String(n.port) : '',
  };
}

function commitMessage(
  spec: ClusterSpec,
  journal: FailoverJournal,
  analysis: Analysis,
  ranked: readonly Contender[],
  record: FailoverRecord,
  notes: readonly string[],
  t: { detectedToWritableMs: number; detectedToRepointedMs: number },
): string {
  const why = journal.steps.find((s) => s.step === 'chosen')?.detail?.replace(/^[^:]+: /, '');
  const lines = [
    `failover(${spec.cluster}): ${record.from} -> ${record.to}`,
    '',
    `Analysis: ${analysis.code} - ${analysis.summary}`,
    `Trigger: ${journal.trigger === 'auto' ? 'automatic (failover.auto: true)' : 'manual (topogit failover)'}`,
    `Chosen: ${record.to}${why ? ` - ${why}` : ''}`,
    '',
    'Replicas at the time:',
    ...ranked.map((c) => `  ${c.name}: executed ${c.executed || '(none)'}; retrieved ${c.retrieved || '(none)'}; lag ${c.lagSeconds === null ? 'unknown' : `${c.lagSeconds}s`}; promotion ${c.promotion}; ${c.why}`),
    '',
    record.lostGtidsKnown
      ? record.lostGtids
        ? `Lost: ${record.from} had ${record.lostGtids} that no survivor received. Those transactions are lost.`
        : `Lost: nothing; ${record.to} has every transaction ${record.from} was last seen with.`
      : `Lost: unknown until ${record.from} returns; topogit will compare its GTIDs then and keep it fenced if it has any the others lack.`,
    ...notes.map((n) => `Note: ${n}`),
    '',
    `Timings from detection: writable new primary ${t.detectedToWritableMs} ms, replicas repointed ${t.detectedToRepointedMs} ms.`,
    '',
    `Failover-Id: ${journal.id}`,
  ];
  return lines.join('\n') + '\n';
}
