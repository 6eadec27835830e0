// Routers in step with the primary: read each router's backends, apply the changes the core
// decides (routerChanges: writes leave every wrong server before the primary is enabled), read
// back and check. Routers are independent and handled in parallel; one that cannot be reached is
// reported, never thrown: a failover or a pass goes on without it and tries again later.
import { endpointOfRouter, routedInstances, routerChanges, routerProblems, type RoutedInstance, type RouterChange, type RouterServer, type RouterSpec } from '../core/routing.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import type { RouterStatus } from '../core/report.js';
import type { RouterPort } from '../core/ports.js';

export interface RouterOutcome {
  readonly router: RouterSpec;
  /** In step after this call (read back). */
  readonly inStep: boolean;
  readonly applied: readonly RouterChange[];
  /** Why it is not in step: unreachable, refused, a backend or server missing. */
  readonly error?: string;
}

export interface RouteOptions {
  /** Per router call (read or change). */
  readonly timeoutMs: number;
  /** Only the writer backends (a failover's first step: replica health is not known yet). */
  readonly writerOnly?: boolean;
  /** Report what would change, change nothing (`reconcile: report`). */
  readonly dryRun?: boolean;
  /** May this process still act (the daemon's lease)? Asked before every change. */
  readonly mayAct?: () => boolean | Promise<boolean>;
}

export async function syncRouters(routers: readonly RouterSpec[], instances: readonly string[], live: readonly RoutedInstance[], port: RouterPort | undefined, o: RouteOptions): Promise<RouterOutcome[]> {
  return Promise.all(routers.map((r) => syncOne(o.writerOnly ? withoutReader(r) : r, instances, live, port, o).then((x) => ({ ...x, router: r }))));
}

function withoutReader(r: RouterSpec): RouterSpec {
  return { kind: r.kind, address: r.address, writer: r.writer };
}

async function syncOne(r: RouterSpec, instances: readonly string[], live: readonly RoutedInstance[], port: RouterPort | undefined, o: RouteOptions): Promise<Omit<RouterOutcome, 'router'>> {
  if (!port) return { inStep: false, applied: [], error: 'no router adapter in this process' };
  const applied: RouterChange[] = [];
  try {
    // The writer backend first and on its own: a reader backend that cannot be read (a wrong
    // name) must not keep the writes where they should not be.
    const writer = await port.read(r, [r.writer], o.timeoutMs);
    const reader = r.reader ? await port.read(r, [r.reader], o.timeoutMs).then((x) => ({ servers: x }), (e: Error) => ({ servers: [] as RouterServer[], error: e.message.split('\n')[0] ?? 'failed' })) : { servers: [] as RouterServer[] };
    const before = [...writer, ...reader.servers];
    const problems = [...routerProblems(r.reader && 'error' in reader ? { kind: r.kind, address: r.address, writer: r.writer } : r, before, instances), ...('error' in reader && reader.error ? [reader.error] : [])];
    const changes = routerChanges(r, before, live);
    if (o.dryRun) return { inStep: changes.length === 0 && problems.length === 0, applied: [], ...(problems.length ? { error: problems.join('; ') } : changes.length ? { error: `${changes.length} change(s) pending: ${changes.map(describeChange).join(', ')}` } : {}) };
    for (const c of changes) {
      if (o.mayAct && !(await o.mayAct())) throw new Error('this process no longer holds the lease: the rest is left to the one that does');
      await port.apply(r, c, o.timeoutMs);
      applied.push(c);
    }
    const backends = [r.writer, ...(r.reader && !('error' in reader) ? [r.reader] : [])];
    const after = changes.length > 0 ? await port.read(r, backends, o.timeoutMs) : before;
    const left = routerChanges(r, after, live);
    if (left.length > 0) return { inStep: false, applied, error: `read back, still not in step: ${left.map(describeChange).join(', ')}` };
    if (problems.length > 0) return { inStep: false, applied, error: problems.join('; ') };
    return { inStep: true, applied };
  } catch (e) {
    return { inStep: false, applied, error: (e as Error).message.split('\n')[0] ?? 'failed' };
  }
}

export function describeChange(c: RouterChange): string {
  return `${c.backend}/${c.server} ${c.to}${c.shutdownSessions ? ' (sessions shut down)' : ''}`;
}

/** What `status` shows of the routers: read, compared with the live tree, nothing changed. */
export async function routerStatus(spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, timeoutMs = 1000): Promise<RouterStatus[]> {
  const routers = spec.routing ?? [];
  const live = routedInstances(spec, probes, spec.failover.maxLagSeconds);
  if (!live.ok) return routers.map((r) => ({ router: endpointOfRouter(r), inStep: false, detail: `not checked: ${live.why}` }));
  const { haproxyRouter } = await import('../adapters/haproxy.js');
  const outcomes = await syncRouters(routers, spec.instances.map((i) => i.name), live.instances, haproxyRouter, { timeoutMs, dryRun: true });
  return outcomes.map((o) => ({ router: endpointOfRouter(o.router), inStep: o.inStep, detail: o.error ?? '' }));
}
