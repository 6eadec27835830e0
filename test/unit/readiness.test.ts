// failoverReadiness over probe results built from the row fixtures: could an automatic failover
// happen now if the primary died, to which replica, or why not. The MariaDB rows were captured from
// a sandbox: db001 127.0.0.11 (server_id 1, primary), db002 127.0.0.12 (2), db003 127.0.0.13 (3);
// db004 is the same rows as server 4 prints them.
import { describe, expect, it } from 'vitest';
import { DEFAULT_FAILOVER } from '../../src/config/defaults.js';
import type { ClusterSpec, FailoverSpec, ProbeResult, Promotion } from '../../src/core/model.js';
import { failoverReadiness, readinessLine, type Readiness } from '../../src/core/readiness.js';
import { EMPTY_STATE, type ClusterState } from '../../src/core/state.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { sandboxSpec, SERVER_ID, type SandboxName } from '../support/spec.js';

const NOW = Date.parse('2026-01-01T12:00:00.000Z');

type Members = Partial<Record<SandboxName, Promotion>>;

/** db001 the primary, the named replicas under it (file order), automatic failover on unless told. */
function spec(replicas: Members, failover: Partial<FailoverSpec> = {}): ClusterSpec {
  const sources = Object.fromEntries([['db001', null], ...Object.keys(replicas).map((n) => [n, 'db001'])]) as Record<SandboxName, SandboxName | null>;
  return sandboxSpec('shop', sources, replicas, { failover: { ...DEFAULT_FAILOVER, auto: true, ...failover } });
}

type Row = FixtureRows | 'down';
const PRIMARY = () => FixtureRows.of('mariadb-10.11-primary');
/** IO Yes, SQL Yes, 0 s behind db001. */
const OK = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-ok').as(SERVER_ID[n]);
/** STOP SLAVE by hand: IO No, SQL No, no error. */
const STOPPED = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-stopped').as(SERVER_ID[n]);
/** The real row after db001 died: IO Connecting on 2003, Seconds_Behind_Master NULL. */
const LOST = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-source-dead').as(SERVER_ID[n]);
/** Stopped on a duplicate key (1062). */
const SQL_ERROR = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-sql-error').as(SERVER_ID[n]);
/** The IO thread refused by db001 (wrong replication password): the primary answered. */
const DENIED = (n: SandboxName) =>
  OK(n).status({ Slave_IO_Running: 'Connecting', Last_IO_Errno: 1045, Last_IO_Error: "error connecting to master 'repl@127.0.0.11:3306' - retry-time: 2  maximum-retries: 100000  message: Access denied for user 'repl'@'127.0.0.12' (using password: YES)", Seconds_Behind_Master: null });
const DELAYED = (n: SandboxName, s: number) => OK(n).status({ SQL_Delay: s });
const BEHIND = (n: SandboxName, s: number) => OK(n).status({ Seconds_Behind_Master: s });

function probes(s: ClusterSpec, rows: Partial<Record<SandboxName, Row>>): Map<string, ProbeResult> {
  return new Map(Object.entries(rows).map(([n, r]) => (r === 'down' ? probeDown(s, n) : probeUp(s, n, r))));
}

interface Case {
  readonly title: string;
  readonly spec: ClusterSpec;
  readonly rows: Partial<Record<SandboxName, Row>>;
  readonly state?: ClusterState;
  readonly want: Readiness;
}

const FENCED_DB002: ClusterState = { formerPrimaries: [{ name: 'db002', failoverId: 'f1', newPrimary: 'db001', errant: '0-2-9', fencedAt: '2026-01-01T10:00:00.000Z' }] };
const LAST_FAILOVER: ClusterState = {
  formerPrimaries: [],
  lastFailover: { id: 'f2', at: '2026-01-01T11:50:00.000Z', from: 'db004', to: 'db001', trigger: 'auto', commit: 'abc', lostGtids: null, lostGtidsKnown: true },
};

