// The pure row parsers (rows.ts) over every fixture in test/fixtures/rows/, and the per-flavor SQL
// (dialect.ts). The mariadb-* fixtures were captured from real MariaDB 10.11 servers; the mysql-*
// ones are hand-written from the MySQL Reference Manual (each says so in its `source`).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InstanceState, ReplicaStatus } from '../../src/core/model.js';
import type { Row } from '../../src/core/ports.js';
import { clientSessions, readOnlyWriters, flavorOf, parseInstanceState, parseReplicaStatusRow, parseSeenReplicas, parseVariables } from '../../src/adapters/mysql/rows.js';
import {
  PROBE_VARIABLES,
  PROBE_VARIABLES_SQL,
  atLeast,
  changeSource,
  displaySql,
  parseVersion,
  readOnlyBypassSql,
  resetReplicaAll,
  setReadOnly,
  showReplicaStatus,
  showReplicas,
  startReplica,
  stopReplica,
  type ServerVersion,
  type SourceParams,
} from '../../src/adapters/mysql/dialect.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

interface RowsFixture {
  readonly captured: string | null;
  readonly source: string;
  readonly variables: Row[];
  readonly replicaStatus: Row[];
  readonly replicas: Row[];
}

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/rows/', import.meta.url));
const FIXTURES = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

