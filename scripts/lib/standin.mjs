// A protocol-level stand-in for a fleet of MariaDB 10.11 servers, for benchmarks at fleet sizes
// this machine cannot run for real. Each stand-in listens on its own port and is mysql2's server
// side (a Connection with isServer, as mysql.createServer() builds it): it speaks the client/server
// protocol (handshake, COM_QUERY, COM_QUIT) and answers exactly the three statements topogit's probe sends to a MariaDB server
// (src/adapters/mysql/probe.ts, dialect.ts):
//   SHOW GLOBAL VARIABLES WHERE Variable_name IN (...)   -> (Variable_name, Value)
//   SHOW ALL SLAVES STATUS                                -> the MariaDB columns of a real capture
//   SHOW REPLICA HOSTS                                    -> (Server_id, Host, Port, Master_id)
// The rows are modelled on test/fixtures/rows/mariadb-10.11-*.json, captured from a real
// 10.11.19 server; only the identities (server id, host, port, source) change per stand-in.
// Anything else gets ER_NOT_SUPPORTED_YET, so a probe that starts sending something new fails
// loudly instead of being measured against a fiction.
//
// It is a stand-in, not a server: no storage, no replication, no real authentication unless
// `password` is given (then mysql_native_password is verified). Results measured with it are
// "simulated" and must be labelled so.
//
// Library:  const fleet = await startStandins({ count: 300, basePort: 23000 }); ...; await fleet.stop();
// Process:  node scripts/lib/standin.mjs --count 3000 --base-port 23000 [--latency-ms 0]
//           prints one JSON line {"ready":true,...} on stdout; stops on SIGTERM/SIGINT or stdin EOF.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2';

const fixture = (name) => JSON.parse(readFileSync(fileURLToPath(new URL(`../../test/fixtures/rows/${name}`, import.meta.url)), 'utf8'));
const PRIMARY = fixture('mariadb-10.11-primary.json');
const REPLICA = fixture('mariadb-10.11-replica-ok.json');

// mysql2 protocol constants (lib/constants/client.js, types.js, charsets.js).
const CLIENT = {
  LONG_PASSWORD: 0x1, FOUND_ROWS: 0x2, LONG_FLAG: 0x4, CONNECT_WITH_DB: 0x8, PROTOCOL_41: 0x200,
  TRANSACTIONS: 0x2000, SECURE_CONNECTION: 0x8000, MULTI_RESULTS: 0x20000, PLUGIN_AUTH: 0x80000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
};
// No SSL, COMPRESS, SESSION_TRACK or DEPRECATE_EOF: result sets end with plain EOF packets.
const CAPABILITIES = Object.values(CLIENT).reduce((a, b) => a | b, 0);
const UTF8_GENERAL_CI = 33;
const TYPE_LONGLONG = 8;
const TYPE_VAR_STRING = 253;
const ER_ACCESS_DENIED = 1045;
const ER_NOT_SUPPORTED_YET = 1235;
const VERSION = PRIMARY.variables.find((r) => r.Variable_name === 'version')?.Value ?? '10.11.19-MariaDB-log';

/**
 * The default tree: instance 0 is the primary; 1/10 of the fleet (instances 1..m, m = floor(count/10))
 * are intermediate sources replicating from 0; every other instance i replicates from i mod (m+1),
 * so leaves hang both under the primary and under each intermediate (depth 2). Returns parents,
 * with parents[0] = -1.
 */
export function standinTree(count) {
  const m = Math.floor(count / 10);
  return Array.from({ length: count }, (_, i) => (i === 0 ? -1 : i <= m ? 0 : i % (m + 1)));
}

// mysql_native_password: token = SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); the server keeps SHA1(SHA1(pw)).
const sha1 = (...parts) => { const h = createHash('sha1'); for (const p of parts) h.update(p); return h.digest(); };
const doubleSha1 = (pw) => sha1(sha1(Buffer.from(pw, 'utf8')));
function verifyNativePassword(scramble1, scramble2, token, stored) {
  if (!token || token.length !== 20) return false;
  const mask = sha1(scramble1, scramble2, stored);
  const stage1 = Buffer.from(token.map((b, k) => b ^ mask[k]));
  return sha1(stage1).equals(stored);
}

function column(name, value) {
  const numeric = typeof value === 'number';
  return {
    catalog: 'def', schema: '', table: '', orgTable: '', name, orgName: name,
    characterSet: numeric ? 63 : UTF8_GENERAL_CI, columnLength: numeric ? 21 : 1024,
    columnType: numeric ? TYPE_LONGLONG : TYPE_VAR_STRING, flags: 0, decimals: 0,
  };
}

