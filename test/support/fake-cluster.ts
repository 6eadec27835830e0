// An in-memory MariaDB replication cluster behind the engine's ports, for engine unit tests with
// failure injection (the servers' real behaviour is covered by the integration tests on real
// MariaDB). It understands exactly the statements topogit sends (read_only, STOP/START REPLICA,
// IO/SQL threads, CHANGE MASTER TO, RESET REPLICA ALL) and replicates at once whenever a replica's
// threads run and its source is alive. History is one GTID domain: a list of (server id, seq).
import type { ClusterSpec, InstanceState, ProbeResult, ReplicaStatus } from '../../src/core/model.js';
import type { FailoverPorts, HookResult, ReconcilePorts, Session, WriteBackRequest, WriteBackResult } from '../../src/core/ports.js';
import { EMPTY_STATE, type ClusterState } from '../../src/core/state.js';
import { reconcileOnce, type EngineEvent, type ReconcileResult } from '../../src/engine/reconcile.js';

interface Txn {
  readonly serverId: number;
  readonly seq: number;
}

interface Channel {
  sourceHost: string;
  io: boolean;
  sql: boolean;
  /** Received but perhaps not applied yet. */
  received: Txn[];
}

export interface SimServer {
  readonly name: string;
  readonly host: string;
  readonly serverId: number;
  alive: boolean;
  readOnly: boolean;
  history: Txn[];
  channel: Channel | null;
  /** While true the SQL thread applies nothing (a slow or delayed applier). */
  applierStuck: boolean;
  /** Ids of application sessions connected to it. */
  clients: number[];
}

export interface FakeCluster {
  readonly servers: Map<string, SimServer>;
  byName(name: string): SimServer;
  /** Commits `n` transactions on a server (as if an application wrote there). */
  write(name: string, n?: number): void;
  kill(name: string): void;
  revive(name: string): void;
  readonly statements: string[];
  readonly ports: ReconcilePorts;
  readonly state: () => ClusterState;
  readonly writeBacks: WriteBackRequest[];
  readonly phases: string[];
  /** Called before each statement runs; may throw (failure injection) or change servers. */
  onStatement: (server: SimServer, sql: string) => void;
  /** Called after each journaled failover step (TOPOGIT_FAULT_AFTER); may throw to simulate a crash. */
  onPhase: (phase: string) => void;
  hook: (command: string, env: Record<string, string>) => HookResult;
  mayAct: () => boolean;
  writableCount(): number;
  /** An in-memory router (one HAProxy): backend -> server -> admin state; `routerUp` false makes it unreachable. */
  readonly backends: Map<string, Map<string, 'ready' | 'maint' | 'drain'>>;
  routerUp: boolean;
  /** Router changes in the order they were applied. */
  readonly routerLog: string[];
}

/** A crash of the topogit process at a journaled step: the test runs the engine again after it. */
export class SimulatedCrash extends Error {}

