import { describe, expect, it } from 'vitest';
import { CONTENT_TYPE, Registry } from '../../src/daemon/exposition.js';

describe('the Prometheus text exposition', () => {
  it('renders HELP, TYPE and one line per series, labels in declared order', () => {
    const r = new Registry();
    const c = r.counter('t_total', 'Things.', ['cluster', 'instance']);
    const g = r.gauge('t_gauge', 'A level.', ['cluster']);
    c.inc({ instance: 'db1', cluster: 'shop' });
    c.inc({ cluster: 'shop', instance: 'db1' }, 2);
    c.inc({ cluster: 'shop', instance: 'db2' }, 0);
    g.set({ cluster: 'shop' }, 1.5);
    g.set({ cluster: 'shop' }, -2);
    expect(r.render()).toBe(
      [
        '# HELP t_total Things.',
        '# TYPE t_total counter',
        't_total{cluster="shop",instance="db1"} 3',
        't_total{cluster="shop",instance="db2"} 0',
        '# HELP t_gauge A level.',
        '# TYPE t_gauge gauge',
        't_gauge{cluster="shop"} -2',
        '',
      ].join('\n'),
    );
    expect(CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('histogram buckets are cumulative, with +Inf, _sum and _count', () => {
    const r = new Registry();
    const h = r.histogram('t_seconds', 'Durations.', ['i'], [0.5, 0.1, 1]);
    for (const v of [0.05, 0.1, 0.3, 0.7, 5]) h.observe({ i: 'a' }, v);
    const lines = r.render().split('\n');
    expect(lines).toContain('t_seconds_bucket{i="a",le="0.1"} 2');
    expect(lines).toContain('t_seconds_bucket{i="a",le="0.5"} 3');
    expect(lines).toContain('t_seconds_bucket{i="a",le="1"} 4');
    expect(lines).toContain('t_seconds_bucket{i="a",le="+Inf"} 5');
    expect(lines).toContain('t_seconds_sum{i="a"} 6.15');
    expect(lines).toContain('t_seconds_count{i="a"} 5');
    // Buckets in ascending order whatever order they were declared in.
    const les = lines.filter((l) => l.startsWith('t_seconds_bucket')).map((l) => /le="([^"]+)"/.exec(l)![1]);
    expect(les).toEqual(['0.1', '0.5', '1', '+Inf']);
  });

  it('escapes label values and help text; special values are spelled as Prometheus reads them', () => {
    const r = new Registry();
    const g = r.gauge('t', 'Line one\nback\\slash', ['name']);
    g.set({ name: 'a"b\\c\nd' }, Infinity);
    g.set({ name: 'x' }, NaN);
    const t = r.render();
    expect(t).toContain('# HELP t Line one\\nback\\\\slash\n');
    expect(t).toContain('t{name="a\\"b\\\\c\\nd"} +Inf\n');
    expect(t).toContain('t{name="x"} NaN\n');
  });

  it('a removed series is gone; one set again starts afresh', () => {
    const r = new Registry();
    const c = r.counter('t_total', 'Things.', ['k']);
    c.inc({ k: 'a' }, 5);
    c.remove({ k: 'a' });
    expect(r.render()).not.toContain('t_total{');
    c.inc({ k: 'a' });
    expect(r.render()).toContain('t_total{k="a"} 1');
  });

  it('a counter refuses to go down', () => {
    const c = new Registry().counter('t_total', 'Things.', ['k']);
    expect(() => c.inc({ k: 'a' }, -1)).toThrow(/cannot go down/);
    expect(() => c.inc({ k: 'a' }, NaN)).toThrow(/cannot go down/);
  });

  it('process metrics carry the prefix and real values', () => {
    const r = new Registry();
    r.processMetrics('p_');
    const t = r.render();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(t)?.[1]);
    expect(value('p_process_resident_memory_bytes')).toBeGreaterThan(1024 * 1024);
    expect(value('p_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value('p_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(Math.abs(value('p_process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    expect(t).toContain('# TYPE p_process_cpu_seconds_total counter');
  });
});
