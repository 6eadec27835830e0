// Pending write-backs through the engine, on the in-memory cluster (test/support/fake-cluster.ts)
// with Git faked at the port: a failover whose write-back cannot reach the remote finishes and
// leaves a pending record; a second failure while Git is away is judged on the tree the servers
// have; a stale file never makes a decision (no switchover back, no acknowledgement); the retry
// settles records, counts failures and asks the lease first. Real Git: test/unit/git-sync.test.ts,
// test/integration/git-kept-true.test.ts.
import { describe, expect, it } from 'vitest';
import { DEFAULT_FAILOVER } from '../../src/config/defaults.js';
import type { ClusterSpec } from '../../src/core/model.js';
import type { WriteBackRequest, WriteBackResult, WriteBackRetryPorts, WriteBackRetryRequest, WriteBackRetryResult } from '../../src/core/ports.js';
import { EMPTY_STATE, type ClusterState, type PendingWriteBack } from '../../src/core/state.js';
import { retryPendingWriteBacks, writeBackOrPend } from '../../src/engine/write-back.js';
import { fakeCluster, reconcilePass, type FakeCluster } from '../support/fake-cluster.js';
import { clusterSpec, instance } from '../support/spec.js';

const FILE = ['cluster: shop', 'instances:', '  db001: { host: 10.0.0.1 }', '  db002: { host: 10.0.0.2, source: db001 }', '  db003: { host: 10.0.0.3, source: db001 }', ''].join('\n');
const REMOTE_DOWN = "git push to origin/main failed: fatal: '/srv/remote.git' does not appear to be a git repository; commit cccccccccccc stays local and is not pushed";

/** Quorum `any`: with db001 gone for good, db003 alone confirms db002's death. */
function shop(blockSeconds = 0): ClusterSpec {
  return clusterSpec('shop', [instance('db001', '10.0.0.1'), instance('db002', '10.0.0.2', { source: 'db001' }), instance('db003', '10.0.0.3', { source: 'db001' })], {
    failover: { ...DEFAULT_FAILOVER, auto: true, blockSeconds, quorum: 'any' },
  });
}

/** Git's side of a write-back while the remote is away: the commit is made, the push fails. */
function remoteDown(c: FakeCluster): void {
  Object.assign(c.ports, {
    writeBack: async (req: WriteBackRequest): Promise<WriteBackResult> => {
      c.writeBacks.push(req);
      return { kind: 'failed', commit: `${'c'.repeat(39)}${c.writeBacks.length}`, error: REMOTE_DOWN, attempts: 1 };
    },
  });
}

const sourceOf = (c: FakeCluster, name: string) => {
  const ch = c.byName(name).channel;
  return ch ? ([...c.servers.values()].find((x) => x.host === ch.sourceHost)?.name ?? null) : null;
};
const pendingOf = (s: ClusterState) => s.pendingWriteBacks?.['topologies/shop.yaml'];

