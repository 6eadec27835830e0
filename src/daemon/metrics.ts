// The daemon's Prometheus metrics. Each Metrics owns its own registry (there is no global one), so
// two daemons in one process, or many tests, never share or clash over series.
import { CONTENT_TYPE, Registry, type Counter, type Gauge, type Histogram } from './exposition.js';
import type { MetricsSink } from './model.js';

const PREFIX = 'topogit_';

/** What topogit sends a server: the probe's statements, and the statements of a change. */
export const STATEMENT_KINDS = ['variables', 'replica-status', 'replicas', 'action'] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

/** Probe round trips: a loopback probe takes a millisecond, a dying server up to the connect timeout. */
export const PROBE_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type InstanceLabel = 'cluster' | 'instance';
type ClusterLabel = 'cluster';

export class Metrics implements MetricsSink {
  readonly registry: Registry;
  readonly contentType: string;

  private readonly probeDuration: Histogram<InstanceLabel>;
  private readonly instanceUp: Gauge<InstanceLabel>;
  private readonly lag: Gauge<InstanceLabel>;
  private readonly readOnly: Gauge<InstanceLabel>;
  private readonly maintenance: Gauge<InstanceLabel>;
  private readonly failovers: Counter<ClusterLabel>;
  private readonly lastFailover: Gauge<ClusterLabel>;
  private readonly reconcileErrors: Counter<ClusterLabel>;
  private readonly drift: Gauge<ClusterLabel>;
  private readonly fileValid: Gauge<ClusterLabel>;
  private readonly failoverReady: Gauge<ClusterLabel>;
  private readonly routerInStep: Gauge<'cluster' | 'router'>;
  private readonly writeBackPending: Gauge<ClusterLabel>;
  private readonly leads: Gauge<ClusterLabel>;
  private readonly coordinatorUp: Gauge<never>;
  private readonly failureShape: Gauge<'cluster' | 'shape'>;
  private readonly statementsSent: Counter<'cluster' | 'instance' | 'kind'>;

