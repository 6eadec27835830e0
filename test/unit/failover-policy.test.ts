// blockedReason: the anti-flapping policy in front of an automatic failover. With failover.auto
// off nothing fails over by itself; after a failover, another one waits blockSeconds unless a
// human acknowledged the last one (`topogit ack`, or a commit to the topology file after it).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ClusterSpec, FailoverSpec } from '../../src/core/model.js';
import { DEFAULT_FAILOVER } from '../../src/config/defaults.js';
import { EMPTY_STATE, type ClusterState, type FailoverRecord } from '../../src/core/state.js';
import type { ReconcilePorts } from '../../src/core/ports.js';
import { blockedReason as decideBlocked, needsCommitAcknowledgement } from '../../src/core/reconcile.js';

/** What the reconcile engine does: ask Git only when a commit could lift the block, then decide. */
async function blockedReason(s: ClusterSpec, state: ClusterState, ports: Pick<ReconcilePorts, 'now' | 'committedSince'>): Promise<string | undefined> {
  const commit = needsCommitAcknowledgement(s, state, ports.now());
  const acknowledged = commit !== undefined && (await ports.committedSince(commit, s.file));
  return decideBlocked(s, state, ports.now(), acknowledged);
}
import { sandboxSpec } from '../support/spec.js';

const NOW = Date.parse('2026-11-25T18:00:00.000Z');
const iso = (msBeforeNow: number) => new Date(NOW - msBeforeNow).toISOString();
const S = 1000;

function spec(failover: Partial<FailoverSpec> = {}): ClusterSpec {
  return sandboxSpec('sandbox', { db001: null, db002: 'db001' }, {}, { flavor: 'mariadb', failover: { ...DEFAULT_FAILOVER, auto: true, blockSeconds: 3600, ...failover } });
}

function lastFailover(msBeforeNow: number, commit: string | null = 'c0ffee0000000000000000000000000000000000'): FailoverRecord {
  return { id: 'sandbox-x', at: iso(msBeforeNow), from: 'db001', to: 'db002', trigger: 'auto', commit, lostGtids: '', lostGtidsKnown: true };
}

interface FakePorts {
  readonly ports: Pick<ReconcilePorts, 'now' | 'committedSince'>;
  readonly calls: [string, string][];
}

/** Only what blockedReason uses: the clock and "was the file committed to since?". */
function fakePorts(committed: boolean, now = NOW): FakePorts {
  const calls: [string, string][] = [];
  const ports = {
    now: () => now,
    committedSince: async (commit: string, file: string) => {
      calls.push([commit, file]);
      return committed;
    },
  };
  return { ports, calls };
}

interface Case {
  readonly title: string;
  readonly failover?: Partial<FailoverSpec>;
  readonly state: ClusterState;
  readonly committed?: boolean;
  /** undefined: allowed; a string or RegExp: blocked with that reason. */
  readonly blocked?: string | RegExp;
  /** Was committedSince consulted? */
  readonly askedGit?: boolean;
}

const AUTO_OFF = 'failover.auto is false: fail over by hand with `topogit failover`';

