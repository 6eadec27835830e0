// detectShapes over probe results built from the row fixtures: what is wrong with a cluster as a
// whole. The MariaDB rows were captured from a sandbox: db001 127.0.0.11 (server_id 1, primary),
// db002 127.0.0.12 (2), db003 127.0.0.13 (3); db004 is the same rows as server 4 prints them.
// `.from(n)` points a row at another member (an intermediate source).
import { describe, expect, it } from 'vitest';
import { analyzeCluster } from '../../src/core/analysis.js';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import { detectShapes, type ShapeCode } from '../../src/core/shapes.js';
import { shapeChanges } from '../../src/core/report.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { sandboxSpec, SERVER_ID, type SandboxName } from '../support/spec.js';

/** db002 and db003 under db001. */
const FLAT = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db001' });
/** db001 -> db002 -> db003, and db004 under db001. */
const CHAIN = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db002', db004: 'db001' });
/** db001 -> db002 -> db003 and db004. */
const FORK = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db002', db004: 'db002' });
const ALONE = sandboxSpec('shop', { db001: null });

type Row = FixtureRows | 'down';
const PRIMARY = () => FixtureRows.of('mariadb-10.11-primary');
const SEMI_PRIMARY = () => PRIMARY().vars({ rpl_semi_sync_master_enabled: 'ON', rpl_semi_sync_slave_enabled: 'OFF' });
const OK = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-ok').as(SERVER_ID[n]);
const SEMI_OK = (n: SandboxName) => OK(n).vars({ rpl_semi_sync_master_enabled: 'OFF', rpl_semi_sync_slave_enabled: 'ON' });
const STOPPED = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-stopped').as(SERVER_ID[n]);
/** The real row after its source died: IO Connecting on 2003. */
const LOST = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-source-dead').as(SERVER_ID[n]);
const SQL_ERROR = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-sql-error').as(SERVER_ID[n]);
/** The source answered the IO thread, and refused the replication user (wrong password). */
const DENIED = (n: SandboxName) =>
  OK(n).status({ Slave_IO_Running: 'Connecting', Last_IO_Errno: 1045, Last_IO_Error: "error connecting to master 'repl@127.0.0.11:3306' - retry-time: 2  maximum-retries: 100000  message: Access denied for user 'repl'@'127.0.0.12' (using password: YES)", Seconds_Behind_Master: null });

function probes(spec: ClusterSpec, rows: Partial<Record<SandboxName, Row>>): Map<string, ProbeResult> {
  return new Map(Object.entries(rows).map(([n, r]) => (r === 'down' ? probeDown(spec, n) : probeUp(spec, n, r))));
}

interface Case {
  readonly title: string;
  readonly spec: ClusterSpec;
  readonly rows: Partial<Record<SandboxName, Row>>;
  /** code, instance, replicas of each shape, in order. */
  readonly want: readonly [ShapeCode, string, readonly string[]][];
}