describe('a failover while the remote is away', () => {
  it('finishes, and records its write-back as pending with the edit as data', async () => {
    const s = shop();
    const c = fakeCluster(s);
    remoteDown(c);
    c.kill('db001');
    const r = await reconcilePass(c, s);
    expect(r.failover?.kind).toBe('done');
    expect(c.byName('db002').readOnly).toBe(false);
    const st = c.state();
    expect(pendingOf(st)).toMatchObject({
      kind: 'failover',
      sources: { db002: null, db001: 'db002', db003: 'db002' },
      failoverIds: [st.lastFailover?.id],
      attempts: 1,
      commit: `${'c'.repeat(39)}1`,
      lastError: REMOTE_DOWN,
    });
    expect(pendingOf(st)?.message).toMatch(/^failover\(shop\): db001 -> db002\n/);
    expect(st.lastFailover).toMatchObject({ from: 'db001', to: 'db002', commit: `${'c'.repeat(39)}1` });
    expect(st.journal).toBeUndefined();
  });

  it('judges a second failure on the tree the servers have: db002 dies too, db003 is promoted, both edits pending together', async () => {
    const s = shop();
    const c = fakeCluster(s);
    remoteDown(c);
    c.kill('db001');
    const first = await reconcilePass(c, s);
    expect(first.failover?.kind).toBe('done');
    // The file the daemon has still says db001; db002 is the primary now, and dies a minute later.
    await c.ports.sleep(60_000);
    c.kill('db002');
    const second = await reconcilePass(c, s);
    expect(second.failover).toMatchObject({ kind: 'done', record: { from: 'db002', to: 'db003' } });
    expect(c.byName('db003').readOnly).toBe(false);
    expect(c.writableCount()).toBe(1);
    // The second write-back, made on the stale text, carries both edits: db003 the primary, the others under it.
    const req = c.writeBacks[1] as WriteBackRequest;
    expect(req.message).toMatch(/^failover\(shop\): db002 -> db003\n/);
    expect(req.edit(FILE)).toBe(['cluster: shop', 'instances:', '  db001: { host: 10.0.0.1, source: db003 }', '  db002: { host: 10.0.0.2, source: db003 }', '  db003: { host: 10.0.0.3 }', ''].join('\n'));
    const p = pendingOf(c.state()) as PendingWriteBack;
    expect(p.sources).toEqual({ db001: 'db003', db002: 'db003', db003: null });
    expect(p.failoverIds).toHaveLength(2);
    expect(p.attempts).toBe(2);
  });

  it('never lets the stale file switch the primary back: the old primary returns and rejoins under the new one', async () => {
    const s = shop();
    const c = fakeCluster(s);
    remoteDown(c);
    c.kill('db001');
    await reconcilePass(c, s);
    // A commit to the file exists after some hash (a human's unrelated edit): still no decision while pending.
    Object.assign(c.ports, { committedSince: async () => true });
    c.revive('db001');
    await reconcilePass(c, s);
    expect(c.byName('db002').readOnly).toBe(false);
    expect(c.byName('db001').readOnly).toBe(true);
    expect(sourceOf(c, 'db001')).toBe('db002');
    expect(c.writableCount()).toBe(1);
  });

  it('keeps a writable returning primary fenced, not forgotten, while its failover is pending', async () => {
    const s = shop(3600);
    const c = fakeCluster(s);
    remoteDown(c);
    c.kill('db001');
    await reconcilePass(c, s);
    Object.assign(c.ports, { committedSince: async () => true });
    c.revive('db001');
    c.byName('db001').readOnly = false; // came back writable (no --read-only)
    c.write('db001', 1); // and took a write nobody else has: errant
    await reconcilePass(c, s);
    expect(c.byName('db001').readOnly).toBe(true);
    expect(c.state().formerPrimaries.map((f) => f.name)).toEqual(['db001']);
    expect(c.byName('db002').readOnly).toBe(false);
  });

  it("does not take a commit as the acknowledgement of a failover whose write-back is pending (Git was never told)", async () => {
    const s = shop(3600);
    const c = fakeCluster(s);
    remoteDown(c);
    c.kill('db001');
    await reconcilePass(c, s);
    const asked: string[] = [];
    Object.assign(c.ports, { committedSince: async (commit: string) => (asked.push(commit), true) });
    c.kill('db002');
    const r = await reconcilePass(c, s);
    expect(r.blocked).toMatch(/^anti-flapping: the last failover \(db001 -> db002\)/);
    expect(asked).toEqual([]);
    expect(c.byName('db003').readOnly).toBe(true);
  });

  it("acts on the last failover's tree when no write-back is pending but the file lacks its commit (another clone's daemon failed over)", async () => {
    const s = shop(3600);
    const c = fakeCluster(s);
    c.kill('db001');
    await reconcilePass(c, s); // the fake's write-back: committed, not pushed (no upstream): nothing pending
    expect(pendingOf(c.state())).toBeUndefined();
    const asked: string[] = [];
    Object.assign(c.ports, { committedSince: async () => true, failoverInHistory: async (f: { id: string }) => (asked.push(f.id), false) });
    c.revive('db001');
    await reconcilePass(c, s);
    expect(asked).toEqual([c.state().lastFailover?.id]);
    expect(c.byName('db002').readOnly).toBe(false);
    expect(sourceOf(c, 'db001')).toBe('db002');
  });
});

