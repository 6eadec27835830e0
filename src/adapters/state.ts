// The cluster state records (src/core/state.ts) on disk: one JSON file per cluster under
// `.topogit/state`, replaced atomically (write to a temporary file, then rename).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activeMaintenance, EMPTY_STATE, fencedMap, type ClusterState, type Maintenance } from '../core/state.js';
import type { StatePort } from '../core/ports.js';

export class StateStore implements StatePort {
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

/** The state records of every cluster, read from the state directory. */
export async function statesByCluster(dir: string, clusters: readonly string[]): Promise<Map<string, ClusterState>> {
  const store = new StateStore(dir);
  const out = new Map<string, ClusterState>();
  for (const c of clusters) out.set(c, await store.read(c));
  return out;
}

/** The fenced map of every cluster, read from the state directory. */
export async function fencedByCluster(dir: string, clusters: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const store = new StateStore(dir);
  const out = new Map<string, Map<string, string>>();
  for (const c of clusters) out.set(c, fencedMap(await store.read(c)));
  return out;
}

/** The instances in maintenance at `now` of every cluster, read from the state directory. */
export async function maintenanceByCluster(dir: string, clusters: readonly string[], now: number): Promise<Map<string, Map<string, Maintenance>>> {
  const store = new StateStore(dir);
  const out = new Map<string, Map<string, Maintenance>>();
  for (const c of clusters) out.set(c, activeMaintenance(await store.read(c), now));
  return out;
}
