// apply: run a cluster's plan step by step through the operating module, stop at the first
// failure and report what ran and what did not. A switchover that stopped writes but promoted
// nobody gives the old primary its writes back.
import { hookEnv } from '../core/failover-record.js';
import { isSwitchover, type Action, type ClusterPlan, type Step } from '../core/plan.js';
import { runAction, StepFailed, type OperateContext, type OperateEvent } from './operate.js';

export type ApplyEvent =
  | OperateEvent
  | { readonly type: 'step-start'; readonly step: Step }
  | { readonly type: 'step-done'; readonly step: Step; readonly ms: number }
  | { readonly type: 'step-failed'; readonly step: Step; readonly error: string }
  /** A switchover's failover hook ran. */
  | { readonly type: 'hook'; readonly phase: 'preFailover' | 'postFailover'; readonly command: string; readonly code: number; readonly output: string };

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
    const switchover = switchoverEnds(step);
    try {
      // A switchover runs the failover hooks as a failover does: a non-zero preFailover exit vetoes it.
      if (switchover) await runHooks(ctx, 'preFailover', switchover.from, switchover.to);
      for (const s of step.substeps ?? [step]) {
        for (const a of s.actions) {
          // The command's lock is proven before each change (with etcd: a transaction); once lost, nothing more.
          if (ctx.ports.mayAct && !(await ctx.ports.mayAct())) throw new StepFailed('this command lost its lock on the cluster; nothing more is changed');
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
      // The old primary takes writes again only if it is writable again: read_only first, then the routers.
      let oldWritable = fenced === undefined;
      const stillHeld = !ctx.ports.mayAct || (await ctx.ports.mayAct());
      if (isSwitchover(step) && fenced && !doneActions.some((a) => a.kind === 'promote') && !stillHeld) {
        error += `; not rolled back: the lock was lost, ${fenced.instance} stays read-only for whoever holds it now`;
        oldWritable = false;
      } else if (isSwitchover(step) && fenced && !doneActions.some((a) => a.kind === 'promote')) {
        try {
          await runAction({ kind: 'set-read-only', instance: fenced.instance, readOnly: false }, ctx);
          error += `; rolled back: ${fenced.instance} accepts writes again`;
          oldWritable = true;
        } catch (r) {
          error += `; rolling back ${fenced.instance} failed too (${(r as Error).message}): it is read-only`;
        }
      }
      // Writes taken away at a router before anything was promoted go back to the old primary,
      // and only then (a failed promote may have left the candidate writable: never both).
      if (isSwitchover(step) && oldWritable && stillHeld && !doneActions.some((a) => a.kind === 'promote')) {
        for (const a of doneActions) {
          if (a.kind !== 'route' || a.to !== 'maint') continue;
          try {
            await runAction({ ...a, to: 'ready', shutdownSessions: false }, ctx);
            error += `; rolled back: ${a.router.kind} ${a.router.address} sends writes to ${a.instance} again`;
          } catch (r) {
            error += `; rolling back ${a.router.kind} ${a.router.address} failed too (${(r as Error).message}): no writes reach ${a.instance} through it`;
          }
        }
      }
      ctx.onEvent({ type: 'step-failed', step, error });
      return { cluster: plan.cluster, ran, failed: { step, error }, notRun: plan.steps.slice(n + 1) };
    }
    const ms = ctx.ports.now() - started;
    ran.push({ step, ms });
    ctx.onEvent({ type: 'step-done', step, ms });
    if (switchover) await runHooks(ctx, 'postFailover', switchover.from, switchover.to).catch(() => undefined);
  }
  return { cluster: plan.cluster, ran, notRun: [] };
}

/** The old and the new primary of a switchover step (the instance set read-only, the one promoted). */
function switchoverEnds(step: Step): { from: string; to: string } | undefined {
  if (!isSwitchover(step)) return undefined;
  const actions = (step.substeps ?? [step]).flatMap((s) => s.actions);
  const from = actions.find((a) => a.kind === 'set-read-only' && a.readOnly)?.instance;
  const to = actions.find((a) => a.kind === 'promote')?.instance;
  return from && to ? { from, to } : undefined;
}

/** The cluster's failover hooks around a switchover; a non-zero preFailover exit stops it (nothing changed yet). */
async function runHooks(ctx: ApplyContext, phase: 'preFailover' | 'postFailover', from: string, to: string): Promise<void> {
  const commands = ctx.spec.failover.hooks[phase];
  if (commands.length === 0) return;
  if (!ctx.ports.runHook) throw new StepFailed(`${phase} hooks are configured but this process cannot run them`);
  for (const command of commands) {
    const r = await ctx.ports.runHook(command, hookEnv(ctx.spec, from, to));
    ctx.onEvent({ type: 'hook', phase, command, code: r.code, output: r.output });
    if (r.code !== 0 && phase === 'preFailover') throw new StepFailed(`preFailover hook ${command} exited ${r.code}${r.output ? ` (${r.output.split('\n')[0]})` : ''}: the switchover is vetoed; nothing changed`);
  }
}
