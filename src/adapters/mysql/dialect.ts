// Flavor- and version-specific SQL. The only place (with rows.ts) where MASTER/SLAVE words live.
// MySQL: SHOW REPLICA STATUS, START/STOP REPLICA and SHOW REPLICAS since 8.0.22; CHANGE REPLICATION
//   SOURCE TO since 8.0.23; 8.4 removed the old statements.
//   https://dev.mysql.com/doc/refman/8.4/en/replication-statements-replica.html
// MariaDB: CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos; SHOW ALL SLAVES STATUS lists every
//   connection (multi-source); SHOW REPLICA HOSTS since 10.5.1.
//   https://mariadb.com/kb/en/change-master-to/
import mysql from 'mysql2/promise';
import type { Flavor } from '../../core/model.js';

/** A statement with its parameters; secrets are masked when it is displayed. */
export interface Statement {
  readonly sql: string;
  readonly values: readonly unknown[];
  /** Indexes into `values` that are secrets. */
  readonly secret: readonly number[];
}

export function stmt(sql: string, values: readonly unknown[] = [], secret: readonly number[] = []): Statement {
  return { sql, values, secret };
}

/** The statement as text, with secrets replaced by '****'. Safe for logs, plans and commits. */
export function displaySql(s: Statement): string {
  const shown = s.values.map((v, i) => (s.secret.includes(i) ? '****' : v));
  return mysql.format(s.sql, shown as Parameters<typeof mysql.format>[1]);
}

