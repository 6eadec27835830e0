// A thin wrapper over one mysql2 connection with a connect deadline and a per-query timeout.
// A frozen server (SIGSTOP) accepts TCP in the kernel but never answers: every wait is bounded.
import net from 'node:net';
import mysql from 'mysql2/promise';
import type { Endpoint } from '../../core/model.js';
import { DEFAULT_TIMEOUTS, type Login, type Row, type Session, type Timeouts } from '../../core/ports.js';

export interface ConnectOptions {
  readonly socketPath?: string;
}

export async function openSession(
  endpoint: Endpoint,
  login: Login,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
  opts: ConnectOptions = {},
): Promise<Session> {
  const connecting = mysql.createConnection({
    host: endpoint.host,
    port: endpoint.port,
    ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
    ...(timeouts.localAddress && !opts.socketPath ? { stream: tcpFrom(endpoint, timeouts.localAddress) } : {}),
    user: login.user,
    password: login.password,
    connectTimeout: timeouts.connectMs,
    // Rows are parsed by column name; keep big numbers (GTID seqs, positions) as strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    multipleStatements: false,
    // topogit never prepares statements; mysql2's default per-connection cache (16,000 entries)
    // costs about a third of the client's CPU per probe on large fleets.
    maxPreparedStatements: 1,
  });
  const conn = await withDeadline(connecting, timeouts.connectMs + 200, `connect to ${endpoint.host}:${endpoint.port}`, (c) => {
    c.destroy();
  });
  // A connection error after the handshake (server killed) must not crash the process.
  conn.on('error', () => undefined);
  return {
    async query(sql, values, timeoutMs) {
      const [rows] = await conn.query({ sql, values: values as unknown[] | undefined, timeout: timeoutMs ?? timeouts.queryMs });
      return Array.isArray(rows) ? (rows as Row[]) : [];
    },
    async close() {
      try {
        await withDeadline(conn.end(), 500, 'close', () => undefined);
      } catch {
        conn.destroy();
      }
    },
  };
}

/**
 * A TCP connection that leaves from `localAddress` (`--local-address`): mysql2 accepts the option
 * but does not pass it to the socket, so topogit opens the socket itself.
 */
export function tcpFrom(endpoint: Endpoint, localAddress: string): () => net.Socket {
  return () => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port, localAddress });
    socket.setNoDelay(true);
    return socket;
  };
}

/** Rejects after `ms`; if the promise settles later with a value, `cleanup` disposes of it. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, cleanup: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      const err = new Error(`${what}: timed out after ${ms} ms`) as Error & { code: string };
      err.code = 'ETIMEDOUT';
      reject(err);
    }, ms);
    p.then(
      (v) => {
        if (done) cleanup(v);
        else {
          done = true;
          clearTimeout(timer);
          resolve(v);
        }
      },
      (e: unknown) => {
        if (!done) {
          done = true;
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      },
    );
  });
}
