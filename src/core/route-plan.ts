// Router corrections as plan steps: what `plan` shows and `apply` runs when a router drifted from
// the live tree (an HAProxy reload that enabled every server, say). Pure.
import type { ClusterSpec, ProbeResult } from './model.js';
import { isSwitchover, numbered, step, type ClusterPlan, type Notice, type Step } from './plan.js';
import { endpointOfRouter, routedInstances, routerChanges, routerProblems, type RouterServer, type RouterSpec } from './routing.js';

/** A router as `plan` read it: its servers, or why it could not be read. */
export interface RouterRead {
  readonly router: RouterSpec;
  readonly servers?: readonly RouterServer[];
  readonly error?: string;
}

/**
 * The plan with the routers' corrections after the servers' own steps: what routerChanges says
 * for the live tree, one step per change, renumbered. A plan that moves the primary routes in its
 * switchover step; the routers' other corrections wait for the next plan then. A router that could
 * not be read, or a tree that is not one writable primary seen from here, is a notice, no step.
 */
export function withRouterSteps(plan: ClusterPlan, spec: ClusterSpec, probes: ReadonlyMap<string, ProbeResult>, reads: readonly RouterRead[], exclude: ReadonlySet<string> = new Set()): ClusterPlan {
  if (reads.length === 0 || plan.steps.some(isSwitchover)) return plan;
  const live = routedInstances(spec, probes, spec.failover.maxLagSeconds, { exclude });
  const notices: Notice[] = [];
  const steps: Step[] = [];
  for (const r of reads) {
    const name = endpointOfRouter(r.router);
    if (!r.servers) {
      notices.push({ kind: 'unreachable', message: `router ${name} cannot be read (${r.error ?? 'unknown'}); not changed` });
      continue;
    }
    if (!live.ok) {
      notices.push({ kind: 'unknown-primary', message: `router ${name}: ${live.why}` });
      continue;
    }
    for (const problem of routerProblems(r.router, r.servers, spec.instances.map((i) => i.name))) notices.push({ kind: 'refused', message: problem });
    for (const c of routerChanges(r.router, r.servers, live.instances)) {
      steps.push(step(c.server, '~', `${name}: ${c.backend}/${c.server} -> ${c.to}${c.shutdownSessions ? ', sessions shut down' : ''}`, c.why, [{ kind: 'route', instance: c.server, router: r.router, backend: c.backend, to: c.to, shutdownSessions: c.shutdownSessions }]));
    }
  }
  return { ...plan, steps: numbered([...plan.steps, ...steps]), notices: [...plan.notices, ...notices] };
}