export function fakeCluster(spec: ClusterSpec, initial = 5): FakeCluster {
  const servers = new Map<string, SimServer>();
  const primary = spec.instances.find((i) => i.source === undefined);
  spec.instances.forEach((i, n) => {
    servers.set(i.host, {
      name: i.name,
      host: i.host,
      serverId: n + 1,
      alive: true,
      readOnly: i.source !== undefined,
      history: [],
      channel: i.source ? { sourceHost: spec.instances.find((x) => x.name === i.source)?.host as string, io: true, sql: true, received: [] } : null,
      applierStuck: false,
      clients: [100 + n],
    });
  });
  let clock = 1_000_000;
  let state: ClusterState = EMPTY_STATE;
  const statements: string[] = [];
  const writeBacks: WriteBackRequest[] = [];
  const phases: string[] = [];

  const byName = (name: string): SimServer => {
    const s = [...servers.values()].find((x) => x.name === name);
    if (!s) throw new Error(`no server ${name}`);
    return s;
  };
  const isPrefix = (a: Txn[], b: Txn[]) => a.length <= b.length && a.every((t, k) => t.serverId === b[k]?.serverId && t.seq === b[k]?.seq);

  /** Replication happens at once: every running channel receives, every running applier applies. */
  const settle = () => {
    for (let round = 0; round < servers.size; round++) {
      for (const s of servers.values()) {
        const ch = s.channel;
        if (!s.alive || !ch) continue;
        const src = servers.get(ch.sourceHost);
        const have = ch.received.length >= s.history.length ? ch.received : s.history;
        if (ch.io && src?.alive && isPrefix(have, src.history)) ch.received = [...src.history];
        if (ch.sql && !s.applierStuck && isPrefix(s.history, ch.received)) s.history = [...ch.received];
      }
    }
  };

  const pos = (h: Txn[]) => {
    const last = h[h.length - 1];
    return last ? `0-${last.serverId}-${last.seq}` : '';
  };
  const binlogState = (h: Txn[]) => {
    const last = new Map<number, number>();
    for (const t of h) last.set(t.serverId, t.seq);
    return [...last].map(([id, seq]) => `0-${id}-${seq}`).join(',');
  };

  const stateOf = (s: SimServer): InstanceState => {
    const ch = s.channel;
    const src = ch ? servers.get(ch.sourceHost) : undefined;
    const replication: ReplicaStatus[] = ch
      ? [
          {
            channel: '',
            sourceHost: ch.sourceHost,
            sourcePort: 3306,
            sourceUser: 'repl',
            sourceServerId: src?.serverId ?? 0,
            ioThread: ch.io ? (src?.alive ? 'yes' : 'connecting') : 'no',
            sqlThread: ch.sql ? 'yes' : 'no',
            lastIoErrno: ch.io && !src?.alive ? 2003 : 0,
            lastIoError: ch.io && !src?.alive ? `Can't connect to MySQL server on '${ch.sourceHost}' (111 "Connection refused")` : '',
            lastSqlErrno: 0,
            lastSqlError: '',
            secondsBehindSource: ch.io && ch.sql && src?.alive ? 0 : null,
            gtidAutoPosition: true,
            retrievedGtid: pos(ch.received),
          },
        ]
      : [];
    return {
      version: '10.11.19-MariaDB',
      flavor: 'mariadb',
      serverId: s.serverId,
      hostname: s.name,
      port: 3306,
      readOnly: s.readOnly,
      logBin: true,
      logReplicaUpdates: true,
      binlogFormat: 'ROW',
      gtid: { executed: pos(s.history), binlogPos: pos(s.history), binlogState: binlogState(s.history), slavePos: pos(s.history), strictMode: true },
      replication,
      seenReplicas: [],
    };
  };

  const endpointServer = (host: string): SimServer => {
    const s = servers.get(host);
    if (!s) throw new Error(`no server at ${host}`);
    return s;
  };

  const cluster: FakeCluster = {
    servers,
    byName,
    statements,
    writeBacks,
    phases,
    state: () => state,
    onStatement: () => undefined,
    onPhase: () => undefined,
    hook: () => ({ code: 0, output: '' }),
    mayAct: () => true,
    write(name, n = 1) {
      const s = byName(name);
      if (!s.alive) throw new Error(`${name} is dead`);
      for (let k = 0; k < n; k++) {
        const seq = (s.history[s.history.length - 1]?.seq ?? 0) + 1;
        s.history.push({ serverId: s.serverId, seq });
      }
      settle();
    },
    kill(name) {
      byName(name).alive = false;
      settle();
    },
    revive(name) {
      const s = byName(name);
      s.alive = true;
      // A restarted server comes back read-only (topogit's servers start with --read-only).
      s.readOnly = true;
      settle();
    },
    writableCount() {
      return [...servers.values()].filter((s) => s.alive && !s.readOnly && s.channel === null).length;
    },
    ports: undefined as unknown as ReconcilePorts,
    // The writer backend `rw` as the file's primary left it: it alone ready.
    backends: new Map([['rw', new Map([...servers.values()].map((x) => [x.name, x.name === primary?.name ? 'ready' : 'maint'] as [string, 'ready' | 'maint']))]]),
    routerUp: true,
    routerLog: [],
  };

  const open = async (e: { host: string }): Promise<Session> => {
    const s = endpointServer(e.host);
    if (!s.alive) throw Object.assign(new Error(`connect ECONNREFUSED ${e.host}:3306`), { code: 'ECONNREFUSED' });
    return {
      async query(sql: string, values?: readonly unknown[]) {
        if (!s.alive) throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' });
        cluster.onStatement(s, sql);
        statements.push(`${s.name}> ${sql}`);
        let m: RegExpExecArray | null;
        if (/^SET SESSION sql_mode/.test(sql) || /^SET GLOBAL rpl_semi_sync/.test(sql) || /^SET GLOBAL gtid_slave_pos = @@GLOBAL\.gtid_binlog_pos$/.test(sql)) return [];
        // Client sessions: one application connection per live server, killed by a fence.
        if (/FROM information_schema\.PROCESSLIST/.test(sql)) return s.clients.map((id) => ({ ID: id, USER: 'app', COMMAND: 'Query' }));
        if (/^KILL CONNECTION \?$/.test(sql)) {
          s.clients = s.clients.filter((id) => id !== Number(values?.[0]));
          return [];
        }
        if ((m = /^SET GLOBAL read_only = (\d)$/.exec(sql))) s.readOnly = m[1] === '1';
        else if (/^STOP REPLICA IO_THREAD$/.test(sql)) {
          if (s.channel) s.channel.io = false;
        } else if (/^START REPLICA SQL_THREAD$/.test(sql)) {
          if (s.channel) s.channel.sql = true;
        } else if (/^STOP REPLICA$/.test(sql)) {
          if (s.channel) Object.assign(s.channel, { io: false, sql: false });
        } else if (/^START REPLICA$/.test(sql)) {
          if (s.channel) Object.assign(s.channel, { io: true, sql: true });
        } else if (/^RESET REPLICA ALL$/.test(sql)) s.channel = null;
        else if (/^CHANGE MASTER TO MASTER_HOST=\?/.test(sql)) {
          // MASTER_USE_GTID=slave_pos: the relay log is discarded, replication resumes after what was applied.
          s.channel = { sourceHost: String(values?.[0]), io: false, sql: false, received: [...s.history] };
        } else throw new Error(`fake cluster: unexpected statement ${sql}`);
        settle();
        return [];
      },
      async close() {},
    };
  };

  const ports: FailoverPorts & ReconcilePorts = {
    open,
    probe: async (e): Promise<ProbeResult> => {
      const s = endpointServer(e.host);
      settle();
      if (!s.alive) return { ok: false, endpoint: e, error: `connect ECONNREFUSED ${e.host}:3306`, code: 'ECONNREFUSED', ms: 1 };
      return { ok: true, endpoint: e, state: stateOf(s), ms: 1 };
    },
    sleep: async (ms) => {
      clock += ms;
      settle();
    },
    now: () => clock,
    state: {
      read: async () => state,
      update: async (_c, f) => (state = f(state)),
    },
    writeBack: async (req): Promise<WriteBackResult> => {
      writeBacks.push(req);
      return { kind: 'committed', commit: `c0ffee${String(writeBacks.length).padStart(34, '0')}`, pushed: false, why: 'no upstream' };
    },
    runHook: async (command, env) => cluster.hook(command, env),
    faultPoint: (step) => {
      phases.push(step);
      cluster.onPhase(step);
    },
    mayAct: () => cluster.mayAct(),
    committedSince: async () => false,
    router: {
      read: async (r, backends) => {
        if (!cluster.routerUp) throw new Error(`haproxy ${r.address}: connect ECONNREFUSED`);
        return backends.flatMap((b) => {
          const servers = cluster.backends.get(b);
          if (!servers) throw new Error(`haproxy ${r.address}: backend ${b} does not exist`);
          return [...servers].map(([server, admin]) => ({ backend: b, server, admin, up: true }));
        });
      },
      apply: async (r, c) => {
        if (!cluster.routerUp) throw new Error(`haproxy ${r.address}: connect ECONNREFUSED`);
        const servers = cluster.backends.get(c.backend);
        if (!servers?.has(c.server)) throw new Error(`haproxy ${r.address}: No such server.`);
        servers.set(c.server, c.to);
        cluster.routerLog.push(`${c.backend}/${c.server} ${c.to}${c.shutdownSessions ? ' shutdown' : ''}`);
      },
    },
  };
  (cluster as { ports: ReconcilePorts }).ports = ports;
  if (primary) cluster.write(primary.name, initial);
  return cluster;
}

/** The logins the engine tests use; the fake cluster checks none. */
export const FAKE_CTX = { admin: { user: 'topogit', password: 'a' }, replication: { user: 'repl', password: 'r' }, timeouts: { connectMs: 100, queryMs: 100 }, verifyTimeoutMs: 200 } as const;

/** One reconcile pass (what the daemon runs) over the fake cluster. */
export function reconcilePass(c: FakeCluster, spec: ClusterSpec, onEvent: (e: EngineEvent) => void = () => undefined): Promise<ReconcileResult> {
  return reconcileOnce({ spec, ctx: FAKE_CTX, ports: c.ports, repoDir: '/nonexistent', onEvent });
}
