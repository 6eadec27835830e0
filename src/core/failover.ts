// decideFailover: the next step of a failover, from what is journaled, what the servers show now
// and the policy. Pure. The engine runs the step it returns, journals it, probes when the step
// changed servers, and asks again — a fresh failover, a resumed one after a crash and an abort
// are all the same loop. Each step is one thing the engine can do and verify; a `refuse`,
// `undo` or `abandon` ends the failover with nothing promoted.
import { analyzeCluster, quorumMet, triggersFailover, type Analysis } from './analysis.js';
import { chooseCandidate, localWrites, replicasOf, withRetrieved, type Contender } from './candidate.js';
import { canReplicateFrom, hasAll } from './errant.js';
import type { RouterSpec } from './routing.js';
import type { ClusterSpec, InstanceState, ProbeResult } from './model.js';
import { endpointKey, isAlive } from './model.js';
import { describeMaintenance, maintenanceBlocksFailover, maintenanceExclusions } from './maintenance.js';
import { activeMaintenance, journaled, type ClusterState, type FailoverJournal, type FailoverPhase } from './state.js';

export interface FailoverRequest {
  readonly trigger: 'auto' | 'manual';
  /** A human's choice of candidate (`failover --to`). */
  readonly to?: string;
  /** Fail over although the primary answers: it is fenced read-only first. */
  readonly force?: boolean;
  /** `failover --abort`: undo a failover in progress that promoted nobody yet. */
  readonly abort?: boolean;
}

export interface FailoverInput {
  readonly spec: ClusterSpec;
  /** The journal as it stands; undefined before the failover started. */
  readonly journal: FailoverJournal | undefined;
  /** Did the journal exist when this run began (a run resuming someone else's, or its own crashed, failover)? */
  readonly resumed: boolean;
  readonly request: FailoverRequest;
  /** From `failoverAnalysis` over the same probes. */
  readonly analysis: Analysis;
  readonly probes: ReadonlyMap<string, ProbeResult>;
  /** Former primaries (fenced ones are never promoted) and the last lag seen of each replica. */
  readonly state: ClusterState;
  /** A manual request may wait briefly for the replicas to notice a death they have not seen yet. */
  readonly mayWaitForConfirmation: boolean;
  /** Now (ms): maintenance records expire. */
  readonly now: number;
}

export interface RepointMove {
  readonly name: string;
}

export type FailoverStep =
  /** Nothing was changed and nothing will be. */
  | { readonly kind: 'refuse'; readonly reason: string }
  /** Probe again shortly: a manual request came before the replicas noticed. */
  | { readonly kind: 'wait-confirmation'; readonly reason: string }
  /** Run the preFailover hooks (any non-zero exit vetoes), then journal `started`. `fence`: the
   *  STONITH commands that must succeed first (a failover without a majority); `forced`: --force. */
  | { readonly kind: 'start'; readonly failed: string; readonly why: string; readonly hooks: readonly string[]; readonly fence: readonly string[]; readonly forced: boolean }
  /** Power off or isolate the old primary (failover.fence); every command must exit 0, else abandon. */
  | { readonly kind: 'stonith'; readonly instance: string; readonly commands: readonly string[]; readonly timeoutSeconds: number }
  /** The failed primary came back before anything was promoted (or an operator aborted): restart the
   *  replicas' IO threads this failover stopped, drop the journal. */
  | { readonly kind: 'undo'; readonly reason: string; readonly restart: readonly string[] }
  /** Forced failover of a primary that answers: set it read-only, then let its replicas receive its last writes. */
  | { readonly kind: 'fence-old'; readonly instance: string; readonly replicas: readonly string[] }
  /** Stop the replicas' IO threads and let each apply its relay log (in parallel); `delayed` ones
   *  (MASTER_DELAY) only stop receiving: they are not waited out. */
  | { readonly kind: 'drain'; readonly replicas: readonly string[]; readonly delayed: readonly string[] }
  /** A delayed replica holds received transactions nobody else applied (semi-sync acknowledged
   *  them, say): it applies its relay log now, without the delay, so they can reach the candidate. */
  | { readonly kind: 'undelay'; readonly instance: string }
  /** Journal the choice of candidate (or a new one, when the chosen one died before promotion). */
  | { readonly kind: 'choose'; readonly candidate: string; readonly reason: string; readonly ranked: readonly Contender[] }
  /** No replica may be promoted: restart the IO threads, drop the journal, refuse. */
  | { readonly kind: 'abandon'; readonly reason: string; readonly restart: readonly string[] }
  /** The candidate first takes what a more advanced replica (that may not be promoted) has. */
  | { readonly kind: 'catch-up'; readonly candidate: string; readonly donor: string }
  | { readonly kind: 'promote'; readonly candidate: string }
  /** The routers' writer backends get the new primary alone (bounded; a router that cannot be
   *  reached is noted and left to the passes that follow: it never stops the failover). */
  | { readonly kind: 'route'; readonly newPrimary: string; readonly routers: readonly RouterSpec[] }
  /** Point the other replicas at the new primary; `skipped` have transactions it lacks and stay stopped. */
  | { readonly kind: 'repoint'; readonly newPrimary: string; readonly moves: readonly string[]; readonly skipped: readonly { name: string; why: string }[] }
  /** Best effort: the old primary may be partitioned rather than dead; stop its writes if it answers.
   *  `skip`: it is in maintenance (why), not fenced. */
  | { readonly kind: 'fence-attempt'; readonly instance: string; readonly skip?: string }
  /** Commit (and push) the new tree. */
  | { readonly kind: 'write-back'; readonly newPrimary: string }
  /** Record the failover, forget the journal, run the postFailover hooks. */
  | { readonly kind: 'finish'; readonly newPrimary: string };

