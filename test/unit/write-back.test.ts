// The pure rules of pending write-backs (src/core/write-back.ts): the retry's backoff, how a second
// edit joins a pending one, what is recorded and shown (never a secret), whether an edit is
// already in a tree, the tree the daemon acts on while the file is behind, and when `apply` must
// refuse a file that predates a failover. Fixtures: the shop cluster, db001 failed over to db002.
import { describe, expect, it } from 'vitest';
import { EMPTY_STATE, type ClusterState, type FailoverRecord, type PendingWriteBack } from '../../src/core/state.js';
import {
  applySources,
  describePendingWriteBack,
  effectiveSpec,
  isFailoverPending,
  mergedMessage,
  mergeSources,
  needsLastFailoverCheck,
  nextWriteBackAttemptAt,
  pendingWriteBacks,
  predatesCommitMessage,
  promotionEdits,
  redactSecrets,
  sourcesApplied,
  staleFileReason,
  withoutPendingWriteBack,
  withPendingWriteBack,
  writeBackPendingReason,
  writeBackRetryDelayMs,
} from '../../src/core/write-back.js';
import { writeBackPendingJson } from '../../src/core/report.js';
import { clusterSpec, instance } from '../support/spec.js';

/** db001 the primary, db002 and db003 its replicas: the file as it was before the failover. */
const SHOP = clusterSpec('shop', [instance('db001', '10.0.0.1'), instance('db002', '10.0.0.2', { source: 'db001' }), instance('db003', '10.0.0.3', { source: 'db001' })]);
/** What the failover db001 -> db002 writes back. */
const PROMOTE_DB002 = { db002: null, db001: 'db002', db003: 'db002' } as const;
const FAILOVER: FailoverRecord = { id: 'shop-2026-01-01T00:00:00.000Z', at: '2026-01-01T00:00:02.000Z', from: 'db001', to: 'db002', trigger: 'auto', commit: 'a'.repeat(40), lostGtids: '', lostGtidsKnown: true };
const MESSAGE = `failover(shop): db001 -> db002\n\nAnalysis: DeadPrimary - db001 is dead\n\nFailover-Id: ${FAILOVER.id}\n`;

function pending(over: Partial<PendingWriteBack> = {}): PendingWriteBack {
  return {
    file: 'topologies/shop.yaml',
    kind: 'failover',
    sources: PROMOTE_DB002,
    message: MESSAGE,
    author: { name: 'topogit', email: 'topogit@localhost' },
    failoverIds: [FAILOVER.id],
    since: '2026-01-01T00:00:02.000Z',
    attempts: 1,
    lastAttemptAt: '2026-01-01T00:00:02.000Z',
    lastError: "git fetch from origin/main failed: fatal: '/srv/remote.git' does not appear to be a git repository",
    ...over,
  };
}
const withRecord = (p: PendingWriteBack, s: ClusterState = EMPTY_STATE): ClusterState => ({ ...s, pendingWriteBacks: { [p.file]: p } });
const sourcesOf = (spec: typeof SHOP) => Object.fromEntries(spec.instances.map((i) => [i.name, i.source ?? null]));

describe('the retry backoff', () => {
  it.each([
    [1, 250],
    [2, 500],
    [3, 1000],
    [4, 2000],
    [5, 2000],
    [50, 2000],
    [0, 250],
  ])('after attempt %i waits %i ms (250 ms doubling, capped at 2 s)', (attempts, ms) => {
    expect(writeBackRetryDelayMs(attempts)).toBe(ms);
  });

  it('counts from the last attempt', () => {
    expect(nextWriteBackAttemptAt(pending({ attempts: 3, lastAttemptAt: '2026-01-01T00:00:10.000Z' }))).toBe(Date.parse('2026-01-01T00:00:11.000Z'));
  });
});

