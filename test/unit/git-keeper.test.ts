// The daemon's GitKeeper with Git faked at its two calls and a hand-driven clock: pending
// write-backs are retried after a pass and then on their backoff timer (never more often), at
// once when a pull succeeds after failing (the remote is back), not at all while the daemon may
// not act; Git operations never overlap; a pull that keeps failing the same way is one warning.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { PullResult } from '../../src/adapters/git-sync.js';
import type { WriteBackRetryRequest, WriteBackRetryResult } from '../../src/core/ports.js';
import { EMPTY_STATE, type ClusterState, type PendingWriteBack } from '../../src/core/state.js';
import { GitKeeper } from '../../src/daemon/git-keeper.js';
import type { LoopTimers } from '../../src/daemon/loop.js';
import { clusterSpec, instance } from '../support/spec.js';

const SPEC = clusterSpec('shop', [instance('db001', '10.0.0.1'), instance('db002', '10.0.0.2', { source: 'db001' })]);
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

class Clock implements LoopTimers {
  t = T0;
  timers: { fn: () => void; at: number }[] = [];
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const h = { fn, at: this.t + ms };
    this.timers.push(h);
    return h;
  };
  clearTimeout = (h: unknown): void => {
    this.timers = this.timers.filter((x) => x !== h);
  };
  /** Moves the clock to the next timer and runs it; returns how far it moved. */
  next(): number {
    const first = [...this.timers].sort((a, b) => a.at - b.at)[0];
    if (!first) throw new Error('no timer pending');
    this.timers = this.timers.filter((x) => x !== first);
    const moved = first.at - this.t;
    this.t = first.at;
    first.fn();
    return moved;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise<void>((r) => setImmediate(r));
}

function rig(o: { mayAct?: () => boolean } = {}) {
  const clock = new Clock();
  const record: PendingWriteBack = { file: SPEC.file, kind: 'failover', sources: { db002: null, db001: 'db002' }, message: 'failover(shop): db001 -> db002\n', author: SPEC.writeBack.author, failoverIds: ['f1'], since: new Date(T0).toISOString(), attempts: 1, lastAttemptAt: new Date(T0).toISOString(), lastError: 'down' };
  let state: ClusterState = { ...EMPTY_STATE, pendingWriteBacks: { [SPEC.file]: record } };
  const attempts: number[] = [];
  const pendingSeen: number[] = [];
  let remoteUp = false;
  let busy = 0;
  let overlapped = false;
  const logs: { level: string; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: string; msg: string }) });
  const git = async <T>(fn: () => T): Promise<T> => {
    if (busy++ > 0) overlapped = true;
    await new Promise<void>((r) => setImmediate(r));
    busy--;
    return fn();
  };
  const keeper = new GitKeeper({
    repoDir: '/r',
    log,
    state: { read: async () => state, update: async (_c, f) => (state = f(state)) },
    mayAct: o.mayAct ?? (() => true),
    reload: async () => undefined,
    onSelfWrite: () => undefined,
    onPending: (_c, p) => pendingSeen.push(p.length),
    timers: clock,
    retryWriteBack: (_req: WriteBackRetryRequest) =>
      git((): WriteBackRetryResult => {
        attempts.push(clock.t - T0);
        return remoteUp ? { kind: 'pushed', head: 'a'.repeat(40), commits: {} } : { kind: 'failed', error: "git fetch from origin/main failed: fatal: '/srv/remote.git' does not appear to be a git repository" };
      }),
    pullUpstream: () =>
      git((): PullResult => {
        if (!remoteUp) throw new Error("git fetch from origin/main failed: fatal: '/srv/remote.git' does not appear to be a git repository");
        return { pulled: false };
      }),
  });
  return { keeper, clock, attempts, pendingSeen, logs, up: () => (remoteUp = true), state: () => state, overlapped: () => overlapped };
}

