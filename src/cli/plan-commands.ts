// `topogit plan` and `topogit apply`: parse, call the engine, render, choose the exit code.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import { DEFAULT_PLAN, type ClusterPlan, type PlanOptions } from '../core/plan.js';
import type { ClusterSpec } from '../core/model.js';
import type { Timeouts } from '../core/ports.js';
import { unobservable } from '../core/observable.js';
import type { Observation } from '../engine/gather.js';
import type { ApplyEvent, ApplyReport } from '../engine/apply.js';
import type { ChangeContext } from '../engine/change.js';
import type { ClusterHold, Coordinator } from '../coordination/coordinator.js';
import { withRefusals, type PlanDocument } from '../core/plan-document.js';
import { int, loadValid, type Io } from './shared.js';

export interface PlanCommandDeps {
  readonly io: Io;
  readonly setCode: (c: number) => void;
  readonly timeouts: () => Timeouts;
  readonly concurrency: () => number;
  readonly coordinator: () => Coordinator;
}

type Format = 'text' | 'markdown' | 'json';

export function registerPlanCommands(program: Command, d: PlanCommandDeps): void {
  const { io } = d;
  const change = (): ChangeContext => ({ cwd: io.cwd, env: io.env, timeouts: d.timeouts(), concurrency: d.concurrency(), coordinator: d.coordinator(), warn: (line) => io.err(`${line}\n`) });
  const engine = () => import('../engine/change.js');
  // A file older than a failover would undo it: refused before anything is asked or changed.
  const refuseStale = async (observations: readonly Observation[], c: ChangeContext): Promise<void> => {
    const { staleFilesIn } = await import('../engine/stale-file.js');
    const r = await staleFilesIn(observations, { cwd: io.cwd, state: c.coordinator.state });
    for (const w of r.warnings) io.err(`topogit: ${w}\n`);
    const [first, ...more] = r.stale;
    if (!first) return;
    if (more.length === 0) throw new TopogitError('TOPOGIT_FILE_STALE', first.reason, `${first.cluster}, ${first.file}: nothing was applied`);
    for (const x of r.stale) io.err(`topogit: ${x.cluster} (${x.file}): ${x.reason}\n`);
    throw new TopogitError('TOPOGIT_FILE_STALE', `${r.stale.length} files predate a failover; pull first`, 'nothing was applied');
  };
  const planOptions = (o: { catchUpTimeout: number; maxLag: number }): PlanOptions => ({ ...DEFAULT_PLAN, catchUpTimeoutSeconds: o.catchUpTimeout, maxSwitchoverLagSeconds: o.maxLag });

  program
    .command('plan')
    .description('show what differs between the topology files and the live servers, and what apply would run')
    .option('-c, --cluster <name>', 'only this cluster')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'markdown', 'json']).default('text'))
    .option('--out <file>', 'save the plan (with the Git commit and a live-state fingerprint) for `apply FILE`')
    .option('--against <file>', 'plan against recorded `topogit status --json` output instead of live servers')
    .option('--detailed-exitcode', 'exit 0 no changes, 2 changes, 1 error')
    .option('--max-lag <s>', 'refuse a switchover to a candidate further behind', int('--max-lag', 0, 86_400), DEFAULT_PLAN.maxSwitchoverLagSeconds)
    .option('--catch-up-timeout <s>', 'how long a switchover waits for the candidate', int('--catch-up-timeout', 1, 86_400), DEFAULT_PLAN.catchUpTimeoutSeconds)
    .action(async (o: { cluster?: string; files: string[]; format: Format; out?: string; against?: string; detailedExitcode?: boolean; maxLag: number; catchUpTimeout: number }) => {
      const specs = await loadValid(o.files, io, o.cluster);
      const { planObservations, planBasis, observationsFromStatus } = await import('../engine/plan-run.js');
      let observations: Observation[];
      let against: PlanDocument['against'] = 'live';
      if (o.against) {
        const text = await readFile(path.resolve(io.cwd, o.against), 'utf8').catch(() => {
          throw new TopogitError('TOPOGIT_USAGE', `cannot read ${o.against}`);
        });
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new TopogitError('TOPOGIT_USAGE', `${o.against} is not JSON`, 'record it with `topogit status --json > FILE`');
        }
        observations = observationsFromStatus(json, specs, o.against);
        against = { observation: o.against, observedAt: String((json as { observedAt?: string }).observedAt ?? '') };
      } else {
        observations = await (await engine()).gatherLive(specs, change());
      }
      const blind = o.against ? [] : unobservable(observations.map((x) => ({ cluster: x.spec.cluster, probes: x.probes })));
      // A file that predates a failover is refused here as apply would refuse it: no step, a notice.
      const { staleFilesIn } = await import('../engine/stale-file.js');
      const stale = await staleFilesIn(observations, { cwd: io.cwd, state: change().coordinator.state });
      for (const w of stale.warnings) io.err(`topogit: ${w}\n`);
      const doc = withRefusals(planObservations(observations, planOptions(o), io.env).doc, stale.stale);
      const full: PlanDocument = { ...doc, against, ...(o.out ? { basis: await planBasis(observations, io.cwd) } : {}) };
      if (o.out && o.against) throw new TopogitError('TOPOGIT_USAGE', '--out needs a plan made against live servers, not --against', 'drop --against to save an appliable plan');
      const render = await import('./render-plan.js');
      io.out(o.format === 'json' ? render.renderPlanJson(full) : o.format === 'markdown' ? render.renderPlanMarkdown(full) : render.renderPlanText(full));
      if (o.out) {
        await writeFile(path.resolve(io.cwd, o.out), render.renderPlanJson(full));
        io.err(`saved the plan to ${o.out}; apply it with \`topogit apply ${o.out}\`\n`);
      }
      for (const b of blind) io.err(`topogit: ${b}\n`);
      d.setCode(blind.length > 0 ? 1 : o.detailedExitcode && full.summary.changes > 0 ? 2 : 0);
    });

  const apply = program
    .command('apply')
    .description('make the live servers match the topology files (or run a saved plan)')
    .argument('[planfile]', 'a plan saved with `plan --out`')
    .option('-c, --cluster <name>', 'only this cluster')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .option('-y, --yes', 'do not ask for confirmation');
  addChangeOptions(apply)
    .action(async (planfile: string | undefined, o: { cluster?: string; files: string[]; yes?: boolean; lockTimeout: number; maxLag: number; catchUpTimeout: number }) => {
      const saved = planfile ? await readPlanFile(io, planfile) : undefined;
      let specs = await loadValid(o.files, io, o.cluster);
      if (saved) specs = specs.filter((s) => saved.clusters.some((c) => c.cluster === s.cluster));
      const [plans, ops] = await Promise.all([import('../engine/plan-run.js'), engine()]);
      const { renderPlanText } = await import('./render-plan.js');
      const c = change();
      // Asking a human happens before the locks are taken: a prompt left unanswered must not hold
      // a cluster's lock (the daemon skips its passes, failover included, while it is held). The
      // answer is then checked against a fresh look under the lock, as a saved plan is.
      let confirmed: { plans: ClusterPlan[]; observed: Observation[] } | undefined;
      if (!saved && !o.yes) {
        if (!io.confirm) throw new TopogitError('TOPOGIT_CONFIRMATION_REQUIRED', 'apply needs confirmation and this is not a terminal; nothing was applied', 'pass --yes, or apply a saved plan file');
        const observed = await ops.observeForChange(specs, c, 'nothing was applied');
        await refuseStale(observed, c);
        const made = ops.makePlans(observed, planOptions(o), io.env);
        io.out(renderPlanText({ ...made.doc, against: 'live' }));
        if (made.doc.summary.changes === 0) {
          d.setCode(0);
          return;
        }
        if (!(await io.confirm('Apply these changes?'))) {
          io.err('nothing applied\n');
          d.setCode(1);
          return;
        }
        confirmed = { plans: made.plans, observed };
      }
      const locks = await ops.lockClusters(
        specs.map((s) => s.cluster),
        c,
        { timeoutMs: o.lockTimeout * 1000, command: `topogit apply${planfile ? ` ${planfile}` : ''}` },
      );
      try {
        const observations = await ops.observeForChange(specs, c, 'nothing was applied');
        await refuseStale(observations, c);
        let toRun: ClusterPlan[];
        if (confirmed) {
          ops.assertUnchanged(confirmed.observed, observations, c, { prefix: 'changed while you were deciding', message: 'the live state changed since the plan you confirmed; nothing was applied', hint: 'run apply again' });
          toRun = confirmed.plans;
        } else if (saved) {
          if (!saved.basis) throw new TopogitError('TOPOGIT_STALE_PLAN', `${planfile} has no basis to check (save plans with \`plan --out\`)`);
          const reasons = plans.stalePlanReasons(saved.basis, await plans.fileHashes(specs, io.cwd), plans.liveFingerprint(observations));
          if (reasons.length > 0) {
            for (const r of reasons) io.err(`stale plan: ${r}\n`);
            throw new TopogitError('TOPOGIT_STALE_PLAN', `${planfile} is stale; nothing was applied`, 'make a new plan with `topogit plan --out FILE`');
          }
          toRun = plans.plansFromDocument(saved);
        } else {
          const made = ops.makePlans(observations, planOptions(o), io.env);
          toRun = made.plans;
          io.out(renderPlanText({ ...made.doc, against: 'live' }));
          if (made.doc.summary.changes === 0) {
            d.setCode(0);
            return;
          }
        }
        const reports = await runPlans(toRun, specs, c, io, locks);
        d.setCode(reports.some((r) => r.failed) ? 1 : 0);
      } finally {
        await ops.releaseAll(locks);
      }
    });

  const switchover = program
    .command('switchover')
    .description('move the primary role to INSTANCE gracefully, and edit the topology file to match')
    .argument('<cluster>', 'cluster name')
    .requiredOption('--to <instance>', 'the new primary')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .option('-y, --yes', 'do not ask for confirmation');
  addChangeOptions(switchover)
    .action(async (cluster: string, o: { to: string; files: string[]; yes?: boolean; lockTimeout: number; maxLag: number; catchUpTimeout: number }) => {
      const [spec] = await loadValid(o.files, io, cluster);
      if (!spec) return;
      const { prepareSwitchover, executeSwitchover } = await import('../engine/switchover.js');
      const c = change();
      // Plan and ask first, lock after: an unanswered prompt must not hold the cluster's lock.
      const p = await prepareSwitchover(spec, o.to, planOptions(o), c);
      const { renderPlanText } = await import('./render-plan.js');
      io.out(renderPlanText({ ...p.document, against: 'live' }));
      if (!p.movesPrimary) io.out(`${o.to} is already the primary of ${cluster}\n`);
      if (!o.yes && p.plan.steps.length > 0) {
        if (!io.confirm) throw new TopogitError('TOPOGIT_CONFIRMATION_REQUIRED', 'switchover needs confirmation and this is not a terminal; nothing was changed', 'pass --yes');
        if (!(await io.confirm(`Switch the primary of ${cluster} to ${o.to}?`))) {
          io.err('nothing changed\n');
          d.setCode(1);
          return;
        }
      }
      let started = false;
      const r = await executeSwitchover(p, c, {
        lockTimeoutMs: o.lockTimeout * 1000,
        onEvent: (e) => {
          if (!started) io.out(applyingLine(p.plan));
          started = true;
          io.out(renderEvent(e));
        },
      });
      if (r.report) reportOutcome(r.report, io);
      if (r.fileEdited) io.out(`edited ${spec.file}: ${o.to} is the primary (commit it so Git tells the truth)\n`);
      d.setCode(r.report?.failed ? 1 : 0);
    });
}

