// One cluster's loop (src/daemon/loop.ts) with a hand-driven clock and timer and a fake reconcile:
// when passes run, how triggers collapse, the fast re-probe, the error backoff, stop(), file updates,
// the permission to move the primary, and the standby that only observes. No real time passes:
// every wait below is for a condition and throws when it never holds.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AnalysisCode } from '../../src/core/analysis.js';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import type { ProbeFn } from '../../src/core/ports.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import type { ApplyReport } from '../../src/engine/apply.js';
import type { FailoverOutcome } from '../../src/engine/failover.js';
import type { ReconcileResult } from '../../src/engine/reconcile.js';
import { ClusterLoop, type LoopTimers, type PassRequest } from '../../src/daemon/loop.js';
import { EMPTY_STATE, type ClusterState } from '../../src/core/state.js';
import type { MetricsSink } from '../../src/daemon/model.js';
import { FixtureRows, probeUp } from '../support/rows.js';

const INTERVAL = 1000;

/** db001 primary, db002 and db003 its replicas: the sandbox the fixture rows come from. */
const SPEC: ClusterSpec = {
  cluster: 'sandbox',
  flavor: 'auto',
  credentials: {
    admin: { user: 'topogit', passwordEnv: 'TOPOGIT_PASSWORD' },
    replication: { user: 'repl', passwordEnv: 'TOPOGIT_REPL_PASSWORD' },
  },
  instances: [
    { name: 'db001', host: '127.0.0.11', port: 3306, promotion: 'prefer' },
    { name: 'db002', host: '127.0.0.12', port: 3306, source: 'db001', promotion: 'prefer' },
    { name: 'db003', host: '127.0.0.13', port: 3306, source: 'db001', promotion: 'neutral' },
  ],
  failover: { ...DEFAULT_FAILOVER, detection: { intervalMs: INTERVAL } },
  writeBack: DEFAULT_WRITE_BACK,
  file: 'topologies/sandbox.yaml',
};

/** The same cluster with db002 as the file's primary. */
const SPEC_DB002: ClusterSpec = {
  ...SPEC,
  instances: [
    { name: 'db001', host: '127.0.0.11', port: 3306, source: 'db002', promotion: 'prefer' },
    { name: 'db002', host: '127.0.0.12', port: 3306, promotion: 'prefer' },
    { name: 'db003', host: '127.0.0.13', port: 3306, source: 'db002', promotion: 'neutral' },
  ],
};

const ENV = { TOPOGIT_PASSWORD: 'pw', TOPOGIT_REPL_PASSWORD: 'rpw' };

/** What the live servers say (db001 is the live primary), for any spec with these instances. */
function liveProbes(spec: ClusterSpec): Map<string, ProbeResult> {
  const primary = FixtureRows.of('mariadb-10.11-primary');
  const replica = FixtureRows.of('mariadb-10.11-replica-ok');
  return new Map([probeUp(spec, 'db001', primary), probeUp(spec, 'db002', replica), probeUp(spec, 'db003', replica.as(3))]);
}

function result(spec: ClusterSpec, code: AnalysisCode = 'PrimaryReachable', extra: Partial<ReconcileResult> = {}): ReconcileResult {
  return {
    analysis: { code, primary: 'db001', replicas: [], summary: code, confirmedBy: [], silent: [], quorum: false },
    fenced: new Map(),
    probes: liveProbes(spec),
    ...extra,
  };
}

const applied = (failed = false): ApplyReport =>
  ({ cluster: 'sandbox', ran: [], notRun: [], ...(failed ? { failed: { step: {}, error: 'boom' } } : {}) }) as unknown as ApplyReport;

/** The loop's one timer, fired by hand; `now` moves to the timer's due time. */
class ManualTimers implements LoopTimers {
  t = 1_700_000_000_000;
  private timer: { fn: () => void; at: number; ms: number } | undefined;
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    if (this.timer) throw new Error('the loop keeps one timer; a second was set without clearing the first');
    this.timer = { fn, at: this.t + ms, ms };
    return this.timer;
  };
  clearTimeout = (h: unknown): void => {
    if (h === this.timer) this.timer = undefined;
  };
  /** The delay of the pending timer, if any. */
  get pending(): number | undefined {
    return this.timer?.ms;
  }
  fire(): void {
    const timer = this.timer;
    if (!timer) throw new Error('no timer pending');
    this.timer = undefined;
    this.t = timer.at;
    timer.fn();
  }
}

