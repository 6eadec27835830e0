// probe: one bounded read of everything topogit needs from one server. Never throws.
// The probe's statements are constants; with the server's version known (from the handshake, or
// a probe before) they go in one round trip: the variables, the replication status and, when
// asked, the replicas the server sees.
import mysql from 'mysql2';
import type { Endpoint, ProbeResult } from '../../core/model.js';
import { DEFAULT_TIMEOUTS, type Login, type Row, type Timeouts } from '../../core/ports.js';
import { parseVersion, PROBE_VARIABLES_SQL, showReplicas, showReplicaStatus, type ServerVersion } from './dialect.js';
import { parseInstanceState, parseVariables } from './rows.js';
import { tcpFrom, withDeadline } from './session.js';

export type ProbeStatementKind = 'variables' | 'replica-status' | 'replicas';

/**
 * A connection for probes only: several statements per query are allowed, and only the probe's
 * constants are ever sent. mysql2's callback API under a thin promise of our own (its promise
 * wrapper captures a stack trace per query: a tenth of a probe's CPU on large fleets).
 */
export interface ProbeConnection {
  query(sql: string, timeoutMs: number): Promise<unknown>;
  /** COM_QUIT; resolves when the server closed the connection. */
  end(): Promise<void>;
  destroy(): void;
  on(event: 'error', fn: (e: Error) => void): void;
  /** The socket closed (a FIN without an error, or after one). */
  onClose(fn: () => void): void;
  /** The version string of the server's handshake. */
  readonly serverVersion: string | undefined;
}

export function openProbeConnection(endpoint: Endpoint, login: Login, t: Timeouts, keepAlive = false): Promise<ProbeConnection> {
  const conn = mysql.createConnection({
    host: endpoint.host,
    port: endpoint.port,
    ...(t.localAddress ? { stream: tcpFrom(endpoint, t.localAddress) } : {}),
    user: login.user,
    password: login.password,
    connectTimeout: t.connectMs,
    // Rows are parsed by column name; keep big numbers (GTID seqs, positions) as strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    multipleStatements: true,
    // topogit never prepares statements; mysql2's default per-connection cache (16,000 entries)
    // costs about a third of the client's CPU per probe on large fleets.
    maxPreparedStatements: 1,
    ...(keepAlive ? { enableKeepAlive: true } : {}),
  });
  const wrapped: ProbeConnection = {
    query: (sql, timeoutMs) => new Promise((resolve, reject) => conn.query({ sql, timeout: timeoutMs }, (e, rows) => (e ? reject(e) : resolve(rows)))),
    end: () => new Promise((resolve) => conn.end(() => resolve())),
    destroy: () => conn.destroy(),
    on: (event, fn) => void conn.on(event, fn),
    onClose: (fn) => void (conn as unknown as { stream: NodeJS.EventEmitter }).stream.on('close', fn),
    get serverVersion() {
      return (conn as unknown as { _handshakePacket?: { serverVersion?: string } })._handshakePacket?.serverVersion;
    },
  };
  const connecting = new Promise<ProbeConnection>((resolve, reject) => {
    conn.once('connect', () => resolve(wrapped));
    conn.once('error', (e: Error) => reject(e));
  });
  // A server gone after the handshake, with no query waiting, must not crash the process.
  conn.on('error', () => undefined);
  return withDeadline(connecting, t.connectMs + 200, `connect to ${endpoint.host}:${endpoint.port}`, (late) => late.destroy());
}

/**
 * The server's version as its handshake gave it: MariaDB before 11 prefixes it with "5.5.5-" (for
 * old clients); the real one follows. Undefined when mysql2 does not expose it.
 */
export function handshakeVersion(conn: ProbeConnection): ServerVersion | undefined {
  const text = conn.serverVersion;
  if (!text) return undefined;
  return parseVersion(text.replace(/^5\.5\.5-(?=.*mariadb)/i, ''));
}