export type FailoverStepKind = FailoverStep['kind'];

/**
 * The analysis a failover decides from: about the file's primary for a new failover, about the
 * primary that failed for one in progress (the write-back may already have changed the file).
 */
export function failoverAnalysis(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, journal: FailoverJournal | undefined, serverIds: Readonly<Record<string, number>> = {}): Analysis {
  const failed = journal?.failedPrimary;
  // No failover in progress, or one about an instance the file no longer has (refused by the decision).
  const primaryName = failed ?? spec.instances.find((i) => i.source === undefined)?.name ?? '';
  if (!failed || !spec.instances.some((i) => i.name === failed)) return analyzeCluster(spec, probes, serverIds[primaryName]);
  const asBefore: ClusterSpec = {
    ...spec,
    instances: spec.instances.map((i) => {
      if (i.name === failed) return { name: i.name, host: i.host, port: i.port, promotion: i.promotion };
      return i.source === undefined ? { ...i, source: failed } : i;
    }),
  };
  return analyzeCluster(asBefore, probes, serverIds[failed]);
}

export function decideFailover(i: FailoverInput): FailoverStep {
  const { spec, journal: j, analysis, probes } = i;
  const failedName = j ? j.failedPrimary : spec.instances.find((x) => x.source === undefined)?.name;
  const failed = spec.instances.find((x) => x.name === failedName);
  if (!failed) return { kind: 'refuse', reason: j ? `the journal names ${j.failedPrimary}, which is not in ${spec.file} any more` : 'the file has no primary' };
  const reachable = (name: string) => probes.get(name)?.ok === true;
  const knownId = i.state.serverIds?.[failed.name];
  const replicas = replicasOf(spec, probes, failed.name, knownId).filter((r) => reachable(r.name));

  if (i.request.abort) {
    if (!j) return { kind: 'refuse', reason: `no failover of ${spec.cluster} is in progress` };
    if (journaled(j, 'promoted')) {
      return { kind: 'refuse', reason: `${j.candidate ?? 'a replica'} was already promoted: the failover can only be finished (\`topogit reconcile -c ${spec.cluster}\`)` };
    }
    return { kind: 'undo', reason: `the failover of ${failed.name} was aborted by an operator; nothing had been promoted`, restart: stoppedByUs(probes, replicas.map((r) => r.name)) };
  }

  if (!j) {
    // An operator is working on it: its death is expected. (A failover already journaled goes on.)
    const maintenance = activeMaintenance(i.state, i.now).get(failed.name);
    if (maintenance) return { kind: 'refuse', reason: maintenanceBlocksFailover(spec.cluster, failed.name, maintenance) };
    if (!triggersFailover(analysis.code)) {
      if (i.request.trigger === 'manual' && analysis.code === 'UnreachablePrimary' && i.mayWaitForConfirmation) {
        // Asked right after a crash, the replicas may not have noticed yet (they notice at once on a
        // closed connection, within the heartbeat period on a silent one).
        return { kind: 'wait-confirmation', reason: analysis.summary };
      }
      // --force is for a primary that answers (it is fenced first). One that does not answer while
      // replicas still follow it may be alive and writable: never promote past it.
      if (!i.request.force || analysis.code !== 'PrimaryReachable') {
        const hint = analysis.code === 'PrimaryReachable' ? '; it is alive: use `topogit switchover` (or --force to fail over anyway)' : '';
        return { kind: 'refuse', reason: `${analysis.code}: ${analysis.summary}${hint}` };
      }
    }
    const forced = i.request.trigger === 'manual' && i.request.force === true;
    const start = { kind: 'start' as const, failed: failed.name, why: `${analysis.code}: ${analysis.summary}`, hooks: spec.failover.hooks.preFailover, forced };
    if (!triggersFailover(analysis.code) || quorumMet(analysis, spec.failover.quorum)) return { ...start, fence: [] };
    // Only a minority of the replicas confirm: the silent ones may still see the primary take
    // writes. Go ahead only when something outside makes sure it cannot (failover.fence), or a
    // human says so.
    const fence = spec.failover.fence.command;
    if (fence.length > 0) return { ...start, fence };
    if (forced) return { ...start, fence: [] };
    const how = i.request.trigger === 'manual' ? '`--force` fails over anyway, or configure failover.fence' : 'configure failover.fence, or fail over by hand with `topogit failover --force`';
    return {
      kind: 'refuse',
      reason: `${analysis.code}: ${analysis.summary}; no majority of ${failed.name}'s replicas confirms it is dead: the silent ones may still see it take writes, and promoting now could leave two writable primaries (${how})`,
    };
  }

  const promoted = journaled(j, 'promoted');
  const primaryBack = isAlive(probes.get(failed.name)) || analysis.replicas.some((e) => e.connected === true);
  if (!promoted && !journaled(j, 'fenced-old') && (i.resumed || !j.forced) && primaryBack) {
    // The primary is back before anything was promoted (it answers, even with an error, or a
    // replica follows it again): it was not dead. Undo, do not promote. Replicas whose IO threads
    // this failover stopped say nothing either way, so they do not count. (A forced failover
    // fences a primary that answers instead, unless it was interrupted before that.)
    return {
      kind: 'undo',
      reason: `${i.resumed ? 'an interrupted' : 'the'} failover of ${failed.name} was undone: ${analysis.code}: ${analysis.summary}; nothing had been promoted`,
      restart: stoppedByUs(probes, replicas.map((r) => r.name)),
    };
  }

  if (!promoted && (j.stonith?.length ?? 0) > 0 && !journaled(j, 'stonith')) {
    return { kind: 'stonith', instance: failed.name, commands: j.stonith ?? [], timeoutSeconds: spec.failover.fence.timeoutSeconds };
  }

  if (!promoted) {
    // If the primary still answers (forced failover), fence it first: never two writable primaries.
    if (isAlive(probes.get(failed.name)) && !journaled(j, 'fenced-old')) return { kind: 'fence-old', instance: failed.name, replicas: replicas.map((r) => r.name) };
    if (!journaled(j, 'drained')) {
      const delayed = replicas.filter((r) => {
        const p = probes.get(r.name);
        return p?.ok && (p.state.replication[0]?.sqlDelay ?? 0) > 0;
      });
      return { kind: 'drain', replicas: replicas.filter((r) => !delayed.includes(r)).map((r) => r.name), delayed: delayed.map((r) => r.name) };
    }

    const undelay = mustUndelay(probes, replicas.map((r) => r.name));
    if (undelay) return { kind: 'undelay', instance: undelay };

    const chosen = j.candidate;
    if (!chosen || !journaled(j, 'chosen') || !reachable(chosen)) {
      // First choice, or the chosen candidate died before it was promoted: choose (again) among the living.
      const fenced = new Set([...i.state.formerPrimaries.filter((f) => f.errant !== undefined).map((f) => f.name), ...(j.undrained ?? [])]);
      const choice = chooseCandidate(spec, probes, failed.name, {
        maxLagSeconds: spec.failover.maxLagSeconds,
        fenced,
        excluded: maintenanceExclusions(i.state, i.now),
        lastLag: new Map(Object.entries(i.state.lastLag ?? {})),
        ...(knownId !== undefined ? { primaryServerId: knownId } : {}),
        ...((i.request.to ?? j.to) ? { to: (i.request.to ?? j.to) as string } : {}),
      });
      const again = chosen && journaled(j, 'chosen') ? `${chosen} was chosen but is unreachable now; ` : '';
      if (choice.kind === 'refuse') return { kind: 'abandon', reason: again + choice.reason, restart: stoppedByUs(probes, replicas.map((r) => r.name)) };
      return { kind: 'choose', candidate: choice.candidate, reason: again + choice.reason, ranked: choice.ranked };
    }
    if (!journaledSinceChoice(j, 'caught-up')) {
      const donor = pickDonor(probes, replicas.map((r) => r.name), chosen);
      if (donor) return { kind: 'catch-up', candidate: chosen, donor };
    }
    return { kind: 'promote', candidate: chosen };
  }

  const newPrimary = j.candidate as string;
  // Applications follow at once, before the replicas are repointed and before Git.
  if ((spec.routing?.length ?? 0) > 0 && !journaled(j, 'routed') && !journaled(j, 'repointed')) return { kind: 'route', newPrimary, routers: spec.routing ?? [] };
  if (!journaled(j, 'repointed')) return repointStep(spec, probes, replicas.map((r) => r.name), newPrimary);
  // The commit starts the moment the replicas are repointed; the best-effort fence of a primary
  // that may only be partitioned (its connect can take the whole timeout) comes after it.
  if (!journaled(j, 'written-back')) return { kind: 'write-back', newPrimary };
  if (!journaled(j, 'fence-attempted')) {
    const maintenance = activeMaintenance(i.state, i.now).get(failed.name);
    return { kind: 'fence-attempt', instance: failed.name, ...(maintenance ? { skip: describeMaintenance(failed.name, maintenance) } : {}) };
  }
  return { kind: 'finish', newPrimary };
}

