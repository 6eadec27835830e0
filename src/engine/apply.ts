// apply: run a cluster's plan step by step through the operating module, stop at the first
// failure and report what ran and what did not. A switchover that stopped writes but promoted
// nobody gives the old primary its writes back.
import { isSwitchover, type Action, type ClusterPlan, type Step } from '../core/plan.js';
import { runAction, StepFailed, type OperateContext, type OperateEvent } from './operate.js';

export type ApplyEvent =
  | OperateEvent
  | { readonly type: 'step-start'; readonly step: Step }
  | { readonly type: 'step-done'; readonly step: Step; readonly ms: number }
  | { readonly type: 'step-failed'; readonly step: Step; readonly error: string };

export interface ApplyContext extends Omit<OperateContext, 'onEvent'> {
  readonly onEvent: (e: ApplyEvent) => void;
}

export interface ApplyReport {
  readonly cluster: string;
  readonly ran: readonly { step: Step; ms: number }[];
  readonly failed?: { readonly step: Step; readonly error: string };
  readonly notRun: readonly Step[];
}

export async function applyPlan(plan: ClusterPlan, ctx: ApplyContext): Promise<ApplyReport> {
  const ran: { step: Step; ms: number }[] = [];
  for (const [n, step] of plan.steps.entries()) {
    ctx.onEvent({ type: 'step-start', step });
    const started = ctx.ports.now();
    const doneActions: Action[] = [];
    try {
      for (const s of step.substeps ?? [step]) {
        for (const a of s.actions) {
          await runAction(a, ctx);
          doneActions.push(a);
        }
      }
    } catch (e) {
      let error = e instanceof StepFailed ? e.message : `${step.instance}: ${(e as Error).message}`;
      // A switchover that stopped writes on the old primary but promoted nobody gives the old
      // primary its writes back (checked: only if nothing else is writable), so a failed
      // switchover never leaves the cluster without a writable primary.
      const fenced = doneActions.find((a) => a.kind === 'set-read-only' && a.readOnly);
      if (isSwitchover(step) && fenced && !doneActions.some((a) => a.kind === 'promote')) {
        try {
          await runAction({ kind: 'set-read-only', instance: fenced.instance, readOnly: false }, ctx);
          error += `; rolled back: ${fenced.instance} accepts writes again`;
        } catch (r) {
          error += `; rolling back ${fenced.instance} failed too (${(r as Error).message}): it is read-only`;
        }
      }
      ctx.onEvent({ type: 'step-failed', step, error });
      return { cluster: plan.cluster, ran, failed: { step, error }, notRun: plan.steps.slice(n + 1) };
    }
    const ms = ctx.ports.now() - started;
    ran.push({ step, ms });
    ctx.onEvent({ type: 'step-done', step, ms });
  }
  return { cluster: plan.cluster, ran, notRun: [] };
}