describe('writeBackOrPend', () => {
  const spec = shop();
  function ports(result: WriteBackResult, state: ClusterState = EMPTY_STATE) {
    let st = state;
    const asked: WriteBackRequest[] = [];
    return {
      asked,
      state: () => st,
      ports: {
        now: () => Date.parse('2026-01-01T00:00:00.000Z'),
        state: { read: async () => st, update: async (_c: string, f: (s: ClusterState) => ClusterState) => (st = f(st)) },
        writeBack: async (req: WriteBackRequest) => (asked.push(req), result),
      },
    };
  }
  const order = { spec, repoDir: '/r', kind: 'relocation' as const, sources: new Map([['db003', 'db002']]), message: 'relocate(shop): db003 db001 -> db002\n' };

  it.each([
    ['push disabled', { kind: 'committed', commit: 'a'.repeat(40), pushed: false, why: 'push is disabled', retriable: false } as const, false],
    ['no upstream', { kind: 'committed', commit: 'a'.repeat(40), pushed: false, why: 'branch main has no upstream', retriable: false } as const, false],
    ["a human's local commit in the way", { kind: 'committed', commit: 'a'.repeat(40), pushed: false, why: 'main has 1 local commit ...', retriable: true } as const, true],
    ['the push failed', { kind: 'failed', commit: 'a'.repeat(40), error: 'git push failed', attempts: 1 } as const, true],
    ['no commit possible', { kind: 'failed', error: 'topologies/shop.yaml has uncommitted changes', attempts: 0 } as const, true],
    ['pushed', { kind: 'committed', commit: 'a'.repeat(40), pushed: true, attempts: 1 } as const, false],
    ['nothing to change', { kind: 'unchanged' } as const, false],
  ])('%s: pending %s', async (_what, result, isPending) => {
    const p = ports(result);
    await writeBackOrPend(p.ports, order);
    expect(pendingOf(p.state()) !== undefined).toBe(isPending);
  });

  it('writes the pending edit with the new one, and a push settles both', async () => {
    const earlier: PendingWriteBack = { file: 'topologies/shop.yaml', kind: 'failover', sources: { db002: null, db001: 'db002', db003: 'db002' }, message: 'failover(shop): db001 -> db002\n\nFailover-Id: f1\n', author: spec.writeBack.author, failoverIds: ['f1'], since: 'S', attempts: 4, lastAttemptAt: 'L', lastError: 'E' };
    const p = ports({ kind: 'committed', commit: 'a'.repeat(40), pushed: true, attempts: 1 }, { ...EMPTY_STATE, pendingWriteBacks: { 'topologies/shop.yaml': earlier } });
    await writeBackOrPend(p.ports, { ...order, sources: new Map([['db003', 'db001']]) });
    expect(p.asked[0]?.edit(FILE)).toBe(['cluster: shop', 'instances:', '  db001: { host: 10.0.0.1, source: db002 }', '  db002: { host: 10.0.0.2 }', '  db003: { host: 10.0.0.3, source: db001 }', ''].join('\n'));
    expect(p.asked[0]?.message).toContain('Failover-Id: f1');
    expect(pendingOf(p.state())).toBeUndefined();
  });
});

