// The failover engine against an in-memory cluster (test/support/fake-cluster.ts) with failure
// injection: what it runs, what it journals, and that a crash at any step, a candidate that dies
// after it was chosen, a returning primary or an operator's abort all end in one writable primary
// or in nothing changed. Real servers: test/integration/failover.test.ts and the drills.
import { describe, expect, it } from 'vitest';
import type { ClusterSpec, InstanceSpec, Promotion } from '../../src/core/model.js';
import { FAILOVER_PHASES } from '../../src/core/state.js';
import { endMaintenance, startMaintenance } from '../../src/core/maintenance.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import { failover, type FailoverEvent, type FailoverOutcome } from '../../src/engine/failover.js';
import { FAKE_CTX, fakeCluster, reconcilePass, SimulatedCrash, type FakeCluster } from '../support/fake-cluster.js';

function spec(promotion: Partial<Record<string, Promotion>> = {}, preFailover: string[] = []): ClusterSpec {
  const inst = (name: string, host: string, source?: string): InstanceSpec => ({ name, host, port: 3306, ...(source ? { source } : {}), promotion: promotion[name] ?? 'neutral' });
  return {
    cluster: 'shop',
    flavor: 'auto',
    credentials: { admin: { user: 'topogit', passwordEnv: 'X' }, replication: { user: 'repl', passwordEnv: 'Y' } },
    instances: [inst('db001', '10.0.0.1'), inst('db002', '10.0.0.2', 'db001'), inst('db003', '10.0.0.3', 'db001')],
    failover: { ...DEFAULT_FAILOVER, auto: true, hooks: { preFailover, postFailover: [] } },
    writeBack: DEFAULT_WRITE_BACK,
    file: 'topologies/shop.yaml',
  };
}

async function run(c: FakeCluster, s: ClusterSpec, o: { trigger?: 'auto' | 'manual'; to?: string; abort?: boolean; force?: boolean } = {}): Promise<{ outcome: FailoverOutcome; events: FailoverEvent[] }> {
  const events: FailoverEvent[] = [];
  const outcome = await failover({
    spec: s,
    ctx: FAKE_CTX,
    ports: c.ports,
    trigger: o.trigger ?? 'auto',
    ...(o.to ? { to: o.to } : {}),
    ...(o.abort ? { abort: true } : {}),
    ...(o.force ? { force: true } : {}),
    repoDir: '/nonexistent',
    onEvent: (e) => events.push(e),
  });
  return { outcome, events };
}

const sourceOf = (c: FakeCluster, name: string) => {
  const ch = c.byName(name).channel;
  return ch ? [...c.servers.values()].find((s) => s.host === ch.sourceHost)?.name : null;
};

