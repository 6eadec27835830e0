// The plan document: what `plan` prints as JSON (schemas/plan.schema.json), what `plan --out`
// saves and `apply PLANFILE` reads back. Steps carry their SQL for display (passwords masked),
// rendered by the caller's `display` function (the MySQL adapter knows the dialects).
import type { Action, ClusterPlan, Notice, Step, Symbol } from './plan.js';

/** The statements an action shows for a server version and flavor, passwords masked. */
export type DisplayAction = (action: Action, version: string, flavor: string, replUser: string) => string[];

export interface PlanStepView {
  readonly id: string;
  readonly instance: string;
  readonly symbol: Symbol;
  readonly summary: string;
  readonly reason: string;
  /** Statements it will run, passwords shown as '****'. */
  readonly sql: readonly string[];
  readonly actions: readonly Action[];
  readonly substeps?: readonly PlanStepView[];
}

export interface ClusterPlanView {
  readonly cluster: string;
  readonly file: string;
  readonly flavor: string | null;
  readonly version: string | null;
  readonly steps: readonly PlanStepView[];
  readonly notices: readonly Notice[];
}

export interface PlanDocument {
  readonly formatVersion: 1;
  readonly createdAt: string;
  /** Where the plan was made against: live servers or a recorded observation. */
  readonly against: 'live' | { readonly observation: string; readonly observedAt: string };
  readonly summary: { readonly changes: number; readonly clusters: number };
  readonly clusters: readonly ClusterPlanView[];
  /** Present in saved plans (--out): what apply checks before running. */
  readonly basis?: PlanBasis;
}

export interface PlanBasis {
  readonly gitCommit: string | null;
  /** sha256 of each topology file the plan was made from. */
  readonly files: Readonly<Record<string, string>>;
  /** cluster -> instance -> fingerprint of the live state that matters to the plan. */
  readonly live: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export function viewPlan(p: ClusterPlan, version: string | null, replUser: string, displayAction: DisplayAction): ClusterPlanView {
  const viewStep = (s: Step): PlanStepView => ({
    id: s.id,
    instance: s.instance,
    symbol: s.symbol,
    summary: s.summary,
    reason: s.reason,
    sql: s.substeps ? [] : s.actions.flatMap((a) => displayAction(a, version ?? '', p.flavor ?? '', replUser)),
    actions: s.actions,
    ...(s.substeps ? { substeps: s.substeps.map(viewStep) } : {}),
  });
  return { cluster: p.cluster, file: p.file, flavor: p.flavor, version, steps: p.steps.map(viewStep), notices: p.notices };
}

export function countChanges(views: readonly ClusterPlanView[]): { changes: number; clusters: number } {
  const withChanges = views.filter((v) => v.steps.length > 0);
  return { changes: withChanges.reduce((n, v) => n + v.steps.length, 0), clusters: withChanges.length };
}

/** The plan with these clusters refused: no step, a notice saying why (a file that predates a failover). */
export function withRefusals<D extends { readonly summary: PlanDocument['summary']; readonly clusters: readonly ClusterPlanView[] }>(doc: D, refused: readonly { readonly cluster: string; readonly reason: string }[]): D {
  if (refused.length === 0) return doc;
  const clusters = doc.clusters.map((c) => {
    const r = refused.find((x) => x.cluster === c.cluster);
    return r ? { ...c, steps: [], notices: [{ kind: 'refused' as const, message: r.reason }, ...c.notices] } : c;
  });
  return { ...doc, clusters, summary: countChanges(clusters) };
}
