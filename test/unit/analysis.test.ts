// analyzeCluster over probe results built from the row fixtures: is the primary dead, and does
// that trigger a failover? The MariaDB rows were captured from a sandbox: db001 127.0.0.11
// (server_id 1, primary), db002 127.0.0.12 (2), db003 127.0.0.13 (3); the "source dead" row is
// db002 after db001 was stopped (Slave_IO_Running Connecting, Last_IO_Errno 2003, connection
// refused). The MySQL rows are written from the manual (see each fixture's `source`).
import { describe, expect, it } from 'vitest';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import type { Row } from '../../src/core/ports.js';
import { analyzeCluster, triggersFailover, type Analysis, type AnalysisCode } from '../../src/core/analysis.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { manualSpec, sandboxSpec } from '../support/spec.js';

// ---------------------------------------------------------------------------------------------
// A small builder over the fixtures (the approach of plan.test.ts): load, vary a copy, make a probe.

class Rows extends FixtureRows {}

/** The captured sandbox: db002 and db003 under db001. */
const SANDBOX = sandboxSpec('sandbox', { db001: null, db002: 'db001', db003: 'db001' });
/** db003 under db002 under db001. */
const TREE = sandboxSpec('tree', { db001: null, db002: 'db001', db003: 'db002' });
/** db001 alone. */
const ALONE = sandboxSpec('alone', { db001: null });
/** The sandbox plus db004 under db002. */
const WIDE = sandboxSpec('wide', { db001: null, db002: 'db001', db003: 'db001', db004: 'db002' });


type Probe = [string, ProbeResult];

const up = (name: string, rows: Rows, spec: ClusterSpec = SANDBOX): Probe => probeUp(spec, name, rows);
const down = (name: string, spec: ClusterSpec = SANDBOX, error = 'connection refused'): Probe => probeDown(spec, name, error);

const PRIMARY = () => Rows.of('mariadb-10.11-primary');
/** IO Yes, SQL Yes, from 127.0.0.11 (server id 1). */
const REPLICA = () => Rows.of('mariadb-10.11-replica-ok');
/** The real "source dead" row: IO Connecting, Last_IO_Errno 2003, connection refused. */
const DEAD = () => Rows.of('mariadb-10.11-replica-source-dead');
/** IO No, SQL No, no error: STOP SLAVE by hand. */
const STOPPED = () => Rows.of('mariadb-10.11-replica-stopped');
/** IO Yes, SQL No on error 1062. */
const SQL_ERROR = () => Rows.of('mariadb-10.11-replica-sql-error');

const probes = (...ps: Probe[]) => new Map(ps);

// --- MySQL: the rows written from the manual ------------------------------------------------

const MYSQL = manualSpec();
/** 8.4, IO Yes, from 127.0.0.1:13000 (Source_Server_Id 1). */
const MY_84 = () => Rows.of('mysql-8.4-replica-ok');
/** 8.4, the source gone: IO Connecting with the client error 2003. */
const MY_84_DEAD = () =>
  MY_84().status({
    Replica_IO_Running: 'Connecting',
    Seconds_Behind_Source: null,
    Last_IO_Errno: 2003,
    Last_IO_Error: "error connecting to source 'repl@127.0.0.1:13000' - retry-time: 60 retries: 1 message: Can't connect to MySQL server on '127.0.0.1:13000' (111)",
  });
/** 8.0.21 as the fixture has it: IO Connecting to localhost:13000 (Master_Server_Id 1), another name for the source. */
const MY_80 = () => Rows.of('mysql-8.0-replica-old-words');
/** 8.0.21 pointed at the source by the file's address. */
const MY_80_AT_FILE = () => MY_80().status({ Master_Host: '127.0.0.1' });

// ---------------------------------------------------------------------------------------------

interface Case {
  readonly title: string;
  readonly spec: ClusterSpec;
  readonly probes: Map<string, ProbeResult>;
  readonly lastPrimaryServerId?: number;
  readonly code: AnalysisCode;
  /** The evidence, by name: connected (true/false) for a reachable replica, null for an unreachable one. */
  readonly evidence: Readonly<Record<string, boolean | null>>;
}

