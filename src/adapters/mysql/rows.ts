// Pure parsers from server rows to the flavor-neutral model. Rows are read by column name and both
// vocabularies are accepted: MySQL 8.0.22+ says Source_Host / Replica_IO_Running, older MySQL and
// MariaDB say Master_Host / Slave_IO_Running. Column order differs between versions; never rely on it.
// https://dev.mysql.com/doc/refman/8.4/en/show-replica-status.html
// https://mariadb.com/kb/en/show-replica-status/
import type { Flavor, GtidState, InstanceState, ReplicaStatus, SeenReplica, ThreadState } from '../../core/model.js';
import { parseVersion } from './dialect.js';
import type { Row } from '../../core/ports.js';

export type Variables = ReadonlyMap<string, string>;

/** SHOW GLOBAL VARIABLES rows (Variable_name, Value) to a map with lower-case names. */
export function parseVariables(rows: readonly Row[]): Variables {
  const m = new Map<string, string>();
  for (const r of rows) {
    const name = str(col(r, 'Variable_name'));
    if (name) m.set(name.toLowerCase(), str(col(r, 'Value')));
  }
  return m;
}

/** Case-insensitive column lookup trying each alternative name in turn. */
function col(r: Row, ...names: string[]): unknown {
  for (const n of names) {
    if (n in r) return r[n];
  }
  const lower = lowerCaseColumns(r);
  for (const n of names) {
    const k = lower.get(n.toLowerCase());
    if (k !== undefined) return r[k];
  }
  return undefined;
}

/** Each row's columns by lower-case name, built once per row (a replica status row has ~60). */
const lowerCaseIndex = new WeakMap<Row, ReadonlyMap<string, string>>();
function lowerCaseColumns(r: Row): ReadonlyMap<string, string> {
  let m = lowerCaseIndex.get(r);
  if (!m) {
    m = new Map(Object.keys(r).map((k) => [k.toLowerCase(), k]));
    lowerCaseIndex.set(r, m);
  }
  return m;
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return JSON.stringify(v);
}