function load(name: string): RowsFixture {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}${name}.json`, 'utf8')) as RowsFixture;
}

function parse(f: RowsFixture): InstanceState {
  return parseInstanceState(f.variables, f.replicaStatus, f.replicas);
}

/** Applies `fn` to every row of a fixture (variables, status and replicas alike). */
function mapRows(f: RowsFixture, fn: (r: Row) => Row): RowsFixture {
  return { ...f, variables: f.variables.map(fn), replicaStatus: f.replicaStatus.map(fn), replicas: f.replicas.map(fn) };
}

function mapKeys(r: Row, fn: (k: string) => string): Row {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [fn(k), v]));
}

function mapValues(r: Row, fn: (v: unknown) => unknown): Row {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, fn(v)]));
}

const INTEGER_TEXT = /^-?\d+$/;

// ---------------------------------------------------------------------------------------------
// Expected models, one per fixture. A new fixture fails 'has an expectation' until one is added.

const MARIADB_VERSION = '10.11.19-MariaDB-0+deb12u1-log';

function mariadbChannel(over: Partial<ReplicaStatus>): ReplicaStatus {
  return {
    channel: '',
    sourceHost: '127.0.0.11',
    sourcePort: 3306,
    sourceUser: 'repl',
    sourceServerId: 1,
    ioThread: 'yes',
    sqlThread: 'yes',
    lastIoErrno: 0,
    lastIoError: '',
    lastSqlErrno: 0,
    lastSqlError: '',
    secondsBehindSource: 0,
    gtidAutoPosition: true,
    usingGtid: 'Slave_Pos',
    retrievedGtid: '0-1-4',
    connectRetry: 1,
    heartbeatPeriod: 1,
    sqlDelay: 0,
    ...over,
  };
}

function mariadbState(serverId: number, pos: { current: string; binlog: string; slave: string }, over: Partial<InstanceState>): InstanceState {
  return {
    version: MARIADB_VERSION,
    flavor: 'mariadb',
    serverId,
    hostname: 'vm',
    reportHost: `127.0.0.1${serverId}`,
    reportPort: 3306,
    port: 3306,
    readOnly: true,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtid: { executed: pos.current, binlogPos: pos.binlog, slavePos: pos.slave, strictMode: true },
    replication: [],
    seenReplicas: [],
    ...over,
  };
}

const DUP_KEY_ERROR =
  "Could not execute Write_rows_v1 event on table topogit_demo.t; Duplicate entry '4' for key 'PRIMARY', Error_code: 1062; " +
  "handler error HA_ERR_FOUND_DUPP_KEY; the event's master log binlog.000001, end_log_pos 1327";

const U_OLD = '3e11fa47-71ca-11e1-9e33-c80aa9429562'; // the source in the 5.7 / 8.0.21-era manual example
const U_84 = '73f86016-978b-11ee-ade5-8d2a2a562feb'; // the source in the 8.x manual example

const EXPECTED: Readonly<Record<string, InstanceState>> = {
  'mariadb-10.11-primary': mariadbState(
    1,
    { current: '0-1-4', binlog: '0-1-4', slave: '' },
    {
      readOnly: false,
      seenReplicas: [
        { serverId: 3, host: '127.0.0.13', port: 3306 },
        { serverId: 2, host: '127.0.0.12', port: 3306 },
      ],
    },
  ),
  'mariadb-10.11-replica-ok': mariadbState(2, { current: '0-1-4', binlog: '0-1-4', slave: '0-1-4' }, { replication: [mariadbChannel({ relayLogFile: 'mysqld-relay-bin.000002', relayLogPos: 1422 })] }),
  'mariadb-10.11-replica-source-dead': mariadbState(
    2,
    { current: '0-1-6', binlog: '0-1-6', slave: '0-1-6' },
    {
      replication: [
        mariadbChannel({
          ioThread: 'connecting',
          lastIoErrno: 2003,
          lastIoError:
            "error reconnecting to master 'repl@127.0.0.11:3306' - retry-time: 1  maximum-retries: 100000  message: " +
            'Can\'t connect to server on \'127.0.0.11\' (111 "Connection refused")',
          secondsBehindSource: null,
          retrievedGtid: '0-1-6',
          relayLogFile: 'mysqld-relay-bin.000002',
          relayLogPos: 1886,
        }),
      ],
    },
  ),
  'mariadb-10.11-replica-sql-error': mariadbState(
    3,
    { current: '0-1-4', binlog: '0-1-4', slave: '0-1-4' },
    {
      replication: [
        mariadbChannel({ sqlThread: 'no', lastSqlErrno: 1062, lastSqlError: DUP_KEY_ERROR, secondsBehindSource: null, retrievedGtid: '0-1-5', relayLogFile: 'mysqld-relay-bin.000002', relayLogPos: 664 }),
      ],
    },
  ),
  'mariadb-10.11-replica-sql-stopped': mariadbState(
    2,
    { current: '0-1-5', binlog: '0-1-5', slave: '0-1-5' },
    { replication: [mariadbChannel({ sqlThread: 'no', secondsBehindSource: null, retrievedGtid: '0-1-6', relayLogFile: 'mysqld-relay-bin.000002', relayLogPos: 1654 })] },
  ),
  'mariadb-10.11-replica-stopped': mariadbState(
    3,
    { current: '0-1-4', binlog: '0-1-4', slave: '0-1-4' },
    { replication: [mariadbChannel({ ioThread: 'no', sqlThread: 'no', secondsBehindSource: null, relayLogFile: 'mysqld-relay-bin.000002', relayLogPos: 1422 })] },
  ),
  'mysql-8.0-primary': {
    version: '8.0.21',
    flavor: 'mysql',
    serverId: 3,
    serverUuid: 'c5e1f0a2-cf0d-11ea-8b7a-0242ac110002',
    hostname: 'source80',
    reportPort: 3306,
    port: 3306,
    readOnly: false,
    superReadOnly: false,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtid: { executed: `${U_OLD}:1-5,c5e1f0a2-cf0d-11ea-8b7a-0242ac110002:1-42`, purged: '', mode: 'ON' },
    replication: [],
    seenReplicas: [
      { serverId: 10, host: 'iconnect2', port: 3306 },
      { serverId: 21, host: 'athena', port: 3306 },
    ],
  },
  'mysql-8.0-replica-old-words': {
    version: '8.0.21',
    flavor: 'mysql',
    serverId: 2,
    serverUuid: '4f1d7c3e-cf0d-11ea-9d52-0242ac110003',
    hostname: 'replica80',
    reportPort: 13001,
    port: 13001,
    readOnly: true,
    superReadOnly: true,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtid: { executed: `${U_OLD}:1-5`, purged: '', mode: 'ON' },
    replication: [
      {
        channel: '',
        sourceHost: 'localhost',
        sourcePort: 13000,
        sourceUser: 'repl',
        sourceServerId: 1,
        ioThread: 'connecting',
        sqlThread: 'yes',
        lastIoErrno: 2003,
        lastIoError:
          "error connecting to master 'repl@localhost:13000' - retry-time: 60 retries: 1 message: Can't connect to MySQL server on 'localhost:13000' (111)",
        lastSqlErrno: 0,
        lastSqlError: '',
        secondsBehindSource: null,
        gtidAutoPosition: true,
        retrievedGtid: `${U_OLD}:1-5`,
        executedGtid: `${U_OLD}:1-5`,
        connectRetry: 60,
        sqlDelay: 0,
        relayLogFile: 'replica-relay-bin.000003',
        relayLogPos: 1508,
      },
    ],
    seenReplicas: [],
  },
  'mysql-8.4-replica-ok': {
    version: '8.4.3',
    flavor: 'mysql',
    serverId: 2,
    serverUuid: '8e3c5a2e-978b-11ee-b0c4-0242ac110003',
    hostname: 'replica84',
    reportPort: 13001,
    port: 13001,
    readOnly: true,
    superReadOnly: true,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    // The server prints ",\n" between uuids; the model keeps one line.
    gtid: { executed: `${U_OLD}:1-5,${U_84}:1-3`, purged: `${U_OLD}:1-5`, mode: 'ON' },
    replication: [
      {
        channel: '',
        sourceHost: '127.0.0.1',
        sourcePort: 13000,
        sourceUser: 'root',
        sourceServerId: 1,
        ioThread: 'yes',
        sqlThread: 'yes',
        lastIoErrno: 0,
        lastIoError: '',
        lastSqlErrno: 0,
        lastSqlError: '',
        secondsBehindSource: 0,
        gtidAutoPosition: true,
        retrievedGtid: `${U_84}:1-3`,
        executedGtid: `${U_OLD}:1-5,${U_84}:1-3`,
        connectRetry: 1,
        sqlDelay: 0,
        relayLogFile: 'slave-relay-bin.000002',
        relayLogPos: 1145,
      },
    ],
    seenReplicas: [],
  },
};

describe('row fixtures', () => {
  it('the directory holds the captured MariaDB and the hand-written MySQL fixtures', () => {
    expect(FIXTURES.filter((n) => n.startsWith('mariadb-')).length).toBeGreaterThanOrEqual(6);
    expect(FIXTURES.filter((n) => n.startsWith('mysql-')).length).toBeGreaterThanOrEqual(3);
  });

  describe.each(FIXTURES)('%s', (name) => {
    const f = load(name);
    const expected = EXPECTED[name];

    it('has an expectation in this file', () => {
      expect(expected, `add EXPECTED['${name}'] to test/unit/rows.test.ts`).toBeDefined();
    });

    it('says honestly where its rows came from', () => {
      if (f.captured === null) {
        expect(f.source).toMatch(
          /^hand-written from the MySQL 8\.\d Reference Manual, [A-Z ]+ example \(https:\/\/dev\.mysql\.com\/doc\/refman\/[^)\s]+[^)]*\); not captured from a server/,
        );
      } else {
        expect(Number.isNaN(Date.parse(f.captured))).toBe(false);
        expect(f.source).toMatch(/^real server \S+ via \S+:\d+$/);
      }
    });

    it('holds only variables the probe asks for', () => {
      const asked = new Set<string>(PROBE_VARIABLES);
      for (const r of f.variables) expect(asked.has(String(r['Variable_name']))).toBe(true);
    });

    it('parses to the expected model', () => {
      if (!expected) throw new Error(`no expectation for ${name}`);
      const s = parse(f);
      const { gtid, ...rest } = s;
      const { gtid: expectedGtid, ...expectedRest } = expected;
      expect(rest).toEqual(expectedRest);
      // GtidState gains fields as the GTID work goes on (gtid_binlog_state, ...): the fields listed
      // here must match exactly, new ones are checked where they are introduced.
      expect(gtid).toMatchObject(expectedGtid);
    });

    it('agrees with parseVersion on the flavor', () => {
      const vars = parseVariables(f.variables);
      const s = parse(f);
      expect(s.flavor).toBe(parseVersion(s.version, vars.get('version_comment')).flavor);
      expect(flavorOf(vars)).toBe(s.flavor);
    });

    it('keeps GTID text on one line', () => {
      const s = parse(f);
      for (const g of [s.gtid.executed, s.gtid.purged ?? '', ...s.replication.flatMap((c) => [c.retrievedGtid, c.executedGtid ?? ''])]) {
        expect(g).not.toMatch(/\s/);
      }
    });

    it('reads columns whatever their case', () => {
      const s = parse(f);
      expect(parse(mapRows(f, (r) => mapKeys(r, (k) => k.toLowerCase())))).toEqual(s);
      expect(parse(mapRows(f, (r) => mapKeys(r, (k) => k.toUpperCase())))).toEqual(s);
    });

    it('reads numbers whether mysql2 gives them as strings, numbers or bigints', () => {
      const s = parse(f);
      const asStrings = mapRows(f, (r) => mapValues(r, (v) => (typeof v === 'number' ? String(v) : v)));
      const asNumbers = mapRows(f, (r) => mapValues(r, (v) => (typeof v === 'string' && INTEGER_TEXT.test(v) ? Number(v) : v)));
      const asBigints = mapRows(f, (r) => mapValues(r, (v) => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v)));
      expect(parse(asStrings)).toEqual(s);
      expect(parse(asNumbers)).toEqual(s);
      expect(parse(asBigints)).toEqual(s);
    });

    it('does not depend on column order', () => {
      expect(parse(mapRows(f, (r) => Object.fromEntries(Object.entries(r).reverse())))).toEqual(parse(f));
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Parsers in detail

/** New (8.0.22+) column names to the old ones, as the manual's two examples print them. */
function toOldWords(k: string): string {
  return k
    .replace(/^Replica_/, 'Slave_')
    .replace(/^Source_/, 'Master_')
    .replace(/_Source_/, '_Master_')
    .replace(/_Source$/, '_Master');
}

function toNewWords(k: string): string {
  return k
    .replace(/^Slave_/, 'Replica_')
    .replace(/^Master_/, 'Source_')
    .replace(/_Master_/, '_Source_')
    .replace(/_Master$/, '_Source');
}

function statusRow(name: string): Row {
  const r = load(name).replicaStatus[0];
  if (!r) throw new Error(`${name} has no status row`);
  return r;
}

describe('parseReplicaStatusRow', () => {
  it('gives the same ReplicaStatus for the Source_/Replica_ and the Master_/Slave_ vocabulary', () => {
    const fresh = statusRow('mysql-8.4-replica-ok');
    const old = mapKeys(fresh, toOldWords);
    expect(old).toHaveProperty('Master_Host', '127.0.0.1');
    expect(old).toHaveProperty('Slave_IO_Running', 'Yes');
    expect(old).toHaveProperty('Seconds_Behind_Master', '0');
    expect(old).toHaveProperty('Master_Server_Id', 1);
    expect(old).not.toHaveProperty('Source_Host');
    expect(parseReplicaStatusRow(old)).toEqual(parseReplicaStatusRow(fresh));

    const oldRow = statusRow('mysql-8.0-replica-old-words');
    const renamed = mapKeys(oldRow, toNewWords);
    expect(renamed).toHaveProperty('Source_Host', 'localhost');
    expect(renamed).toHaveProperty('Replica_IO_Running', 'Connecting');
    expect(parseReplicaStatusRow(renamed)).toEqual(parseReplicaStatusRow(oldRow));
  });

  it('looks columns up case-insensitively', () => {
    const r = parseReplicaStatusRow({
      SOURCE_HOST: 'db1',
      source_port: '3307',
      'Source_user': 'repl',
      replica_io_running: 'Yes',
      REPLICA_SQL_RUNNING: 'Yes',
      seconds_behind_source: 4,
      AUTO_POSITION: '1',
      retrieved_gtid_set: `${U_84}:1-3`,
      channel_name: 'ch1',
    });
    expect(r).toMatchObject({
      channel: 'ch1',
      sourceHost: 'db1',
      sourcePort: 3307,
      sourceUser: 'repl',
      ioThread: 'yes',
      sqlThread: 'yes',
      secondsBehindSource: 4,
      gtidAutoPosition: true,
      retrievedGtid: `${U_84}:1-3`,
    });
  });

  it.each([
    ['Yes', 'yes'],
    ['yes', 'yes'],
    ['No', 'no'],
    ['Connecting', 'connecting'],
    ['Preparing', 'connecting'],
    ['', 'no'],
    [null, 'no'],
  ] as const)('reads thread state %j as %s', (text, state) => {
    expect(parseReplicaStatusRow({ Master_Host: 'h', Slave_IO_Running: text, Slave_SQL_Running: text })).toMatchObject({
      ioThread: state,
      sqlThread: state,
    });
  });

  it.each([
    [null, null],
    ['NULL', null],
    ['', null],
    ['0', 0],
    [0, 0],
    ['17', 17],
    [17, 17],
    [BigInt(86400), 86400],
  ] as const)('reads Seconds_Behind_Source %s as %s', (v, expected) => {
    expect(parseReplicaStatusRow({ Source_Host: 'h', Seconds_Behind_Source: v }).secondsBehindSource).toBe(expected);
    expect(parseReplicaStatusRow({ Master_Host: 'h', Seconds_Behind_Master: v }).secondsBehindSource).toBe(expected);
  });

  it.each([
    [{ Auto_Position: 1 }, true, undefined],
    [{ Auto_Position: '1' }, true, undefined],
    [{ Auto_Position: 0 }, false, undefined],
    [{ Using_Gtid: 'Slave_Pos' }, true, 'Slave_Pos'],
    [{ Using_Gtid: 'Current_Pos' }, true, 'Current_Pos'],
    [{ Using_Gtid: 'No' }, false, 'No'],
    [{}, false, undefined],
  ] as const)('reads GTID auto-positioning from %j', (cols, auto, usingGtid) => {
    const r = parseReplicaStatusRow({ Master_Host: 'h', ...cols });
    expect(r.gtidAutoPosition).toBe(auto);
    expect(r.usingGtid).toBe(usingGtid);
  });

  it('reads MariaDB Gtid_IO_Pos as the retrieved GTID and has no executed set', () => {
    const r = parseReplicaStatusRow(statusRow('mariadb-10.11-replica-sql-error'));
    expect(r.retrievedGtid).toBe('0-1-5');
    expect(r).not.toHaveProperty('executedGtid');
  });

  it('gives defaults for missing columns', () => {
    expect(parseReplicaStatusRow({})).toEqual({
      channel: '',
      sourceHost: '',
      sourcePort: 3306,
      sourceUser: '',
      ioThread: 'no',
      sqlThread: 'no',
      lastIoErrno: 0,
      lastIoError: '',
      lastSqlErrno: 0,
      lastSqlError: '',
      secondsBehindSource: null,
      gtidAutoPosition: false,
      retrievedGtid: '',
    });
  });

  it('decodes Buffer values as UTF-8 text', () => {
    const r = parseReplicaStatusRow({ Source_Host: Buffer.from('127.0.0.1'), Last_IO_Error: Buffer.from('é') });
    expect(r.sourceHost).toBe('127.0.0.1');
    expect(r.lastIoError).toBe('é');
  });
});

describe('parseInstanceState channels', () => {
  const f = load('mariadb-10.11-replica-ok');
  const row = statusRow('mariadb-10.11-replica-ok');

  it('drops a connection left with an empty Master_Host (after RESET SLAVE)', () => {
    const reset = { ...row, Master_Host: '', Slave_IO_Running: 'No', Slave_SQL_Running: 'No', Gtid_IO_Pos: '' };
    expect(parseInstanceState(f.variables, [reset], []).replication).toEqual([]);
  });

  it('keeps the other connections of a multi-source replica, in row order', () => {
    const reset = { ...row, Master_Host: '' };
    const other = { ...row, Connection_name: 'other', Master_Host: '127.0.0.21', Master_Port: 3307 };
    const s = parseInstanceState(f.variables, [reset, row, other], []);
    expect(s.replication.map((c) => [c.channel, c.sourceHost, c.sourcePort])).toEqual([
      ['', '127.0.0.11', 3306],
      ['other', '127.0.0.21', 3307],
    ]);
  });
});

describe('parseVariables and the variable-derived fields', () => {
  const base = load('mysql-8.4-replica-ok').variables;
  const withVars = (vars: Record<string, string | null>): Row[] => {
    const rows = base.filter((r) => !(String(r['Variable_name']) in vars));
    for (const [k, v] of Object.entries(vars)) if (v !== null) rows.push({ Variable_name: k, Value: v });
    return rows;
  };
  const state = (vars: Record<string, string | null>) => parseInstanceState(withVars(vars), [], []);

  it('lower-cases names and reads Value case-insensitively', () => {
    const m = parseVariables([{ VARIABLE_NAME: 'Read_Only', VALUE: 'ON' }, { variable_name: 'port', value: 3306 }, { Variable_name: 'x', Value: null }, { Value: 'orphan' }]);
    expect([...m]).toEqual([
      ['read_only', 'ON'],
      ['port', '3306'],
      ['x', ''],
    ]);
  });

  it.each([
    ['ON', true],
    ['OFF', false],
    ['1', true],
    ['0', false],
  ])('reads read_only %s as %s', (v, b) => {
    expect(state({ read_only: v, super_read_only: 'OFF' }).readOnly).toBe(b);
  });

  it('has superReadOnly only where the server has the variable (MySQL)', () => {
    expect(state({ super_read_only: 'ON' }).superReadOnly).toBe(true);
    expect(state({ super_read_only: 'OFF' }).superReadOnly).toBe(false);
    expect(state({ super_read_only: null })).not.toHaveProperty('superReadOnly');
  });

  it('reads log_replica_updates (8.0.26+) and falls back to log_slave_updates', () => {
    expect(state({ log_replica_updates: 'ON', log_slave_updates: 'ON' }).logReplicaUpdates).toBe(true);
    expect(state({ log_replica_updates: null, log_slave_updates: 'ON' }).logReplicaUpdates).toBe(true);
    expect(state({ log_replica_updates: null, log_slave_updates: 'OFF' }).logReplicaUpdates).toBe(false);
    expect(state({ log_replica_updates: 'OFF', log_slave_updates: null }).logReplicaUpdates).toBe(false);
    expect(state({ log_replica_updates: null, log_slave_updates: null }).logReplicaUpdates).toBe(false);
  });

  it('leaves out an empty report_host and a zero report_port', () => {
    const s = state({ report_host: '', report_port: '0' });
    expect(s).not.toHaveProperty('reportHost');
    expect(s).not.toHaveProperty('reportPort');
    expect(state({ report_host: 'db2.example', report_port: '3307' })).toMatchObject({ reportHost: 'db2.example', reportPort: 3307 });
  });

  it('reads the MySQL GTID variables, gtid_mode only when present', () => {
    expect(state({ gtid_mode: 'OFF_PERMISSIVE' }).gtid.mode).toBe('OFF_PERMISSIVE');
    expect(state({ gtid_mode: null }).gtid).not.toHaveProperty('mode');
    expect(state({ gtid_executed: `${U_OLD}:1-5,\n${U_84}:1-3,\n  9a2b7c1d-0000-11ef-8000-0242ac120002:1-2` }).gtid.executed).toBe(
      `${U_OLD}:1-5,${U_84}:1-3,9a2b7c1d-0000-11ef-8000-0242ac120002:1-2`,
    );
  });

  it.each([
    ['10.11.19-MariaDB-0+deb12u1-log', 'Debian 12', 'mariadb'],
    ['10.6.16', 'MariaDB Server', 'mariadb'],
    ['8.4.3', 'MySQL Community Server - GPL', 'mysql'],
    ['8.0.36-28', 'Percona Server (GPL), Release 28, Revision 47601f19', 'mysql'],
  ])('detects the flavor of %s (%s) as %s', (version, comment, flavor) => {
    expect(state({ version, version_comment: comment }).flavor).toBe(flavor);
  });
});

describe('parseSeenReplicas', () => {
  it('reads SHOW REPLICAS (8.0.22+), SHOW SLAVE HOSTS and MariaDB SHOW REPLICA HOSTS rows alike', () => {
    // The manual's SHOW REPLICAS example: https://dev.mysql.com/doc/refman/8.4/en/show-replicas.html
    const showReplicasRows: Row[] = [
      { Server_id: 10, Host: 'iconnect2', Port: 3306, Source_id: 3, Replica_UUID: '14cb6624-7f93-11e0-b2c0-c80aa9429562' },
      { Server_Id: '21', Host: 'athena', Port: '3306', Source_Id: '3', Replica_UUID: '07af4990-f41f-11df-a566-7ac56fdaf645' },
    ];
    const expected = [
      { serverId: 10, host: 'iconnect2', port: 3306 },
      { serverId: 21, host: 'athena', port: 3306 },
    ];
    expect(parseSeenReplicas(showReplicasRows)).toEqual(expected);
    expect(parseSeenReplicas(load('mysql-8.0-primary').replicas)).toEqual(expected);
    expect(parseSeenReplicas(load('mariadb-10.11-primary').replicas)).toEqual([
      { serverId: 3, host: '127.0.0.13', port: 3306 },
      { serverId: 2, host: '127.0.0.12', port: 3306 },
    ]);
  });

  it('keeps a 0 port (the replica set no report_port) and defaults a missing one to 3306', () => {
    expect(parseSeenReplicas([{ Server_id: 4, Host: 'h', Port: 0 }, { Server_id: 5, Host: 'h' }])).toEqual([
      { serverId: 4, host: 'h', port: 0 },
      { serverId: 5, host: 'h', port: 3306 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Dialect

const V = {
  mysql57: parseVersion('5.7.44-log', 'MySQL Community Server (GPL)'),
  mysql8021: parseVersion('8.0.21', 'MySQL Community Server - GPL'),
  mysql8022: parseVersion('8.0.22', 'MySQL Community Server - GPL'),
  mysql8023: parseVersion('8.0.23', 'MySQL Community Server - GPL'),
  mysql84: parseVersion('8.4.3', 'MySQL Community Server - GPL'),
  mariadb104: parseVersion('10.4.34-MariaDB', 'mariadb.org binary distribution'),
  mariadb1050: parseVersion('10.5.0-MariaDB', ''),
  mariadb1051: parseVersion('10.5.1-MariaDB', ''),
  mariadb1011: parseVersion('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12'),
} satisfies Record<string, ServerVersion>;

describe('parseVersion', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1-log', '', { flavor: 'mariadb', major: 10, minor: 11, patch: 19 }],
    ['8.4.3', '', { flavor: 'mysql', major: 8, minor: 4, patch: 3 }],
    ['8.0.21', '', { flavor: 'mysql', major: 8, minor: 0, patch: 21 }],
    ['5.7.44-log', '', { flavor: 'mysql', major: 5, minor: 7, patch: 44 }],
    ['10.6.16', 'MariaDB Server', { flavor: 'mariadb', major: 10, minor: 6, patch: 16 }],
    ['8.0.36-28', 'Percona Server (GPL), Release 28', { flavor: 'mysql', major: 8, minor: 0, patch: 36 }],
    ['', '', { flavor: 'mysql', major: 0, minor: 0, patch: 0 }],
    ['not a version', '', { flavor: 'mysql', major: 0, minor: 0, patch: 0 }],
  ] as const)('%j (%j)', (version, comment, expected) => {
    expect(parseVersion(version, comment)).toEqual(expected);
  });

  it('orders versions with atLeast', () => {
    expect(atLeast(V.mysql8021, 8, 0, 22)).toBe(false);
    expect(atLeast(V.mysql8022, 8, 0, 22)).toBe(true);
    expect(atLeast(V.mysql84, 8, 0, 23)).toBe(true);
    expect(atLeast(V.mysql57, 8, 0, 0)).toBe(false);
    expect(atLeast(V.mariadb1050, 10, 5, 1)).toBe(false);
    expect(atLeast(V.mariadb1051, 10, 5, 1)).toBe(true);
    expect(atLeast(V.mariadb1011, 10, 5, 1)).toBe(true);
  });
});

describe('statements per flavor and version', () => {
  const OLD_MYSQL = ['SHOW SLAVE STATUS', 'SHOW SLAVE HOSTS', 'START SLAVE', 'STOP SLAVE', 'RESET SLAVE ALL'];
  const NEW_MYSQL = ['SHOW REPLICA STATUS', 'SHOW REPLICAS', 'START REPLICA', 'STOP REPLICA', 'RESET REPLICA ALL'];
  const OLD_MARIADB = ['SHOW ALL SLAVES STATUS', 'SHOW SLAVE HOSTS', 'START SLAVE', 'STOP SLAVE', 'RESET SLAVE ALL'];
  const NEW_MARIADB = ['SHOW ALL SLAVES STATUS', 'SHOW REPLICA HOSTS', 'START REPLICA', 'STOP REPLICA', 'RESET REPLICA ALL'];
  it.each([
    ['MySQL 5.7.44', V.mysql57, OLD_MYSQL],
    ['MySQL 8.0.21', V.mysql8021, OLD_MYSQL],
    ['MySQL 8.0.22', V.mysql8022, NEW_MYSQL],
    ['MySQL 8.0.23', V.mysql8023, NEW_MYSQL],
    ['MySQL 8.4.3', V.mysql84, NEW_MYSQL],
    ['MariaDB 10.4.34', V.mariadb104, OLD_MARIADB],
    ['MariaDB 10.5.0', V.mariadb1050, OLD_MARIADB],
    ['MariaDB 10.5.1', V.mariadb1051, NEW_MARIADB],
    ['MariaDB 10.11.19', V.mariadb1011, NEW_MARIADB],
  ])('%s', (_label, v, [status, replicas, start, stop, reset]) => {
    expect(showReplicaStatus(v)).toBe(status);
    expect(showReplicas(v)).toBe(replicas);
    for (const [s, sql] of [
      [startReplica(v), start],
      [stopReplica(v), stop],
      [resetReplicaAll(v), reset],
    ] as const) {
      expect(s).toEqual({ sql, values: [], secret: [] });
      expect(displaySql(s)).toBe(sql);
    }
  });

  it.each([
    ['MySQL 5.7.44', V.mysql57, ['SET GLOBAL read_only = 1', 'SET GLOBAL super_read_only = 1'], ['SET GLOBAL super_read_only = 0', 'SET GLOBAL read_only = 0']],
    ['MySQL 8.4.3', V.mysql84, ['SET GLOBAL read_only = 1', 'SET GLOBAL super_read_only = 1'], ['SET GLOBAL super_read_only = 0', 'SET GLOBAL read_only = 0']],
    ['MariaDB 10.11.19', V.mariadb1011, ['SET GLOBAL read_only = 1'], ['SET GLOBAL read_only = 0']],
  ])('setReadOnly on %s', (_label, v, on, off) => {
    expect(setReadOnly(v, true).map(displaySql)).toEqual(on);
    expect(setReadOnly(v, false).map(displaySql)).toEqual(off);
  });

  it('probes the variables the parsers read, by name', () => {
    expect(PROBE_VARIABLES_SQL).toBe(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (${PROBE_VARIABLES.map((n) => `'${n}'`).join(', ')})`);
    for (const n of ['read_only', 'super_read_only', 'log_slave_updates', 'log_replica_updates', 'gtid_executed', 'gtid_current_pos', 'server_id']) {
      expect(PROBE_VARIABLES).toContain(n);
    }
  });
});

