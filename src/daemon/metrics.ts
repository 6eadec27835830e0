// The daemon's Prometheus metrics. Each Metrics owns its own registry (never prom-client's global
// one), so two daemons in one process, or many tests, never share or clash over series.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  private readonly failureShape: Gauge<'cluster' | 'shape'>;
  private readonly statementsSent: Counter<'cluster' | 'instance' | 'kind'>;

  /** The instances each cluster has series for, so forgetCluster can remove them all. */
  private readonly instances = new Map<string, Set<string>>();
  /** The failure shapes each cluster has had a series for. */
  private readonly shapes = new Map<string, Set<string>>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    this.probeDuration = new Histogram({
      name: `${PREFIX}probe_duration_seconds`,
      help: 'Time one probe of one instance took, in seconds.',
      labelNames: ['cluster', 'instance'],
      buckets: [...PROBE_BUCKETS],
      registers,
    });
    this.instanceUp = new Gauge({
      name: `${PREFIX}instance_up`,
      help: 'Whether the last probe of the instance succeeded (1) or not (0).',
      labelNames: ['cluster', 'instance'],
      registers,
    });
    this.lag = new Gauge({
      name: `${PREFIX}replication_lag_seconds`,
      help: 'Seconds the replica is behind its source; absent when unknown.',
      labelNames: ['cluster', 'instance'],
      registers,
    });
    this.readOnly = new Gauge({
      name: `${PREFIX}read_only`,
      help: 'Whether the instance has read_only=ON (1) or OFF (0); absent when unknown.',
      labelNames: ['cluster', 'instance'],
      registers,
    });
    this.maintenance = new Gauge({
      name: `${PREFIX}maintenance`,
      help: 'Whether the instance is in maintenance (1: `topogit maintenance ... on`; no failover, fencing or repair because of it) or not (0).',
      labelNames: ['cluster', 'instance'],
      registers,
    });
    this.failovers = new Counter({
      name: `${PREFIX}failovers_total`,
      help: 'Failovers topogit performed on the cluster.',
      labelNames: ['cluster'],
      registers,
    });
    this.lastFailover = new Gauge({
      name: `${PREFIX}last_failover_timestamp_seconds`,
      help: 'Unix time of the last failover of the cluster.',
      labelNames: ['cluster'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: `${PREFIX}reconcile_errors_total`,
      help: 'Reconcile passes of the cluster that ended in an error.',
      labelNames: ['cluster'],
      registers,
    });
    this.drift = new Gauge({
      name: `${PREFIX}drift_count`,
      help: 'Differences between the topology file and the live servers.',
      labelNames: ['cluster'],
      registers,
    });
    this.fileValid = new Gauge({
      name: `${PREFIX}file_valid`,
      help: 'Whether the topology file of the cluster validates (1) or not (0; the last valid version is in use).',
      labelNames: ['cluster'],
      registers,
    });
    this.failoverReady = new Gauge({
      name: `${PREFIX}failover_ready`,
      help: 'Whether an automatic failover could happen now if the primary died (1) or not (0; status says why).',
      labelNames: ['cluster'],
      registers,
    });
    this.statementsSent = new Counter({
      name: `${PREFIX}statements_total`,
      help: 'Statements topogit sent to the instance, by kind: variables, replica-status, replicas (probes) and action (changes).',
      labelNames: ['cluster', 'instance', 'kind'],
      registers,
    });
    this.failureShape = new Gauge({
      name: `${PREFIX}failure_shape`,
      help: 'Whether the cluster shows this failure shape now (1) or showed it before and no longer does (0).',
      labelNames: ['cluster', 'shape'],
      registers,
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
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

  /** Remove the series of one instance that left its cluster's file. */
  statements(cluster: string, instance: string, kind: StatementKind, n: number): void {
    this.statementsSent.inc({ cluster, instance, kind }, n);
    this.touch(cluster, instance);
  }

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
    for (const m of [this.failovers, this.lastFailover, this.reconcileErrors, this.drift, this.fileValid, this.failoverReady]) m.remove({ cluster });
    for (const shape of this.shapes.get(cluster) ?? []) this.failureShape.remove({ cluster, shape });
    this.shapes.delete(cluster);
  }

  /** The exposition text for a scrape. */
  render(): Promise<string> {
    return this.registry.metrics();
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
