// gather: probe every instance of the selected clusters at once (bounded), one round, and
// classify each cluster from it, with what is wrong with it as a whole (failure shapes) and
// whether it could fail over now.
import type { RouterRead } from '../core/route-plan.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import { classifyCluster, type ClassifyOptions, type ClusterView, DEFAULT_CLASSIFY } from '../core/classify.js';
import { reportCluster, type ClusterReport } from '../core/report.js';
import { activeMaintenance, EMPTY_STATE, fencedMap, type ClusterState, type Maintenance } from '../core/state.js';
import { DEFAULT_TIMEOUTS, type ProbeFn, type Timeouts } from '../core/ports.js';
import { resolveCredentials } from '../config/load.js';
import { probeRound } from './probe-round.js';

export interface GatherOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly timeouts?: Timeouts;
  /** How many servers are probed at the same time, across all clusters. */
  readonly concurrency?: number;
  readonly classify?: ClassifyOptions;
  readonly probe: ProbeFn;
  /** Former primaries kept fenced, per cluster (from the state directory). */
  readonly fenced?: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Instances in maintenance, per cluster (from the state directory). */
  readonly maintenance?: ReadonlyMap<string, ReadonlyMap<string, Maintenance>>;
  /** Each cluster's state records: fenced and maintenance come from them when not given above. */
  readonly states?: ReadonlyMap<string, ClusterState>;
  /** Maintenance expiry and the readiness's anti-flapping rule; default the clock. */
  readonly now?: number;
}

export interface Observation {
  readonly spec: ClusterSpec;
  readonly probes: ReadonlyMap<string, ProbeResult>;
  readonly view: ClusterView;
  /** The file's routers as read with the probes (plan and apply; absent without routing). */
  readonly routers?: readonly RouterRead[];
}

/** A live observation, with the cluster's failure shapes and failover readiness. */
export interface ReportedObservation extends Observation {
  readonly report: ClusterReport;
}

export async function gather(specs: readonly ClusterSpec[], o: GatherOptions): Promise<ReportedObservation[]> {
  const jobs = specs.flatMap((spec) => {
    // Credentials are resolved per cluster right before use and never kept in the observation.
    const { admin } = resolveCredentials(spec, o.env);
    return spec.instances.map((i) => ({ spec, name: i.name, endpoint: { host: i.host, port: i.port }, login: admin }));
  });
  const results = await probeRound(jobs, o.probe, o.timeouts ?? DEFAULT_TIMEOUTS, o.concurrency ?? 32);
  const now = o.now ?? Date.now();
  return specs.map((spec) => {
    const probes = new Map<string, ProbeResult>();
    jobs.forEach((j, n) => {
      const r = results[n];
      if (j.spec === spec && r) probes.set(j.name, r);
    });
    const state = o.states?.get(spec.cluster) ?? EMPTY_STATE;
    const fenced = o.fenced?.get(spec.cluster) ?? fencedMap(state);
    const maintenance = o.maintenance?.get(spec.cluster) ?? activeMaintenance(state, now);
    const view = classifyCluster(spec, probes, { ...(o.classify ?? DEFAULT_CLASSIFY), ...(fenced.size ? { fenced } : {}), ...(maintenance.size ? { maintenance } : {}) });
    return { spec, probes, view, report: reportCluster(spec, probes, state, now) };
  });
}