describe('changeSource', () => {
  const PASSWORD = "s3cr3t'pw";
  const p: SourceParams = { host: '127.0.0.11', port: 3306, user: 'repl', password: PASSWORD, connectRetry: 1, heartbeatPeriod: 1 };
  const MYSQL_OLD =
    "CHANGE MASTER TO MASTER_HOST='127.0.0.11', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', " +
    'MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1';
  const MYSQL_NEW =
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.11', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='****', " +
    'SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1';
  const MARIADB =
    "CHANGE MASTER TO MASTER_HOST='127.0.0.11', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', " +
    'MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1';

  it.each([
    ['MySQL 5.7.44', V.mysql57, MYSQL_OLD],
    ['MySQL 8.0.21', V.mysql8021, `${MYSQL_OLD}, GET_MASTER_PUBLIC_KEY=1`],
    ['MySQL 8.0.22', V.mysql8022, `${MYSQL_OLD}, GET_MASTER_PUBLIC_KEY=1`],
    ['MySQL 8.0.23', V.mysql8023, MYSQL_NEW],
    ['MySQL 8.4.3', V.mysql84, MYSQL_NEW],
    ['MariaDB 10.4.34', V.mariadb104, MARIADB],
    ['MariaDB 10.5.1', V.mariadb1051, MARIADB],
    ['MariaDB 10.11.19', V.mariadb1011, MARIADB],
  ])('%s', (_label, v, shown) => {
    const s = changeSource(v, p);
    expect(displaySql(s)).toBe(shown);
    expect(displaySql(s)).not.toContain('s3cr3t');
    // The statement itself carries the password as a bound value, marked secret.
    expect(s.sql).not.toContain('s3cr3t');
    expect(s.values).toEqual(['127.0.0.11', 3306, 'repl', PASSWORD, 1, 1]);
    expect(s.secret).toEqual([3]);
    expect(s.sql.split('?').length - 1).toBe(s.values.length);
  });

  it('shows the same text whatever the password is', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(V)), fc.string(), (v, password) => {
        expect(displaySql(changeSource(v, { ...p, password }))).toBe(displaySql(changeSource(v, { ...p, password: 'x' })));
      }),
    );
  });

  /** Reads one MySQL string literal (backslash escapes) starting at `text[at]`; returns its value and the index after it. */
  function readLiteral(text: string, at: number): { value: string; end: number } {
    expect(text[at]).toBe("'");
    const unescape: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };
    let value = '';
    for (let i = at + 1; i < text.length; i++) {
      const c = text[i] as string;
      if (c === '\\') {
        const e = text[++i] as string;
        value += unescape[e] ?? e;
      } else if (c === "'") {
        if (text[i + 1] === "'") {
          value += "'";
          i++;
        } else {
          return { value, end: i + 1 };
        }
      } else {
        value += c;
      }
    }
    throw new Error(`unterminated literal in ${text}`);
  }

  it.each([
    ["x'; DROP TABLE t; --"],
    ["x\\'; DROP TABLE t; --"],
    ['x"; DROP TABLE t; #\n'],
    ["'"],
    ['\\'],
  ])('renders the hostile host %j as one quoted literal', (host) => {
    for (const v of [V.mysql84, V.mysql8021, V.mariadb1011]) {
      const shown = displaySql(changeSource(v, { ...p, host, user: host }));
      const hostAt = shown.search(/(SOURCE|MASTER)_HOST=/) + 'SOURCE_HOST='.length;
      const lit = readLiteral(shown, hostAt);
      expect(lit.value).toBe(host);
      expect(shown.slice(lit.end)).toMatch(/^, (SOURCE|MASTER)_PORT=3306, (SOURCE|MASTER)_USER='/);
      const userAt = shown.search(/(SOURCE|MASTER)_USER=/) + 'SOURCE_USER='.length;
      const user = readLiteral(shown, userAt);
      expect(user.value).toBe(host);
      expect(shown.slice(user.end)).toMatch(/^, (SOURCE|MASTER)_PASSWORD='\*\*\*\*', /);
    }
  });

  it('escapes a hostile host exactly as mysql2 does', () => {
    expect(displaySql(changeSource(V.mysql84, { ...p, host: "x'; DROP TABLE t; --" }))).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST='x\\'; DROP TABLE t; --', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='****', " +
        'SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1',
    );
  });
});