export interface ServerVersion {
  readonly flavor: Flavor;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

export function parseVersion(version: string, versionComment = ''): ServerVersion {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  const flavor: Flavor = /mariadb/i.test(version) || /mariadb/i.test(versionComment) ? 'mariadb' : 'mysql';
  if (!m) return { flavor, major: 0, minor: 0, patch: 0 };
  return { flavor, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

export function atLeast(v: ServerVersion, major: number, minor: number, patch: number): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

const mysqlNewWords = (v: ServerVersion) => v.flavor === 'mysql' && atLeast(v, 8, 0, 22);

export function showReplicaStatus(v: ServerVersion): string {
  if (v.flavor === 'mariadb') return 'SHOW ALL SLAVES STATUS';
  return mysqlNewWords(v) ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}

export function showReplicas(v: ServerVersion): string {
  if (v.flavor === 'mariadb') return atLeast(v, 10, 5, 1) ? 'SHOW REPLICA HOSTS' : 'SHOW SLAVE HOSTS';
  return mysqlNewWords(v) ? 'SHOW REPLICAS' : 'SHOW SLAVE HOSTS';
}

export function startReplica(v: ServerVersion): Statement {
  if (v.flavor === 'mariadb') return stmt(atLeast(v, 10, 5, 1) ? 'START REPLICA' : 'START SLAVE');
  return stmt(mysqlNewWords(v) ? 'START REPLICA' : 'START SLAVE');
}

export function stopReplica(v: ServerVersion): Statement {
  if (v.flavor === 'mariadb') return stmt(atLeast(v, 10, 5, 1) ? 'STOP REPLICA' : 'STOP SLAVE');
  return stmt(mysqlNewWords(v) ? 'STOP REPLICA' : 'STOP SLAVE');
}

/** Stops only the receiver, so a half-dead source cannot feed more; the applier drains what arrived. */
export function stopIoThread(v: ServerVersion): Statement {
  const replica = v.flavor === 'mariadb' ? atLeast(v, 10, 5, 1) : mysqlNewWords(v);
  return stmt(replica ? 'STOP REPLICA IO_THREAD' : 'STOP SLAVE IO_THREAD');
}

export function startSqlThread(v: ServerVersion): Statement {
  const replica = v.flavor === 'mariadb' ? atLeast(v, 10, 5, 1) : mysqlNewWords(v);
  return stmt(replica ? 'START REPLICA SQL_THREAD' : 'START SLAVE SQL_THREAD');
}

/** Forgets the replication configuration entirely (the replica becomes a primary). */
export function resetReplicaAll(v: ServerVersion): Statement {
  if (v.flavor === 'mariadb') return stmt(atLeast(v, 10, 5, 1) ? 'RESET REPLICA ALL' : 'RESET SLAVE ALL');
  return stmt(mysqlNewWords(v) ? 'RESET REPLICA ALL' : 'RESET SLAVE ALL');
}

/**
 * Sets only the replica's delay, keeping its relay log: MariaDB deletes the relay log on any
 * CHANGE MASTER unless RELAY_LOG_FILE/RELAY_LOG_POS are given (then positions become file-based:
 * `resumeGtidPositioning` puts GTID positioning back once the relay log is applied). MySQL keeps
 * the relay log when only the applier's delay changes (SOURCE_DELAY with auto-positioning).
 * Both threads must be stopped. https://mariadb.com/kb/en/change-master-to/#relay_log_file
 */
export function setReplicaDelay(v: ServerVersion, seconds: number, relayLog?: { file: string; pos: number }): Statement {
  if (v.flavor === 'mysql') return stmt(atLeast(v, 8, 0, 23) ? 'CHANGE REPLICATION SOURCE TO SOURCE_DELAY=?' : 'CHANGE MASTER TO MASTER_DELAY=?', [seconds]);
  if (!relayLog) return stmt('CHANGE MASTER TO MASTER_DELAY=?', [seconds]);
  return stmt('CHANGE MASTER TO MASTER_DELAY=?, RELAY_LOG_FILE=?, RELAY_LOG_POS=?', [seconds, relayLog.file, relayLog.pos]);
}

/** MariaDB, after a relay log was applied with file positions: back to GTID positioning, with the replica's own delay. */
export function resumeGtidPositioning(v: ServerVersion, delaySeconds: number): Statement {
  if (v.flavor === 'mysql') return setReplicaDelay(v, delaySeconds);
  return stmt('CHANGE MASTER TO MASTER_USE_GTID=slave_pos, MASTER_DELAY=?', [delaySeconds]);
}

export function stopSqlThread(v: ServerVersion): Statement {
  const replica = v.flavor === 'mariadb' ? atLeast(v, 10, 5, 1) : mysqlNewWords(v);
  return stmt(replica ? 'STOP REPLICA SQL_THREAD' : 'STOP SLAVE SQL_THREAD');
}

export interface SourceParams {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Seconds between reconnection attempts. */
  readonly connectRetry: number;
  /** Seconds; the source sends a heartbeat when idle this long, so a dead link is noticed. */
  readonly heartbeatPeriod: number;
  /** MASTER_DELAY / SOURCE_DELAY in seconds; absent: the replica keeps the delay it has. */
  readonly delay?: number;
}

/** Points a (stopped) replica at a source with GTID auto-positioning. */
export function changeSource(v: ServerVersion, p: SourceParams): Statement {
  if (v.flavor === 'mariadb') {
    return stmt(
      'CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, ' +
        'MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=?, MASTER_HEARTBEAT_PERIOD=?' +
        (p.delay !== undefined ? ', MASTER_DELAY=?' : ''),
      [p.host, p.port, p.user, p.password, p.connectRetry, p.heartbeatPeriod, ...(p.delay !== undefined ? [p.delay] : [])],
      [3],
    );
  }
  // caching_sha2_password without TLS needs the source's RSA key (MySQL 8.0+).
  const publicKey = atLeast(v, 8, 0, 0);
  if (atLeast(v, 8, 0, 23)) {
    return stmt(
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST=?, SOURCE_PORT=?, SOURCE_USER=?, SOURCE_PASSWORD=?, ' +
        'SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=?, SOURCE_HEARTBEAT_PERIOD=?' +
        (publicKey ? ', GET_SOURCE_PUBLIC_KEY=1' : '') +
        (p.delay !== undefined ? ', SOURCE_DELAY=?' : ''),
      [p.host, p.port, p.user, p.password, p.connectRetry, p.heartbeatPeriod, ...(p.delay !== undefined ? [p.delay] : [])],
      [3],
    );
  }
  return stmt(
    'CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, ' +
      'MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=?, MASTER_HEARTBEAT_PERIOD=?' +
      (publicKey ? ', GET_MASTER_PUBLIC_KEY=1' : '') +
      (p.delay !== undefined ? ', MASTER_DELAY=?' : ''),
    [p.host, p.port, p.user, p.password, p.connectRetry, p.heartbeatPeriod, ...(p.delay !== undefined ? [p.delay] : [])],
    [3],
  );
}

export function setReadOnly(v: ServerVersion, readOnly: boolean): Statement[] {
  // super_read_only exists on MySQL 5.7.8+ only; turning read_only off turns it off too.
  const superRo = v.flavor === 'mysql' && atLeast(v, 5, 7, 8);
  if (superRo && readOnly) return [stmt('SET GLOBAL read_only = 1'), stmt('SET GLOBAL super_read_only = 1')];
  if (superRo) return [stmt('SET GLOBAL super_read_only = 0'), stmt('SET GLOBAL read_only = 0')];
  return [stmt(`SET GLOBAL read_only = ${readOnly ? 1 : 0}`)];
}

/** The variables one probe reads; SHOW GLOBAL VARIABLES simply omits those a server lacks. */
export const PROBE_VARIABLES = [
  'version',
  'version_comment',
  'server_id',
  'server_uuid',
  'hostname',
  'port',
  'report_host',
  'report_port',
  'read_only',
  'super_read_only',
  'log_bin',
  'log_slave_updates',
  'log_replica_updates',
  'binlog_format',
  'gtid_mode',
  'gtid_executed',
  'gtid_purged',
  'gtid_current_pos',
  'gtid_binlog_pos',
  'gtid_binlog_state',
  'gtid_slave_pos',
  'gtid_strict_mode',
  // Semi-synchronous replication (built into MariaDB since 10.3; a plugin on MySQL).
  'rpl_semi_sync_master_enabled',
  'rpl_semi_sync_slave_enabled',
  'rpl_semi_sync_source_enabled',
  'rpl_semi_sync_replica_enabled',
] as const;

export const PROBE_VARIABLES_SQL = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${PROBE_VARIABLES.map((n) => `'${n}'`).join(', ')})`;

/**
 * Semi-sync follows the role: a semi-sync replica that becomes the primary waits for its replicas'
 * acknowledgements, and a server that becomes a replica stops waiting for acknowledgements itself
 * (with log_slave_updates its applier would wait for replicas it does not have).
 * MySQL 8.0.26+ names the variables source/replica; MariaDB and older MySQL master/slave.
 */
export function setSemiSyncSource(v: ServerVersion, on: boolean, newNames: boolean): Statement {
  const name = v.flavor === 'mysql' && newNames ? 'rpl_semi_sync_source_enabled' : 'rpl_semi_sync_master_enabled';
  return stmt(`SET GLOBAL ${name} = ${on ? 1 : 0}`);
}

/** Every session but this one: who would still be connected to a server being fenced. */
export const PROCESSLIST_SQL = 'SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()';

export function killConnection(id: number): Statement {
  return stmt('KILL CONNECTION ?', [id]);
}

/**
 * MariaDB only: before a server that replicates from nobody is pointed at a source with
 * MASTER_USE_GTID=slave_pos, its replication position becomes the end of its own binlog
 * (gtid_binlog_pos holds everything it applied or wrote, with log_slave_updates).
 * https://mariadb.com/kb/en/gtid/#setting-up-a-new-replica-server-with-global-transaction-id
 */
export function adoptBinlogPosition(v: ServerVersion, replicatesFromNobody: boolean): Statement | undefined {
  if (v.flavor !== 'mariadb' || !replicatesFromNobody) return undefined;
  return stmt('SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos');
}

/**
 * MariaDB: accounts that can write on a server with read_only=ON: READ ONLY ADMIN (bit 33 of
 * mysql.global_priv's access mask), and SUPER (bit 15) before 10.11, where SUPER stopped
 * implying it. Needs SELECT on mysql.global_priv; without it the query fails (nothing is said).
 * https://mariadb.com/kb/en/grant/#read_only-admin
 */
export function readOnlyBypassSql(v: ServerVersion): string {
  const mask = 2 ** 33 + (atLeast(v, 10, 11, 0) ? 0 : 2 ** 15);
  return `SELECT CONCAT('''', User, '''@''', Host, '''') AS GRANTEE FROM mysql.global_priv WHERE CAST(JSON_VALUE(Priv, '$.access') AS UNSIGNED) & ${mask} <> 0 ORDER BY 1`;
}

