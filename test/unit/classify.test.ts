// classifyCluster over probe results built from the row fixtures: health words, the live topology
// as the servers report it, and the cluster-wide flags. The sandbox the MariaDB rows were captured
// from: db001 127.0.0.11 (server_id 1, primary), db002 127.0.0.12 (2), db003 127.0.0.13 (3).
import { describe, expect, it } from 'vitest';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import type { Row } from '../../src/core/ports.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { manualSpec, sandboxSpec } from '../support/spec.js';
import {
  DEFAULT_CLASSIFY,
  HEALTH_ORDER,
  classifyCluster,
  type ClassifyOptions,
  type ClusterView,
  type Health,
  type InstanceView,
  type Problem,
  type UnmanagedReplica,
} from '../../src/core/classify.js';

// ---------------------------------------------------------------------------------------------
// A small builder over the fixtures: load, vary a copy, turn into a probe result.

class Rows extends FixtureRows {}

/** db002 and db003 under db001; db003 `neutral`. */
const SANDBOX = sandboxSpec('sandbox', { db001: null, db002: 'db001', db003: 'db001' }, { db003: 'neutral' });


const up = (name: string, rows: Rows, spec: ClusterSpec = SANDBOX) => probeUp(spec, name, rows);
const down = (name: string, spec: ClusterSpec = SANDBOX) => probeDown(spec, name);

const PRIMARY = () => Rows.of('mariadb-10.11-primary');
const REPLICA = () => Rows.of('mariadb-10.11-replica-ok');

/** The healthy sandbox; `over` replaces single members. */
function sandbox(...over: [string, ProbeResult][]): Map<string, ProbeResult> {
  return new Map([up('db001', PRIMARY()), up('db002', REPLICA()), up('db003', REPLICA().as(3)), ...over]);
}

function view(v: ClusterView, name: string): InstanceView {
  const i = v.instances.find((x) => x.name === name);
  if (!i) throw new Error(`no view of ${name}`);
  return i;
}

const IO_2003 =
  "error reconnecting to master 'repl@127.0.0.11:3306' - retry-time: 1  maximum-retries: 100000  message: " +
  'Can\'t connect to server on \'127.0.0.11\' (111 "Connection refused")';
const DUP_KEY_ERROR =
  "Could not execute Write_rows_v1 event on table topogit_demo.t; Duplicate entry '4' for key 'PRIMARY', Error_code: 1062; " +
  "handler error HA_ERR_FOUND_DUPP_KEY; the event's master log binlog.000001, end_log_pos 1327";

// ---------------------------------------------------------------------------------------------

interface Case {
  readonly title: string;
  readonly probes: () => Map<string, ProbeResult>;
  readonly spec?: ClusterSpec;
  readonly opts?: ClassifyOptions;
  readonly health: Readonly<Record<string, Health>>;
  /** Exact problem lists for the members named; members not named must have none unless `health` says otherwise. */
  readonly problems?: Readonly<Record<string, readonly Problem[]>>;
  readonly liveSource?: Readonly<Record<string, string | null>>;
  readonly healthy: boolean;
  readonly inSync: boolean;
  readonly livePrimaries: readonly string[];
  readonly unmanaged?: readonly UnmanagedReplica[];
  readonly notes?: readonly string[];
}

const MYSQL = manualSpec();

