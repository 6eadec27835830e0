// The flavor-neutral model topogit reasons about. Plain data only: no connections, no clocks.
// Vocabulary: source/replica. Master_*/Slave_* names live only in the row parsers and SQL writers.
import type { RouterSpec } from './routing.js';

export type Flavor = 'mysql' | 'mariadb';
export type FlavorSetting = Flavor | 'auto';
export type Promotion = 'prefer' | 'neutral' | 'never';

/** Where a secret comes from. The secret itself is never stored in the model. */
export interface SecretRef {
  readonly user: string;
  readonly passwordEnv?: string;
  readonly passwordFile?: string;
}

export interface CredentialsSpec {
  readonly admin: SecretRef;
  readonly replication: SecretRef;
}

export interface InstanceSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Name of the desired source instance; undefined for the primary. */
  readonly source?: string;
  readonly promotion: Promotion;
}

/** The `failover:` block of a topology file, defaults applied. */
export interface FailoverSpec {
  readonly auto: boolean;
  readonly maxLagSeconds: number;
  readonly blockSeconds: number;
  readonly detection: { readonly intervalMs: number };
  readonly formerPrimary: 'rejoin' | 'fence';
  readonly reconcile: 'auto' | 'report';
  readonly hooks: { readonly preFailover: readonly string[]; readonly postFailover: readonly string[] };
  /** `majority`: automatic failover only when more than half of the primary's replicas confirm its death. */
  readonly quorum: 'majority' | 'any';
  /** STONITH: commands that power off or isolate the old primary; a failover without a majority proceeds only after they exit 0. */
  readonly fence: { readonly command: readonly string[]; readonly timeoutSeconds: number };
}

/** The `writeBack:` block of a topology file, defaults applied. */
export interface WriteBackSpec {
  readonly author: { readonly name: string; readonly email: string };
  readonly push: boolean;
}

/** One cluster as the topology file describes it, defaults applied. */
export interface ClusterSpec {
  readonly cluster: string;
  readonly flavor: FlavorSetting;
  readonly credentials: CredentialsSpec;
  /** In file order. */
  readonly instances: readonly InstanceSpec[];
  readonly failover: FailoverSpec;
  readonly writeBack: WriteBackSpec;
  /** Routers to keep in step with the primary (the file's `routing:`); absent when there are none. */
  readonly routing?: readonly RouterSpec[];
  /** The file it came from, relative to where topogit was pointed. */
  readonly file: string;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export type ThreadState = 'yes' | 'no' | 'connecting';

/** One replication channel as the replica reports it (SHOW REPLICA/SLAVE STATUS). */
export interface ReplicaStatus {
  readonly channel: string;
  readonly sourceHost: string;
  readonly sourcePort: number;
  readonly sourceUser: string;
  readonly sourceServerId?: number;
  readonly ioThread: ThreadState;
  readonly sqlThread: ThreadState;
  readonly lastIoErrno: number;
  readonly lastIoError: string;
  readonly lastSqlErrno: number;
  readonly lastSqlError: string;
  readonly secondsBehindSource: number | null;
  /** MySQL: Auto_Position=1. MariaDB: Using_Gtid is Slave_Pos or Current_Pos. */
  readonly gtidAutoPosition: boolean;
  /** MariaDB Using_Gtid: No | Slave_Pos | Current_Pos. */
  readonly usingGtid?: string;
  /** MySQL: Retrieved_Gtid_Set. MariaDB: Gtid_IO_Pos. */
  readonly retrievedGtid: string;
  /** MySQL: Executed_Gtid_Set as the replica reports it. */
  readonly executedGtid?: string;
  readonly connectRetry?: number;
  readonly heartbeatPeriod?: number;
  readonly sqlDelay?: number;
  /** Where the applier is in the relay log (Relay_Log_File / Relay_Log_Pos). */
  readonly relayLogFile?: string;
  readonly relayLogPos?: number;
}

/** A replica the server itself sees (SHOW REPLICAS / SHOW SLAVE HOSTS). */
export interface SeenReplica {
  readonly serverId: number;
  readonly host: string;
  readonly port: number;
}

/** GTID state. For MySQL `executed` is gtid_executed; for MariaDB it is gtid_current_pos. */
export interface GtidState {
  readonly executed: string;
  readonly purged?: string;
  readonly binlogPos?: string;
  /** MariaDB gtid_binlog_state: the last seq of every (domain, server_id) pair in the binlog. */
  readonly binlogState?: string;
  readonly slavePos?: string;
  readonly strictMode?: boolean;
  readonly mode?: string;
}

/** Everything one probe read from one server. */
export interface InstanceState {
  readonly version: string;
  readonly flavor: Flavor;
  readonly serverId: number;
  readonly serverUuid?: string;
  readonly hostname: string;
  readonly reportHost?: string;
  readonly reportPort?: number;
  readonly port: number;
  readonly readOnly: boolean;
  readonly superReadOnly?: boolean;
  readonly logBin: boolean;
  readonly logReplicaUpdates: boolean;
  readonly binlogFormat: string;
  readonly gtid: GtidState;
  readonly replication: readonly ReplicaStatus[];
  readonly seenReplicas: readonly SeenReplica[];
  /** Semi-synchronous replication, where the server has it. */
  readonly semiSync?: { readonly source: boolean; readonly replica: boolean; readonly newNames: boolean };
}

export type ProbeResult =
  | { readonly ok: true; readonly endpoint: Endpoint; readonly state: InstanceState; readonly ms: number }
  | {
      readonly ok: false;
      readonly endpoint: Endpoint;
      readonly error: string;
      readonly code: string;
      readonly ms: number;
      /** The server answered (an SQL error such as too many connections or access denied, or a
       *  query that timed out after the handshake): it is alive, whatever else is wrong. */
      readonly answered?: boolean;
    };

/** Proof of life: any answer from the server, even an error, means it is not dead. */
export function isAlive(p: ProbeResult | undefined): boolean {
  return p !== undefined && (p.ok || p.answered === true);
}

export function endpointKey(e: Endpoint): string {
  return `${e.host}:${e.port}`;
}