describe('recording a write-back that was not pushed', () => {
  const notPushed = { file: 'topologies/shop.yaml', kind: 'failover' as const, sources: PROMOTE_DB002, message: MESSAGE, author: { name: 'topogit', email: 'topogit@localhost' }, failoverId: FAILOVER.id, at: '2026-01-01T00:00:02.000Z', error: 'git push to origin/main failed: fatal: unable to access https://bot:s3cr3t-t0ken@git.example/ops.git/' };

  it('keeps the edit as data, the first attempt counted, the error without its credentials', () => {
    const s = withPendingWriteBack(EMPTY_STATE, { ...notPushed, commit: 'b'.repeat(40) });
    expect(pendingWriteBacks(s)).toEqual([
      {
        file: 'topologies/shop.yaml',
        kind: 'failover',
        sources: PROMOTE_DB002,
        message: MESSAGE,
        author: { name: 'topogit', email: 'topogit@localhost' },
        failoverIds: [FAILOVER.id],
        since: '2026-01-01T00:00:02.000Z',
        attempts: 1,
        lastAttemptAt: '2026-01-01T00:00:02.000Z',
        lastError: 'git push to origin/main failed: fatal: unable to access https://***@git.example/ops.git/',
        commit: 'b'.repeat(40),
      },
    ]);
    expect(isFailoverPending(s, FAILOVER.id)).toBe(true);
    expect(isFailoverPending(s, 'another')).toBe(false);
  });

  it('joins a second failover of the same file to the pending one: its edit on top, both ids, the first since kept', () => {
    const first = withPendingWriteBack(EMPTY_STATE, notPushed);
    // db002 died too: db003 promoted, written on the tree the servers had (db002 the primary).
    const second = promotionEdits(applySources(SHOP, PROMOTE_DB002).instances, 'db003');
    const merged = mergeSources(first.pendingWriteBacks?.['topologies/shop.yaml'], second);
    expect(merged).toEqual({ db001: 'db003', db002: 'db003', db003: null });
    const s = withPendingWriteBack(first, { ...notPushed, sources: merged, failoverId: 'shop-2', message: 'failover(shop): db002 -> db003\n', at: '2026-01-01T00:01:00.000Z', error: 'again' });
    const p = pendingWriteBacks(s)[0];
    expect(p).toMatchObject({ failoverIds: [FAILOVER.id, 'shop-2'], since: '2026-01-01T00:00:02.000Z', attempts: 2, lastAttemptAt: '2026-01-01T00:01:00.000Z', sources: merged });
    expect(sourcesOf(applySources(SHOP, p?.sources ?? {}))).toEqual({ db001: 'db003', db002: 'db003', db003: null });
  });

  it('names the earlier failover in a message whose own commit was never made (its Failover-Id line finds it in any clone)', () => {
    const earlier = pending();
    expect(mergedMessage('failover(shop): db002 -> db003\n\nFailover-Id: shop-2\n', earlier)).toBe(
      `failover(shop): db002 -> db003\n\nFailover-Id: shop-2\nAlso records the earlier write-back that was never committed: failover(shop): db001 -> db002\nFailover-Id: ${FAILOVER.id}\n`,
    );
    // It has a local commit of its own: that commit goes with the push.
    expect(mergedMessage('m\n', pending({ commit: 'c'.repeat(40) }))).toBe('m\n');
    expect(mergedMessage('m\n', undefined)).toBe('m\n');
  });

  it('drops the record of one file only', () => {
    const s: ClusterState = { ...EMPTY_STATE, pendingWriteBacks: { a: pending({ file: 'a' }), b: pending({ file: 'b' }) } };
    expect(Object.keys(withoutPendingWriteBack(s, 'a').pendingWriteBacks ?? {})).toEqual(['b']);
    expect(withoutPendingWriteBack(withoutPendingWriteBack(s, 'a'), 'b')).toEqual(EMPTY_STATE);
    expect(withoutPendingWriteBack(EMPTY_STATE, 'a')).toBe(EMPTY_STATE);
  });
});