interface Call {
  readonly req: PassRequest;
  resolve(r: ReconcileResult): void;
  reject(e: Error): void;
}

function harness(o: { active?: boolean; lockFree?: boolean; spec?: ClusterSpec; state?: ClusterState; watched?: boolean } = {}) {
  const timers = new ManualTimers();
  const calls: Call[] = [];
  const probed: string[] = [];
  const selfWrites: string[] = [];
  let running = 0;
  let mostAtOnce = 0;
  let errors = 0;
  let locked = 0;
  const state = { active: o.active ?? true, lockFree: o.lockFree ?? true };
  const ready: boolean[] = [];
  const shapes: string[][] = [];
  const logs: { level: number; msg: string; shape?: string }[] = [];
  const instanceMetrics: { instance: string; maintenance?: boolean }[] = [];
  const statements: string[] = [];
  /** What the loop showed each time it told the pages (onObserved). */
  const observed: string[] = [];
  const metrics: MetricsSink = {
    statements: (_c, instance, kind) => void statements.push(`${instance} ${kind}`),
    setFailoverReady: (_c, r) => void ready.push(r),
    setShapes: (_c, present) => void shapes.push([...present]),
    observeProbe: () => undefined,
    setInstance: (_c, instance, v) => void instanceMetrics.push({ instance, ...v }),
    failover: () => undefined,
    reconcileError: () => void errors++,
    setDrift: () => undefined,
    setFileValid: () => undefined,
  };
  const probe: ProbeFn = async (e) => {
    probed.push(`${e.host}:${e.port}`);
    const spec = o.spec ?? SPEC;
    const name = spec.instances.find((i) => i.host === e.host && i.port === e.port)?.name ?? '?';
    return liveProbes(spec).get(name) as ProbeResult;
  };
  const loop = new ClusterLoop(o.spec ?? SPEC, {
    env: ENV,
    timeouts: { connectMs: 100, queryMs: 100 },
    probe,
    metrics,
    log: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) }),
    readState: async () => o.state ?? EMPTY_STATE,
    timers,
    isActive: () => state.active,
    withClusterLock: async (_cluster, fn) => {
      if (!state.lockFree) return undefined;
      locked++;
      return fn();
    },
    onSelfWrite: async (file) => void selfWrites.push(file),
    watched: () => o.watched ?? false,
    headCommit: async () => 'c0ffee',
    onObserved: () => void observed.push(loop.view?.instances.map((i) => `${i.name} ${i.health}`).join(', ') ?? 'no view'),
    reconcile: (req) => {
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      return new Promise<ReconcileResult>((resolve, reject) => {
        calls.push({
          req,
          resolve: (r) => {
            running--;
            resolve(r);
          },
          reject: (e) => {
            running--;
            reject(e);
          },
        });
      });
    },
  });
  return {
    loop,
    timers,
    calls,
    ready,
    shapes,
    logs,
    probed,
    selfWrites,
    state,
    instanceMetrics,
    observed,
    get mostAtOnce() {
      return mostAtOnce;
    },
    get errors() {
      return errors;
    },
    get locked() {
      return locked;
    },
    /** Fires the pending timer and waits for the pass it starts to reach reconcile. */
    async startPass(): Promise<Call> {
      const before = calls.length;
      timers.fire();
      await until(() => calls.length > before, 'a pass reaches reconcile');
      return calls[calls.length - 1] as Call;
    },
    /** Ends the pass in flight and waits until the loop has scheduled its next one; returns that delay. */
    async finish(call: Call, r: ReconcileResult | Error): Promise<number> {
      if (r instanceof Error) call.reject(r);
      else call.resolve(r);
      await until(() => timers.pending !== undefined, 'the next pass is scheduled');
      return timers.pending as number;
    },
  };
}