const CASES: readonly Case[] = [
  {
    title: 'the primary answers: PrimaryReachable, whatever its replicas say',
    spec: SANDBOX,
    probes: probes(up('db001', PRIMARY()), up('db002', DEAD()), down('db003')),
    code: 'PrimaryReachable',
    evidence: {},
  },
  {
    title: 'the primary is down and both replicas print the real "source dead" row: DeadPrimary',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), up('db003', DEAD().as(3))),
    code: 'DeadPrimary',
    evidence: { db002: false, db003: false },
  },
  {
    title: 'an IO thread stopped by hand (No, no error) is no evidence either way: the other replica confirms',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), up('db003', STOPPED())),
    code: 'DeadPrimaryAndSomeReplicas',
    evidence: { db002: false, db003: null },
  },
  {
    title: 'a replica stopped on an SQL error but whose IO thread is still connected: the primary is alive',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), up('db003', SQL_ERROR())),
    code: 'UnreachablePrimary',
    evidence: { db002: false, db003: true },
  },
  {
    title: 'one replica confirms, the other is unreachable: DeadPrimaryAndSomeReplicas',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), down('db003')),
    code: 'DeadPrimaryAndSomeReplicas',
    evidence: { db002: false, db003: null },
  },
  {
    title: 'a replica that was not probed at all counts as unreachable',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD())),
    code: 'DeadPrimaryAndSomeReplicas',
    evidence: { db002: false, db003: null },
  },
  {
    title: 'a replica still connected (IO Yes) while the primary probe failed: UnreachablePrimary',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', REPLICA()), up('db003', DEAD().as(3))),
    code: 'UnreachablePrimary',
    evidence: { db002: true, db003: false },
  },
  {
    title: 'a replica still connected and the other unreachable: UnreachablePrimary, not DeadPrimaryAndSomeReplicas',
    spec: SANDBOX,
    probes: probes(down('db001'), down('db002'), up('db003', REPLICA().as(3))),
    code: 'UnreachablePrimary',
    evidence: { db002: null, db003: true },
  },
  {
    title: 'every replica of the primary unreachable: NoReplicasReachable',
    spec: SANDBOX,
    probes: probes(down('db001'), down('db002'), down('db003')),
    code: 'NoReplicasReachable',
    evidence: { db002: null, db003: null },
  },
  {
    title: 'the only reachable member replicates from someone else: no evidence, NoReplicasReachable',
    spec: SANDBOX,
    probes: probes(down('db001'), down('db002'), up('db003', DEAD().as(3).from(2))),
    code: 'NoReplicasReachable',
    evidence: { db002: null },
  },
  {
    title: 'the primary is down and has no replicas in the file: DeadPrimaryWithoutReplicas',
    spec: ALONE,
    probes: probes(down('db001', ALONE)),
    code: 'DeadPrimaryWithoutReplicas',
    evidence: {},
  },
  {
    title: 'the file\'s replicas answer but none replicates from the primary: DeadPrimaryWithoutReplicas',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD().statusRows([])), up('db003', REPLICA().as(3).from(2))),
    code: 'DeadPrimaryWithoutReplicas',
    evidence: {},
  },
  {
    title: 'a member connected to another source is no evidence either way (db003 IO Yes from db002)',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), up('db003', REPLICA().as(3).from(2))),
    code: 'DeadPrimary',
    evidence: { db002: false },
  },
  {
    title: 'a file replica after RESET SLAVE ALL (no channel) is no evidence',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD()), up('db003', REPLICA().as(3).statusRows([]))),
    code: 'DeadPrimary',
    evidence: { db002: false },
  },
  {
    title: 'tree: an unreachable grandchild is not a replica of the primary (DeadPrimary, not ...AndSomeReplicas)',
    spec: TREE,
    probes: probes(down('db001', TREE), up('db002', DEAD(), TREE), down('db003', TREE)),
    code: 'DeadPrimary',
    evidence: { db002: false },
  },
  {
    title: 'the file is behind: a member the file puts under db002 but connected live to the primary keeps it alive',
    spec: TREE,
    probes: probes(down('db001', TREE), up('db002', DEAD(), TREE), up('db003', REPLICA().as(3), TREE)),
    code: 'UnreachablePrimary',
    evidence: { db002: false, db003: true },
  },
  {
    title: 'the file is behind: a member the file puts under db002 but live under the primary confirms too',
    spec: TREE,
    probes: probes(down('db001', TREE), up('db002', DEAD(), TREE), up('db003', DEAD().as(3), TREE)),
    code: 'DeadPrimary',
    evidence: { db002: false, db003: false },
  },
  {
    title: 'grandchildren replicating from a replica do not count, connected or not',
    spec: WIDE,
    probes: probes(down('db001', WIDE), up('db002', DEAD(), WIDE), up('db003', DEAD().as(3), WIDE), up('db004', REPLICA().as(4).from(2), WIDE)),
    code: 'DeadPrimary',
    evidence: { db002: false, db003: false },
  },
  {
    title: 'by server id: a replica connected to the primary under another name (Master_Server_Id 1) keeps it alive',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', REPLICA().status({ Master_Host: 'db001.example' })), up('db003', DEAD().as(3))),
    lastPrimaryServerId: 1,
    code: 'UnreachablePrimary',
    evidence: { db002: true, db003: false },
  },
  {
    title: 'by server id: a replica that lost the primary under another name confirms it',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', DEAD().status({ Master_Host: 'db001.example', Master_Port: 3307 })), up('db003', DEAD().as(3))),
    lastPrimaryServerId: 1,
    code: 'DeadPrimary',
    evidence: { db002: false, db003: false },
  },
  {
    title: 'by server id: another server id under another name is not the primary',
    spec: SANDBOX,
    probes: probes(down('db001'), up('db002', REPLICA().status({ Master_Host: 'db009.example', Master_Server_Id: 9 })), up('db003', DEAD().as(3))),
    lastPrimaryServerId: 1,
    code: 'DeadPrimary',
    evidence: { db003: false },
  },
  {
    title: 'MySQL: the source down, 8.4 connected: UnreachablePrimary',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84(), MYSQL), up('replica80', MY_80_AT_FILE(), MYSQL)),
    code: 'UnreachablePrimary',
    evidence: { replica84: true, replica80: false },
  },
  {
    title: 'MySQL: both lost the source: DeadPrimary',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84_DEAD(), MYSQL), up('replica80', MY_80_AT_FILE(), MYSQL)),
    code: 'DeadPrimary',
    evidence: { replica84: false, replica80: false },
  },
  {
    title: 'MySQL: 8.0 unreachable, 8.4 lost the source: DeadPrimaryAndSomeReplicas',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84_DEAD(), MYSQL), down('replica80', MYSQL)),
    code: 'DeadPrimaryAndSomeReplicas',
    evidence: { replica84: false, replica80: null },
  },
  {
    title: 'MySQL: 8.0 points at localhost:13000; with the source server id it confirms too',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84_DEAD(), MYSQL), up('replica80', MY_80(), MYSQL)),
    lastPrimaryServerId: 1,
    code: 'DeadPrimary',
    evidence: { replica84: false, replica80: false },
  },
  {
    title: 'MySQL: 8.0 points at localhost:13000; its server id is learned from 8.4 in the same round',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84_DEAD(), MYSQL), up('replica80', MY_80(), MYSQL)),
    code: 'DeadPrimary',
    evidence: { replica84: false, replica80: false },
  },
  {
    title: 'MySQL: 8.0 connected to localhost:13000, known by server id: UnreachablePrimary',
    spec: MYSQL,
    probes: probes(down('source', MYSQL), up('replica84', MY_84_DEAD(), MYSQL), up('replica80', MY_80().status({ Slave_IO_Running: 'Yes', Last_IO_Errno: 0, Last_IO_Error: '' }), MYSQL)),
    lastPrimaryServerId: 1,
    code: 'UnreachablePrimary',
    evidence: { replica84: false, replica80: true },
  },
];