describe('what WriteBackPending says', () => {
  it('since when, how many attempts, the local commit, the last error', () => {
    const p = pending({ attempts: 3, commit: 'b'.repeat(40) });
    expect(describePendingWriteBack(p)).toBe(
      "failover(shop): db001 -> db002 (topologies/shop.yaml) not pushed since 2026-01-01T00:00:02.000Z: 3 attempts; local commit bbbbbbbbbbbb; last error: git fetch from origin/main failed: fatal: '/srv/remote.git' does not appear to be a git repository",
    );
    expect(writeBackPendingReason(EMPTY_STATE)).toBeUndefined();
    expect(writeBackPendingReason(withRecord(p))).toBe(describePendingWriteBack(p));
    expect(writeBackPendingJson(withRecord(p))).toEqual([
      { file: 'topologies/shop.yaml', subject: 'failover(shop): db001 -> db002', since: p.since, attempts: 3, lastAttemptAt: p.lastAttemptAt, lastError: p.lastError, commit: 'b'.repeat(40), failoverIds: [FAILOVER.id], reason: describePendingWriteBack(p) },
    ]);
  });

  it.each([
    ['https://bot:s3cr3t@git.example/ops.git', 'https://***@git.example/ops.git'],
    ['ssh://git:pw@host:22/x', 'ssh://***@host:22/x'],
    ['https://x-access-token@github.com/o/r', 'https://***@github.com/o/r'],
    ['credential helper said password=hunter2 for host', 'credential helper said password=*** for host'],
    ['url?private_token=abc123&x=1', 'url?private_token=***&x=1'],
    ['Authorization: Bearer abc.def', 'Authorization: ***'],
    ['hook saw TOPOGIT_ETCD_PASSWORD=r00t-Secret and DB_PASSWORD: x9', 'hook saw TOPOGIT_ETCD_PASSWORD=*** and DB_PASSWORD: ***'],
    ["fatal: '/srv/remote.git' does not appear to be a git repository", "fatal: '/srv/remote.git' does not appear to be a git repository"],
  ])('never shows a secret: %s', (raw, shown) => {
    expect(redactSecrets(raw)).toBe(shown);
    expect(describePendingWriteBack(pending({ lastError: raw }))).toContain(shown);
  });
});

describe('is the edit already in the tree', () => {
  it.each([
    ['the file before the failover', SHOP, false],
    ['the file after it', applySources(SHOP, PROMOTE_DB002), true],
    ['a file where only db002 lost its source', applySources(SHOP, { db002: null }), false],
    ['a file without db003', { ...SHOP, instances: SHOP.instances.filter((i) => i.name !== 'db003') }, false],
  ])('%s: %s', (_what, spec, applied) => {
    expect(sourcesApplied(spec.instances, PROMOTE_DB002)).toBe(applied);
  });
});