/** The options of every command that changes servers: lock wait and switchover bounds. */
function addChangeOptions(cmd: Command): Command {
  return cmd
    .option('--lock-timeout <s>', 'how long to wait for another apply on the same cluster', int('--lock-timeout', 0, 86_400), 30)
    .option('--max-lag <s>', 'refuse a switchover to a candidate further behind', int('--max-lag', 0, 86_400), DEFAULT_PLAN.maxSwitchoverLagSeconds)
    .option('--catch-up-timeout <s>', 'how long a switchover waits for the candidate to catch up', int('--catch-up-timeout', 1, 86_400), DEFAULT_PLAN.catchUpTimeoutSeconds);
}

async function readPlanFile(io: Io, file: string): Promise<PlanDocument> {
  let doc: PlanDocument;
  try {
    doc = JSON.parse(await readFile(path.resolve(io.cwd, file), 'utf8')) as PlanDocument;
  } catch {
    throw new TopogitError('TOPOGIT_USAGE', `${file} is not a saved plan (JSON from \`topogit plan --out\`)`);
  }
  if (doc.formatVersion !== 1 || !Array.isArray(doc.clusters)) throw new TopogitError('TOPOGIT_USAGE', `${file} is not a formatVersion 1 plan`);
  return doc;
}

function applyingLine(plan: ClusterPlan): string {
  return `\napplying ${plan.cluster}: ${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}\n`;
}

