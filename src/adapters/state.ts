// Per-cluster state that must survive a crash: the failover journal, the last failover (for
// anti-flapping), acknowledgements and former primaries awaiting fencing or rejoin. One JSON
// file per cluster, replaced atomically (write to a temporary file, then rename).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface JournalStep {
  readonly step: string;
  readonly at: string;
  readonly detail?: string;
}

export interface FailoverJournal {
  readonly id: string;
  readonly cluster: string;
  readonly failedPrimary: string;
  readonly startedAt: string;
  readonly trigger: 'auto' | 'manual';
  readonly candidate?: string;
  /** A human's choice (`failover --to`), kept so a resumed run promotes the same instance. */
  readonly to?: string;
  readonly steps: readonly JournalStep[];
}

export interface FailoverRecord {
  readonly id: string;
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly trigger: 'auto' | 'manual';
  readonly commit: string | null;
  /** GTIDs the failed primary had that no survivor received, when known. */
  readonly lostGtids: string | null;
  readonly lostGtidsKnown: boolean;
}

export interface FormerPrimary {
  readonly name: string;
  readonly failoverId: string;
  readonly newPrimary: string;
  /** Set once it came back: its errant GTIDs (empty string: none). */
  readonly errant?: string;
  readonly fencedAt?: string;
}

export interface ClusterState {
  readonly journal?: FailoverJournal;
  readonly lastFailover?: FailoverRecord;
  readonly ackedAt?: string;
  readonly formerPrimaries: readonly FormerPrimary[];
  /** The failed primary's executed GTIDs from its last successful probe (daemon), for lost-GTID reports. */
  readonly lastPrimaryGtid?: { readonly name: string; readonly executed: string; readonly at: string };
  /** Each replica's last known seconds behind its source, while the primary was alive: once it is
   *  gone, Seconds_Behind_Master is NULL and only this says how far behind a candidate was. */
  readonly lastLag?: Readonly<Record<string, number>>;
}

export const EMPTY_STATE: ClusterState = { formerPrimaries: [] };

export class StateStore {
  constructor(readonly dir: string) {}

  private file(cluster: string): string {
    return path.join(this.dir, `${cluster}.json`);
  }

  async read(cluster: string): Promise<ClusterState> {
    try {
      const s = JSON.parse(await readFile(this.file(cluster), 'utf8')) as ClusterState;
      return { ...EMPTY_STATE, ...s };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_STATE;
      throw e;
    }
  }

  async write(cluster: string, state: ClusterState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file(cluster)}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
    await rename(tmp, this.file(cluster));
  }

  async update(cluster: string, f: (s: ClusterState) => ClusterState): Promise<ClusterState> {
    const next = f(await this.read(cluster));
    await this.write(cluster, next);
    return next;
  }
}

/** Former primaries that came back and stay fenced, with why (errant GTIDs, or the policy). */
export function fencedMap(state: ClusterState): Map<string, string> {
  return new Map(
    state.formerPrimaries
      .filter((f) => f.errant !== undefined)
      .map((f) => [f.name, f.errant ? `former primary with errant GTIDs ${f.errant}` : 'former primary; formerPrimary: fence']),
  );
}

/** The fenced map of every cluster, read from the state directory. */
export async function fencedByCluster(dir: string, clusters: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const store = new StateStore(dir);
  const out = new Map<string, Map<string, string>>();
  for (const c of clusters) out.set(c, fencedMap(await store.read(c)));
  return out;
}
