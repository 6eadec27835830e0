// What a failover leaves behind, computed purely: the record kept in the state, the commit
// message with the evidence, the transactions it lost, and the environment its hooks get.
import type { Contender } from './candidate.js';
import { canReplicateFrom } from './errant.js';
import { gtidIsEmpty, gtidSubtract, parseGtid } from './gtid.js';
import type { ClusterSpec, InstanceState } from './model.js';
import type { ClusterState, FailoverJournal, FailoverRecord } from './state.js';

/** What the failed primary had that the new primary lacks, from its last probe, when there is one. */
export function lostTransactions(state: ClusterState, failed: string, np: InstanceState): { gtids: string | null; known: boolean } {
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

export function failoverRecord(journal: FailoverJournal, newPrimary: string, at: string, lost: { gtids: string | null; known: boolean }, commit: string | null): FailoverRecord {
  return { id: journal.id, at, from: journal.failedPrimary, to: newPrimary, trigger: journal.trigger, commit, lostGtids: lost.gtids, lostGtidsKnown: lost.known };
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

/** The write-back commit: subject `failover(cluster): old -> new`, then the evidence. */
export function failoverCommitMessage(
  spec: ClusterSpec,
  journal: FailoverJournal,
  record: FailoverRecord,
  t: { readonly detectedToWritableMs: number; readonly detectedToRepointedMs: number },
): string {
  const started = journal.steps.find((s) => s.step === 'started')?.detail ?? 'unknown';
  const why = [...journal.steps].reverse().find((s) => s.step === 'chosen')?.detail?.replace(/^[^:]+: /, '');
  const ranked: readonly Contender[] = journal.ranked ?? [];
  const lines = [
    `failover(${spec.cluster}): ${record.from} -> ${record.to}`,
    '',
    `Analysis: ${started.replace(/^([A-Za-z]+): /, '$1 - ')}`,
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
    ...(journal.notes ?? []).map((n) => `Note: ${n}`),
    '',
    `Timings from detection: writable new primary ${t.detectedToWritableMs} ms, replicas repointed ${t.detectedToRepointedMs} ms.`,
    '',
    `Failover-Id: ${journal.id}`,
  ];
  return lines.join('\n') + '\n';
}
