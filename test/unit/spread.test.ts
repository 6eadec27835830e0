import { describe, expect, it } from 'vitest';
import { affinity, decideSpread, type SpreadInput } from '../../src/core/spread.js';

const clusters = Array.from({ length: 10 }, (_, n) => `c${String(n + 1).padStart(2, '0')}`);
const member = (name: string, cs = clusters) => ({ name, clusters: cs });

function input(over: Partial<SpreadInput> & { self: string }): SpreadInput {
  return { members: [member('a'), member('b'), member('c')], leaders: new Map(), freeSince: new Map(), overloadedSince: null, busy: new Set(), now: 10_000, graceMs: 300, settleMs: 4000, ...over };
}

/** Runs the daemons' decisions in turn (as their ticks would), the first campaign for a cluster winning, until nothing changes. */
function settle(names: readonly string[], start: Map<string, string>, o: { now?: number; rounds?: number } = {}): Map<string, string> {
  const leaders = new Map(start);
  const since = new Map<string, number | null>(names.map((n) => [n, null]));
  const members = names.map((n) => member(n));
  let now = o.now ?? 10_000;
  for (let round = 0; round < (o.rounds ?? 40); round++) {
    for (const self of names) {
      const d = decideSpread({ self, members, leaders, freeSince: new Map(clusters.filter((c) => !leaders.has(c)).map((c) => [c, now - 1000])), overloadedSince: since.get(self) ?? null, busy: new Set(), now, graceMs: 300, settleMs: 4000 });
      since.set(self, d.overloadedSince);
      for (const c of d.release) leaders.delete(c);
      for (const c of d.take) if (!leaders.has(c)) leaders.set(c, self);
    }
    now += 1000;
  }
  return leaders;
}
const counts = (leaders: Map<string, string>) => [...leaders.values()].reduce((m, n) => m.set(n, (m.get(n) ?? 0) + 1), new Map<string, number>());

