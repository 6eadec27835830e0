// One probe round: every instance asked at once (bounded), each answer a ProbeResult (an
// unreachable server is a result, never an exception). Everything that looks at live servers —
// status and plan (gather), the operating steps, the failover, the daemon's standby — goes
// through here.
import type { ClusterSpec, Endpoint, ProbeResult } from '../core/model.js';
import type { Login, ProbeFn, Timeouts } from '../core/ports.js';

export interface ProbeJob {
  readonly endpoint: Endpoint;
  readonly login: Login;
}

/** Probes every job with at most `concurrency` in flight; results keep the jobs' order. */
export function probeRound(jobs: readonly ProbeJob[], probe: ProbeFn, timeouts: Timeouts, concurrency = 32): Promise<ProbeResult[]> {
  return mapLimit(jobs, concurrency, (j) => probe(j.endpoint, j.login, timeouts));
}

/** One round over one cluster, by instance name. */
export async function probeCluster(spec: ClusterSpec, probe: ProbeFn, admin: Login, timeouts: Timeouts): Promise<Map<string, ProbeResult>> {
  const results = await probeRound(
    spec.instances.map((i) => ({ endpoint: { host: i.host, port: i.port }, login: admin })),
    probe,
    timeouts,
    Number.POSITIVE_INFINITY,
  );
  return new Map(spec.instances.map((i, n) => [i.name, results[n] as ProbeResult]));
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