describe('clientSessions (who a fence disconnects)', () => {
  it('keeps replication, server threads and topogit itself; returns the application sessions', () => {
    // Rows as MariaDB 10.11's information_schema.PROCESSLIST prints them on a primary.
    const rows = [
      { ID: 5, USER: 'system user', COMMAND: 'Daemon' },
      { ID: 12, USER: 'repl', COMMAND: 'Binlog Dump' },
      { ID: 13, USER: 'repl', COMMAND: 'Binlog Dump GTID' },
      { ID: 20, USER: 'topogit', COMMAND: 'Sleep' },
      { ID: 21, USER: 'app', COMMAND: 'Query' },
      { ID: 22, USER: 'app', COMMAND: 'Sleep' },
      { ID: 23, USER: 'root', COMMAND: 'Query' },
      { ID: 24, USER: 'event_scheduler', COMMAND: 'Daemon' },
      { ID: 25, USER: 'unauthenticated user', COMMAND: 'Connect' },
      { Id: 26, User: 'app2', Command: 'Query' },
    ];
    expect(clientSessions(rows, 'topogit')).toEqual([21, 22, 23, 26]);
  });
});

describe('readOnlyWriters (accounts status reports as able to write through read_only)', () => {
  it('leaves out topogit itself and local accounts', () => {
    const rows = [{ GRANTEE: "'app2'@'%'" }, { GRANTEE: "'root'@'localhost'" }, { GRANTEE: "'root'@'::1'" }, { GRANTEE: "'root'@'127.0.0.1'" }, { GRANTEE: "'topogit'@'%'" }, { GRANTEE: "'etl'@'10.0.%'" }, { GRANTEE: 'garbage' }];
    expect(readOnlyWriters(rows, 'topogit')).toEqual(["'app2'@'%'", "'etl'@'10.0.%'"]);
    expect(readOnlyWriters([...rows, { GRANTEE: "'root'@'db-7'" }], 'topogit', 'db-7')).toEqual(["'app2'@'%'", "'etl'@'10.0.%'"]);
  });
  it('asks for READ ONLY ADMIN, and SUPER only before MariaDB 10.11', () => {
    expect(readOnlyBypassSql(parseVersion('10.11.19-MariaDB-0+deb12u1'))).toContain(`& ${2 ** 33} <> 0`);
    expect(readOnlyBypassSql(parseVersion('10.6.16-MariaDB'))).toContain(`& ${2 ** 33 + 2 ** 15} <> 0`);
  });
});