const CASES: readonly Case[] = [
  {
    title: 'all OK',
    probes: () => sandbox(),
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    liveSource: { db001: null, db002: 'db001', db003: 'db001' },
    healthy: true,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'primary unreachable, replicas Disconnected (captured with the source down)',
    probes: () => sandbox(down('db001'), up('db002', Rows.of('mariadb-10.11-replica-source-dead')), up('db003', Rows.of('mariadb-10.11-replica-source-dead').as(3))),
    health: { db001: 'Unreachable', db002: 'Disconnected', db003: 'Disconnected' },
    problems: {
      db001: [{ health: 'Unreachable', detail: 'connection refused' }],
      db002: [{ health: 'Disconnected', detail: `IO thread connecting: ${IO_2003}` }],
      db003: [{ health: 'Disconnected', detail: `IO thread connecting: ${IO_2003}` }],
    },
    // The replicas still name db001 by its address, so there is no drift.
    liveSource: { db001: null, db002: 'db001', db003: 'db001' },
    healthy: false,
    inSync: true,
    livePrimaries: [],
  },
  {
    title: 'STOP SLAVE on a replica: Disconnected',
    probes: () => sandbox(up('db003', Rows.of('mariadb-10.11-replica-stopped'))),
    health: { db001: 'OK', db002: 'OK', db003: 'Disconnected' },
    problems: { db003: [{ health: 'Disconnected', detail: 'replication stopped (IO and SQL threads not running, no error)' }] },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'SQL error with the Last_SQL_Error text',
    probes: () => sandbox(up('db003', Rows.of('mariadb-10.11-replica-sql-error'))),
    health: { db001: 'OK', db002: 'OK', db003: 'SQL error' },
    problems: { db003: [{ health: 'SQL error', detail: `1062: ${DUP_KEY_ERROR}` }] },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'SQL error outranks an IO thread that is also down',
    probes: () => sandbox(up('db003', Rows.of('mariadb-10.11-replica-sql-error').status({ Slave_IO_Running: 'No' }))),
    health: { db001: 'OK', db002: 'OK', db003: 'SQL error' },
    problems: {
      db003: [
        { health: 'SQL error', detail: `1062: ${DUP_KEY_ERROR}` },
        { health: 'Disconnected', detail: 'IO thread not running' },
      ],
    },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: "SQL thread stopped without an error: 'SQL stopped'",
    probes: () => sandbox(up('db002', Rows.of('mariadb-10.11-replica-sql-stopped'))),
    health: { db001: 'OK', db002: 'SQL stopped', db003: 'OK' },
    problems: { db002: [{ health: 'SQL stopped', detail: 'SQL thread stopped without an error' }] },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'a replica whose live source is another member: Drift naming both',
    probes: () => sandbox(up('db003', REPLICA().as(3).status({ Master_Host: '127.0.0.12', Master_Server_Id: 2 }))),
    health: { db001: 'OK', db002: 'OK', db003: 'Drift' },
    problems: { db003: [{ health: 'Drift', detail: 'replicates from db002; the file says db001' }] },
    liveSource: { db003: 'db002' },
    healthy: true,
    inSync: false,
    livePrimaries: ['db001'],
  },
  {
    title: 'a replica of a server outside the file: Drift naming its address',
    probes: () => sandbox(up('db002', REPLICA().status({ Master_Host: '10.9.8.7', Master_Port: 3307, Master_Server_Id: 9 }))),
    health: { db001: 'OK', db002: 'Drift', db003: 'OK' },
    problems: { db002: [{ health: 'Drift', detail: 'replicates from 10.9.8.7:3307; the file says db001' }] },
    liveSource: { db002: '10.9.8.7:3307' },
    healthy: true,
    inSync: false,
    livePrimaries: ['db001'],
  },
  {
    title: 'a source named by hostname is matched by its server id',
    probes: () => sandbox(up('db002', REPLICA().status({ Master_Host: 'db001.internal', Master_Server_Id: 1 }))),
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    liveSource: { db002: 'db001' },
    healthy: true,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'the primary of the file replicates: Drift',
    probes: () => sandbox(up('db001', PRIMARY().statusRows(REPLICA().status({ Master_Host: '127.0.0.12', Master_Server_Id: 2 }).rows.replicaStatus))),
    health: { db001: 'Drift', db002: 'OK', db003: 'OK' },
    problems: { db001: [{ health: 'Drift', detail: "the file's primary replicates from db002" }] },
    liveSource: { db001: 'db002' },
    healthy: true,
    inSync: false,
    livePrimaries: [],
  },
  {
    title: 'two channels: Drift',
    probes: () => {
      const [ch] = REPLICA().rows.replicaStatus;
      return sandbox(up('db002', REPLICA().statusRows([ch as Row, { ...ch, Connection_name: 'other', Master_Host: '10.9.8.7' }])));
    },
    health: { db001: 'OK', db002: 'Drift', db003: 'OK' },
    problems: { db002: [{ health: 'Drift', detail: 'replicates over 2 channels; topogit manages one' }] },
    liveSource: { db002: 'db001' },
    healthy: true,
    inSync: false,
    livePrimaries: ['db001'],
  },
  {
    title: 'writable replica',
    probes: () => sandbox(up('db002', REPLICA().vars({ read_only: 'OFF' }))),
    health: { db001: 'OK', db002: 'Writable replica', db003: 'OK' },
    problems: { db002: [{ health: 'Writable replica', detail: 'read_only=OFF on a replica' }] },
    healthy: false,
    inSync: true,
    // It replicates, so it is not a live primary.
    livePrimaries: ['db001'],
  },
  {
    title: 'read-only primary',
    probes: () => sandbox(up('db001', PRIMARY().vars({ read_only: 'ON' }))),
    health: { db001: 'Read-only primary', db002: 'OK', db003: 'OK' },
    problems: { db001: [{ health: 'Read-only primary', detail: 'read_only=ON on the primary' }] },
    healthy: false,
    inSync: true,
    livePrimaries: [],
  },
  {
    title: 'lag over the threshold: Lagging',
    probes: () => sandbox(up('db002', REPLICA().status({ Seconds_Behind_Master: '30' }))),
    health: { db001: 'OK', db002: 'Lagging', db003: 'OK' },
    problems: { db002: [{ health: 'Lagging', detail: '30s behind its source' }] },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'lag at the threshold is not Lagging',
    probes: () => sandbox(up('db002', REPLICA().status({ Seconds_Behind_Master: String(DEFAULT_CLASSIFY.lagWarnSeconds) }))),
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    healthy: true,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'lag under a raised threshold is not Lagging',
    probes: () => sandbox(up('db002', REPLICA().status({ Seconds_Behind_Master: 30 }))),
    opts: { lagWarnSeconds: 60 },
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    healthy: true,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'an unmanaged replica seen by the primary but not in the file',
    probes: () => sandbox(up('db001', PRIMARY().seen({ Server_id: 4, Host: '127.0.0.14', Port: 3306, Master_id: 1 }))),
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    healthy: true,
    inSync: false,
    livePrimaries: ['db001'],
    unmanaged: [{ of: 'db001', host: '127.0.0.14', port: 3306, serverId: 4 }],
  },
  {
    title: 'a member the primary sees while it is unreachable itself is not unmanaged',
    probes: () => sandbox(down('db002')),
    health: { db001: 'OK', db002: 'Unreachable', db003: 'OK' },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
    unmanaged: [],
  },
  {
    title: 'a member not probed at all is Unreachable',
    probes: () => {
      const m = sandbox();
      m.delete('db003');
      return m;
    },
    health: { db001: 'OK', db002: 'OK', db003: 'Unreachable' },
    problems: { db003: [{ health: 'Unreachable', detail: 'not probed' }] },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
  },
  {
    title: 'two writable instances that replicate from nobody: both live primaries',
    probes: () => sandbox(up('db002', REPLICA().statusRows([]).vars({ read_only: 'OFF' }))),
    health: { db001: 'OK', db002: 'Drift', db003: 'OK' },
    problems: {
      db002: [
        { health: 'Drift', detail: 'not replicating; the file says source db001' },
        { health: 'Writable replica', detail: 'read_only=OFF on a replica' },
      ],
    },
    liveSource: { db002: null },
    healthy: false,
    inSync: false,
    livePrimaries: ['db001', 'db002'],
    notes: ['more than one writable primary: db001, db002'],
  },
  {
    title: 'the file says mysql, the servers say mariadb',
    spec: { ...SANDBOX, flavor: 'mysql' },
    probes: () => sandbox(),
    health: { db001: 'OK', db002: 'OK', db003: 'OK' },
    healthy: false,
    inSync: true,
    livePrimaries: ['db001'],
    notes: ['file says flavor mysql, servers report mariadb'],
  },
  {
    title: 'MySQL rows from the manual: an 8.4 replica OK, an 8.0.21 replica Disconnected (error 2003)',
    spec: MYSQL,
    probes: () =>
      new Map([
        // The manual's replicas name their source by server id 1.
        up('source', Rows.of('mysql-8.0-primary').vars({ server_id: '1' }), MYSQL),
        up('replica84', Rows.of('mysql-8.4-replica-ok'), MYSQL),
        up('replica80', Rows.of('mysql-8.0-replica-old-words'), MYSQL),
      ]),
    health: { source: 'OK', replica84: 'OK', replica80: 'Disconnected' },
    problems: {
      replica80: [
        {
          health: 'Disconnected',
          detail:
            "IO thread connecting: error connecting to master 'repl@localhost:13000' - retry-time: 60 retries: 1 message: " +
            "Can't connect to MySQL server on 'localhost:13000' (111)",
        },
      ],
    },
    // replica80 says localhost:13000; its Master_Server_Id finds the source.
    liveSource: { source: null, replica84: 'source', replica80: 'source' },
    healthy: false,
    inSync: false,
    livePrimaries: ['source'],
    unmanaged: [
      { of: 'source', host: 'iconnect2', port: 3306, serverId: 10 },
      { of: 'source', host: 'athena', port: 3306, serverId: 21 },
    ],
  },
];

