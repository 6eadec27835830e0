// What happened to a cluster, read back from the commits topogit wrote: failovers
// (`failover(shop): db001 -> db002`) and relocations (`relocate(shop): db003 db002 -> db001`), with
// the analysis and the timings their messages carry, plus switchovers a daemon applied from a
// change of the file's primary. Git is the record; this only reads it.

export type HistoryKind = 'failover' | 'relocation' | 'switchover';

export interface HistoryEntry {
  readonly kind: HistoryKind;
  readonly cluster: string;
  /** ISO time (the commit's, or when the daemon applied it). */
  readonly at: string;
  /** e.g. "db001 -> db002", "db003 db002 -> db001". */
  readonly summary: string;
  /** The analysis line of the commit message, e.g. "DeadPrimary - db001 is dead (connection refused)". */
  readonly analysis: string | null;
  /** Detection to writable / repointed, when the message says (failovers). */
  readonly writableMs: number | null;
  readonly repointedMs: number | null;
  /** The commit that recorded it (a switchover: the commit that asked for it), or null. */
  readonly commit: string | null;
}

export interface CommitText {
  readonly commit: string;
  readonly date: string;
  readonly subject: string;
  readonly body: string;
}

const SUBJECT = /^(failover|relocate)\(([^)]+)\): (.+)$/;

/** One of topogit's own commits as a history entry; null for any other commit. */
export function historyFromCommit(c: CommitText): HistoryEntry | null {
  const m = SUBJECT.exec(c.subject.trim());
  if (!m) return null;
  const [, kind = '', cluster = '', summary = ''] = m;
  const analysis = /^Analysis: (.+)$/m.exec(c.body)?.[1]?.trim() ?? null;
  const timings = /writable new primary (\d+) ms, replicas repointed (\d+) ms/.exec(c.body);
  return {
    kind: kind === 'failover' ? 'failover' : 'relocation',
    cluster,
    at: c.date,
    summary,
    analysis,
    writableMs: timings ? Number(timings[1]) : null,
    repointedMs: timings ? Number(timings[2]) : null,
    commit: c.commit,
  };
}

/** The newest `limit` entries for `cluster`, newest first, from commits and the daemon's own entries. */
export function clusterHistory(cluster: string, commits: readonly CommitText[], own: readonly HistoryEntry[], limit = 10): HistoryEntry[] {
  const fromGit = commits.flatMap((c) => {
    const e = historyFromCommit(c);
    return e && e.cluster === cluster ? [e] : [];
  });
  const seen = new Set(fromGit.map((e) => e.commit));
  const mine = own.filter((e) => e.cluster === cluster && (e.kind === 'switchover' || e.commit === null || !seen.has(e.commit)));
  return [...fromGit, ...mine].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, limit);
}
