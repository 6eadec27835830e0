// A small Prometheus registry: labelled counters, gauges and histograms rendered in the text
// exposition format 0.0.4. The daemon needs a dozen series and nothing else prom-client brings
// (its OpenTelemetry bridge, summaries, pushgateway, cluster aggregation cost ~3 MiB resident and
// 90 modules in a process whose budget at 3 instances is 60 MiB), so it is written here.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/
import { readdirSync } from 'node:fs';

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
    return this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`).join(',');
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
    this.bounds = [...buckets].sort((a, b) => a - b);
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

/** A family whose value is read when scraped (the process metrics). */
class Collected implements Family {
  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly type: 'counter' | 'gauge',
    private readonly read: () => number | undefined,
  ) {}
  render(out: string[]): void {
    const v = this.read();
    if (v === undefined) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, sample(this.name, '', v));
  }
}

export class Registry {
  private readonly families: Family[] = [];

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
   * The process metrics under prom-client's names (so existing dashboards keep working): CPU,
   * resident memory, start time, open descriptors, the V8 heap.
   */
  processMetrics(prefix: string): void {
    const startSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000);
    const cpu = (k: 'user' | 'system' | 'both') => () => {
      const u = process.cpuUsage();
      return (k === 'user' ? u.user : k === 'system' ? u.system : u.user + u.system) / 1e6;
    };
    const mem = (k: 'heapTotal' | 'heapUsed' | 'external') => () => process.memoryUsage()[k];
    this.families.push(
      new Collected(`${prefix}process_cpu_user_seconds_total`, 'Total user CPU time spent in seconds.', 'counter', cpu('user')),
      new Collected(`${prefix}process_cpu_system_seconds_total`, 'Total system CPU time spent in seconds.', 'counter', cpu('system')),
      new Collected(`${prefix}process_cpu_seconds_total`, 'Total user and system CPU time spent in seconds.', 'counter', cpu('both')),
      new Collected(`${prefix}process_resident_memory_bytes`, 'Resident memory size in bytes.', 'gauge', () => process.memoryUsage.rss()),
      new Collected(`${prefix}process_start_time_seconds`, 'Start time of the process since unix epoch in seconds.', 'gauge', () => startSeconds),
      new Collected(`${prefix}process_open_fds`, 'Number of open file descriptors.', 'gauge', openFds),
      new Collected(`${prefix}nodejs_heap_size_total_bytes`, 'Process heap size from Node.js in bytes.', 'gauge', mem('heapTotal')),
      new Collected(`${prefix}nodejs_heap_size_used_bytes`, 'Process heap size used from Node.js in bytes.', 'gauge', mem('heapUsed')),
      new Collected(`${prefix}nodejs_external_memory_bytes`, 'Node.js external memory size in bytes.', 'gauge', mem('external')),
    );
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families) f.render(out);
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }

  private add<F extends Family>(f: F): F {
    this.families.push(f);
    return f;
  }
}

let fdsUnavailable = false;
function openFds(): number | undefined {
  if (fdsUnavailable) return undefined;
  try {
    return readdirSync('/proc/self/fd').length; // Linux; absent elsewhere, then the series is left out
  } catch {
    fdsUnavailable = true;
    return undefined;
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