/**
 * Asks the probe's statements: in one round trip when the version is known, else the variables
 * first (they give the version, which decides the words of the others). `replicas` false leaves
 * SHOW REPLICAS out (its rows then come back empty).
 */
export async function askProbe(
  conn: ProbeConnection,
  known: ServerVersion | undefined,
  t: Timeouts,
  replicas: boolean,
  count: (kind: ProbeStatementKind) => void = () => undefined,
): Promise<{ rows: [Row[], Row[], Row[]]; version: ServerVersion }> {
  const ask = (sql: string) => conn.query(sql, t.queryMs);
  if (known === undefined) {
    const varRows = (await ask(PROBE_VARIABLES_SQL)) as Row[];
    count('variables');
    const vars = parseVariables(varRows);
    const version = parseVersion(vars.get('version') ?? '', vars.get('version_comment') ?? '');
    const statusRows = (await ask(showReplicaStatus(version))) as Row[];
    count('replica-status');
    const replicaRows = replicas ? ((await ask(showReplicas(version))) as Row[]) : [];
    if (replicas) count('replicas');
    return { rows: [varRows, statusRows, replicaRows], version };
  }
  const results = (await ask([PROBE_VARIABLES_SQL, showReplicaStatus(known), ...(replicas ? [showReplicas(known)] : [])].join('; '))) as Row[][];
  count('variables');
  count('replica-status');
  if (replicas) count('replicas');
  // The variables say exactly what the server is (a handshake may not tell MySQL forks apart).
  const vars = parseVariables(results[0] ?? []);
  const version = parseVersion(vars.get('version') ?? '', vars.get('version_comment') ?? '');
  return { rows: [results[0] ?? [], results[1] ?? [], results[2] ?? []], version };
}

/** A probe on a connection of its own: opened, asked in one round trip, closed. */
export async function probe(endpoint: Endpoint, login: Login, timeouts: Timeouts = DEFAULT_TIMEOUTS): Promise<ProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let conn: ProbeConnection;
  try {
    conn = await openProbeConnection(endpoint, login, timeouts);
  } catch (e) {
    return { ok: false, endpoint, ...describeError(e), ms: ms(), ...(serverAnswered(e) ? { answered: true } : {}) };
  }
  try {
    const { rows } = await askProbe(conn, handshakeVersion(conn), timeouts, true);
    return { ok: true, endpoint, state: parseInstanceState(...rows), ms: ms() };
  } catch (e) {
    // The handshake succeeded: whatever failed after it, the server is alive.
    return { ok: false, endpoint, ...describeError(e), ms: ms(), answered: true };
  } finally {
    // COM_QUIT, without waiting for the server to close: the answer is in, the next probe need not wait.
    withDeadline(conn.end(), 500, 'close', () => undefined).catch(() => conn.destroy());
  }
}

/**
 * Did the server itself answer? Server errors carry an errno below 2000 (ER_CON_COUNT_ERROR 1040,
 * ER_ACCESS_DENIED_ERROR 1045, ER_HOST_IS_BLOCKED 1129, ...); client-side failures (refused, reset,
 * timed out) carry a negative errno or none. https://mariadb.com/kb/en/mariadb-error-codes/
 */
export function serverAnswered(e: unknown): boolean {
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno > 0 && errno < 2000;
}

/** A one-line reason and a stable code; never the password (mysql2 does not echo it). */
export function describeError(e: unknown): { error: string; code: string } {
  const err = e as { code?: string; message?: string; sqlMessage?: string };
  const code = err.code ?? 'EUNKNOWN';
  const text = (err.sqlMessage ?? err.message ?? String(e)).split('\n')[0] ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return { code, error: 'connection refused' };
    case 'ETIMEDOUT':
    case 'PROTOCOL_SEQUENCE_TIMEOUT':
      return { code: 'ETIMEDOUT', error: /timed? ?out/i.test(text) ? text : `timed out: ${text}` };
    case 'ECONNRESET':
    case 'PROTOCOL_CONNECTION_LOST':
      return { code, error: 'connection lost' };
    default:
      return { code, error: text };
  }
}
