// `topogit status --json` (formatVersion 1): each cluster's view, plus every instance's raw probe
// so `plan --against` can replay a recorded observation in CI without database access.
import type { ClusterView, InstanceView } from './classify.js';
import type { InstanceState, ProbeResult } from './model.js';
import { readinessJson, type ClusterReport, type ReadinessJson, type WriteBackPendingJson } from './report.js';
import type { Shape } from './shapes.js';
import type { Maintenance } from './state.js';

/** One instance in `status --json`: the view, plus the raw probe so `plan --against` can replay it. */
export type StatusInstanceJson = Omit<InstanceView, 'maintenance'> & { readonly maintenance: Maintenance | null; readonly state: InstanceState | null; readonly errorCode: string | null };

export interface StatusJson {
  readonly formatVersion: 1;
  readonly observedAt: string;
  readonly clusters: readonly {
    name: string;
    file: string;
    flavor: string | null;
    version: string | null;
    primary: string;
    livePrimaries: readonly string[];
    healthy: boolean;
    inSync: boolean;
    notes: readonly string[];
    unmanaged: ClusterView['unmanaged'];
    /** What is wrong with the cluster as a whole (src/core/shapes.ts); empty when nothing is. */
    shapes: readonly Shape[];
    /** Could an automatic failover happen now if the primary died, to which replica, or why not. */
    failover: ReadinessJson;
    /** Failover or relocation commits not on the upstream yet (WriteBackPending); empty when none. */
    writeBackPending: readonly WriteBackPendingJson[];
    instances: readonly StatusInstanceJson[];
  }[];
}

export function statusJson(
  observations: readonly { readonly view: ClusterView; readonly probes: ReadonlyMap<string, ProbeResult>; readonly report: ClusterReport }[],
  observedAt: Date,
): StatusJson {
  return {
    formatVersion: 1,
    observedAt: observedAt.toISOString(),
    clusters: observations.map(({ view: v, probes, report }) => ({
      name: v.name,
      file: v.file,
      flavor: v.flavor,
      version: v.version,
      primary: v.primary,
      livePrimaries: v.livePrimaries,
      healthy: v.healthy,
      inSync: v.inSync,
      notes: v.notes,
      unmanaged: v.unmanaged,
      shapes: report.shapes,
      failover: readinessJson(report.failover),
      writeBackPending: report.writeBackPending ?? [],
      readOnlyBypass: report.readOnlyBypass ?? null,
      routers: report.routers ?? null,
      leader: report.leader ?? null,
      instances: v.instances.map((i) => {
        const p = probes.get(i.name);
        return { ...i, maintenance: i.maintenance ?? null, state: p?.ok ? p.state : null, errorCode: p && !p.ok ? p.code : null };
      }),
    })),
  };
}
