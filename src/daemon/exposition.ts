// A small Prometheus registry: labelled counters, gauges and histograms rendered in the text
// exposition format 0.0.4. The daemon needs a dozen series and nothing else prom-client brings
// (its OpenTelemetry bridge, summaries, pushgateway, cluster aggregation cost ~3 MiB resident and
// 90 modules in a process whose budget at 3 instances is 60 MiB), so it is written here.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/
import { readFileSync, readdirSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = Readonly<Record<L, string>>;

interface Family {
  render(out: string[]): void;
}

/** One metric name with a series per label set, kept in first-seen order. */
abstract class Series<L extends string, V> implements Family {
  protected readonly series = new Map<string, { labels: string; value: V }>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly labelNames: readonly L[],
  ) {}

  remove(labels: Labels<L>): void {
    this.series.delete(this.key(labels));
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const s of this.series.values()) this.renderOne(out, s.labels, s.value);
  }

  protected abstract renderOne(out: string[], labels: string, value: V): void;

  protected entry(labels: Labels<L>, init: () => V): { labels: string; value: V } {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: key, value: init() };
      this.series.set(key, s);
    }
    return s;
  }

  /** The rendered label set (`a="x",b="y"`), which is also the series' key. */
  private key(labels: Labels<L>): string {
    return this.labelNames
      .map((n) => {
        const v = labels[n];
        if (typeof v !== 'string') throw new TypeError(`${this.name}: label ${n} missing`);
        return `${n}="${escapeLabel(v)}"`;
      })
      .join(',');
  }
}

export class Counter<L extends string> extends Series<L, number> {
  constructor(name: string, help: string, labelNames: readonly L[]) {
    super(name, help, 'counter', labelNames);
  }
  inc(labels: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`${this.name}: a counter cannot go down (inc by ${by})`);
    this.entry(labels, () => 0).value += by;
  }
  protected renderOne(out: string[], labels: string, value: number): void {
    out.push(sample(this.name, labels, value));
  }
}

export class Gauge<L extends string> extends Series<L, number> {
  constructor(name: string, help: string, labelNames: readonly L[]) {
    super(name, help, 'gauge', labelNames);
  }
  set(labels: Labels<L>, value: number): void {
    this.entry(labels, () => 0).value = value;
  }
  protected renderOne(out: string[], labels: string, value: number): void {
    out.push(sample(this.name, labels, value));
  }
}

interface Buckets {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string> extends Series<L, Buckets> {
  private readonly bounds: readonly number[];
  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, 'histogram', labelNames);
    this.bounds = [...new Set(buckets)].filter((b) => Number.isFinite(b)).sort((a, b) => a - b);
    if ((labelNames as readonly string[]).includes('le')) throw new Error(`${name}: a histogram cannot have a label named le`);
  }
  observe(labels: Labels<L>, value: number): void {
    const b = this.entry(labels, () => ({ counts: this.bounds.map(() => 0), sum: 0, count: 0 })).value;
    // Cumulative at render time; here each observation lands in its first bucket only.
    const i = this.bounds.findIndex((le) => value <= le);
    if (i >= 0) b.counts[i]! += 1;
    b.sum += value;
    b.count += 1;
  }
  protected renderOne(out: string[], labels: string, b: Buckets): void {
    const sep = labels === '' ? '' : ',';
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += b.counts[i]!;
      out.push(sample(`${this.name}_bucket`, `${labels}${sep}le="${formatValue(le)}"`, cumulative));
    });
    out.push(sample(`${this.name}_bucket`, `${labels}${sep}le="+Inf"`, b.count));
    out.push(sample(`${this.name}_sum`, labels, b.sum));
    out.push(sample(`${this.name}_count`, labels, b.count));
  }
}

/** The process metrics, read when scraped (see Registry.processMetrics). */
class ProcessMetrics implements Family {
  private readonly startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  /** Event-loop delay, sampled every 20 ms and reset after each scrape (as prom-client does). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor(private readonly prefix: string) {
    this.loopDelay.enable();
  }

  render(out: string[]): void {
    const one = (name: string, help: string, type: 'counter' | 'gauge', value: number | undefined, labels = '') => {
      if (value === undefined || !Number.isFinite(value)) return;
      const full = `${this.prefix}${name}`;
      out.push(`# HELP ${full} ${escapeHelp(help)}`, `# TYPE ${full} ${type}`, sample(full, labels, value));
    };
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const status = procStatus();
    one('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', cpu.user / 1e6);
    one('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', cpu.system / 1e6);
    one('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', (cpu.user + cpu.system) / 1e6);
    one('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', this.startSeconds);
    one('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', mem.rss);
    one('process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', status.get('VmSize'));
    one('process_heap_bytes', 'Process heap size in bytes.', 'gauge', status.get('VmData'));
    one('process_open_fds', 'Number of open file descriptors.', 'gauge', openFds());
    one('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', maxFds());
    one('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', mem.heapTotal);
    one('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', mem.heapUsed);
    one('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', mem.external);
    one('nodejs_active_resources_total', 'Total number of active resources (handles and requests) keeping the event loop alive.', 'gauge', process.getActiveResourcesInfo().length);
    const d = this.loopDelay;
    const seconds = (ns: number) => (d.count > 0 ? ns / 1e9 : undefined);
    one('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', 'gauge', seconds(d.min));
    one('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', 'gauge', seconds(d.max));
    one('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', 'gauge', seconds(d.mean));
    one('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', 'gauge', seconds(d.percentile(50)));
    one('nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.', 'gauge', seconds(d.percentile(90)));
    one('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'gauge', seconds(d.percentile(99)));
    d.reset();
    const [major, minor, patch] = process.versions.node.split('.');
    one('nodejs_version_info', 'Node.js version info.', 'gauge', 1, `version="${escapeLabel(process.version)}",major="${major}",minor="${minor}",patch="${patch}"`);
  }
}

/** Open descriptors, not counting the one that reads the directory. Linux only (undefined elsewhere). */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

function maxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/self/status sizes in bytes (VmSize, VmData, ...); empty where there is no /proc. */
function procStatus(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const m of readFileSync('/proc/self/status', 'utf8').matchAll(/^(\w+):\s+(\d+) kB$/gm)) out.set(m[1]!, Number(m[2]) * 1024);
  } catch {
    // not Linux: the series are left out
  }
  return out;
}

export class Registry {
  private readonly families: Family[] = [];
  private readonly names = new Set<string>();

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    return this.add(new Gauge(name, help, labelNames));
  }
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /**
   * The process metrics under the names prom-client's default collector uses (so dashboards built
   * on them keep working): CPU, memory, start time, descriptors, the V8 heap, event-loop delay,
   * active resources, the Node version. Not kept: prom-client's per-heap-space gauges, GC
   * durations and the event-loop percentiles beyond p50/p90/p99.
   */
  processMetrics(prefix: string): void {
    this.add(new ProcessMetrics(prefix));
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families) f.render(out);
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }

  private add<F extends Family>(f: F): F {
    const name = f instanceof Series ? f.name : f instanceof ProcessMetrics ? 'process metrics' : '';
    if (this.names.has(name)) throw new Error(`${name} is registered twice`);
    this.names.add(name);
    this.families.push(f);
    return f;
  }
}

function sample(name: string, labels: string, value: number): string {
  return `${name}${labels === '' ? '' : `{${labels}}`} ${formatValue(value)}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
