// `topogit plan` and `topogit apply`: parse, call the engine, render, choose the exit code.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import { topogitPaths } from '../adapters/paths.js';
import { DEFAULT_PLAN, type ClusterPlan, type PlanOptions } from '../core/plan.js';
import type { ClusterSpec } from '../core/model.js';
import type { Timeouts } from '../core/ports.js';
import type { Observation } from '../engine/gather.js';
import type { ApplyEvent, ApplyReport } from '../engine/apply.js';
import type { PlanDocument } from '../core/plan-document.js';
import { int, loadValid, unobservable, type Io } from './shared.js';

export interface PlanCommandDeps {
  readonly io: Io;
  readonly setCode: (c: number) => void;
  readonly timeouts: () => Timeouts;
  readonly concurrency: () => number;
}

type Format = 'text' | 'markdown' | 'json';

export function registerPlanCommands(program: Command, d: PlanCommandDeps): void {
  const { io } = d;
  const gatherLive = async (specs: ClusterSpec[]): Promise<Observation[]> => {
    const [{ gather }, { probe }, { fencedByCluster }] = await Promise.all([import('../engine/gather.js'), import('../adapters/mysql/probe.js'), import('../adapters/state.js')]);
    const fenced = await fencedByCluster(topogitPaths(io.cwd).state, specs.map((s) => s.cluster));
    return gather(specs, { env: io.env, timeouts: d.timeouts(), concurrency: d.concurrency(), probe, fenced });
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
        observations = await gatherLive(specs);
      }
      const blind = o.against ? [] : unobservable(observations.map((x) => ({ cluster: x.spec.cluster, probes: x.probes })));
      const { doc } = planObservations(observations, planOptions(o), io.env);
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
      const engine = await import('../engine/plan-run.js');
      const { acquireLock } = await import('../adapters/lock.js');
      const { renderPlanText } = await import('./render-plan.js');
      const observe = async () => {
        const observations = await gatherLive(specs);
        const blind = unobservable(observations.map((x) => ({ cluster: x.spec.cluster, probes: x.probes })));
        if (blind.length > 0) {
          for (const b of blind) io.err(`topogit: ${b}\n`);
          throw new TopogitError('TOPOGIT_UNREACHABLE', 'cannot observe the servers; nothing was applied', 'fix the connection or credentials and run again');
        }
        return observations;
      };
      // Asking a human happens before the locks are taken: a prompt left unanswered must not hold
      // a cluster's lock (the daemon skips its passes, failover included, while it is held). The
      // answer is then checked against a fresh look under the lock, as a saved plan is.
      let confirmed: { plans: ClusterPlan[]; live: ReturnType<typeof engine.liveFingerprint> } | undefined;
      if (!saved && !o.yes) {
        if (!io.confirm) throw new TopogitError('TOPOGIT_CONFIRMATION_REQUIRED', 'apply needs confirmation and this is not a terminal; nothing was applied', 'pass --yes, or apply a saved plan file');
        const observations = await observe();
        const made = engine.planObservations(observations, planOptions(o), io.env);
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
        confirmed = { plans: made.plans, live: engine.liveFingerprint(observations) };
      }
      const locks = [];
      // Sorted, so two applies over overlapping clusters cannot deadlock.
      for (const s of [...specs].sort((a, b) => a.cluster.localeCompare(b.cluster))) {
        locks.push(
          await acquireLock(s.cluster, {
            dir: topogitPaths(io.cwd).locks,
            timeoutMs: o.lockTimeout * 1000,
            command: `topogit apply${planfile ? ` ${planfile}` : ''}`,
            onWait: (h, ms) => io.err(`waiting for the lock on ${s.cluster}, held by ${h ? `pid ${h.pid} (${h.command})` : 'another apply'} (${Math.round(ms / 1000)}s of ${o.lockTimeout}s)\n`),
          }),
        );
      }
      try {
        const observations = await observe();
        let plans: ClusterPlan[];
        if (confirmed) {
          const reasons = engine.stalePlanReasons({ gitCommit: null, files: {}, live: confirmed.live }, {}, engine.liveFingerprint(observations));
          if (reasons.length > 0) {
            for (const r of reasons) io.err(`changed while you were deciding: ${r}\n`);
            throw new TopogitError('TOPOGIT_STALE_PLAN', 'the live state changed since the plan you confirmed; nothing was applied', 'run apply again');
          }
          plans = confirmed.plans;
        } else if (saved) {
          if (!saved.basis) throw new TopogitError('TOPOGIT_STALE_PLAN', `${planfile} has no basis to check (save plans with \`plan --out\`)`);
          const reasons = engine.stalePlanReasons(saved.basis, await engine.fileHashes(specs, io.cwd), engine.liveFingerprint(observations));
          if (reasons.length > 0) {
            for (const r of reasons) io.err(`stale plan: ${r}\n`);
            throw new TopogitError('TOPOGIT_STALE_PLAN', `${planfile} is stale; nothing was applied`, 'make a new plan with `topogit plan --out FILE`');
          }
          plans = engine.plansFromDocument(saved);
        } else {
          const made = engine.planObservations(observations, planOptions(o), io.env);
          plans = made.plans;
          io.out(renderPlanText({ ...made.doc, against: 'live' }));
          if (made.doc.summary.changes === 0) {
            d.setCode(0);
            return;
          }
        }
        const reports = await runPlans(plans, specs, d);
        const failed = reports.filter((r) => r.failed);
        d.setCode(failed.length === 0 ? 0 : 1);
      } finally {
        for (const l of locks) await l.release();
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
      const target = spec.instances.find((i) => i.name === o.to);
      if (!target) throw new TopogitError('TOPOGIT_USAGE', `${o.to} is not an instance of cluster ${cluster}`, `instances: ${spec.instances.map((i) => i.name).join(', ')}`);
      if (target.promotion === 'never') throw new TopogitError('TOPOGIT_USAGE', `${o.to} has promotion: never in ${spec.file}; refusing to make it the primary`);
      const [{ editSources, promotionEdits }, { parseTopologyText }, engine, { acquireLock }] = await Promise.all([
        import('../config/edit.js'),
        import('../config/load.js'),
        import('../engine/plan-run.js'),
        import('../adapters/lock.js'),
      ]);
      const file = path.resolve(io.cwd, spec.file);
      const before = await readFile(file, 'utf8');
      const after = editSources(before, promotionEdits(spec.instances, o.to));
      const edited = parseTopologyText(after, spec.file, { baseDir: path.dirname(file) });
      const editedSpec = edited.spec;
      if (!editedSpec) throw new TopogitError('TOPOGIT_CONFIG_INVALID', `editing ${spec.file} would make it invalid: ${edited.issues.map((i) => i.message).join('; ')}`);
      const observe = async () => {
        const observations = await gatherLive([editedSpec]);
        const blind = unobservable(observations.map((x) => ({ cluster: x.spec.cluster, probes: x.probes })));
        if (blind.length > 0) {
          for (const b of blind) io.err(`topogit: ${b}\n`);
          throw new TopogitError('TOPOGIT_UNREACHABLE', 'cannot observe the servers; nothing was changed', `${spec.file} was not changed`);
        }
        return observations;
      };
      // Plan and ask first, lock after: an unanswered prompt must not hold the cluster's lock.
      const first = await observe();
      const live = first[0]?.view.instances.find((i) => i.name === o.to);
      if (!live || live.health === 'Unreachable') throw new TopogitError('TOPOGIT_SWITCHOVER_REFUSED', `${o.to} is unreachable; nothing was changed`, `${spec.file} was not changed`);
      const made = engine.planObservations(first, planOptions(o), io.env);
      const { renderPlanText } = await import('./render-plan.js');
      io.out(renderPlanText({ ...made.doc, against: 'live' }));
      const plan = made.plans[0];
      const refused = plan?.notices.find((n) => n.kind === 'unknown-primary' || (n.kind === 'refused' && n.message.startsWith('switchover ')));
      if (!plan || refused) throw new TopogitError('TOPOGIT_SWITCHOVER_REFUSED', refused?.message ?? 'no plan', `${spec.file} was not changed`);
      if (!plan.steps.some((st) => st.summary.startsWith('switchover '))) {
        io.out(`${o.to} is already the primary of ${cluster}\n`);
      }
      if (!o.yes && plan.steps.length > 0) {
        if (!io.confirm) throw new TopogitError('TOPOGIT_CONFIRMATION_REQUIRED', 'switchover needs confirmation and this is not a terminal; nothing was changed', 'pass --yes');
        if (!(await io.confirm(`Switch the primary of ${cluster} to ${o.to}?`))) {
          io.err('nothing changed\n');
          d.setCode(1);
          return;
        }
      }
      const lock = await acquireLock(cluster, { dir: topogitPaths(io.cwd).locks, timeoutMs: o.lockTimeout * 1000, command: `topogit switchover ${cluster} --to ${o.to}` });
      try {
        // What was shown is what runs: refuse if the servers changed in between.
        const reasons = engine.stalePlanReasons({ gitCommit: null, files: {}, live: engine.liveFingerprint(first) }, {}, engine.liveFingerprint(await observe()));
        if (reasons.length > 0) {
          for (const r of reasons) io.err(`changed since the plan was shown: ${r}\n`);
          throw new TopogitError('TOPOGIT_STALE_PLAN', 'the live state changed; nothing was changed', 'run switchover again');
        }
        const [report] = await runPlans([plan], [editedSpec], d);
        const switched = !report || report.ran.some((r) => r.step.summary.startsWith('switchover ')) || !plan.steps.some((st) => st.summary.startsWith('switchover '));
        // The file follows the servers: once the primary moved, the file must say so.
        if (switched && after !== before) {
          await writeFile(file, after);
          io.out(`edited ${spec.file}: ${o.to} is the primary (commit it so Git tells the truth)\n`);
        }
        d.setCode(report?.failed ? 1 : 0);
      } finally {
        await lock.release();
      }
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

async function runPlans(plans: ClusterPlan[], specs: ClusterSpec[], d: PlanCommandDeps): Promise<ApplyReport[]> {
  const [{ applyPlan }, { probe }, { openSession }, { resolveCredentials }] = await Promise.all([
    import('../engine/apply.js'),
    import('../adapters/mysql/probe.js'),
    import('../adapters/mysql/session.js'),
    import('../config/load.js'),
  ]);
  const { io } = d;
  const reports: ApplyReport[] = [];
  for (const plan of plans) {
    if (plan.steps.length === 0) continue;
    const spec = specs.find((s) => s.cluster === plan.cluster);
    if (!spec) continue;
    const creds = resolveCredentials(spec, io.env);
    io.out(`\napplying ${plan.cluster}: ${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}\n`);
    const report = await applyPlan(plan, {
      spec,
      admin: creds.admin,
      replication: creds.replication,
      timeouts: d.timeouts(),
      ports: { open: openSession, probe, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now() },
      onEvent: (e) => io.out(renderEvent(e)),
    });
    reports.push(report);
    if (report.failed) {
      io.err(`apply of ${plan.cluster} stopped at step ${report.failed.step.id} (${report.failed.step.summary}): ${report.failed.error}\n`);
      io.err(`  ran: ${report.ran.map((r) => r.step.id).join(', ') || 'nothing'}; not run: ${report.notRun.map((s) => `${s.id} ${s.summary}`).join('; ') || 'nothing'}\n`);
    } else {
      io.out(`${plan.cluster}: ${report.ran.length} step${report.ran.length === 1 ? '' : 's'} applied and verified\n`);
    }
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
  }
}