describe('classifyCluster health words', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const spec = c.spec ?? SANDBOX;
    const v = classifyCluster(spec, c.probes(), c.opts);

    expect(Object.fromEntries(v.instances.map((i) => [i.name, i.health]))).toEqual(c.health);
    for (const i of v.instances) {
      // The health word is the most severe problem, or OK with none.
      const expectedTop = HEALTH_ORDER.find((h) => i.problems.some((p) => p.health === h)) ?? 'OK';
      expect(i.health).toBe(expectedTop);
      const problems = c.problems?.[i.name];
      if (problems) expect(i.problems, i.name).toEqual(problems);
      else if (c.health[i.name] === 'OK') expect(i.problems, i.name).toEqual([]);
    }
    for (const [name, src] of Object.entries(c.liveSource ?? {})) expect(view(v, name).liveSource, name).toBe(src);
    expect(v.livePrimaries).toEqual(c.livePrimaries);
    expect(v.unmanaged).toEqual(c.unmanaged ?? []);
    expect(v.notes).toEqual(c.notes ?? []);
    expect({ healthy: v.healthy, inSync: v.inSync }).toEqual({ healthy: c.healthy, inSync: c.inSync });
  });
});

describe('classifyCluster views', () => {
  it('describes the healthy sandbox', () => {
    const v = classifyCluster(SANDBOX, sandbox());
    expect(v).toMatchObject({
      name: 'sandbox',
      file: 'topologies/sandbox.yaml',
      flavor: 'mariadb',
      version: '10.11.19-MariaDB-0+deb12u1-log',
      primary: 'db001',
    });
    expect(view(v, 'db001')).toEqual({
      name: 'db001',
      host: '127.0.0.11',
      port: 3306,
      role: 'primary',
      source: null,
      liveSource: null,
      liveRole: 'primary',
      health: 'OK',
      problems: [],
      readOnly: false,
      lagSeconds: null,
      gtid: '0-1-4',
      error: null,
      promotion: 'prefer',
      serverId: 1,
      version: '10.11.19-MariaDB-0+deb12u1-log',
      ioThread: null,
      sqlThread: null,
      probeMs: 4,
    });
    expect(view(v, 'db003')).toEqual({
      name: 'db003',
      host: '127.0.0.13',
      port: 3306,
      role: 'replica',
      source: 'db001',
      liveSource: 'db001',
      liveRole: 'replica',
      health: 'OK',
      problems: [],
      readOnly: true,
      lagSeconds: 0,
      gtid: '0-1-4',
      error: null,
      promotion: 'neutral',
      serverId: 3,
      version: '10.11.19-MariaDB-0+deb12u1-log',
      ioThread: 'yes',
      sqlThread: 'yes',
      probeMs: 4,
    });
  });

  it('keeps what is known of an unreachable member and nothing more', () => {
    const v = classifyCluster(SANDBOX, sandbox(down('db001')));
    expect(view(v, 'db001')).toEqual({
      name: 'db001',
      host: '127.0.0.11',
      port: 3306,
      role: 'primary',
      source: null,
      liveSource: null,
      liveRole: 'unknown',
      health: 'Unreachable',
      problems: [{ health: 'Unreachable', detail: 'connection refused' }],
      readOnly: null,
      lagSeconds: null,
      gtid: null,
      error: 'connection refused',
      promotion: 'prefer',
      serverId: null,
      version: null,
      ioThread: null,
      sqlThread: null,
      probeMs: 1,
    });
    // With the primary gone, the version comes from the first reachable member.
    expect(v.version).toBe('10.11.19-MariaDB-0+deb12u1-log');
  });

  it('reports the replication error text and threads of a broken replica', () => {
    const v = classifyCluster(SANDBOX, sandbox(up('db003', Rows.of('mariadb-10.11-replica-sql-error'))));
    expect(view(v, 'db003')).toMatchObject({ error: DUP_KEY_ERROR, ioThread: 'yes', sqlThread: 'no', lagSeconds: null, gtid: '0-1-4' });
    const dead = classifyCluster(SANDBOX, sandbox(down('db001'), up('db002', Rows.of('mariadb-10.11-replica-source-dead'))));
    expect(view(dead, 'db002')).toMatchObject({ error: IO_2003, ioThread: 'connecting', sqlThread: 'yes', gtid: '0-1-6' });
  });

  it('summarises a long MySQL GTID set', () => {
    const v = classifyCluster(
      MYSQL,
      new Map([up('source', Rows.of('mysql-8.0-primary').vars({ server_id: '1' }), MYSQL), up('replica84', Rows.of('mysql-8.4-replica-ok'), MYSQL)]),
    );
    expect(view(v, 'replica84').gtid).toBe('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5 (+1 more)');
    expect(v.flavor).toBe('mysql');
    expect(v.version).toBe('8.0.21');
  });

  it('builder copies leave the fixtures untouched', () => {
    const before = JSON.stringify(REPLICA().rows);
    const base = REPLICA();
    base.vars({ read_only: 'OFF' }).status({ Master_Host: 'x' }).seen({ Server_id: 9 });
    expect(JSON.stringify(base.rows)).toBe(before);
  });
});