describe('the tree the daemon acts on while the file is behind', () => {
  const after: ClusterState = { ...EMPTY_STATE, lastFailover: FAILOVER, formerPrimaries: [{ name: 'db001', failoverId: FAILOVER.id, newPrimary: 'db002' }] };

  it('applies the pending write-back to the file that lacks it', () => {
    const e = effectiveSpec(SHOP, withRecord(pending(), after));
    expect(sourcesOf(e.spec)).toEqual({ db001: 'db002', db002: null, db003: 'db002' });
    expect(e.why).toBe('the write-back failover(shop): db001 -> db002 is not in topologies/shop.yaml yet');
  });

  it('leaves a file that no longer has an instance the edit names as it is (no tree with a dangling source)', () => {
    const without = { ...SHOP, instances: SHOP.instances.filter((i) => i.name !== 'db002') };
    expect(effectiveSpec(without, withRecord(pending(), after))).toEqual({ spec: without });
  });

  it('leaves a file that already has the pending edit (a local commit made, not pushed) as it is', () => {
    const file = applySources(SHOP, PROMOTE_DB002);
    expect(effectiveSpec(file, withRecord(pending(), after))).toEqual({ spec: file });
  });

  it("applies the last failover's promotion when the file names its failed primary and its commit is not in the file's history", () => {
    expect(needsLastFailoverCheck(SHOP, after)).toBe(true);
    const e = effectiveSpec(SHOP, after, false);
    expect(sourcesOf(e.spec)).toEqual({ db001: 'db002', db002: null, db003: 'db002' });
    expect(e.why).toBe(`topologies/shop.yaml predates failover ${FAILOVER.id} (db001 -> db002)`);
  });

  it("keeps the file when the failover's commit is in its history: a later commit naming db001 is a human's decision", () => {
    expect(effectiveSpec(SHOP, after, true)).toEqual({ spec: SHOP });
  });

  it('asks Git nothing when the file already names the new primary, or no failover is recorded', () => {
    expect(needsLastFailoverCheck(applySources(SHOP, PROMOTE_DB002), after)).toBe(false);
    expect(needsLastFailoverCheck(SHOP, EMPTY_STATE)).toBe(false);
    expect(effectiveSpec(SHOP, EMPTY_STATE, false)).toEqual({ spec: SHOP });
    // A pending record decides by itself.
    expect(needsLastFailoverCheck(SHOP, withRecord(pending(), after))).toBe(false);
  });

  it('judges a second failure on the real tree: with db002 dead too, the primary to replace is db002', () => {
    const second = withRecord(pending(), after);
    const e = effectiveSpec(SHOP, second);
    expect(e.spec.instances.find((i) => i.source === undefined)?.name).toBe('db002');
    expect(Object.fromEntries(promotionEdits(e.spec.instances, 'db003'))).toEqual({ db003: null, db002: 'db003', db001: 'db003' });
  });
});

describe('apply refuses a file that predates a failover', () => {
  const after: ClusterState = { ...EMPTY_STATE, lastFailover: FAILOVER, formerPrimaries: [] };
  const refusal = `the file predates failover ${FAILOVER.id} (db001 -> db002 at 2026-01-01T00:00:02.000Z); pull first`;

  it.each([
    ["the file names db001, db002 is the live writable primary, the failover's commit is not in HEAD", SHOP, after, ['db002'], false, refusal],
    ['the same with its commit in HEAD (a later commit named db001 again: a decision)', SHOP, after, ['db002'], true, undefined],
    ['the file already names db002', applySources(SHOP, PROMOTE_DB002), after, ['db002'], false, undefined],
    ['db001 is the live writable primary again', SHOP, after, ['db001'], false, undefined],
    ['two writable primaries: not this rule', SHOP, after, ['db001', 'db002'], false, undefined],
    ['no failover recorded', SHOP, EMPTY_STATE, ['db002'], false, undefined],
    ['a commit never made, its write-back pending', SHOP, withRecord(pending(), { ...after, lastFailover: { ...FAILOVER, commit: null } }), ['db002'], false, refusal],
    ['a commit never made and nothing pending (the file already said so when it failed over)', SHOP, { ...after, lastFailover: { ...FAILOVER, commit: null } }, ['db002'], false, undefined],
  ] as const)('%s', (_what, spec, state, live, inHead, expected) => {
    expect(staleFileReason(spec, state, live, inHead)).toBe(expected);
  });

  it('says the same of a failover commit on the upstream, and names a relocation', () => {
    expect(predatesCommitMessage({ commit: 'f'.repeat(40), date: '2026-01-01T00:00:03+00:00', subject: 'failover(shop): db001 -> db002', body: `Analysis: x\n\nFailover-Id: ${FAILOVER.id}\n` })).toBe(
      `the file predates failover ${FAILOVER.id} (db001 -> db002 at 2026-01-01T00:00:03+00:00); pull first`,
    );
    expect(predatesCommitMessage({ commit: 'e'.repeat(40), date: 'D', subject: 'relocate(shop): db003 db004 db002 -> db001', body: '' })).toBe('the file predates relocation eeeeeeeeeeee (db003 db004 db002 -> db001 at D); pull first');
    expect(predatesCommitMessage({ commit: 'd'.repeat(40), date: 'D', subject: 'db003 under db002', body: '' })).toBeUndefined();
  });
});