describe('GitKeeper', () => {
  it('retries on the backoff (250 ms doubling, capped at 2 s) until pushed, then stops', async () => {
    const r = rig();
    r.clock.t = T0 + 250; // the first retry is due 250 ms after the failover's own attempt
    r.keeper.kick(SPEC);
    await settle();
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      gaps.push(r.clock.next());
      await settle();
    }
    expect(r.attempts).toEqual([250, 750, 1750, 3750, 5750, 7750]);
    expect(gaps).toEqual([500, 1000, 2000, 2000, 2000]);
    expect(r.pendingSeen.every((n) => n === 1)).toBe(true);
    r.up();
    r.clock.next();
    await settle();
    expect(r.state().pendingWriteBacks).toBeUndefined();
    expect(r.pendingSeen.at(-1)).toBe(0);
    expect(r.clock.timers).toEqual([]);
    // A remote that stayed away: one warning, the same error again only at debug.
    const warnings = r.logs.filter((l) => Number(l.level) === 40).map((l) => l.msg);
    expect(warnings.filter((m) => m.startsWith('the write-back of topologies/shop.yaml is still not pushed'))).toHaveLength(1);
    expect(warnings).toContain('the pending write-back of topologies/shop.yaml is pushed');
  });

  it('a kick before the record is due does not try (no retry storm from fast passes)', async () => {
    const r = rig();
    r.clock.t = T0 + 100;
    for (let i = 0; i < 5; i++) r.keeper.kick(SPEC);
    await settle();
    // Kicks during a round collapse into one more round, at once; it too finds nothing due.
    expect(r.clock.next()).toBe(0);
    await settle();
    expect(r.attempts).toEqual([]);
    expect(r.clock.timers.map((t) => t.at - T0)).toEqual([250]);
  });

  it('tries at once when a pull succeeds after failing: the remote is back', async () => {
    const r = rig();
    r.clock.t = T0 + 250;
    r.keeper.kick(SPEC);
    await settle();
    expect(r.attempts).toEqual([250]);
    await r.keeper.pull(); // still away
    await settle();
    expect(r.attempts).toEqual([250]);
    r.up();
    r.clock.t += 100; // the next retry is due at +500: not yet
    await r.keeper.pull();
    await settle();
    expect(r.attempts).toEqual([250, 350]);
    expect(r.state().pendingWriteBacks).toBeUndefined();
    expect(r.overlapped()).toBe(false);
    const pulls = r.logs.filter((l) => l.msg.startsWith('git pull failed'));
    expect(pulls.map((l) => Number(l.level))).toEqual([40]);
  });

  it('does not try while the daemon may not act on the cluster, and looks again later', async () => {
    let may = false;
    const r = rig({ mayAct: () => may });
    r.clock.t = T0 + 250;
    r.keeper.kick(SPEC);
    await settle();
    expect(r.attempts).toEqual([]);
    expect(r.clock.timers).toHaveLength(1);
    may = true;
    r.up();
    r.clock.next();
    await settle();
    expect(r.attempts).toHaveLength(1);
    expect(r.state().pendingWriteBacks).toBeUndefined();
  });

  it('stops: no timer left, nothing more tried', async () => {
    const r = rig();
    r.clock.t = T0 + 250;
    r.keeper.kick(SPEC);
    await settle();
    await r.keeper.stop();
    expect(r.clock.timers).toEqual([]);
    r.keeper.kick(SPEC);
    await settle();
    expect(r.attempts).toHaveLength(1);
  });

  it('serialWithin: a write-back queued behind a Git operation that hangs gives up after its wait and never runs; one that gets its turn in time runs', async () => {
    const r = rig();
    let release: () => void = () => undefined;
    const hung = r.keeper.serial(() => new Promise<string>((res) => (release = () => res('pull done'))));
    const ran: string[] = [];
    const late = r.keeper.serialWithin(2000, async () => (ran.push('late'), 'pushed'), () => 'left pending');
    await settle();
    expect(r.clock.next()).toBe(2000);
    expect(await late).toBe('left pending');
    release();
    expect(await hung).toBe('pull done');
    await settle();
    expect(ran).toEqual([]);
    // The queue is free: the next one runs at once, and its timer is cleared.
    expect(await r.keeper.serialWithin(2000, async () => (ran.push('next'), 'pushed'), () => 'left pending')).toBe('pushed');
    expect(ran).toEqual(['next']);
    expect(r.clock.timers).toEqual([]);
  });
});
