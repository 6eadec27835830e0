// `topogit failover`, `topogit reconcile` and `topogit ack`: wiring and rendering only.
import type { Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import type { ClusterSpec } from '../core/model.js';
import { guardedOpen, type ClusterHold, type Coordinator } from '../coordination/coordinator.js';
import type { Timeouts } from '../core/ports.js';
import type { FailoverOutcome } from '../engine/failover.js';
import { failoverPorts } from '../adapters/ports.js';
import type { EngineEvent } from '../engine/reconcile.js';
import { unobservable } from '../core/observable.js';
import { loadValid, type Io } from './shared.js';

export interface FailoverCommandDeps {
  readonly io: Io;
  readonly setCode: (c: number) => void;
  readonly timeouts: () => Timeouts;
  readonly coordinator: () => Coordinator;
}

export function renderFailoverEvent(e: EngineEvent): string {
  switch (e.type) {
    case 'failover-step':
      return `  [+${e.atMs} ms] ${e.step}: ${e.detail}\n`;
    case 'hook':
      return `  ${e.phase} hook ${e.command} exited ${e.code}${e.output ? `: ${e.output.split('\n')[0]}` : ''}\n`;
    case 'statement':
      return `    ${e.instance}> ${e.sql}\n`;
    case 'waiting':
      return `    ... waiting for ${e.instance}: ${e.what} (${(e.elapsedMs / 1000).toFixed(0)}s of ${(e.limitMs / 1000).toFixed(0)}s)\n`;
    case 'step-start':
      return `${e.step.symbol} ${e.step.id}. ${e.step.summary}\n`;
    case 'step-done':
      return `  ✓ ${e.step.id}. done and verified in ${e.ms} ms\n`;
    case 'step-failed':
      return `  ✗ ${e.step.id}. failed: ${e.error}\n`;
    case 'analysis':
      return `${e.analysis.code}: ${e.analysis.summary}\n`;
    case 'failover-blocked':
      return `failover blocked: ${e.reason}\n`;
    case 'fenced':
      return `${e.instance} is back and fenced (read-only)${e.errant ? `: errant GTIDs ${e.errant}; it will not be rejoined automatically` : ''}\n`;
    case 'rejoined':
      return `${e.instance} is back: no errant GTIDs, rejoined as a replica of ${e.source}\n`;
    case 'relocated':
      return (
        `relocated: ${e.source} is dead; ${e.moved.join(', ')} now replicate${e.moved.length === 1 ? 's' : ''} from ${e.target}${e.commit ? `; commit ${e.commit.slice(0, 12)}` : ''}\n` +
        e.skipped.map((s) => `  not moved: ${s}\n`).join('')
      );
    case 'drift':
      return `drift: ${e.plan.steps.length} correction${e.plan.steps.length === 1 ? '' : 's'} ${e.applied ? 'applied' : 'reported only (reconcile: report, or the primary is not reachable)'}\n`;
    case 'routed':
      return `router ${e.router}: ${e.change} (${e.why})\n`;
  }
}

export function renderOutcome(o: FailoverOutcome): string {
  switch (o.kind) {
    case 'done': {
      const wb = o.writeBack;
      const git =
        wb.kind === 'committed' ? `commit ${wb.commit.slice(0, 12)}${wb.pushed ? ' pushed' : ` not pushed (${wb.why})`}` : wb.kind === 'unchanged' ? 'the file already said so: no commit' : `write-back FAILED: ${wb.error}`;
      const lost = o.record.lostGtidsKnown ? (o.record.lostGtids ? `LOST transactions: ${o.record.lostGtids}` : 'no transaction lost') : `lost transactions unknown until ${o.record.from} returns`;
      return (
        `failover ${o.record.from} -> ${o.record.to} done: writable after ${o.timings.detectedToWritableMs} ms, replicas repointed after ${o.timings.detectedToRepointedMs} ms, ${git} after ${o.timings.detectedToCommitMs} ms; ${lost}\n` +
        o.notes.map((n) => `  note: ${n}\n`).join('')
      );
    }
    case 'refused':
      return `failover refused: ${o.reason}\n`;
    case 'undone':
      return `failover undone: ${o.reason}\n`;
    case 'vetoed':
      return `failover vetoed by the preFailover hook ${o.command}${o.output ? `: ${o.output}` : ''}\n`;
    case 'failed':
      return `failover FAILED after step ${o.step}: ${o.error}\n`;
  }
}

export function registerFailoverCommands(program: Command, d: FailoverCommandDeps): void {
  const { io } = d;
  const waiting = (cluster: string) => (holder: string, ms: number) => io.err(`waiting for the lock on ${cluster}, held by ${holder} (${Math.round(ms / 1000)}s of 30s)\n`);
  const credentialsFor = async (spec: ClusterSpec) => (await import('../config/load.js')).resolveCredentials(spec, io.env);

  program
    .command('failover')
    .description('promote a replica of a dead primary now (the walkthrough\'s "Recovery" button), also when failover.auto is false')
    .argument('<cluster>', 'cluster name')
    .option('--to <instance>', 'the replica to promote (default: chosen by the policy)')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'fail over although the primary answers (it is set read-only first)')
    .option('--abort', 'undo the failover in progress (only before a replica was promoted): replicas resume from the old primary')
    .action(async (cluster: string, o: { to?: string; files: string[]; yes?: boolean; force?: boolean; abort?: boolean }) => {
      const [spec] = await loadValid(o.files, io, cluster);
      if (!spec) return;
      if (o.abort && (o.to || o.force)) throw new TopogitError('TOPOGIT_USAGE', '--abort cannot be combined with --to or --force');
      if (!o.yes) {
        if (!io.confirm) throw new TopogitError('TOPOGIT_CONFIRMATION_REQUIRED', `failover${o.abort ? ' --abort' : ''} needs confirmation and this is not a terminal; nothing was changed`, 'pass --yes');
        if (!(await io.confirm(o.abort ? `Abort the failover of cluster ${cluster} in progress?` : `Fail over cluster ${cluster}${o.to ? ` to ${o.to}` : ''}?`))) {
          d.setCode(1);
          return;
        }
      }
      const { failover } = await import('../engine/failover.js');
      const coordinator = d.coordinator();
      const lock = await coordinator.lockCluster(cluster, { timeoutMs: 30_000, command: `topogit failover ${cluster}`, onWait: waiting(cluster) });
      // Every step proven, every statement checked for freshness, every state write fenced by the lock.
      const heldPorts = async (hold: ClusterHold) => {
        const real = await failoverPorts(io.cwd, io.env);
        return { ...real, open: guardedOpen(real.open, hold), state: coordinator.stateFor(hold), mayAct: () => hold.confirm() };
      };
      try {
        const creds = await credentialsFor(spec);
        const outcome = await failover({
          spec,
          ctx: { admin: creds.admin, replication: creds.replication, timeouts: d.timeouts() },
          ports: await heldPorts(lock),
          trigger: 'manual',
          ...(o.to ? { to: o.to } : {}),
          ...(o.force ? { force: true } : {}),
          ...(o.abort ? { abort: true } : {}),
          repoDir: io.cwd,
          onEvent: (e) => io.out(renderFailoverEvent(e)),
        });
        const succeeded = outcome.kind === 'done' || (o.abort === true && outcome.kind === 'undone');
        (succeeded ? io.out : io.err)(renderOutcome(outcome));
        d.setCode(succeeded ? 0 : 1);
      } finally {
        await lock.release();
      }
    });

  program
    .command('reconcile')
    .description('one pass of what `watch` does: finish an interrupted failover, fail over by policy, fence/rejoin a returning old primary, correct drift')
    .option('-c, --cluster <name>', 'only this cluster')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .action(async (o: { cluster?: string; files: string[] }) => {
      const specs = await loadValid(o.files, io, o.cluster);
      const { reconcileOnce } = await import('../engine/reconcile.js');
      const coordinator = d.coordinator();
      const real = await failoverPorts(io.cwd, io.env);
      let failed = false;
      for (const spec of specs) {
        const lock = await coordinator.lockCluster(spec.cluster, { timeoutMs: 30_000, command: 'topogit reconcile', onWait: waiting(spec.cluster) });
        const ports = { ...real, open: guardedOpen(real.open, lock), state: coordinator.stateFor(lock), mayAct: () => lock.confirm() };
        try {
          const creds = await credentialsFor(spec);
          io.out(`cluster ${spec.cluster}: `);
          const r = await reconcileOnce({ spec, ctx: { admin: creds.admin, replication: creds.replication, timeouts: d.timeouts() }, ports, repoDir: io.cwd, onEvent: (e) => io.out(renderFailoverEvent(e)) });
          if (r.failover) (r.failover.kind === 'done' ? io.out : io.err)(renderOutcome(r.failover));
          if (r.failover && r.failover.kind !== 'done') failed = true;
          for (const b of unobservable([{ cluster: spec.cluster, probes: r.probes }])) {
            io.err(`topogit: ${b}\n`);
            failed = true;
          }
          if (r.applied?.failed) failed = true;
          if (r.error) {
            io.err(`topogit: reconcile of ${spec.cluster} stopped: ${r.error}\n`);
            failed = true;
          }
        } finally {
          await lock.release();
        }
      }
      d.setCode(failed ? 1 : 0);
    });

  program
    .command('ack')
    .description('acknowledge the last failover of a cluster: automatic failover is allowed again before blockSeconds')
    .argument('<cluster>', 'cluster name')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .action(async (cluster: string, o: { files: string[] }) => {
      await loadValid(o.files, io, cluster);
      const coordinator = d.coordinator();
      // Under the cluster lock: the state is also written by a failover in progress.
      const lock = await coordinator.lockCluster(cluster, { timeoutMs: 30_000, command: `topogit ack ${cluster}`, onWait: waiting(cluster) });
      let s;
      try {
        s = await coordinator.stateFor(lock).update(cluster, (x) => ({ ...x, ackedAt: new Date().toISOString() }));
      } finally {
        await lock.release();
      }
      io.out(s.lastFailover ? `acknowledged the failover ${s.lastFailover.from} -> ${s.lastFailover.to} of ${s.lastFailover.at}\n` : `no failover of ${cluster} on record; acknowledged anyway\n`);
    });
}