  /** The instances each cluster has series for, so forgetCluster can remove them all. */
  private readonly instances = new Map<string, Set<string>>();
  /** The failure shapes each cluster has had a series for. */
  private readonly shapes = new Map<string, Set<string>>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    this.contentType = CONTENT_TYPE;
    const r = this.registry;
    this.probeDuration = r.histogram(`${PREFIX}probe_duration_seconds`, 'Time one probe of one instance took, in seconds.', ['cluster', 'instance'], [...PROBE_BUCKETS]);
    this.instanceUp = r.gauge(`${PREFIX}instance_up`, 'Whether the last probe of the instance succeeded (1) or not (0).', ['cluster', 'instance']);
    this.lag = r.gauge(`${PREFIX}replication_lag_seconds`, 'Seconds the replica is behind its source; absent when unknown.', ['cluster', 'instance']);
    this.readOnly = r.gauge(`${PREFIX}read_only`, 'Whether the instance has read_only=ON (1) or OFF (0); absent when unknown.', ['cluster', 'instance']);
    this.maintenance = r.gauge(`${PREFIX}maintenance`, 'Whether the instance is in maintenance (1: `topogit maintenance ... on`; no failover, fencing or repair because of it) or not (0).', ['cluster', 'instance']);
    this.failovers = r.counter(`${PREFIX}failovers_total`, 'Failovers topogit performed on the cluster.', ['cluster']);
    this.lastFailover = r.gauge(`${PREFIX}last_failover_timestamp_seconds`, 'Unix time of the last failover of the cluster.', ['cluster']);
    this.reconcileErrors = r.counter(`${PREFIX}reconcile_errors_total`, 'Reconcile passes of the cluster that ended in an error.', ['cluster']);
    this.drift = r.gauge(`${PREFIX}drift_count`, 'Differences between the topology file and the live servers.', ['cluster']);
    this.fileValid = r.gauge(`${PREFIX}file_valid`, 'Whether the topology file of the cluster validates (1) or not (0; the last valid version is in use).', ['cluster']);
    this.routerInStep = r.gauge(`${PREFIX}router_in_step`, 'Whether the router sends writes to the primary alone and reads to the healthy replicas (1) or not (0: RoutingStale says why).', ['cluster', 'router']);
    this.writeBackPending = r.gauge(`${PREFIX}write_back_pending`, 'Write-backs of the cluster (failover or relocation commits) not on the upstream yet; the daemon retries them (WriteBackPending says since when and why).', ['cluster']);
    this.leads = r.gauge(`${PREFIX}leads`, 'Whether this daemon leads the cluster and acts on it (1) or stands by (0); across daemons the sum is 1 when one leads it.', ['cluster']);
    this.coordinatorUp = r.gauge(`${PREFIX}coordinator_up`, 'Whether this daemon can use its coordinator (1: its lease is renewed) or not (0: it acts on nothing; the log says why).', []);
    this.failoverReady = r.gauge(`${PREFIX}failover_ready`, 'Whether an automatic failover could happen now if the primary died (1) or not (0; status says why).', ['cluster']);
    this.statementsSent = r.counter(`${PREFIX}statements_total`, 'Statements topogit sent to the instance, by kind: variables, replica-status, replicas (probes) and action (changes).', ['cluster', 'instance', 'kind']);
    this.failureShape = r.gauge(`${PREFIX}failure_shape`, 'Whether the cluster shows this failure shape now (1) or showed it before and no longer does (0).', ['cluster', 'shape']);
    if (opts.defaultMetrics !== false) this.registry.processMetrics(PREFIX);
  }

  observeProbe(cluster: string, instance: string, seconds: number, up: boolean): void {
    this.touch(cluster, instance);
    const labels = { cluster, instance };
    if (Number.isFinite(seconds) && seconds >= 0) this.probeDuration.observe(labels, seconds);
    this.instanceUp.set(labels, up ? 1 : 0);
  }

  setInstance(cluster: string, instance: string, v: { up: boolean; lagSeconds: number | null; readOnly: boolean | null; maintenance?: boolean }): void {
    this.touch(cluster, instance);
    const labels = { cluster, instance };
    this.instanceUp.set(labels, v.up ? 1 : 0);
    if (v.lagSeconds === null || !Number.isFinite(v.lagSeconds)) this.lag.remove(labels);
    else this.lag.set(labels, v.lagSeconds);
    if (v.readOnly === null) this.readOnly.remove(labels);
    else this.readOnly.set(labels, v.readOnly ? 1 : 0);
    if (v.maintenance !== undefined) this.maintenance.set(labels, v.maintenance ? 1 : 0);
  }

  failover(cluster: string, atSeconds: number): void {
    this.touch(cluster);
    this.failovers.inc({ cluster });
    this.lastFailover.set({ cluster }, atSeconds);
  }

  reconcileError(cluster: string): void {
    this.touch(cluster);
    this.reconcileErrors.inc({ cluster });
  }

  setDrift(cluster: string, count: number): void {
    this.touch(cluster);
    this.drift.set({ cluster }, count);
  }

  setFileValid(cluster: string, valid: boolean): void {
    this.touch(cluster);
    this.fileValid.set({ cluster }, valid ? 1 : 0);
  }

  setRouterInStep(cluster: string, router: string, inStep: boolean): void {
    this.touch(cluster);
    this.routerInStep.set({ cluster, router }, inStep ? 1 : 0);
  }

  setWriteBackPending(cluster: string, pending: number): void {
    this.touch(cluster);
    this.writeBackPending.set({ cluster }, pending);
  }

  setLeads(cluster: string, leads: boolean): void {
    this.touch(cluster);
    this.leads.set({ cluster }, leads ? 1 : 0);
  }

  setCoordinatorUp(up: boolean): void {
    this.coordinatorUp.set({}, up ? 1 : 0);
  }

  setFailoverReady(cluster: string, ready: boolean): void {
    this.touch(cluster);
    this.failoverReady.set({ cluster }, ready ? 1 : 0);
  }

  setShapes(cluster: string, present: readonly string[]): void {
    this.touch(cluster);
    const seen = this.shapes.get(cluster) ?? new Set<string>();
    this.shapes.set(cluster, seen);
    for (const shape of present) seen.add(shape);
    for (const shape of seen) this.failureShape.set({ cluster, shape }, present.includes(shape) ? 1 : 0);
  }

  /** Count statements sent to an instance (the probe's, by kind, and a change's). */
  statements(cluster: string, instance: string, kind: StatementKind, n: number): void {
    this.statementsSent.inc({ cluster, instance, kind }, n);
    this.touch(cluster, instance);
  }

  /** Remove the series of one instance that left its cluster's file. */
  forgetInstance(cluster: string, instance: string): void {
    const labels = { cluster, instance };
    for (const m of [this.probeDuration, this.instanceUp, this.lag, this.readOnly, this.maintenance]) m.remove(labels);
    for (const kind of STATEMENT_KINDS) this.statementsSent.remove({ ...labels, kind });
    this.instances.get(cluster)?.delete(instance);
  }

  /** Remove every series of a cluster that is no longer configured. */
  forgetCluster(cluster: string): void {
    for (const instance of [...(this.instances.get(cluster) ?? [])]) this.forgetInstance(cluster, instance);
    this.instances.delete(cluster);
    for (const m of [this.failovers, this.lastFailover, this.reconcileErrors, this.drift, this.fileValid, this.failoverReady, this.writeBackPending]) m.remove({ cluster });
    for (const shape of this.shapes.get(cluster) ?? []) this.failureShape.remove({ cluster, shape });
    this.shapes.delete(cluster);
  }

  /** The exposition text for a scrape. */
  render(): string {
    return this.registry.render();
  }

  /**
   * Remember the cluster (and instance). A cluster's counters start at 0 the first time it is
   * seen, so rate() and increase() see the first failover or error instead of a series appearing at 1.
   */
  private touch(cluster: string, instance?: string): void {
    let set = this.instances.get(cluster);
    if (!set) {
      set = new Set();
      this.instances.set(cluster, set);
      this.failovers.inc({ cluster }, 0);
      this.reconcileErrors.inc({ cluster }, 0);
    }
    if (instance !== undefined) set.add(instance);
  }
}