function int(v: unknown): number | undefined {
  const s = str(v).trim();
  if (s === '' || s.toUpperCase() === 'NULL') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** ON/1/YES/TRUE. */
function flag(v: string | undefined): boolean {
  return v !== undefined && /^(on|1|yes|true)$/i.test(v.trim());
}

function thread(v: unknown): ThreadState {
  const s = str(v).trim().toLowerCase();
  if (s === 'yes') return 'yes';
  if (s === 'connecting' || s === 'preparing') return 'connecting';
  return 'no';
}

/** GTID text from the server may hold newlines after commas (MySQL); keep it as one line. */
function gtidText(v: unknown): string {
  return str(v).replace(/\s+/g, '');
}

/** One row of SHOW REPLICA STATUS / SHOW SLAVE STATUS / SHOW ALL SLAVES STATUS. */
export function parseReplicaStatusRow(r: Row): ReplicaStatus {
  const usingGtid = str(col(r, 'Using_Gtid'));
  const autoPosition = int(col(r, 'Auto_Position'));
  const executed = col(r, 'Executed_Gtid_Set');
  const connectRetry = int(col(r, 'Connect_Retry'));
  const heartbeat = int(col(r, 'Slave_heartbeat_period', 'Heartbeat_Period'));
  const sqlDelay = int(col(r, 'SQL_Delay'));
  const relayLogFile = str(col(r, 'Relay_Log_File'));
  const relayLogPos = int(col(r, 'Relay_Log_Pos'));
  const sourceServerId = int(col(r, 'Source_Server_Id', 'Master_Server_Id'));
  return {
    channel: str(col(r, 'Channel_Name', 'Connection_name')),
    sourceHost: str(col(r, 'Source_Host', 'Master_Host')),
    sourcePort: int(col(r, 'Source_Port', 'Master_Port')) ?? 3306,
    sourceUser: str(col(r, 'Source_User', 'Master_User')),
    ...(sourceServerId !== undefined ? { sourceServerId } : {}),
    ioThread: thread(col(r, 'Replica_IO_Running', 'Slave_IO_Running')),
    sqlThread: thread(col(r, 'Replica_SQL_Running', 'Slave_SQL_Running')),
    lastIoErrno: int(col(r, 'Last_IO_Errno')) ?? 0,
    lastIoError: str(col(r, 'Last_IO_Error')),
    lastSqlErrno: int(col(r, 'Last_SQL_Errno')) ?? 0,
    lastSqlError: str(col(r, 'Last_SQL_Error')),
    secondsBehindSource: int(col(r, 'Seconds_Behind_Source', 'Seconds_Behind_Master')) ?? null,
    gtidAutoPosition: autoPosition === 1 || /^(slave_pos|current_pos)$/i.test(usingGtid),
    ...(usingGtid ? { usingGtid } : {}),
    retrievedGtid: gtidText(col(r, 'Retrieved_Gtid_Set', 'Gtid_IO_Pos')),
    ...(executed !== undefined ? { executedGtid: gtidText(executed) } : {}),
    ...(connectRetry !== undefined ? { connectRetry } : {}),
    ...(heartbeat !== undefined ? { heartbeatPeriod: heartbeat } : {}),
    ...(sqlDelay !== undefined ? { sqlDelay } : {}),
    ...(relayLogFile ? { relayLogFile } : {}),
    ...(relayLogPos !== undefined ? { relayLogPos } : {}),
  };
}

/** SHOW REPLICAS / SHOW SLAVE HOSTS / SHOW REPLICA HOSTS rows. */
export function parseSeenReplicas(rows: readonly Row[]): SeenReplica[] {
  return rows.map((r) => ({
    serverId: int(col(r, 'Server_Id', 'Server_id')) ?? 0,
    host: str(col(r, 'Host')),
    port: int(col(r, 'Port')) ?? 3306,
  }));
}

export function flavorOf(vars: Variables): Flavor {
  return parseVersion(vars.get('version') ?? '', vars.get('version_comment') ?? '').flavor;
}

function parseGtidState(flavor: Flavor, vars: Variables): GtidState {
  if (flavor === 'mariadb') {
    return {
      executed: gtidText(vars.get('gtid_current_pos')),
      binlogPos: gtidText(vars.get('gtid_binlog_pos')),
      binlogState: gtidText(vars.get('gtid_binlog_state')),
      slavePos: gtidText(vars.get('gtid_slave_pos')),
      strictMode: flag(vars.get('gtid_strict_mode')),
    };
  }
  const mode = vars.get('gtid_mode');
  return {
    executed: gtidText(vars.get('gtid_executed')),
    purged: gtidText(vars.get('gtid_purged')),
    ...(mode !== undefined ? { mode } : {}),
  };
}

/** Assembles one probe's rows into the model. */
export function parseInstanceState(variableRows: readonly Row[], statusRows: readonly Row[], replicaRows: readonly Row[]): InstanceState {
  const vars = parseVariables(variableRows);
  const flavor = flavorOf(vars);
  const superReadOnly = vars.get('super_read_only');
  const reportHost = vars.get('report_host');
  const reportPort = int(vars.get('report_port'));
  const serverUuid = vars.get('server_uuid');
  const replication = statusRows
    .map(parseReplicaStatusRow)
    // A MariaDB connection left configured with no host (after RESET SLAVE) is not a channel.
    .filter((s) => s.sourceHost !== '');
  return {
    version: vars.get('version') ?? '',
    flavor,
    serverId: int(vars.get('server_id')) ?? 0,
    ...(serverUuid ? { serverUuid } : {}),
    hostname: vars.get('hostname') ?? '',
    ...(reportHost ? { reportHost } : {}),
    ...(reportPort ? { reportPort } : {}),
    port: int(vars.get('port')) ?? 3306,
    readOnly: flag(vars.get('read_only')),
    ...(superReadOnly !== undefined ? { superReadOnly: flag(superReadOnly) } : {}),
    logBin: flag(vars.get('log_bin')),
    logReplicaUpdates: flag(vars.get('log_replica_updates') ?? vars.get('log_slave_updates')),
    binlogFormat: vars.get('binlog_format') ?? '',
    gtid: parseGtidState(flavor, vars),
    replication,
    seenReplicas: parseSeenReplicas(replicaRows),
    ...semiSync(vars),
  };
}

function semiSync(vars: Variables): { semiSync?: { source: boolean; replica: boolean; newNames: boolean } } {
  const newNames = vars.has('rpl_semi_sync_source_enabled') || vars.has('rpl_semi_sync_replica_enabled');
  const src = vars.get('rpl_semi_sync_source_enabled') ?? vars.get('rpl_semi_sync_master_enabled');
  const rep = vars.get('rpl_semi_sync_replica_enabled') ?? vars.get('rpl_semi_sync_slave_enabled');
  if (src === undefined && rep === undefined) return {};
  return { semiSync: { source: flag(src), replica: flag(rep), newNames } };
}

/** Commands of sessions that are not clients: replication (both sides) and the server's own threads. */
const NOT_CLIENTS = new Set(['binlog dump', 'binlog dump gtid', 'slave_io', 'slave_sql', 'slave_worker', 'daemon', 'connect', 'killed']);

/**
 * The client sessions among PROCESSLIST rows: not replication, not a server thread (user `system
 * user`, `event_scheduler`), not topogit's own admin user (its other probes and commands).
 */
export function clientSessions(rows: readonly Row[], adminUser: string): number[] {
  return rows.flatMap((r) => {
    const id = Number(col(r, 'ID', 'Id'));
    const user = String(col(r, 'USER', 'User') ?? '');
    const command = String(col(r, 'COMMAND', 'Command') ?? '').toLowerCase();
    if (!Number.isSafeInteger(id) || id <= 0) return [];
    if (NOT_CLIENTS.has(command) || user === 'system user' || user === 'event_scheduler' || user === adminUser) return [];
    return [id];
  });
}

/**
 * The accounts among the rows of readOnlyBypassSql (GRANTEE `'user'@'host'`) that matter for a
 * fence: not topogit's own login (it needs the privilege) and not a local account (an operator on
 * the server's own host); an application account that can write through read_only is what to report.
 */
export function readOnlyWriters(rows: readonly Row[], adminUser: string, serverHostname = ''): string[] {
  // mariadb-install-db also creates root@<the server's hostname>: as local as root@localhost.
  const local = new Set(['localhost', '127.0.0.1', '::1', ...(serverHostname ? [serverHostname] : [])]);
  return rows.flatMap((r) => {
    const g = String(col(r, 'GRANTEE') ?? '');
    const m = /^'(.*)'@'(.*)'$/.exec(g);
    if (!m || m[1] === adminUser || local.has(m[2] as string)) return [];
    return [g];
  });
}