/** What one stand-in answers: its variables, its replication status rows, the replicas it sees. */
export function instanceRows(i, { host, basePort, parents }) {
  const port = basePort + i;
  const serverId = i + 1;
  const gtid = '0-1-4';
  const isReplica = parents[i] >= 0;
  const template = isReplica ? REPLICA : PRIMARY;
  const own = {
    server_id: String(serverId), port: String(port), report_host: host, report_port: String(port),
    read_only: isReplica ? 'ON' : 'OFF', gtid_current_pos: gtid, gtid_binlog_pos: gtid,
    gtid_binlog_state: gtid, gtid_slave_pos: isReplica ? gtid : '',
  };
  const variables = new Map(template.variables.map((r) => [r.Variable_name, r.Value]));
  for (const [k, v] of Object.entries(own)) variables.set(k, v);
  const status = isReplica
    ? [{
        ...REPLICA.replicaStatus[0],
        Master_Host: host, Master_Port: basePort + parents[i], Master_Server_Id: parents[i] + 1,
        // What topogit's sandbox and `apply` configure (connect retry 2 s, heartbeat 1 s).
        Connect_Retry: 2, Slave_heartbeat_period: 1,
        Gtid_IO_Pos: gtid, Gtid_Slave_Pos: gtid,
      }]
    : [];
  const replicas = [];
  for (let c = parents.length - 1; c >= 0; c--) {
    if (parents[c] === i) replicas.push({ Server_id: c + 1, Host: host, Port: basePort + c, Master_id: serverId });
  }
  return { variables, status, replicas, encoded: new Map() };
}

const STATUS_COLUMNS = Object.keys(REPLICA.replicaStatus[0]).map((k) => column(k, REPLICA.replicaStatus[0][k]));
const HOSTS_COLUMNS = [column('Server_id', 0), column('Host', ''), column('Port', 0), column('Master_id', 0)];
const VARIABLE_COLUMNS = [column('Variable_name', ''), column('Value', '')];

function writeRows(conn, columns, rows, more = false) {
  conn.writeColumns(columns);
  for (const r of rows) conn.writeTextRow(columns.map((c) => (r[c.name] === undefined ? null : r[c.name])));
  // SERVER_STATUS_AUTOCOMMIT, and SERVER_MORE_RESULTS_EXISTS when another result set follows.
  conn.writeEof(0, more ? 2 | 8 : 2);
}

/**
 * The bytes of a result set as mysql2 writes them (sequence ids from 1, as after any COM_QUERY).
 * An instance's answers never change, so each is encoded once and replayed: the stand-ins share
 * the CPU with the client being measured, and should spend as little of it as they can.
 */
function encodeResult(conn, a) {
  const parts = [];
  const write = conn.write;
  conn.write = (b) => parts.push(Buffer.from(b));
  try {
    // Several statements in one COM_QUERY (topogit's held connections send its probe so): one
    // result set each, in one exchange.
    const sets = a.sets ?? [a];
    sets.forEach((s, i) => writeRows(conn, s.columns, s.rows, i < sets.length - 1));
  } finally {
    conn.write = write;
  }
  return Buffer.concat(parts);
}

