import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
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

  it('process metrics carry the prefix, prom-client\'s names and real values', () => {
    const r = new Registry();
    r.processMetrics('p_');
    const t = r.render();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(t)?.[1]);
    const names = [...t.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
    expect(names.filter((n) => !n.includes('eventloop'))).toEqual([
      'p_process_cpu_user_seconds_total',
      'p_process_cpu_system_seconds_total',
      'p_process_cpu_seconds_total',
      'p_process_start_time_seconds',
      'p_process_resident_memory_bytes',
      'p_process_virtual_memory_bytes',
      'p_process_heap_bytes',
      'p_process_open_fds',
      'p_process_max_fds',
      'p_nodejs_heap_size_total_bytes',
      'p_nodejs_heap_size_used_bytes',
      'p_nodejs_external_memory_bytes',
      'p_nodejs_active_resources_total',
      'p_nodejs_version_info',
    ]);
    expect(value('p_process_resident_memory_bytes')).toBeGreaterThan(1024 * 1024);
    expect(value('p_process_virtual_memory_bytes')).toBeGreaterThan(value('p_process_resident_memory_bytes'));
    expect(value('p_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value('p_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(value('p_process_max_fds')).toBeGreaterThan(value('p_process_open_fds'));
    expect(Math.abs(value('p_process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    expect(t).toContain(`p_nodejs_version_info{version="${process.version}",major=`);
  });

  it('open descriptors count this process\'s descriptors and not the one reading them', async () => {
    const r = new Registry();
    r.processMetrics('p_');
    const fds = () => Number(/^p_process_open_fds (\d+)$/m.exec(r.render())?.[1]);
    const before = fds();
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync('/proc/self/status', 'r');
    try {
      expect(fds()).toBe(before + 1);
    } finally {
      closeSync(fd);
    }
    expect(fds()).toBe(before);
  });

  it('the event-loop delay appears once sampled, in seconds', async () => {
    const r = new Registry();
    r.processMetrics('p_');
    const t0 = Date.now();
    while (Date.now() - t0 < 60) {
      // block the loop for 60 ms so that the monitor records a delay
    }
    // The monitor records the blocked interval once the loop turns again: await it, do not guess when.
    // (Each render starts a new window: keep the one that showed it.)
    const maxOf = (text: string) => Number(/^p_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]);
    const t = await waitFor('the blocked 60 ms in the event-loop delay', () => r.render(), (text) => maxOf(text) > 0.02, 2000);
    const max = maxOf(t);
    expect(max).toBeLessThan(60);
    expect(t).toContain('# TYPE p_nodejs_eventloop_lag_p99_seconds gauge');
  });

  it('refuses a name registered twice, a missing label and a histogram label named le; duplicate buckets collapse', () => {
    const r = new Registry();
    r.counter('t_total', 'Things.', ['k']);
    expect(() => r.gauge('t_total', 'Again.', [])).toThrow(/registered twice/);
    const g = r.gauge('t_g', 'G.', ['a', 'b']);
    expect(() => g.set({ a: 'x' } as unknown as { a: string; b: string }, 1)).toThrow(/label b missing/);
    expect(() => r.histogram('t_h', 'H.', ['le'], [1])).toThrow(/le/);
    const h = r.histogram('t_h2', 'H.', [], [1, 1, 2, Infinity]);
    h.observe({}, 1);
    const buckets = r.render().split('\n').filter((l) => l.startsWith('t_h2_bucket'));
    expect(buckets).toEqual(['t_h2_bucket{le="1"} 1', 't_h2_bucket{le="2"} 1', 't_h2_bucket{le="+Inf"} 1']);
  });
});