/**
 * A delayed replica (MASTER_DELAY) whose relay log holds transactions that no other replica has
 * applied: promoting anyone else, or repointing it, would lose them. It applies them now.
 */
function mustUndelay(probes: ReadonlyMap<string, ProbeResult>, names: readonly string[]): string | undefined {
  const states = names.flatMap((n) => {
    const p = probes.get(n);
    return p?.ok ? [{ name: n, state: p.state }] : [];
  });
  for (const { name, state } of states) {
    const ch = state.replication[0];
    if (!ch || (ch.sqlDelay ?? 0) === 0 || ch.lastSqlErrno !== 0) continue;
    const holds = withRetrieved(state);
    if (hasAll(state.flavor, state.gtid, holds)) continue;
    if (!states.some((o) => o.name !== name && hasAll(state.flavor, o.state.gtid, holds))) return name;
  }
  return undefined;
}

/** Replicas whose IO thread is stopped without an SQL error: what a drain leaves behind. */
function stoppedByUs(probes: ReadonlyMap<string, ProbeResult>, names: readonly string[]): string[] {
  return names.filter((n) => {
    const p = probes.get(n);
    const ch = p?.ok ? p.state.replication[0] : undefined;
    return ch !== undefined && ch.ioThread === 'no' && ch.lastSqlErrno === 0;
  });
}