/** The answer to one statement, or an error; exported for the unit test. */
export function answer(sql, rows) {
  const parts = sql.split(';').map((p) => p.trim()).filter(Boolean);
  if (parts.length > 1) {
    const sets = parts.map((p) => answer(p, rows));
    const failed = sets.find((s) => s.error);
    return failed ?? { sets };
  }
  const q = sql.trim().replace(/;$/, '');
  const vars = /^SHOW\s+GLOBAL\s+VARIABLES\s+WHERE\s+Variable_name\s+IN\s*\((.*)\)$/is.exec(q);
  if (vars) {
    const wanted = new Set([...vars[1].matchAll(/'([^']*)'/g)].map((m) => m[1].toLowerCase()));
    // Like the server: only variables that exist, in name order.
    const out = [...rows.variables].filter(([k]) => wanted.has(k)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => ({ Variable_name: k, Value: v }));
    return { columns: VARIABLE_COLUMNS, rows: out };
  }
  if (/^SHOW\s+ALL\s+(SLAVES|REPLICAS)\s+STATUS$/i.test(q)) return { columns: STATUS_COLUMNS, rows: rows.status };
  if (/^SHOW\s+(REPLICA|SLAVE)\s+HOSTS$/i.test(q)) return { columns: HOSTS_COLUMNS, rows: rows.replicas };
  if (/^SELECT\s+1$/i.test(q)) return { columns: [column('1', 1)], rows: [{ 1: 1 }] };
  return { error: { code: ER_NOT_SUPPORTED_YET, message: `stand-in does not implement: ${q.slice(0, 80)}` } };
}

/**
 * Starts `count` stand-ins on host:basePort+i. `topology` is a parents array (parents[0] = -1), or
 * omitted for standinTree(count). `latencyMs` delays every answer (default 0). `password`, when
 * given, is checked (mysql_native_password); otherwise any password is accepted.
 * Returns { count, host, basePort, parents, stats: { connections, queries }, stop() }.
 */
export async function startStandins({ count, host = '127.0.0.1', basePort, topology, latencyMs = 0, password } = {}) {
  if (!Number.isInteger(count) || count < 1) throw new Error('startStandins: count must be a positive integer');
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + count - 1 > 65535) throw new Error('startStandins: basePort out of range');
  const parents = topology ?? standinTree(count);
  if (parents.length !== count) throw new Error('startStandins: topology length differs from count');
  const doubleSha = password === undefined ? undefined : doubleSha1(password);
  const servers = [];
  const open = new Set();
  const stats = { connections: 0, queries: 0, statements: 0, maxOpen: 0 };
  let connectionId = 0;

  const handle = (conn, rows) => {
    stats.connections++;
    open.add(conn);
    stats.maxOpen = Math.max(stats.maxOpen, open.size);
    conn.on('error', () => undefined); // a client reset must not crash the fleet
    // Like mysqld (TCP_NODELAY): an answer is several small packets, and Nagle's algorithm with
    // the client's delayed ACK would add ~40 ms to every statement.
    conn.stream.setNoDelay(true);
    conn.stream.on('close', () => open.delete(conn));
    conn.serverHandshake({
      protocolVersion: 10,
      serverVersion: VERSION,
      connectionId: ++connectionId,
      statusFlags: 2, // SERVER_STATUS_AUTOCOMMIT
      characterSet: UTF8_GENERAL_CI,
      capabilityFlags: CAPABILITIES,
      authCallback: (params, cb) => {
        if (doubleSha && !verifyNativePassword(params.authPluginData1, params.authPluginData2, params.authToken, doubleSha)) {
          cb(null, { message: `Access denied for user '${params.user}'@'${params.address}' (using password: YES)`, code: ER_ACCESS_DENIED });
        } else cb(null, null);
        conn.sequenceId = 0; // see `reply` below
      },
    });
    conn.on('query', (sql) => {
      stats.queries++;
      stats.statements += sql.split(';').filter((p) => p.trim()).length;
      const reply = () => {
        if (conn.stream.destroyed) return;
        let bytes = rows.encoded.get(sql);
        if (!bytes) {
          const a = answer(sql, rows);
          if (a.error) conn.writeError(a.error);
          else rows.encoded.set(sql, (bytes = encodeResult(conn, a)));
        }
        if (bytes) conn.stream.write(bytes); // the whole result set in one write, as a server sends it
        // mysql2's server side only ever counts sequence ids up; every command starts a new
        // exchange at 0, so reset once the answer is out (else both sides warn "out of order").
        conn.sequenceId = 0;
      };
      if (latencyMs > 0) setTimeout(reply, latencyMs);
      else reply();
    });
  };

  const stop = async () => {
    for (const c of open) c.stream.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve()))));
  };

  try {
    for (let i = 0; i < count; i++) {
      const rows = instanceRows(i, { host, basePort, parents });
      // What mysql.createServer() does (lib/server.js), plus maxPreparedStatements: 1 — else each
      // server-side connection allocates a 16000-entry statement cache, and the stand-ins would
      // spend their CPU (shared with the client being measured) on that and on GC.
      const server = net.createServer((socket) =>
        handle(new mysql.Connection({ config: new mysql.ConnectionConfig({ stream: socket, isServer: true, maxPreparedStatements: 1 }) }), rows),
      );
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(basePort + i, host, 1024, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
    }
  } catch (e) {
    await stop();
    throw new Error(`stand-in ${servers.length} on ${host}:${basePort + servers.length}: ${e.message}`);
  }
  return { count, host, basePort, parents, stats, stop };
}

// As a process: the benchmark runs the stand-ins in their own process, so the client being measured
// does not share an event loop with the servers it measures.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      count: { type: 'string' }, 'base-port': { type: 'string' }, host: { type: 'string', default: '127.0.0.1' },
      'latency-ms': { type: 'string', default: '0' }, password: { type: 'string' },
    },
  });
  const fleet = await startStandins({
    count: Number(values.count), basePort: Number(values['base-port']), host: values.host,
    latencyMs: Number(values['latency-ms']), ...(values.password !== undefined ? { password: values.password } : {}),
  });
  const quit = async () => {
    await fleet.stop();
    const cpu = process.cpuUsage();
    process.stderr.write(
      `stand-ins: ${fleet.stats.connections} connections, ${fleet.stats.queries} queries, at most ${fleet.stats.maxOpen} open at once, ` +
        `${Math.round((cpu.user + cpu.system) / 1000)} ms CPU (${((cpu.user + cpu.system) / 1000 / Math.max(1, fleet.stats.connections)).toFixed(2)} ms per connection)\n`,
    );
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  process.stdin.on('end', quit);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ ready: true, count: fleet.count, host: fleet.host, basePort: fleet.basePort, parents: fleet.parents }) + '\n');
}