describe('spreading clusters across daemons', () => {
  it('the daemon that ranks first for a free cluster takes it at once; the others wait the grace period', () => {
    const c = 'c01';
    const first = ['a', 'b', 'c'].sort((x, y) => affinity(y, c) - affinity(x, c))[0] as string;
    for (const self of ['a', 'b', 'c']) {
      const d = decideSpread(input({ self, members: [member('a', [c]), member('b', [c]), member('c', [c])], freeSince: new Map([[c, 10_000]]) }));
      expect(d.take).toEqual(self === first ? [c] : []);
    }
    // After the grace period anyone takes it: a free cluster never stays leaderless.
    const late = decideSpread(input({ self: 'a', members: [member('a', [c]), member('b', [c]), member('c', [c])], freeSince: new Map([[c, 9_000]]) }));
    expect(late.take).toEqual([c]);
  });

  it('10 clusters, 3 daemons starting together: each leads 3 or 4', () => {
    const leaders = settle(['a', 'b', 'c'], new Map());
    expect(leaders.size).toBe(10);
    expect([...counts(leaders).values()].sort()).toEqual([3, 3, 4]);
  });

  it('one daemon that took all 10 gives up the excess only after the settle time, and then to 3-4 each', () => {
    const all = new Map(clusters.map((c) => [c, 'a']));
    const early = decideSpread(input({ self: 'a', leaders: all }));
    expect(early.release).toEqual([]);
    expect(early.overloadedSince).toBe(10_000);
    const later = decideSpread(input({ self: 'a', leaders: all, overloadedSince: 10_000, now: 14_000 }));
    expect(later.release).toHaveLength(6);
    expect(later.overloadedSince).toBe(14_000);
    const leaders = settle(['a', 'b', 'c'], all);
    expect([...counts(leaders).values()].sort()).toEqual([3, 3, 4]);
  });

  it('hysteresis: an imbalance that does not last is not acted on, and busy clusters are never given up', () => {
    const all = new Map(clusters.map((c) => [c, 'a']));
    const busy = new Set(clusters.slice(0, 9));
    const d = decideSpread(input({ self: 'a', leaders: all, overloadedSince: 10_000, now: 20_000, busy }));
    expect(d.release).toEqual(['c10']);
    // Balanced (4, 3, 3): nobody moves, however long it lasts.
    const balanced = new Map(clusters.map((c, i) => [c, i < 4 ? 'a' : i < 7 ? 'b' : 'c']));
    for (const self of ['a', 'b', 'c']) expect(decideSpread(input({ self, leaders: balanced, overloadedSince: 0, now: 1e9 }))).toMatchObject({ take: [], release: [], overloadedSince: null });
  });

  it('a daemon that dies: the survivors take its clusters, at most ceil(10/2) = 5 each once settled', () => {
    const balanced = new Map(clusters.map((c, i) => [c, i < 4 ? 'a' : i < 7 ? 'b' : 'c']));
    const survivors = new Map([...balanced].filter(([, n]) => n !== 'a'));
    const leaders = settle(['b', 'c'], survivors);
    expect(leaders.size).toBe(10);
    expect([...counts(leaders).values()].sort()).toEqual([5, 5]);
  });

  it('only clusters this daemon manages are taken', () => {
    const d = decideSpread(input({ self: 'a', members: [member('a', ['c01']), member('b', clusters)], freeSince: new Map(clusters.map((c) => [c, 0])) }));
    expect(d.take).toEqual(['c01']);
  });

  it('daemons that manage different clusters: nothing is handed to a daemon that cannot take it (no flapping, nobody leaderless)', () => {
    const xs = clusters;
    const members = [member('a', xs), member('b', ['y'])];
    const leaders = new Map<string, string>([...xs.map((c) => [c, 'a'] as [string, string]), ['y', 'b']]);
    for (let now = 0; now < 200_000; now += 1000) {
      const d = decideSpread({ self: 'a', members, leaders, freeSince: new Map(), overloadedSince: 0, busy: new Set(), now, graceMs: 300, settleMs: 4000 });
      expect(d.release).toEqual([]);
    }
    // A daemon with no cluster (still loading, or a wrong --topologies) does not count as starved.
    const idle = [member('a'), member('b'), member('c', [])];
    const balanced = new Map(clusters.map((c, n) => [c, n < 5 ? 'a' : 'b']));
    expect(decideSpread({ self: 'a', members: idle, leaders: balanced, freeSince: new Map(), overloadedSince: 0, busy: new Set(), now: 1e6, graceMs: 300, settleMs: 4000 })).toMatchObject({ release: [], overloadedSince: null });
  });

  it('a cluster just handed over is not taken straight back by the daemon that ranks first for it', () => {
    // Whoever ranks first for c04 among three daemons hands it over: it must not take it back at once.
    const members = [member('a', ['c01', 'c02', 'c03', 'c04']), member('b', ['c01', 'c02', 'c03', 'c04']), member('c', ['c01', 'c02', 'c03', 'c04'])];
    const first = ['a', 'b', 'c'].sort((x, y) => affinity(y, 'c04') - affinity(x, 'c04'))[0] as string;
    const leaders = new Map([['c01', first], ['c02', first === 'a' ? 'b' : 'a']]);
    const handedOver = decideSpread({ self: first, members, leaders, freeSince: new Map([['c04', 20_000]]), overloadedSince: null, busy: new Set(), now: 10_000, graceMs: 300, settleMs: 4000 });
    expect(handedOver.take).not.toContain('c04');
    // Once its own wait is over, anyone may take it (nobody stays leaderless).
    expect(decideSpread({ self: first, members, leaders, freeSince: new Map([['c04', 20_000]]), overloadedSince: null, busy: new Set(), now: 20_300, graceMs: 300, settleMs: 4000 }).take).toContain('c04');
  });
});