/** Was `phase` journaled after the last choice of candidate (a new candidate starts its own catch-up)? */
function journaledSinceChoice(j: FailoverJournal, phase: FailoverPhase): boolean {
  const lastChoice = j.steps.map((s) => s.step).lastIndexOf('chosen');
  return j.steps.slice(lastChoice + 1).some((s) => s.step === phase);
}

function repointStep(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, replicas: readonly string[], newPrimary: string): FailoverStep {
  const np = spec.instances.find((x) => x.name === newPrimary);
  const npProbe = probes.get(newPrimary);
  const moves: string[] = [];
  const skipped: { name: string; why: string }[] = [];
  for (const name of replicas) {
    if (name === newPrimary) continue;
    const p = probes.get(name);
    if (!p?.ok) {
      skipped.push({ name, why: 'unreachable: not repointed' });
      continue;
    }
    if (!np || !npProbe?.ok) {
      skipped.push({ name, why: `${newPrimary} cannot be probed: not repointed` });
      continue;
    }
    const ch = p.state.replication[0];
    if (ch && `${ch.sourceHost}:${ch.sourcePort}` === endpointKey(np) && ch.ioThread !== 'no') continue;
    // What it holds counts, its relay log included: repointing discards the relay log, so a
    // replica that received transactions the new primary lacks (semi-sync acknowledged them) keeps them.
    const v = canReplicateFrom(p.state.flavor, withRetrieved(p.state), npProbe.state.gtid, npProbe.state.gtid);
    if (v.kind !== 'ok') {
      skipped.push({ name, why: `not repointed: it holds transactions ${newPrimary} lacks (${v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : v.why}); left stopped for a human` });
      continue;
    }
    moves.push(name);
  }
  return { kind: 'repoint', newPrimary, moves, skipped };
}

/** The reachable replica that has the most the candidate lacks (and nothing the candidate has that it lacks). */
export function pickDonor(probes: ReadonlyMap<string, ProbeResult>, names: readonly string[], candidate: string): string | undefined {
  const c = probes.get(candidate);
  if (!c?.ok) return undefined;
  let best: { name: string; state: InstanceState } | undefined;
  for (const n of names) {
    const p = probes.get(n);
    if (n === candidate || !p?.ok) continue;
    // The candidate's relay log is discarded when it is pointed at the donor: the donor must have
    // everything the candidate holds (v ok), and something it has not applied (lacks not ok).
    const v = canReplicateFrom(c.state.flavor, withRetrieved(c.state), p.state.gtid, p.state.gtid);
    const lacks = canReplicateFrom(c.state.flavor, p.state.gtid, c.state.gtid, c.state.gtid);
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