function evidenceOf(a: Analysis): Record<string, boolean | null> {
  return Object.fromEntries(a.replicas.map((e) => [e.name, e.reachable ? e.connected : null]));
}

describe('analyzeCluster', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const a = analyzeCluster(c.spec, c.probes, c.lastPrimaryServerId);
    expect(a.code).toBe(c.code);
    expect(a.primary).toBe(c.spec.instances.find((i) => i.source === undefined)?.name);
    expect(evidenceOf(a)).toEqual(c.evidence);
    // Unreachable evidence never says whether it is connected; reachable evidence may be null (no evidence).
    for (const e of a.replicas) if (!e.reachable) expect(e.connected).toBeNull();
  });

  it('the real "source dead" row: the evidence carries the replica\'s IO error', () => {
    const a = analyzeCluster(SANDBOX, probes(down('db001'), up('db002', DEAD()), down('db003', SANDBOX, 'connect ETIMEDOUT')));
    expect(a.code).toBe('DeadPrimaryAndSomeReplicas');
    const db002 = a.replicas.find((e) => e.name === 'db002');
    expect(db002?.detail).toMatch(/^IO thread connecting: error reconnecting to master 'repl@127\.0\.0\.11:3306'/);
    expect(db002?.detail).toContain('Connection refused');
    expect(a.replicas.find((e) => e.name === 'db003')?.detail).toBe('unreachable: connect ETIMEDOUT');
    expect(a.summary).toContain('connection refused');
    expect(a.summary).toContain('confirmed by db002');
    expect(a.summary).toContain('no majority (1 of 2); silent: db003');
    expect(a).toMatchObject({ confirmedBy: ['db002'], silent: ['db003'], quorum: false });
  });

  it('summaries name who confirms and who still replicates', () => {
    const dead = analyzeCluster(SANDBOX, probes(down('db001'), up('db002', DEAD()), up('db003', DEAD().as(3))));
    expect(dead.summary).toBe('db001 is dead (connection refused); confirmed by every replica: db002, db003');
    const unreachable = analyzeCluster(SANDBOX, probes(down('db001'), up('db002', REPLICA()), up('db003', REPLICA().as(3))));
    expect(unreachable.summary).toContain('db002, db003 still replicate from it: not failing over');
    expect(analyzeCluster(SANDBOX, probes(down('db001'), up('db002', REPLICA()), up('db003', DEAD().as(3)))).summary).toContain('db002 still replicates from it');
  });

  it('a connected replica with a second channel elsewhere still counts (multi-source)', () => {
    const other = { ...(DEAD().rows.replicaStatus[0] as Row), Connection_name: 'other', Master_Host: '127.0.0.19', Master_Server_Id: 9 };
    const connected = REPLICA().rows.replicaStatus[0] as Row;
    const a = analyzeCluster(SANDBOX, probes(down('db001'), up('db002', REPLICA().statusRows([other, connected])), up('db003', DEAD().as(3))));
    expect(a.code).toBe('UnreachablePrimary');
    expect(evidenceOf(a)).toEqual({ db002: true, db003: false });
  });

  it.each([
    ['DeadPrimary', true],
    ['DeadPrimaryAndSomeReplicas', true],
    ['UnreachablePrimary', false],
    ['NoReplicasReachable', false],
    ['DeadPrimaryWithoutReplicas', false],
    ['PrimaryReachable', false],
  ] as const)('triggersFailover(%s) = %s', (code, want) => {
    expect(triggersFailover(code)).toBe(want);
  });

  it('only the codes that trigger a failover come with a confirming replica and none still connected', () => {
    for (const c of CASES) {
      const a = analyzeCluster(c.spec, c.probes, c.lastPrimaryServerId);
      if (!triggersFailover(a.code)) continue;
      const reachable = a.replicas.filter((e) => e.reachable);
      expect(reachable.some((e) => e.connected === false), c.title).toBe(true);
      expect(reachable.every((e) => e.connected !== true), c.title).toBe(true);
    }
  });

  // Safety: a replica still connected to the primary under another name (db001.example,
  // Master_Server_Id 1) keeps it alive; the server id is learned from db003 in the same round.
  it('a replica connected under another name keeps the primary alive without a remembered server id', () => {
    const a = analyzeCluster(SANDBOX, probes(down('db001'), up('db002', REPLICA().status({ Master_Host: 'db001.example' })), up('db003', DEAD().as(3))));
    expect(a.code).toBe('UnreachablePrimary');
  });

  it('a replica that reaches the primary through another address (a proxy) confirms its death only with the remembered server id', () => {
    // db002 replicates through 127.0.0.110 (reports Master_Server_Id 1); db003 cannot be reached.
    const p = probes(down('db001'), up('db002', DEAD().status({ Master_Host: '127.0.0.110' })), down('db003'));
    expect(analyzeCluster(SANDBOX, p).code).toBe('NoReplicasReachable');
    const a = analyzeCluster(SANDBOX, p, 1);
    expect(a).toMatchObject({ code: 'DeadPrimaryAndSomeReplicas', confirmedBy: ['db002'], silent: ['db003'], quorum: false });
  });
});