const CASES: Case[] = [
  {
    title: 'healthy, auto on: the prefer replica, with its lag',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] },
  },
  {
    title: 'failover.auto false: not ready, the choice a failover by hand would make still named',
    spec: spec({ db002: 'prefer', db003: 'neutral' }, { auto: false }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    want: { ready: false, candidate: 'db002', reasons: ['failover.auto is false'] },
  },
  {
    title: 'a delayed neutral replica and a never replica: nobody',
    spec: spec({ db002: 'neutral', db003: 'never' }),
    rows: { db001: PRIMARY(), db002: DELAYED('db002', 30), db003: OK('db003') },
    want: { ready: false, reasons: ['db002 delayed 30 s, db003 promotion: never'] },
  },
  {
    title: 'a delayed replica is passed over for an undelayed one',
    spec: spec({ db002: 'neutral', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: DELAYED('db002', 3600), db003: OK('db003') },
    want: { ready: true, candidate: 'db003', reasons: ['would promote db003 (promotion: neutral, 0s behind)'] },
  },
  {
    title: 'a delayed replica marked prefer may be promoted',
    spec: spec({ db002: 'prefer', db003: 'never' }),
    rows: { db001: PRIMARY(), db002: DELAYED('db002', 30), db003: OK('db003') },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] },
  },
  {
    title: 'quorum majority: only 1 of 3 replicas replicating',
    spec: spec({ db002: 'prefer', db003: 'neutral', db004: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: STOPPED('db003'), db004: STOPPED('db004') },
    want: { ready: false, candidate: 'db002', reasons: ['only 1 of 3 replicas could confirm a death (quorum majority)'] },
  },
  {
    title: 'quorum majority: 2 of 3 is a majority',
    spec: spec({ db002: 'prefer', db003: 'neutral', db004: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003'), db004: STOPPED('db004') },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] },
  },
  {
    title: 'failover.fence lifts the majority: one confirming replica is enough',
    spec: spec({ db002: 'prefer', db003: 'neutral', db004: 'neutral' }, { fence: { command: ['/bin/true'], timeoutSeconds: 5 } }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: STOPPED('db003'), db004: 'down' },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] },
  },
  {
    title: 'failover.fence still needs one replica that could see the death',
    spec: spec({ db002: 'prefer', db003: 'neutral' }, { fence: { command: ['/bin/true'], timeoutSeconds: 5 } }),
    rows: { db001: PRIMARY(), db002: STOPPED('db002'), db003: STOPPED('db003') },
    want: { ready: false, candidate: 'db002', reasons: ['only 0 of 2 replicas could confirm a death (failover.fence needs one)'] },
  },
  {
    title: 'quorum any: one replica is enough, none is not',
    spec: spec({ db002: 'prefer', db003: 'neutral' }, { quorum: 'any' }),
    rows: { db001: PRIMARY(), db002: STOPPED('db002'), db003: STOPPED('db003') },
    want: { ready: false, candidate: 'db002', reasons: ['only 0 of 2 replicas could confirm a death (quorum any needs one)'] },
  },
  {
    title: 'an unreachable replica counts against the majority',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: 'down' },
    want: { ready: false, candidate: 'db002', reasons: ['only 1 of 2 replicas could confirm a death (quorum majority)'] },
  },
  {
    title: 'a replica refused by the primary (1045) could not confirm a death',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: DENIED('db002'), db003: OK('db003') },
    want: { ready: false, candidate: 'db002', reasons: ['only 1 of 2 replicas could confirm a death (quorum majority)'] },
  },
  {
    title: 'a fenced former primary is never the candidate',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: FENCED_DB002,
    want: { ready: true, candidate: 'db003', reasons: ['would promote db003 (promotion: neutral, 0s behind)'] },
  },
  {
    title: 'every reason for every replica, in file order',
    spec: spec({ db002: 'prefer', db003: 'never', db004: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003'), db004: SQL_ERROR('db004') },
    state: FENCED_DB002,
    want: { ready: false, reasons: ['db002 fenced former primary, db003 promotion: never, db004 stopped on an SQL error (1062)'] },
  },
  {
    title: 'too far behind',
    spec: spec({ db002: 'neutral', db003: 'never' }),
    rows: { db001: PRIMARY(), db002: BEHIND('db002', 42), db003: OK('db003') },
    want: { ready: false, reasons: ['db002 42s behind (limit 10s), db003 promotion: never'] },
  },
  {
    title: 'anti-flapping: ten minutes after a failover, blocked for the rest of the hour',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: LAST_FAILOVER,
    want: { ready: false, candidate: 'db002', reasons: ['anti-flapping: the last failover (db004 -> db001) blocks another for 3000s unless acknowledged'] },
  },
  {
    title: 'anti-flapping acknowledged (topogit ack)',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: { ...LAST_FAILOVER, ackedAt: '2026-01-01T11:55:00.000Z' },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] },
  },
  {
    title: 'a failover in progress',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: { formerPrimaries: [], journal: { id: 'f3', cluster: 'shop', failedPrimary: 'db001', startedAt: '2026-01-01T11:59:59.000Z', trigger: 'auto', steps: [] } },
    want: { ready: false, candidate: 'db002', reasons: ['a failover of db001 is in progress (started 2026-01-01T11:59:59.000Z)'] },
  },
  {
    title: 'the primary in maintenance: no failover for its death',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: { formerPrimaries: [], maintenance: { db001: { since: '2026-01-01T11:00:00Z', until: '2026-01-01T13:00:00Z', reason: 'kernel upgrade' } } },
    want: { ready: false, candidate: 'db002', reasons: ['db001 is in maintenance until 2026-01-01T13:00:00Z (kernel upgrade): no failover'] },
  },
  {
    title: 'a replica in maintenance is never the candidate; an expired maintenance is over',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: { formerPrimaries: [], maintenance: { db002: { since: '2026-01-01T11:00:00Z', until: null, reason: null }, db001: { since: '2026-01-01T10:00:00Z', until: '2026-01-01T11:00:00Z', reason: null } } },
    want: { ready: true, candidate: 'db003', reasons: ['would promote db003 (promotion: neutral, 0s behind)'] },
  },
  {
    title: 'every replica in maintenance or never',
    spec: spec({ db002: 'prefer', db003: 'never' }),
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    state: { formerPrimaries: [], maintenance: { db002: { since: '2026-01-01T11:00:00Z', until: null, reason: null } } },
    want: { ready: false, reasons: ['db002 in maintenance, db003 promotion: never'] },
  },
  {
    title: 'a primary without replicas',
    spec: spec({}),
    rows: { db001: PRIMARY() },
    want: { ready: false, reasons: ['db001 has no replicas'] },
  },
  {
    title: 'the primary already dead: replicas that lost it confirm; lag unknown without a last lag',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: 'down', db002: LOST('db002'), db003: LOST('db003') },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, lag unknown)'] },
  },
  {
    title: 'the primary already dead: the last lag seen while it lived',
    spec: spec({ db002: 'prefer', db003: 'neutral' }),
    rows: { db001: 'down', db002: LOST('db002'), db003: LOST('db003') },
    state: { formerPrimaries: [], lastLag: { db002: 3, db003: 0 } },
    want: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 3s behind)'] },
  },
];

describe('failoverReadiness', () => {
  it.each(CASES)('$title', (c) => {
    expect(failoverReadiness(c.spec, probes(c.spec, c.rows), c.state ?? EMPTY_STATE, NOW)).toEqual(c.want);
  });

  it('several reasons at once: policy first, then quorum, then the replicas', () => {
    const s = spec({ db002: 'neutral', db003: 'never' }, { auto: false });
    const r = failoverReadiness(s, probes(s, { db001: PRIMARY(), db002: DELAYED('db002', 30), db003: 'down' }), EMPTY_STATE, NOW);
    expect(readinessLine(r)).toBe('not ready: failover.auto is false; only 1 of 2 replicas could confirm a death (quorum majority); db002 delayed 30 s, db003 unreachable');
  });

  it('one line', () => {
    expect(readinessLine({ ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 0s behind)'] })).toBe('ready: would promote db002 (promotion: prefer, 0s behind)');
    expect(readinessLine({ ready: false, reasons: ['failover.auto is false'] })).toBe('not ready: failover.auto is false');
  });
});
