// Maintenance: an operator restarting or repairing an instance on purpose tells topogit so
// (`topogit maintenance CLUSTER INSTANCE on|off`). While it lasts, topogit fails over for no death
// of that instance, never fences or promotes it and plans no drift repair on it. Pure: the
// records live in the cluster's state (src/core/state.ts), `now` is passed in.
import type { ClusterSpec } from './model.js';
import { isSwitchover, type ClusterPlan, type Notice, type Step } from './plan.js';
import { activeMaintenance, type ClusterState, type Maintenance } from './state.js';

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `2h`, `1d`, `1h30m` in milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d{1,9}[smhd])+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhd])/g)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
  return ms > 0 ? ms : undefined;
}

/** An ISO time to the second: `2026-12-04T18:30:00Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Records `name` as in maintenance from `now` (replacing an earlier record); drops expired ones. */
export function startMaintenance(state: ClusterState, name: string, now: number, o: { readonly forMs?: number; readonly reason?: string }): ClusterState {
  const m: Maintenance = { since: isoSeconds(now), until: o.forMs !== undefined ? isoSeconds(now + o.forMs) : null, reason: o.reason ?? null };
  return { ...state, maintenance: { ...Object.fromEntries(activeMaintenance(state, now)), [name]: m } };
}

/** Ends the maintenance of `name`; drops expired records too. */
export function endMaintenance(state: ClusterState, name: string, now: number): ClusterState {
  const rest = [...activeMaintenance(state, now)].filter(([n]) => n !== name);
  const { maintenance: _m, ...without } = state;
  return rest.length > 0 ? { ...without, maintenance: Object.fromEntries(rest) } : without;
}

/** `db001 is in maintenance until 2026-12-04T18:30:00Z (kernel upgrade)` */
export function describeMaintenance(name: string, m: Maintenance): string {
  return `${name} is in maintenance ${m.until ? `until ${m.until}` : 'until turned off'}${m.reason ? ` (${m.reason})` : ''}`;
}

/** Why there is no failover: the primary is in maintenance. */
export function maintenanceBlocksFailover(cluster: string, name: string, m: Maintenance): string {
  return `${describeMaintenance(name, m)}: no failover; \`topogit maintenance ${cluster} ${name} off\` to end it`;
}

/** Candidates never promoted while in maintenance, with why (CandidateOptions.excluded). */
export function maintenanceExclusions(state: ClusterState, now: number): Map<string, string> {
  return new Map([...activeMaintenance(state, now).keys()].map((n) => [n, 'in maintenance']));
}

/**
 * Drift repair leaves instances in maintenance alone: steps that act on one are dropped (all steps
 * when a switchover is among them: the others were planned around it) and each instance of the
 * file in maintenance gets a notice saying so.
 */
export function leaveAlone(plan: ClusterPlan, spec: ClusterSpec, inMaintenance: ReadonlyMap<string, Maintenance>): ClusterPlan {
  const names = spec.instances.map((i) => i.name).filter((n) => inMaintenance.has(n));
  if (names.length === 0) return plan;
  const touches = (s: Step, n: string) => s.instance === n || s.actions.some((a) => a.instance === n);
  const dropped = plan.steps.filter((s) => names.some((n) => touches(s, n)));
  const switchover = dropped.some(isSwitchover);
  const steps = switchover ? [] : plan.steps.filter((s) => !dropped.includes(s));
  const notices: Notice[] = names.map((n) => {
    const mine = dropped.filter((s) => touches(s, n));
    const own = mine.some(isSwitchover);
    const skipped = mine.length > 0 ? ` (not planned: ${mine.map((s) => s.summary).join('; ')}${own ? ', nor the steps planned around it' : ''})` : '';
    return { kind: 'refused', instance: n, ...(own ? { about: 'switchover' as const } : {}), message: `${describeMaintenance(n, inMaintenance.get(n) as Maintenance)}: left alone${skipped}` };
  });
  return { ...plan, steps: dropped.length > 0 ? renumbered(steps) : plan.steps, notices: [...plan.notices, ...notices] };
}

function renumbered(steps: readonly Step[]): Step[] {
  return steps.map((s, n) => ({ ...s, id: String(n + 1), ...(s.substeps ? { substeps: s.substeps.map((x, k) => ({ ...x, id: `${n + 1}.${k + 1}` })) } : {}) }));
}