const CASES: readonly Case[] = [
  { title: 'auto false, never failed over: blocked', failover: { auto: false }, state: EMPTY_STATE, blocked: AUTO_OFF, askedGit: false },
  { title: 'auto false, long after a failover: blocked', failover: { auto: false }, state: { ...EMPTY_STATE, lastFailover: lastFailover(99_999 * S) }, blocked: AUTO_OFF, askedGit: false },
  { title: 'auto false, acknowledged and committed since: still blocked', failover: { auto: false }, state: { ...EMPTY_STATE, lastFailover: lastFailover(10 * S), ackedAt: iso(0) }, committed: true, blocked: AUTO_OFF, askedGit: false },
  { title: 'no last failover: allowed', state: EMPTY_STATE, blocked: undefined, askedGit: false },
  { title: 'no last failover but an old ack: allowed', state: { ...EMPTY_STATE, ackedAt: iso(10 * S) }, blocked: undefined, askedGit: false },
  {
    title: '600s after a failover (blockSeconds 3600): blocked for the remaining 3000s',
    state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S) },
    blocked:
      'anti-flapping: the last failover (db001 -> db002) was 600s ago; automatic failover is blocked for 3000s more unless acknowledged (`topogit ack sandbox` or a commit to topologies/sandbox.yaml)',
    askedGit: true,
  },
  { title: 'the remaining seconds round up (600.5s ago: 3000s left)', state: { ...EMPTY_STATE, lastFailover: lastFailover(600.5 * S) }, blocked: /blocked for 3000s more/, askedGit: true },
  { title: 'one second before the block ends: 1s left', state: { ...EMPTY_STATE, lastFailover: lastFailover(3599 * S) }, blocked: /was 3599s ago; automatic failover is blocked for 1s more/, askedGit: true },
  { title: 'just after the failover: the whole block left', state: { ...EMPTY_STATE, lastFailover: lastFailover(0) }, blocked: /was 0s ago; automatic failover is blocked for 3600s more/, askedGit: true },
  { title: 'a shorter blockSeconds (60), 59s after: blocked 1s more', failover: { blockSeconds: 60 }, state: { ...EMPTY_STATE, lastFailover: lastFailover(59 * S) }, blocked: /blocked for 1s more/, askedGit: true },
  { title: 'exactly blockSeconds after: allowed', state: { ...EMPTY_STATE, lastFailover: lastFailover(3600 * S) }, blocked: undefined, askedGit: false },
  { title: 'after blockSeconds: allowed', state: { ...EMPTY_STATE, lastFailover: lastFailover(7200 * S) }, blocked: undefined, askedGit: false },
  { title: 'blockSeconds 0: allowed right after a failover', failover: { blockSeconds: 0 }, state: { ...EMPTY_STATE, lastFailover: lastFailover(0) }, blocked: undefined, askedGit: false },
  { title: 'acknowledged after the failover: allowed', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: iso(300 * S) }, blocked: undefined, askedGit: false },
  { title: 'acknowledged 1ms after the failover: allowed', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: iso(600 * S - 1) }, blocked: undefined, askedGit: false },
  { title: 'acknowledged before the failover (an earlier one): still blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: iso(900 * S) }, blocked: /blocked for 3000s more/, askedGit: true },
  { title: 'acknowledged at the very instant of the failover: still blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: iso(600 * S) }, blocked: /blocked for 3000s more/, askedGit: true },
  { title: 'a commit to the file since the failover commit: allowed', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S) }, committed: true, blocked: undefined, askedGit: true },
  { title: 'no commit since: blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S) }, committed: false, blocked: /blocked for 3000s more/, askedGit: true },
  { title: 'the failover wrote nothing back (commit null): Git is not asked, blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S, null) }, committed: true, blocked: /blocked for 3000s more/, askedGit: false },
  { title: 'an ack before the failover does not help, a commit since does', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: iso(900 * S) }, committed: true, blocked: undefined, askedGit: true },
  // Fail safe: what cannot be read blocks.
  { title: 'an unreadable ackedAt: still blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(600 * S), ackedAt: 'yesterday-ish' }, blocked: /blocked for 3000s more/, askedGit: true },
  { title: 'an unreadable lastFailover.at: blocked', state: { ...EMPTY_STATE, lastFailover: { ...lastFailover(0), at: 'garbage' } }, blocked: /^anti-flapping: /, askedGit: true },
  { title: 'the clock went back before the failover: blocked', state: { ...EMPTY_STATE, lastFailover: lastFailover(-60 * S) }, blocked: /^anti-flapping: /, askedGit: true },
];

describe('blockedReason', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', async (_title, c) => {
    const s = spec(c.failover);
    const { ports, calls } = fakePorts(c.committed ?? false);
    const got = await blockedReason(s, c.state, ports);
    if (c.blocked === undefined) expect(got).toBeUndefined();
    else if (typeof c.blocked === 'string') expect(got).toBe(c.blocked);
    else expect(got).toMatch(c.blocked);
    if (c.askedGit !== undefined) expect(calls.length > 0).toBe(c.askedGit);
    for (const call of calls) expect(call).toEqual([c.state.lastFailover?.commit, s.file]);
  });

  it('the DEFAULT_FAILOVER policy (auto false) never fails over by itself', async () => {
    const s = { ...spec(), failover: DEFAULT_FAILOVER };
    expect(DEFAULT_FAILOVER.auto).toBe(false);
    await expect(blockedReason(s, EMPTY_STATE, fakePorts(true).ports)).resolves.toBe(AUTO_OFF);
  });

  it('within the block and unacknowledged: blocked, with 1..blockSeconds seconds left; otherwise allowed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 7200 }), fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: 3600 }), async (secs, ms, blockSeconds) => {
        const ago = secs * S + ms;
        const s = spec({ blockSeconds });
        const got = await blockedReason(s, { ...EMPTY_STATE, lastFailover: lastFailover(ago) }, fakePorts(false).ports);
        if (ago >= blockSeconds * S) {
          expect(got).toBeUndefined();
        } else {
          const left = Number(/blocked for (\d+)s more/.exec(got ?? '')?.[1]);
          expect(left).toBe(Math.ceil((blockSeconds * S - ago) / S));
          expect(left).toBeGreaterThanOrEqual(1);
          expect(left).toBeLessThanOrEqual(blockSeconds);
        }
      }),
      { numRuns: 200 },
    );
  });
});
