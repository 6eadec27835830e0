// `topogit maintenance`: an operator tells topogit that an instance is being worked on (restarted,
// upgraded) on purpose. Kept in the cluster's state record under the cluster's apply lock, so the
// daemon sees it on its next pass. Wiring and rendering only; the rules are in src/core/maintenance.ts.
import type { Coordinator } from '../coordination/coordinator.js';
import type { Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import { describeMaintenance, endMaintenance, parseDuration, startMaintenance } from '../core/maintenance.js';
import { activeMaintenance } from '../core/state.js';
import { loadValid, type Io } from './shared.js';

export interface MaintenanceCommandDeps {
  readonly io: Io;
  readonly coordinator: () => Coordinator;
}

const MAX_REASON = 200;

export function registerMaintenanceCommand(program: Command, d: MaintenanceCommandDeps): void {
  const { io } = d;
  program
    .command('maintenance')
    .description('put an instance in maintenance (no failover because it is gone, never fenced, promoted or repaired), end it, or list what is in maintenance')
    .argument('<cluster>', 'cluster name')
    .argument('[instance]', 'instance of the cluster (without it: list what is in maintenance)')
    .argument('[on|off]', 'on: start the maintenance; off: end it')
    .option('--for <duration>', 'with on: end by itself after this long, e.g. 90s, 30m, 2h (default: until off)')
    .option('--reason <text>', 'with on: why, shown by status and in the refusals')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .action(async (cluster: string, instance: string | undefined, onOff: string | undefined, o: { for?: string; reason?: string; files: string[] }) => {
      const [spec] = await loadValid(o.files, io, cluster);
      if (!spec) return;
      const coordinator = d.coordinator();
      if (instance === undefined) {
        if (o.for !== undefined || o.reason !== undefined) throw new TopogitError('TOPOGIT_USAGE', '--for and --reason need an instance and `on`', `e.g. topogit maintenance ${cluster} ${spec.instances[0]?.name ?? 'db001'} on --for 30m`);
        const active = activeMaintenance(await coordinator.state.read(cluster), Date.now());
        if (active.size === 0) io.out(`${cluster}: no instance is in maintenance\n`);
        for (const [name, m] of active) io.out(`${cluster}: ${describeMaintenance(name, m)}, since ${m.since}\n`);
        return;
      }
      if (!spec.instances.some((i) => i.name === instance)) {
        throw new TopogitError('TOPOGIT_USAGE', `${instance} is not an instance of ${cluster} (${spec.file})`, `instances: ${spec.instances.map((i) => i.name).join(', ')}`);
      }
      if (onOff !== 'on' && onOff !== 'off') throw new TopogitError('TOPOGIT_USAGE', `say on or off after the instance${onOff === undefined ? '' : `, not "${onOff}"`}`, `topogit maintenance ${cluster} ${instance} on|off`);
      if (onOff === 'off' && (o.for !== undefined || o.reason !== undefined)) throw new TopogitError('TOPOGIT_USAGE', '--for and --reason go with on, not off');
      const forMs = o.for === undefined ? undefined : parseDuration(o.for);
      if (o.for !== undefined && forMs === undefined) throw new TopogitError('TOPOGIT_USAGE', `--for ${o.for} is not a duration`, 'e.g. 90s, 30m, 2h or 1h30m');
      if (o.reason !== undefined && (o.reason.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(o.reason))) {
        throw new TopogitError('TOPOGIT_USAGE', `--reason must be one line of at most ${MAX_REASON} characters`);
      }
      // Under the cluster lock: the daemon's pass and a failover in progress write the state too.
      const lock = await coordinator.lockCluster(cluster, {
        timeoutMs: 30_000,
        command: `topogit maintenance ${cluster} ${instance} ${onOff}`,
        onWait: (holder, ms) => io.err(`waiting for the lock on ${cluster}, held by ${holder} (${Math.round(ms / 1000)}s of 30s)\n`),
      });
      const store = coordinator.stateFor(lock);
      const now = Date.now();
      let was;
      let s;
      try {
        was = activeMaintenance(await store.read(cluster), now).get(instance);
        s = await store.update(cluster, (x) => (onOff === 'on' ? startMaintenance(x, instance, now, { ...(forMs !== undefined ? { forMs } : {}), ...(o.reason !== undefined ? { reason: o.reason } : {}) }) : endMaintenance(x, instance, now)));
      } finally {
        await lock.release();
      }
      const m = s.maintenance?.[instance];
      if (onOff === 'on' && m) {
        io.out(`${describeMaintenance(instance, m)}: topogit does not fail over because it is gone, and does not fence, promote or repair it; \`topogit maintenance ${cluster} ${instance} off\` to end it\n`);
        if (s.journal) io.out(`note: a failover of ${s.journal.failedPrimary} is in progress; it is finished (or undone) all the same\n`);
      } else {
        io.out(was ? `${instance} of ${cluster} is out of maintenance: topogit watches, fails over for and repairs it again\n` : `${instance} of ${cluster} was not in maintenance; nothing changed\n`);
      }
    });
}