function reportOutcome(report: ApplyReport, io: Io): void {
  if (report.failed) {
    io.err(`apply of ${report.cluster} stopped at step ${report.failed.step.id} (${report.failed.step.summary}): ${report.failed.error}\n`);
    io.err(`  ran: ${report.ran.map((r) => r.step.id).join(', ') || 'nothing'}; not run: ${report.notRun.map((s) => `${s.id} ${s.summary}`).join('; ') || 'nothing'}\n`);
  } else {
    io.out(`${report.cluster}: ${report.ran.length} step${report.ran.length === 1 ? '' : 's'} applied and verified\n`);
  }
}

async function runPlans(plans: ClusterPlan[], specs: ClusterSpec[], c: ChangeContext, io: Io, locks: ReadonlyMap<string, ClusterHold>): Promise<ApplyReport[]> {
  const { runPlan } = await import('../engine/change.js');
  const reports: ApplyReport[] = [];
  for (const plan of plans) {
    const spec = specs.find((s) => s.cluster === plan.cluster);
    if (plan.steps.length === 0 || !spec) continue;
    io.out(applyingLine(plan));
    const report = await runPlan(plan, spec, c, (e) => io.out(renderEvent(e)), locks.get(plan.cluster));
    reports.push(report);
    reportOutcome(report, io);
  }
  return reports;
}

function renderEvent(e: ApplyEvent): string {
  switch (e.type) {
    case 'step-start':
      return `${e.step.symbol} ${e.step.id}. ${e.step.summary}\n`;
    case 'statement':
      return `    ${e.instance}> ${e.sql}\n`;
    case 'waiting':
      return `    ... waiting for ${e.instance}: ${e.what} (${(e.elapsedMs / 1000).toFixed(0)}s of ${(e.limitMs / 1000).toFixed(0)}s)\n`;
    case 'step-done':
      return `  ✓ ${e.step.id}. done and verified in ${e.ms} ms\n`;
    case 'step-failed':
      return `  ✗ ${e.step.id}. failed: ${e.error}\n`;
    case 'hook':
      return `  ${e.phase} hook ${e.command} exited ${e.code}${e.output ? `: ${e.output.split('\n')[0]}` : ''}\n`;
  }
}