const ROUTED: ClusterSpec = { ...spec(), routing: [{ kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw' }] };

describe('failover engine', () => {
  it('with a router: right after the promotion the writer backend sends to the new primary alone, old primary first out', async () => {
    const c = fakeCluster(ROUTED);
    c.kill('db001');
    const { outcome } = await run(c, ROUTED);
    expect(outcome.kind).toBe('done');
    expect(c.phases).toEqual(['started', 'drained', 'chosen', 'promoted', 'routed', 'repointed', 'written-back', 'fence-attempted']);
    expect(c.routerLog).toEqual(['rw/db001 maint shutdown', 'rw/db002 ready']);
    expect(Object.fromEntries(c.backends.get('rw') ?? [])).toEqual({ db001: 'maint', db002: 'ready', db003: 'maint' });
  });

  it('postFailover hooks start once the applications can follow, never after Git: beside the repoint and the write-back', async () => {
    const s: ClusterSpec = { ...ROUTED, failover: { ...ROUTED.failover, hooks: { preFailover: [], postFailover: ['./post.sh'] } } };
    const c = fakeCluster(s);
    const seen: string[] = [];
    c.hook = (command, env) => {
      seen.push(`${command} after ${c.phases[c.phases.length - 1]} (${c.writeBacks.length} write-backs) new primary ${env.TOPOGIT_NEW_PRIMARY}`);
      return { code: 0, output: '' };
    };
    c.kill('db001');
    const { outcome } = await run(c, s);
    expect(outcome.kind).toBe('done');
    expect(seen).toEqual(['./post.sh after promoted (0 write-backs) new primary db002']);
  });

  it.each(['promoted', 'routed'])('with a router, killed right after %s: the resumed run puts the router in step', async (phase) => {
    const c = fakeCluster(ROUTED);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === phase) throw new SimulatedCrash(`killed after ${p}`);
    };
    expect((await run(c, ROUTED)).outcome).toMatchObject({ kind: 'failed', step: phase });
    c.onPhase = () => undefined;
    expect((await reconcilePass(c, ROUTED)).failover?.kind).toBe('done');
    expect(Object.fromEntries(c.backends.get('rw') ?? [])).toEqual({ db001: 'maint', db002: 'ready', db003: 'maint' });
  });

  it('an old primary back writable while the new one is unreachable never gets the writes back', async () => {
    const c = fakeCluster({ ...ROUTED, failover: { ...ROUTED.failover, blockSeconds: 3600 } });
    const s: ClusterSpec = { ...ROUTED, failover: { ...ROUTED.failover, blockSeconds: 3600 } };
    c.kill('db001');
    expect((await run(c, s)).outcome.kind).toBe('done');
    expect(Object.fromEntries(c.backends.get('rw') ?? [])).toEqual({ db001: 'maint', db002: 'ready', db003: 'maint' });
    // db002 dies; db001 comes back writable (no --read-only), the file still names it; anti-flapping blocks a second failover.
    c.kill('db002');
    c.revive('db001');
    c.byName('db001').readOnly = false;
    // An operator put it in maintenance to look at it: it is never fenced then.
    await c.ports.state.update('shop', (x) => startMaintenance(x, 'db001', c.ports.now(), { reason: 'post-mortem' }));
    const r = await reconcilePass(c, s);
    expect(c.byName('db001').readOnly).toBe(false);
    expect(r.routing?.checked).toBe(false);
    expect(Object.fromEntries(c.backends.get('rw') ?? [])).toEqual({ db001: 'maint', db002: 'ready', db003: 'maint' });
  });

  it('a forced failover of a primary that answers takes the writes away at the router before fencing it', async () => {
    const c = fakeCluster(ROUTED);
    const seen: string[] = [];
    c.onStatement = (server, sql) => {
      if (server.name === 'db001' && /read_only/i.test(sql) && seen.length === 0) seen.push(`read_only on db001 with the router at ${JSON.stringify(Object.fromEntries(c.backends.get('rw') ?? []))}`);
    };
    const { outcome } = await run(c, ROUTED, { trigger: 'manual', force: true });
    expect(outcome.kind).toBe('done');
    expect(seen).toEqual(['read_only on db001 with the router at {"db001":"maint","db002":"maint","db003":"maint"}']);
    expect(c.routerLog.slice(0, 2)).toEqual(['rw/db001 maint shutdown', 'rw/db002 ready']);
    expect(Object.fromEntries(c.backends.get('rw') ?? [])).toEqual({ db001: 'maint', db002: 'ready', db003: 'maint' });
  });

  it('a router that cannot be reached does not stop the failover: noted, left for the passes that follow', async () => {
    const c = fakeCluster(ROUTED);
    c.routerUp = false;
    c.kill('db001');
    const { outcome } = await run(c, ROUTED);
    expect(outcome.kind).toBe('done');
    expect(c.writableCount()).toBe(1);
    expect(c.phases).toContain('routed');
    expect(c.routerLog).toEqual([]);
    expect(c.writeBacks[0]?.message).toMatch(/Note: router haproxy 127\.0\.0\.1:9999 not in step \(haproxy 127\.0\.0\.1:9999: connect ECONNREFUSED\)/);
  });

  it('promotes, repoints, fences, writes back and records, journaling each step', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    const { outcome } = await run(c, s);
    expect(outcome.kind).toBe('done');
    if (outcome.kind !== 'done') return;
    expect(outcome.record).toMatchObject({ from: 'db001', to: 'db002', trigger: 'auto', lostGtidsKnown: false });
    expect(c.phases).toEqual(['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted']);
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db002').readOnly).toBe(false);
    expect(sourceOf(c, 'db003')).toBe('db002');
    expect(c.byName('db003').channel?.io).toBe(true);
    expect(c.writeBacks).toHaveLength(1);
    expect(c.writeBacks[0]?.message).toMatch(/^failover\(shop\): db001 -> db002\n\nAnalysis: DeadPrimary - db001 is dead/);
    expect(c.writeBacks[0]?.edit('instances:\n  db001: { host: 10.0.0.1 }\n  db002: { host: 10.0.0.2, source: db001 }\n  db003: { host: 10.0.0.3, source: db001 }\n')).toMatch(/db001: \{ host: 10.0.0.1, source: db002 \}/);
    const st = c.state();
    expect(st.journal).toBeUndefined();
    expect(st.lastFailover?.to).toBe('db002');
    expect(st.formerPrimaries).toEqual([{ name: 'db001', failoverId: st.lastFailover?.id, newPrimary: 'db002' }]);
    // Writes reach db003 through the new primary.
    c.write('db002', 2);
    expect(c.byName('db003').history).toEqual(c.byName('db002').history);
  });

  it('is vetoed by a preFailover hook before anything changes', async () => {
    const s = spec({}, ['./no.sh']);
    const c = fakeCluster(s);
    c.hook = () => ({ code: 3, output: 'not now' });
    c.kill('db001');
    const { outcome } = await run(c, s);
    expect(outcome).toEqual({ kind: 'vetoed', command: './no.sh', output: 'not now' });
    expect(c.statements).toEqual([]);
    expect(c.state().journal).toBeUndefined();
  });

  it('refuses while the primary answers, and with --force fences it first', async () => {
    const s = spec();
    const c = fakeCluster(s);
    const refused = await run(c, s, { trigger: 'manual' });
    expect(refused.outcome.kind).toBe('refused');
    expect(c.statements).toEqual([]);
    const forced = await run(c, s, { trigger: 'manual', force: true });
    expect(forced.outcome.kind).toBe('done');
    expect(c.statements[0]).toBe('db001> SET GLOBAL read_only = 1');
    expect(c.phases.slice(0, 3)).toEqual(['started', 'fenced-old', 'drained']);
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db001').readOnly).toBe(true);
    // Fenced means its client sessions are gone too: an open transaction cannot commit later.
    expect(c.byName('db001').clients).toEqual([]);
    expect(c.statements).toContain('db001> KILL CONNECTION ?');
  });

  it('chooses again when the chosen candidate dies before it is promoted (same run)', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (phase) => {
      if (phase === 'chosen' && c.state().journal?.candidate === 'db002') c.kill('db002');
    };
    const { outcome } = await run(c, s);
    expect(outcome.kind).toBe('done');
    if (outcome.kind === 'done') expect(outcome.record.to).toBe('db003');
    expect(c.phases).toEqual(['started', 'drained', 'chosen', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted']);
    expect(c.writeBacks[0]?.message).toMatch(/Chosen: db003 - db002 was chosen but is unreachable now; /);
    expect(c.writableCount()).toBe(1);
  });

  it('a journal that pins a dead candidate is resumed with another one', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (phase) => {
      if (phase === 'chosen') throw new SimulatedCrash('killed after chosen');
    };
    expect((await run(c, s)).outcome).toMatchObject({ kind: 'failed', step: 'chosen' });
    expect(c.state().journal?.candidate).toBe('db002');
    c.onPhase = () => undefined;
    c.kill('db002');
    const { outcome } = await run(c, s);
    expect(outcome.kind).toBe('done');
    if (outcome.kind === 'done') expect(outcome.record.to).toBe('db003');
    expect(c.writableCount()).toBe(1);
  });

  it.each(FAILOVER_PHASES.filter((p) => p !== 'fenced-old' && p !== 'caught-up' && p !== 'stonith' && p !== 'undelayed'))('converges when killed right after %s, resumed by the next reconcile pass', async (phase) => {
    const s = phase === 'routed' ? ROUTED : spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === phase) throw new SimulatedCrash(`killed after ${p}`);
    };
    expect((await run(c, s)).outcome).toMatchObject({ kind: 'failed', step: phase });
    expect(c.writableCount()).toBeLessThanOrEqual(1);
    c.onPhase = () => undefined;
    const r = await reconcilePass(c, s);
    expect(r.failover?.kind).toBe('done');
    expect(c.state().journal).toBeUndefined();
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db002').readOnly).toBe(false);
    expect(sourceOf(c, 'db003')).toBe('db002');
    expect(c.byName('db003').channel?.io).toBe(true);
    // One commit in all: a run resumed after the write-back does not write back again.
    expect(c.writeBacks).toHaveLength(1);
  });

  it('undoes an interrupted failover when the primary comes back before any promotion', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === 'drained') throw new SimulatedCrash('killed after drained');
    };
    await run(c, s);
    expect(c.byName('db002').channel?.io).toBe(false);
    c.onPhase = () => undefined;
    c.revive('db001');
    c.byName('db001').readOnly = false;
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'undone', reason: expect.stringMatching(/interrupted failover of db001 was undone: PrimaryReachable/) });
    expect(c.state().journal).toBeUndefined();
    for (const n of ['db002', 'db003']) expect(c.byName(n).channel).toMatchObject({ io: true, sql: true });
    expect(sourceOf(c, 'db002')).toBe('db001');
    c.write('db001', 1);
    expect(c.byName('db003').history).toEqual(c.byName('db001').history);
  });

  it('--abort undoes a failover in progress that promoted nobody, and refuses after a promotion', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === 'chosen') throw new SimulatedCrash('killed after chosen');
    };
    await run(c, s);
    c.onPhase = () => undefined;
    const aborted = await run(c, s, { trigger: 'manual', abort: true });
    expect(aborted.outcome).toMatchObject({ kind: 'undone', reason: expect.stringMatching(/aborted by an operator/) });
    expect(c.state().journal).toBeUndefined();
    expect(c.byName('db002').channel).toMatchObject({ io: true, sql: true });
    expect(c.writableCount()).toBe(0);

    c.onPhase = (p) => {
      if (p === 'promoted') throw new SimulatedCrash('killed after promoted');
    };
    await run(c, s);
    c.onPhase = () => undefined;
    const late = await run(c, s, { trigger: 'manual', abort: true });
    expect(late.outcome).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/db002 was already promoted: the failover can only be finished/) });
    expect(c.state().journal?.candidate).toBe('db002');
  });

  it('stops before its first change to a server when the lease is lost, and the journal lets the holder finish', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.mayAct = () => false;
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'failed', step: 'start', error: expect.stringMatching(/lost the lease before starting/) });
    expect(c.state().journal).toBeUndefined();
    expect(c.writableCount()).toBe(0);
    expect(c.statements.filter((x) => /STOP REPLICA/.test(x))).toEqual([]);
    c.mayAct = () => true;
    expect((await run(c, s)).outcome.kind).toBe('done');
    expect(c.writableCount()).toBe(1);
  });

  it('asks before every step: a lease lost after the choice stops it before promoting', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    const asked: string[] = [];
    c.onPhase = (phase) => asked.push(phase);
    c.mayAct = () => !asked.includes('chosen');
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'failed', step: 'chosen', error: expect.stringMatching(/lost the lease before promoting/) });
    expect(c.writableCount()).toBe(0);
  });

  it('never makes a second writable primary: a member that became writable behind its back stops the promotion', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onStatement = (server, sql) => {
      // Someone detached db003 and made it writable while topogit was draining the relay logs.
      if (server.name === 'db003' && sql === 'STOP REPLICA IO_THREAD') Object.assign(c.byName('db003'), { readOnly: false, channel: null });
    };
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'failed', error: expect.stringMatching(/refusing to make db002 writable: db003 is writable and replicates from nobody/) });
    expect(c.byName('db002').readOnly).toBe(true);
    expect(c.statements.filter((x) => x.startsWith('db002> ')).some((x) => /RESET|read_only = 0/.test(x))).toBe(false);
  });

  it('without a majority of confirming replicas, the daemon does not fail over; a fence command that succeeds lets it', async () => {
    const base = spec();
    const c = fakeCluster(base);
    c.kill('db001');
    c.kill('db003');
    const pass = (s: ClusterSpec) =>
      reconcilePass(c, s);
    const blocked = await pass(base);
    expect(blocked.blocked).toMatch(/^quorum: db002 confirms db001 is dead, but not a majority of its replicas \(silent: db003\)/);
    expect(c.statements).toEqual([]);

    const fenced: string[] = [];
    c.hook = (command, env) => {
      fenced.push(`${command} ${env.TOPOGIT_FAILED_PRIMARY_HOST}`);
      return { code: command.includes('fail') ? 1 : 0, output: '' };
    };
    const failing = await pass({ ...base, failover: { ...base.failover, fence: { command: ['./fence-fail.sh'], timeoutSeconds: 5 } } });
    expect(failing.failover).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/the fence command \.\/fence-fail\.sh exited 1: db001 may still be alive; nothing was promoted/) });
    expect(c.writableCount()).toBe(0);
    expect(c.state().journal).toBeUndefined();

    const ok = await pass({ ...base, failover: { ...base.failover, fence: { command: ['./fence-ok.sh'], timeoutSeconds: 5 } } });
    expect(ok.failover?.kind).toBe('done');
    expect(fenced).toEqual(['./fence-fail.sh 10.0.0.1', './fence-ok.sh 10.0.0.1']);
    expect(c.phases.slice(-8)).toEqual(['started', 'stonith', 'drained', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted']);
    expect(c.writableCount()).toBe(1);
  });

  it('a primary that answers a second look before anything starts is alive: no failover (a connection reset that healed)', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    const probe = c.ports.probe;
    let looks = 0;
    (c.ports as { probe: typeof probe }).probe = async (e, l, t) => {
      // The reset heals right after the first probe round saw db001 gone.
      if (e.host === '10.0.0.1' && ++looks === 2) c.revive('db001');
      return probe(e, l, t);
    };
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/^db001 answered a second probe \(it is reachable\): it is alive; no failover$/) });
    expect(c.statements).toEqual([]);
    expect(c.state().journal).toBeUndefined();
  });

  it('a primary killed while in maintenance is not failed over, manually either; once it is off, the next pass fails over', async () => {
    const s = spec();
    const c = fakeCluster(s);
    const pass = () =>
      reconcilePass(c, s);
    await c.ports.state.update('shop', (x) => startMaintenance(x, 'db001', c.ports.now(), { forMs: 30 * 60_000, reason: 'kernel upgrade' }));
    c.kill('db001');
    for (let n = 0; n < 3; n++) {
      const r = await pass();
      expect(r.analysis.code).toBe('DeadPrimary');
      expect(r.failover).toBeUndefined();
      expect(r.blocked).toBe('db001 is in maintenance until 1970-01-01T00:46:40Z (kernel upgrade): no failover; `topogit maintenance shop db001 off` to end it');
      expect([...(r.maintenance?.keys() ?? [])]).toEqual(['db001']);
    }
    const manual = await run(c, s, { trigger: 'manual', force: true });
    expect(manual.outcome).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/^db001 is in maintenance until /) });
    expect(c.statements).toEqual([]);
    expect(c.writableCount()).toBe(0);
    expect(c.state().journal).toBeUndefined();

    await c.ports.state.update('shop', (x) => endMaintenance(x, 'db001', c.ports.now()));
    const r = await pass();
    expect(r.failover?.kind).toBe('done');
    expect(r.maintenance).toBeUndefined();
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db002').readOnly).toBe(false);
  });

  it('a failover in progress is finished although its primary went into maintenance; the fence attempt skips it, and a replica in maintenance is not promoted', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === 'drained') throw new SimulatedCrash('killed after drained');
    };
    await run(c, s);
    c.onPhase = () => undefined;
    await c.ports.state.update('shop', (x) => startMaintenance(startMaintenance(x, 'db001', c.ports.now(), {}), 'db002', c.ports.now(), {}));
    // The operator restarts it (read-only) after the promotion: the fence attempt sends it nothing.
    c.onPhase = (p) => {
      if (p === 'repointed') c.revive('db001');
    };
    const { outcome, events } = await run(c, s);
    expect(outcome.kind).toBe('done');
    if (outcome.kind === 'done') expect(outcome.record.to).toBe('db003');
    expect(c.statements.filter((x) => x.startsWith('db001> '))).toEqual([]);
    expect(events).toContainEqual(expect.objectContaining({ type: 'failover-step', step: 'fence-attempted', detail: 'not fenced: db001 is in maintenance until turned off' }));
    expect(c.byName('db002').readOnly).toBe(true);
  });

  it('undoes the failover when the old primary answers again right before the promotion', async () => {
    const s = spec();
    const c = fakeCluster(s);
    c.kill('db001');
    c.onPhase = (p) => {
      if (p === 'chosen') {
        c.revive('db001');
        c.byName('db001').readOnly = false;
      }
    };
    const { outcome } = await run(c, s);
    expect(outcome).toMatchObject({ kind: 'undone', reason: expect.stringMatching(/^the failover of db001 was undone: PrimaryReachable/) });
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db001').readOnly).toBe(false);
    expect(c.byName('db002').channel).toMatchObject({ io: true, sql: true });
    expect(c.statements.some((x) => /RESET/.test(x))).toBe(false);
  });

  it('catches the candidate up from a more advanced never-promote replica first', async () => {
    // db002 stopped receiving (its IO thread says nothing about db001), so only db003 confirms:
    // quorum 'any' lets one confirmation do.
    const base = spec({ db003: 'never' });
    const s = { ...base, failover: { ...base.failover, quorum: 'any' as const } };
    const c = fakeCluster(s);
    // db002's applier falls behind; db003 has every write.
    c.byName('db002').applierStuck = true;
    c.byName('db002').channel!.io = false;
    c.write('db001', 3);
    c.byName('db002').applierStuck = false;
    c.kill('db001');
    const { outcome } = await run(c, s);
    expect(outcome.kind).toBe('done');
    expect(c.phases).toEqual(['started', 'drained', 'chosen', 'caught-up', 'promoted', 'repointed', 'written-back', 'fence-attempted']);
    expect(c.byName('db002').history).toEqual(c.byName('db003').history);
    expect(c.byName('db002').history).toHaveLength(8);
  });
});
