// A graceful switchover on request (`topogit switchover CLUSTER --to X`): the file is edited in
// memory to name X the primary, planned against the live servers (the planner's switchover step:
// old primary read-only, candidate catches up, promote, old primary repointed), shown, confirmed,
// then run under the cluster's lock after checking nothing changed since — and only once the
// primary really moved is the file written, so the file and the servers agree.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TopogitError } from '../core/errors.js';
import type { ClusterSpec } from '../core/model.js';
import type { PlanDocument } from '../core/plan-document.js';
import { isSwitchover, switchoverRefusal, type ClusterPlan, type PlanOptions } from '../core/plan.js';
import { editSources, promotionEdits } from '../config/edit.js';
import { parseTopologyText } from '../config/load.js';
import type { ApplyEvent, ApplyReport } from './apply.js';
import { assertUnchanged, lockClusters, makePlans, observeForChange, releaseAll, runPlan, type ChangeContext } from './change.js';
import type { Observation } from './gather.js';

export interface PreparedSwitchover {
  readonly spec: ClusterSpec;
  readonly to: string;
  /** The spec as the edited file says it: `to` is the primary. */
  readonly edited: ClusterSpec;
  readonly fileText: { readonly before: string; readonly after: string };
  readonly observed: readonly Observation[];
  readonly plan: ClusterPlan;
  readonly document: Omit<PlanDocument, 'against'>;
  /** False when `to` is already the live primary (the plan may still repair other drift). */
  readonly movesPrimary: boolean;
}

/** Edits, observes and plans; refuses (throws) with nothing changed when the switchover cannot happen. */
export async function prepareSwitchover(spec: ClusterSpec, to: string, opts: PlanOptions, c: ChangeContext): Promise<PreparedSwitchover> {
  const nothing = `${spec.file} was not changed`;
  const target = spec.instances.find((i) => i.name === to);
  if (!target) throw new TopogitError('TOPOGIT_USAGE', `${to} is not an instance of cluster ${spec.cluster}`, `instances: ${spec.instances.map((i) => i.name).join(', ')}`);
  if (target.promotion === 'never') throw new TopogitError('TOPOGIT_USAGE', `${to} has promotion: never in ${spec.file}; refusing to make it the primary`);
  const file = path.resolve(c.cwd, spec.file);
  const before = await readFile(file, 'utf8');
  const after = editSources(before, promotionEdits(spec.instances, to));
  const parsed = parseTopologyText(after, spec.file, { baseDir: path.dirname(file) });
  const edited = parsed.spec;
  if (!edited) throw new TopogitError('TOPOGIT_CONFIG_INVALID', `editing ${spec.file} would make it invalid: ${parsed.issues.map((i) => i.message).join('; ')}`);

  const observed = await observeForChange([edited], c, 'nothing was changed');
  const live = observed[0]?.view.instances.find((i) => i.name === to);
  if (!live || live.health === 'Unreachable') throw new TopogitError('TOPOGIT_SWITCHOVER_REFUSED', `${to} is unreachable; nothing was changed`, nothing);
  const made = makePlans(observed, opts, c.env);
  const plan = made.plans[0];
  if (!plan) throw new TopogitError('TOPOGIT_SWITCHOVER_REFUSED', 'no plan', nothing);
  const refused = switchoverRefusal(plan);
  if (refused) throw new TopogitError('TOPOGIT_SWITCHOVER_REFUSED', refused.message, nothing);
  return { spec, to, edited, fileText: { before, after }, observed, plan, document: made.doc, movesPrimary: plan.steps.some(isSwitchover) };
}

export interface SwitchoverResult {
  readonly report: ApplyReport | undefined;
  /** The file was rewritten to name the new primary. */
  readonly fileEdited: boolean;
}

/** Under the cluster's lock: refuse if the servers changed since the plan was shown, run it, then edit the file. */
export async function executeSwitchover(p: PreparedSwitchover, c: ChangeContext, o: { lockTimeoutMs: number; onEvent: (e: ApplyEvent) => void }): Promise<SwitchoverResult> {
  const locks = await lockClusters([p.spec.cluster], c, { timeoutMs: o.lockTimeoutMs, command: `topogit switchover ${p.spec.cluster} --to ${p.to}` });
  try {
    // What was shown is what runs.
    const now = await observeForChange([p.edited], c, 'nothing was changed');
    assertUnchanged(p.observed, now, c, { prefix: 'changed since the plan was shown', message: 'the live state changed; nothing was changed', hint: 'run switchover again' });
    const report = p.plan.steps.length > 0 ? await runPlan(p.plan, p.edited, c, o.onEvent, locks.get(p.spec.cluster)) : undefined;
    // The file follows the servers: once the primary moved, the file must say so.
    const switched = !p.movesPrimary || (report?.ran.some((r) => isSwitchover(r.step)) ?? false);
    const fileEdited = switched && p.fileText.after !== p.fileText.before;
    if (fileEdited) await writeFile(path.resolve(c.cwd, p.spec.file), p.fileText.after);
    return { report, fileEdited };
  } finally {
    await releaseAll(locks);
  }
}