describe('retryPendingWriteBacks', () => {
  const spec = shop();
  const T0 = Date.parse('2026-01-01T00:00:10.000Z');
  const record = (over: Partial<PendingWriteBack> = {}): PendingWriteBack => ({
    file: 'topologies/shop.yaml',
    kind: 'failover',
    sources: { db002: null, db001: 'db002', db003: 'db002' },
    message: 'failover(shop): db001 -> db002\n\nFailover-Id: f1\n',
    author: spec.writeBack.author,
    failoverIds: ['f1'],
    since: '2026-01-01T00:00:00.000Z',
    attempts: 2,
    lastAttemptAt: '2026-01-01T00:00:09.000Z',
    lastError: 'E',
    commit: 'b'.repeat(40),
    ...over,
  });
  function rig(answer: (req: WriteBackRetryRequest) => WriteBackRetryResult, o: { now?: number; mayAct?: boolean; during?: (s: ClusterState) => ClusterState } = {}) {
    let st: ClusterState = { ...EMPTY_STATE, lastFailover: { id: 'f1', at: 'A', from: 'db001', to: 'db002', trigger: 'auto', commit: 'b'.repeat(40), lostGtids: null, lostGtidsKnown: false }, pendingWriteBacks: { 'topologies/shop.yaml': record() } };
    const asked: WriteBackRetryRequest[] = [];
    const ports: WriteBackRetryPorts = {
      now: () => o.now ?? T0,
      sleep: async () => undefined,
      state: { read: async () => st, update: async (_c, f) => (st = f(st)) },
      mayAct: async () => o.mayAct ?? true,
      retryWriteBack: async (req) => {
        asked.push(req);
        if (o.during) st = o.during(st);
        return answer(req);
      },
    };
    return { ports, asked, state: () => st };
  }

  it('waits out the backoff, then tries; the request makes the edit and recognises it', async () => {
    const early = rig(() => ({ kind: 'failed', error: 'x' }), { now: T0 - 600 });
    expect((await retryPendingWriteBacks(spec, early.ports, '/r')).outcomes).toEqual([{ file: 'topologies/shop.yaml', kind: 'not-due', at: T0 - 500 }]);
    expect(early.asked).toEqual([]);
    const due = rig(() => ({ kind: 'failed', error: 'x' }));
    await retryPendingWriteBacks(spec, due.ports, '/r');
    const req = due.asked[0] as WriteBackRetryRequest;
    expect(req).toMatchObject({ repoDir: '/r', file: 'topologies/shop.yaml', failoverIds: ['f1'] });
    const after = req.edit(FILE);
    expect(req.applied(FILE)).toBe(false);
    expect(req.applied(after)).toBe(true);
    expect(req.applied('not: [yaml')).toBe(false);
  });

  it('asks the lease first and does nothing without it', async () => {
    const r = rig(() => ({ kind: 'failed', error: 'x' }), { mayAct: false });
    const report = await retryPendingWriteBacks(spec, r.ports, '/r');
    expect(report.outcomes).toEqual([{ file: 'topologies/shop.yaml', kind: 'not-acting' }]);
    expect(r.asked).toEqual([]);
    expect(report.pending).toHaveLength(1);
  });

  it('counts a failure, keeps its error without credentials, and says when to try next', async () => {
    const r = rig(() => ({ kind: 'failed', error: 'git fetch from origin/main failed: https://bot:pw@git.example/x.git: Could not resolve host' }));
    const report = await retryPendingWriteBacks(spec, r.ports, '/r');
    expect(report.outcomes).toEqual([{ file: 'topologies/shop.yaml', kind: 'failed', error: 'git fetch from origin/main failed: https://***@git.example/x.git: Could not resolve host', attempts: 3 }]);
    expect(pendingOf(r.state())).toMatchObject({ attempts: 3, lastAttemptAt: '2026-01-01T00:00:10.000Z', since: '2026-01-01T00:00:00.000Z' });
    expect(report.nextAt).toBe(T0 + 1000);
  });

  it("pushed: the record goes and the last failover's commit is the one the upstream has (a rebase changed its hash)", async () => {
    const r = rig(() => ({ kind: 'pushed', head: 'd'.repeat(40), commits: { f1: 'e'.repeat(40) } }));
    const report = await retryPendingWriteBacks(spec, r.ports, '/r');
    expect(report).toEqual({ outcomes: [{ file: 'topologies/shop.yaml', kind: 'pushed', commit: 'd'.repeat(40) }], pending: [] });
    expect(r.state().pendingWriteBacks).toBeUndefined();
    expect(r.state().lastFailover?.commit).toBe('e'.repeat(40));
  });

  it('already on the upstream (someone pushed the same change): the record is dropped', async () => {
    const r = rig(() => ({ kind: 'already', upstream: 'f'.repeat(40) }));
    const report = await retryPendingWriteBacks(spec, r.ports, '/r');
    expect(report.outcomes).toEqual([{ file: 'topologies/shop.yaml', kind: 'already', upstream: 'f'.repeat(40) }]);
    expect(r.state().pendingWriteBacks).toBeUndefined();
    expect(r.state().lastFailover?.commit).toBe('f'.repeat(40));
  });

  it('keeps a record a new failover joined during the attempt', async () => {
    const r = rig(() => ({ kind: 'pushed', head: 'd'.repeat(40), commits: {} }), {
      during: (s) => ({ ...s, pendingWriteBacks: { 'topologies/shop.yaml': record({ attempts: 3, failoverIds: ['f1', 'f2'] }) } }),
    });
    const report = await retryPendingWriteBacks(spec, r.ports, '/r');
    expect(report.pending.map((p) => p.failoverIds)).toEqual([['f1', 'f2']]);
  });
});
