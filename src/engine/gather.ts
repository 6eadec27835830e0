// gather: probe every instance of the selected clusters at once (bounded), one round.
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import { classifyCluster, type ClassifyOptions, type ClusterView, DEFAULT_CLASSIFY } from '../core/classify.js';
import { resolveCredentials } from '../config/load.js';
import type { Login, Timeouts } from '../core/ports.js';
import { DEFAULT_TIMEOUTS } from '../core/ports.js';

export type ProbeFn = (endpoint: { host: string; port: number }, login: Login, timeouts: Timeouts) => Promise<ProbeResult>;

export interface GatherOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly timeouts?: Timeouts;
  /** How many servers are probed at the same time, across all clusters. */
  readonly concurrency?: number;
  readonly classify?: ClassifyOptions;
  readonly probe: ProbeFn;
  /** Former primaries kept fenced, per cluster (from the state directory). */
  readonly fenced?: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export interface Observation {
  readonly spec: ClusterSpec;
  readonly probes: ReadonlyMap<string, ProbeResult>;
  readonly view: ClusterView;
}

export async function gather(specs: readonly ClusterSpec[], o: GatherOptions): Promise<Observation[]> {
  const jobs = specs.flatMap((spec) => {
    // Credentials are resolved per cluster right before use and never kept in the observation.
    const { admin } = resolveCredentials(spec, o.env);
    return spec.instances.map((i) => ({ spec, instance: i, admin }));
  });
  const results = await mapLimit(jobs, o.concurrency ?? 32, (j) =>
    o.probe({ host: j.instance.host, port: j.instance.port }, j.admin, o.timeouts ?? DEFAULT_TIMEOUTS),
  );
  return specs.map((spec) => {
    const probes = new Map<string, ProbeResult>();
    jobs.forEach((j, n) => {
      const r = results[n];
      if (j.spec === spec && r) probes.set(j.instance.name, r);
    });
    const fenced = o.fenced?.get(spec.cluster);
    return { spec, probes, view: classifyCluster(spec, probes, { ...(o.classify ?? DEFAULT_CLASSIFY), ...(fenced?.size ? { fenced } : {}) }) };
  });
}

/** Runs fn over items with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const n = next++;
      out[n] = await fn(items[n] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