const CASES: readonly Case[] = [
  { title: 'healthy: no shape', spec: FLAT, rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003') }, want: [] },
  { title: 'a primary alone: no shape', spec: ALONE, rows: { db001: PRIMARY() }, want: [] },
  {
    title: 'the primary dead, both replicas lost it: DeadPrimary',
    spec: FLAT,
    rows: { db001: 'down', db002: LOST('db002'), db003: LOST('db003') },
    want: [['DeadPrimary', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'the primary dead and a replica with it: DeadPrimaryAndSomeReplicas',
    spec: FLAT,
    rows: { db001: 'down', db002: LOST('db002'), db003: 'down' },
    want: [['DeadPrimaryAndSomeReplicas', 'db001', ['db002']]],
  },
  {
    title: 'topogit cannot reach the primary but a replica still replicates from it: UnreachablePrimary',
    spec: FLAT,
    rows: { db001: 'down', db002: OK('db002'), db003: LOST('db003') },
    want: [['UnreachablePrimary', 'db001', ['db003']]],
  },
  {
    title: 'nothing reachable: no shape to report beyond the instances (NoReplicasReachable is not a shape)',
    spec: FLAT,
    rows: { db001: 'down', db002: 'down', db003: 'down' },
    want: [],
  },
  {
    title: 'an intermediate source dead, its replica lost it: DeadIntermediateSource',
    spec: CHAIN,
    rows: { db001: PRIMARY(), db002: 'down', db003: LOST('db003').from(2), db004: OK('db004') },
    want: [['DeadIntermediateSource', 'db002', ['db003']]],
  },
  {
    title: 'an intermediate source topogit cannot reach, its replica still connected: UnreachableIntermediateSource',
    spec: CHAIN,
    rows: { db001: PRIMARY(), db002: 'down', db003: OK('db003').from(2), db004: OK('db004') },
    want: [['UnreachableIntermediateSource', 'db002', ['db003']]],
  },
  {
    title: 'one orphan lost it, another still follows it: unreachable, not dead',
    spec: FORK,
    rows: { db001: PRIMARY(), db002: 'down', db003: LOST('db003').from(2), db004: OK('db004').from(2) },
    want: [['UnreachableIntermediateSource', 'db002', ['db004']]],
  },
  {
    title: 'an intermediate source down whose replica was stopped by hand: no evidence, no shape',
    spec: CHAIN,
    rows: { db001: PRIMARY(), db002: 'down', db003: STOPPED('db003').from(2), db004: OK('db004') },
    want: [],
  },
  {
    title: 'an intermediate source that answers: no shape',
    spec: CHAIN,
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003').from(2), db004: OK('db004') },
    want: [],
  },
  {
    title: 'every replica stopped by hand: AllReplicasNotReplicating',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: STOPPED('db002'), db003: STOPPED('db003') },
    want: [['AllReplicasNotReplicating', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'one stopped on an SQL error, one stopped by hand: AllReplicasNotReplicating',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: SQL_ERROR('db002'), db003: STOPPED('db003') },
    want: [['AllReplicasNotReplicating', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'one replica still replicating: no shape',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: OK('db002'), db003: STOPPED('db003') },
    want: [],
  },
  {
    title: 'an unreachable replica is not counted: the reachable one decides',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: STOPPED('db002'), db003: 'down' },
    want: [['AllReplicasNotReplicating', 'db001', ['db002']]],
  },
  {
    title: 'the primary answers topogit but every replica lost it on a connection error: PrimaryLostByReplicas',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: LOST('db002'), db003: LOST('db003') },
    want: [['PrimaryLostByReplicas', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'the primary refuses every replica (access denied, 1045): PrimaryLostByReplicas',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: DENIED('db002'), db003: DENIED('db003') },
    want: [['PrimaryLostByReplicas', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'one lost on a connection error, one refused: PrimaryLostByReplicas',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: LOST('db002'), db003: DENIED('db003') },
    want: [['PrimaryLostByReplicas', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'one lost, one stopped by hand: not every replica lost it, but none replicates',
    spec: FLAT,
    rows: { db001: PRIMARY(), db002: LOST('db002'), db003: STOPPED('db003') },
    want: [['AllReplicasNotReplicating', 'db001', ['db002', 'db003']]],
  },
  {
    title: 'semi-sync on the primary, no replica with semi-sync: SemiSyncPrimaryWithoutAcks',
    spec: FLAT,
    rows: { db001: SEMI_PRIMARY(), db002: OK('db002'), db003: OK('db003') },
    want: [['SemiSyncPrimaryWithoutAcks', 'db001', []]],
  },
  {
    title: 'semi-sync with one connected semi-sync replica: no shape',
    spec: FLAT,
    rows: { db001: SEMI_PRIMARY(), db002: SEMI_OK('db002'), db003: OK('db003') },
    want: [],
  },
  {
    title: 'semi-sync whose only semi-sync replica is stopped: both shapes',
    spec: FLAT,
    rows: { db001: SEMI_PRIMARY(), db002: SEMI_OK('db002').status({ Slave_IO_Running: 'No', Slave_SQL_Running: 'No' }), db003: STOPPED('db003') },
    want: [
      ['AllReplicasNotReplicating', 'db001', ['db002', 'db003']],
      ['SemiSyncPrimaryWithoutAcks', 'db001', []],
    ],
  },
  {
    title: 'a dead intermediate source under a primary nobody replicates from: both shapes',
    spec: CHAIN,
    rows: { db001: PRIMARY(), db002: 'down', db003: LOST('db003').from(2), db004: STOPPED('db004') },
    want: [
      ['DeadIntermediateSource', 'db002', ['db003']],
      ['AllReplicasNotReplicating', 'db001', ['db004']],
    ],
  },
];

describe('detectShapes', () => {
  it.each(CASES)('$title', (c) => {
    const p = probes(c.spec, c.rows);
    const shapes = detectShapes(c.spec, p, analyzeCluster(c.spec, p));
    expect(shapes.map((s) => [s.code, s.instance, s.replicas])).toEqual(c.want);
  });

  it('says what it saw, in one line', () => {
    const say = (spec: ClusterSpec, rows: Partial<Record<SandboxName, Row>>) => {
      const p = probes(spec, rows);
      return detectShapes(spec, p, analyzeCluster(spec, p)).map((s) => s.summary);
    };
    expect(say(CHAIN, { db001: PRIMARY(), db002: 'down', db003: LOST('db003').from(2), db004: OK('db004') })).toEqual([
      'db002 is dead (unreachable, and db003 lost it); its replicas db003 are orphaned',
    ]);
    expect(say(CHAIN, { db001: PRIMARY(), db002: 'down', db003: OK('db003').from(2), db004: OK('db004') })).toEqual(['db002 is unreachable from topogit, but db003 still replicates from it']);
    expect(say(FLAT, { db001: PRIMARY(), db002: STOPPED('db002'), db003: STOPPED('db003') })).toEqual(['no replica of db001 is replicating: db002 IO no SQL no, db003 IO no SQL no']);
    const [lost] = say(FLAT, { db001: PRIMARY(), db002: LOST('db002'), db003: DENIED('db003') });
    // The reason after the IO error's `message:`, not its boilerplate.
    expect(lost).toMatch(/^db001 answers topogit, but every replica lost it: db002 \(2003: Can't connect to server on '127\.0\.0\.11' \(111 .*\); db003 \(1045: Access denied for user 'repl'@'127\.0\.0\.12' \(using password: YES\)\)$/);
  });
});

describe('shapeChanges', () => {
  const shape = (code: ShapeCode, instance: string, summary = '') => ({ code, instance, replicas: [], summary });
  it('a shape is the same while its code and instance are, whatever its summary says', () => {
    const a = shape('AllReplicasNotReplicating', 'db001', 'db002 IO no');
    const b = shape('AllReplicasNotReplicating', 'db001', 'db002 IO connecting');
    const c = shape('DeadIntermediateSource', 'db002');
    const d = shape('DeadIntermediateSource', 'db003');
    expect(shapeChanges([], [a])).toEqual({ appeared: [a], cleared: [] });
    expect(shapeChanges([a], [b])).toEqual({ appeared: [], cleared: [] });
    expect(shapeChanges([a, c], [b, d])).toEqual({ appeared: [d], cleared: [c] });
    expect(shapeChanges([a, c], [])).toEqual({ appeared: [], cleared: [a, c] });
  });
});