/** Lets pending promise callbacks and I/O-free continuations run until `cond` holds; throws if it never does. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

/** Lets everything that is ready run (no condition to wait for: used before asserting that nothing happened). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

describe('ClusterLoop: maintenance', () => {
  it('shows the instance in maintenance (view, metric) and why failover is blocked (FailoverBlocked)', async () => {
    const h = harness();
    h.loop.start();
    const m = { since: '2026-12-04T11:00:00Z', until: '2026-12-04T18:30:00Z', reason: 'kernel upgrade' };
    const why = 'db001 is in maintenance until 2026-12-04T18:30:00Z (kernel upgrade): no failover; `topogit maintenance sandbox db001 off` to end it';
    await h.finish(await h.startPass(), result(SPEC, 'DeadPrimary', { blocked: why, maintenance: new Map([['db001', m]]) }));
    expect(h.loop.view?.instances.map((i) => [i.name, i.maintenance ?? null])).toEqual([['db001', m], ['db002', null], ['db003', null]]);
    expect(h.loop.conditions.find((c) => c.type === 'FailoverBlocked')).toMatchObject({ status: true, reason: why });
    expect(h.loop.lastPass).toMatchObject({ outcome: 'blocked', detail: why });
    expect(h.instanceMetrics.map((x) => [x.instance, x.maintenance])).toEqual([['db001', true], ['db002', false], ['db003', false]]);
    // Off: the next pass shows nothing in maintenance.
    await h.finish(await h.startPass(), result(SPEC));
    expect(h.loop.view?.instances.some((i) => i.maintenance)).toBe(false);
    expect(h.instanceMetrics.slice(3).map((x) => x.maintenance)).toEqual([false, false, false]);
    expect(h.loop.conditions.find((c) => c.type === 'FailoverBlocked')?.status).toBe(false);
  });
});

describe('ClusterLoop: scheduling', () => {
  it('shows a dead primary as soon as the pass has looked, before the failover it starts is over', async () => {
    const h = harness();
    h.loop.start();
    const call = await h.startPass();
    const probes = liveProbes(SPEC);
    probes.set('db001', { ok: false, endpoint: { host: '127.0.0.11', port: 3306 }, error: 'connection refused', code: 'ECONNREFUSED', ms: 1 });
    call.req.onEvent({ type: 'analysis', analysis: result(SPEC, 'DeadPrimary').analysis, probes });
    // Told at once, while reconcile (the failover and its write-back) is still running.
    expect(h.observed).toEqual(['db001 Unreachable, db002 OK, db003 OK']);
    expect(h.loop.analysis).toBe('DeadPrimary');
    // A healthy first look is not told early (the pass's end tells it, once).
    call.req.onEvent({ type: 'analysis', analysis: result(SPEC).analysis, probes: liveProbes(SPEC) });
    expect(h.observed).toHaveLength(1);
    await h.finish(call, result(SPEC));
    expect(h.observed).toEqual(['db001 Unreachable, db002 OK, db003 OK', 'db001 OK, db002 OK, db003 OK']);
    await h.loop.stop();
  });

  it('with a page open, every pass shows its first look at once, healthy or not', async () => {
    const h = harness({ watched: true });
    h.loop.start();
    const call = await h.startPass();
    call.req.onEvent({ type: 'analysis', analysis: result(SPEC).analysis, probes: liveProbes(SPEC) });
    expect(h.observed).toEqual(['db001 OK, db002 OK, db003 OK']);
    await h.finish(call, result(SPEC));
    await h.loop.stop();
  });

  it('records a switchover that ran, with the commit checked out, even when a later step failed', async () => {
    const h = harness();
    h.loop.start();
    const call = await h.startPass();
    const sw = { id: 's1', instance: 'db002', symbol: '~', summary: 'switchover db001 -> db002', reason: 'the file names db002', actions: [{ kind: 'promote', instance: 'db002' }] };
    const other = { id: 's2', instance: 'db003', symbol: '~', summary: 'db003 source db001 -> db002', reason: 'x', actions: [] };
    const report = { cluster: 'sandbox', ran: [{ step: sw, ms: 5 }], failed: { step: other, error: 'boom' }, notRun: [] } as unknown as ApplyReport;
    await h.finish(call, result(SPEC, 'PrimaryReachable', { plan: { cluster: 'sandbox', file: 'f', flavor: 'mariadb', steps: [sw, other], notices: [] } as never, applied: report }));
    expect(h.loop.switchovers).toMatchObject([{ kind: 'switchover', cluster: 'sandbox', summary: 'db001 -> db002', commit: 'c0ffee' }]);
    await h.loop.stop();
  });

  it('runs a pass at once on start and then one every detection interval', async () => {
    const h = harness();
    h.loop.start();
    expect(h.timers.pending).toBe(0);
    const first = await h.startPass();
    expect(first.req).toMatchObject({ spec: SPEC, allowSwitchover: false, credentials: { admin: { user: 'topogit', password: 'pw' }, replication: { user: 'repl', password: 'rpw' } } });
    expect(await h.finish(first, result(SPEC))).toBe(INTERVAL);
    expect(h.loop.lastPass).toMatchObject({ id: 'sandbox-1', outcome: 'ok' });
    expect(h.loop.probedOnce).toBe(true);
    expect(h.loop.analysis).toBe('PrimaryReachable');
    expect(await h.finish(await h.startPass(), result(SPEC))).toBe(INTERVAL);
    expect(h.calls).toHaveLength(2);
    expect(h.locked).toBe(2);
  });

  it('triggers during a pass collapse into exactly one more pass, right after it', async () => {
    const h = harness();
    h.loop.start();
    const first = await h.startPass();
    h.loop.trigger('a');
    h.loop.trigger('b');
    h.loop.update(SPEC, true);
    expect(h.timers.pending).toBeUndefined(); // nothing starts while a pass is in flight
    expect(await h.finish(first, result(SPEC))).toBe(0);
    const second = await h.startPass();
    expect(await h.finish(second, result(SPEC))).toBe(INTERVAL);
    expect(h.calls).toHaveLength(2);
  });

  it('runs one pass at a time, however triggers and timers interleave', async () => {
    const h = harness();
    h.loop.start();
    for (let round = 0; round < 5; round++) {
      const call = await h.startPass();
      h.loop.trigger('during');
      await settle();
      expect(h.timers.pending).toBeUndefined();
      await h.finish(call, result(SPEC));
      h.loop.trigger('between'); // replaces the pending timer, never adds a second
      expect(h.timers.pending).toBe(0);
    }
    expect(h.mostAtOnce).toBe(1);
  });

  it('re-probes fast (50 ms, at most 5 in a row) while the primary is not reachable, and resets once it is', async () => {
    const h = harness();
    h.loop.start();
    const delays: number[] = [];
    const detectedAt: (number | undefined)[] = [];
    const pass = async (code: AnalysisCode) => {
      const call = await h.startPass();
      detectedAt.push(call.req.detectedAt);
      delays.push(await h.finish(call, result(SPEC, code)));
    };
    const firstSuspect = h.timers.t;
    for (let i = 0; i < 7; i++) await pass('UnreachablePrimary');
    expect(delays).toEqual([50, 50, 50, 50, 50, INTERVAL, INTERVAL]);
    // The first suspicious pass's start is when the problem was detected, for every later pass.
    expect(detectedAt).toEqual([undefined, ...Array(6).fill(firstSuspect)]);

    await pass('PrimaryReachable');
    await pass('DeadPrimary');
    await pass('DeadPrimary');
    expect(delays.slice(7)).toEqual([INTERVAL, 50, 50]);
    expect(detectedAt[7]).toBe(firstSuspect); // still the first suspicion when the healthy pass began
    expect(detectedAt[8]).toBeUndefined(); // cleared by the healthy pass
    expect(detectedAt[9]).toBeGreaterThan(firstSuspect); // the new suspicion's start
  });

  it('backs off exponentially on errors, capped at 30 s, and returns to the interval after a good pass', async () => {
    const h = harness();
    h.loop.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) delays.push(await h.finish(await h.startPass(), new Error(`refused ${i}`)));
    expect(delays).toEqual([2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(h.errors).toBe(7);
    expect(h.loop.lastPass).toMatchObject({ outcome: 'error', detail: 'refused 6' });
    expect(h.loop.conditions.find((c) => c.type === 'Degraded')).toMatchObject({ status: true, reason: 'pass failed: refused 6' });

    expect(await h.finish(await h.startPass(), result(SPEC))).toBe(INTERVAL);
    expect(await h.finish(await h.startPass(), new Error('again'))).toBe(2000); // counting starts over
  });

  it('a missing secret is an error pass too (backoff), and reconcile is never asked', async () => {
    const h = harness({ spec: { ...SPEC, credentials: { ...SPEC.credentials, admin: { user: 'x', passwordEnv: 'NOT_SET_ANYWHERE' } } } });
    h.loop.start();
    h.timers.fire();
    await until(() => h.loop.lastPass !== null, 'the pass ends');
    expect(h.loop.lastPass).toMatchObject({ outcome: 'error' });
    expect(h.loop.lastPass?.detail).toMatch(/NOT_SET_ANYWHERE/);
    expect(h.calls).toHaveLength(0);
    expect(h.errors).toBe(1);
    await until(() => h.timers.pending !== undefined, 'the next pass is scheduled');
    expect(h.timers.pending).toBe(2000);
  });

  it('stop() waits for the pass in flight, and nothing runs after it', async () => {
    const h = harness();
    h.loop.start();
    const call = await h.startPass();
    let stopped = false;
    const stopping = h.loop.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    call.resolve(result(SPEC));
    await stopping;
    expect(stopped).toBe(true);
    expect(h.timers.pending).toBeUndefined();
    h.loop.trigger('after stop');
    h.loop.update(SPEC, true);
    expect(h.timers.pending).toBeUndefined();
    expect(h.calls).toHaveLength(1);
  });

  it('stop() between passes cancels the pending timer', async () => {
    const h = harness();
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC));
    await h.loop.stop();
    expect(h.timers.pending).toBeUndefined();
  });
});

describe('ClusterLoop: file updates', () => {
  it("a human's change triggers a pass with the new spec; our own write-back only replaces the spec", async () => {
    const h = harness();
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC));
    const ours = { ...SPEC, file: 'topologies/sandbox.yaml' };
    h.loop.update(ours, false);
    expect(h.loop.spec).toBe(ours);
    expect(h.timers.pending).toBe(INTERVAL); // no pass of its own

    const human = { ...SPEC };
    h.loop.update(human, true);
    expect(h.timers.pending).toBe(0);
    const call = await h.startPass();
    expect(call.req.spec).toBe(human);
  });

  it('allows a switchover only after a committed change of the primary, until a pass applied it', async () => {
    const h = harness();
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC));

    // Not committed (an edit in the daemon's own working tree): reconciled, but never a switchover.
    h.loop.update(SPEC_DB002, true, false);
    let call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(false);
    await h.finish(call, result(SPEC_DB002));

    // Committed, but the primary did not change (the spec already names db002).
    h.loop.update({ ...SPEC_DB002 }, true, true);
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(false);
    await h.finish(call, result(SPEC_DB002));

    // A committed change of the primary.
    h.loop.update(SPEC, true, true);
    h.loop.update(SPEC_DB002, true, true);
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(true);
    // The switchover failed: still allowed on the next pass.
    await h.finish(call, result(SPEC_DB002, 'PrimaryReachable', { applied: applied(true) }));
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(true);
    // A pass with nothing applied (the live primary is still db001): still allowed.
    await h.finish(call, result(SPEC_DB002));
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(true);
    // Applied: the permission is used up.
    await h.finish(call, result(SPEC_DB002, 'PrimaryReachable', { applied: applied() }));
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(false);
  });

  it('the permission lapses once the live primary already is the file primary', async () => {
    const h = harness({ spec: SPEC_DB002 });
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC_DB002));
    h.loop.update(SPEC, true, true); // back to db001, which the servers already have as primary
    let call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(true);
    await h.finish(call, result(SPEC));
    call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(false);
  });

  it('a failover done by a pass clears the permission and records its own write-back', async () => {
    const h = harness();
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC));
    h.loop.update(SPEC_DB002, true, true);
    const call = await h.startPass();
    expect(call.req.allowSwitchover).toBe(true);
    // Only the fields the loop reads of a finished failover.
    const failover = { kind: 'done', record: { at: '2025-01-01T00:00:00.000Z', from: 'db001', to: 'db002', commit: 'abc', trigger: 'auto' } } as unknown as FailoverOutcome;
    await h.finish(call, result(SPEC_DB002, 'DeadPrimary', { failover }));
    expect(h.selfWrites).toEqual(['topologies/sandbox.yaml']);
    expect(h.loop.lastFailover).toEqual({ at: '2025-01-01T00:00:00.000Z', from: 'db001', to: 'db002', commit: 'abc', trigger: 'auto' });
    expect(h.loop.lastPass).toMatchObject({ outcome: 'failover', detail: 'failover db001 -> db002' });
    expect((await h.startPass()).req.allowSwitchover).toBe(false);
  });
});

describe('ClusterLoop: standby', () => {
  it('without the lease it only observes: one probe round, no lock, no reconcile', async () => {
    const h = harness({ active: false });
    h.loop.start();
    h.timers.fire();
    await until(() => h.loop.lastPass !== null, 'the standby pass ends');
    expect(h.loop.lastPass).toMatchObject({ outcome: 'standby', detail: 'standing by: another daemon holds the lease' });
    expect(h.probed.sort()).toEqual(['127.0.0.11:3306', '127.0.0.12:3306', '127.0.0.13:3306']);
    expect(h.calls).toHaveLength(0);
    expect(h.locked).toBe(0);
    expect(h.loop.probedOnce).toBe(true);
    expect(h.loop.view?.livePrimaries).toEqual(['db001']);
    await until(() => h.timers.pending !== undefined, 'the next pass is scheduled');
    expect(h.timers.pending).toBe(INTERVAL);

    // It gets the lease: the next pass acts.
    h.state.active = true;
    const call = await h.startPass();
    expect(call.req.spec).toBe(SPEC);
  });

  it('with the lease but without the cluster lock it skips the pass', async () => {
    const h = harness({ lockFree: false });
    h.loop.start();
    h.timers.fire();
    await until(() => h.loop.lastPass !== null, 'the pass ends');
    expect(h.loop.lastPass).toMatchObject({ outcome: 'standby', detail: 'another topogit holds the cluster lock; pass skipped' });
    expect(h.calls).toHaveLength(0);
    expect(h.probed).toHaveLength(0);
    await until(() => h.timers.pending !== undefined, 'the next pass is scheduled');
    expect(h.timers.pending).toBe(INTERVAL);
  });
});

describe('ClusterLoop: failure shapes and failover readiness', () => {
  /** db002 and db003 stopped by hand (IO No, SQL No, no error): AllReplicasNotReplicating. */
  const stoppedProbes = (spec: ClusterSpec) => {
    const stopped = FixtureRows.of('mariadb-10.11-replica-stopped');
    return new Map([probeUp(spec, 'db001', FixtureRows.of('mariadb-10.11-primary')), probeUp(spec, 'db002', stopped), probeUp(spec, 'db003', stopped.as(3))]);
  };
  const shapeLogs = (h: ReturnType<typeof harness>) => h.logs.filter((l) => l.shape !== undefined).map((l) => `${l.level === 40 ? 'warn' : 'info'} ${l.msg.split(':')[0]}`);

  it('logs a shape once when it appears (warn) and once when it clears (info), and sets the metrics every pass', async () => {
    const h = harness();
    h.loop.start();
    await h.finish(await h.startPass(), result(SPEC));
    expect(h.loop.report?.shapes).toEqual([]);
    for (let i = 0; i < 3; i++) await h.finish(await h.startPass(), result(SPEC, 'PrimaryReachable', { probes: stoppedProbes(SPEC) }));
    expect(h.loop.report?.shapes.map((s) => s.code)).toEqual(['AllReplicasNotReplicating']);
    expect(shapeLogs(h)).toEqual(['warn AllReplicasNotReplicating']);
    await h.finish(await h.startPass(), result(SPEC));
    await h.finish(await h.startPass(), result(SPEC));
    expect(shapeLogs(h)).toEqual(['warn AllReplicasNotReplicating', 'info AllReplicasNotReplicating cleared (db001)']);
    expect(h.shapes).toEqual([[], ['AllReplicasNotReplicating'], ['AllReplicasNotReplicating'], ['AllReplicasNotReplicating'], [], []]);
    // failover.auto is false in SPEC: never ready.
    expect(h.ready).toEqual([false, false, false, false, false, false]);
    expect(h.loop.report?.failover.reasons).toEqual(['failover.auto is false']);
  });

  it('readiness comes from the pass probes and the state records: a fenced former primary is never the candidate', async () => {
    const auto = { ...SPEC, failover: { ...SPEC.failover, auto: true } };
    let h = harness({ spec: auto });
    h.loop.start();
    await h.finish(await h.startPass(), result(auto));
    expect(h.loop.report?.failover).toEqual({ ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] });
    expect(h.ready).toEqual([true]);

    h = harness({ spec: auto, state: { formerPrimaries: [{ name: 'db002', failoverId: 'f1', newPrimary: 'db001', errant: '' }] } });
    h.loop.start();
    await h.finish(await h.startPass(), result(auto));
    expect(h.loop.report?.failover).toMatchObject({ ready: true, candidate: 'db003' });
  });

  it('a standby reports shapes and readiness too, from its own probe round', async () => {
    const h = harness({ active: false });
    h.loop.start();
    h.timers.fire();
    await until(() => h.loop.lastPass !== null, 'the standby pass ends');
    expect(h.loop.report).toMatchObject({ shapes: [], failover: { ready: false } });
    expect(h.ready).toEqual([false]);
  });
});
