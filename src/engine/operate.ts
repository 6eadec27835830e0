// operate: the engine's hands. Runs one action (data from src/core/plan.ts) on a server and
// verifies on a fresh probe that the server shows it; every wait is bounded and reports progress.
// apply, failover, reconcile and switchover change servers only through here.
import { canReplicateFrom, hasAll } from '../core/errant.js';
import type { FailoverPorts, RouterPort } from '../core/ports.js';
import type { Action } from '../core/plan.js';
import type { ClusterSpec, Endpoint, GtidState, InstanceState, ProbeResult } from '../core/model.js';
import { endpointKey } from '../core/model.js';
import type { Login, ServerPorts, Timeouts } from '../core/ports.js';
import { statementsFor } from '../adapters/mysql/actions.js';
import { adoptBinlogPosition, displaySql, killConnection, parseVersion, PROCESSLIST_SQL, resumeGtidPositioning, setReplicaDelay, setSemiSyncSource, startSqlThread, stopSqlThread, type Statement } from '../adapters/mysql/dialect.js';
import { clientSessions } from '../adapters/mysql/rows.js';
import * as probeRound from './probe-round.js';

export type OperateEvent =
  | { readonly type: 'statement'; readonly instance: string; readonly sql: string }
  | { readonly type: 'waiting'; readonly instance: string; readonly what: string; readonly elapsedMs: number; readonly limitMs: number };

/** One router call during a step: a switchover waits at most this for its router. */
const ROUTER_STEP_TIMEOUT_MS = 2000;

export interface OperateContext {
  readonly spec: ClusterSpec;
  readonly admin: Login;
  readonly replication: Login;
  readonly timeouts: Timeouts;
  /** `router`: for plan steps on a router (a switchover through HAProxy). */
  readonly ports: ServerPorts & { readonly router?: RouterPort; readonly runHook?: FailoverPorts['runHook']; readonly mayAct?: FailoverPorts['mayAct'] };
  readonly onEvent: (e: OperateEvent) => void;
  /** How long a verification waits for the server to show the change (threads connecting). */
  readonly verifyTimeoutMs?: number;
}

/** An action that could not be done or verified; its message is the whole explanation. */
export class StepFailed extends Error {}

function endpointOf(ctx: OperateContext, name: string): Endpoint {
  const i = ctx.spec.instances.find((x) => x.name === name);
  if (!i) throw new StepFailed(`${name} is not an instance of cluster ${ctx.spec.cluster}`);
  return { host: i.host, port: i.port };
}

export async function fresh(ctx: OperateContext, name: string): Promise<InstanceState> {
  const r = await ctx.ports.probe(endpointOf(ctx, name), ctx.admin, ctx.timeouts);
  if (!r.ok) throw new StepFailed(`${name} is unreachable: ${r.error}`);
  return r.state;
}

function versionOf(state: InstanceState) {
  return parseVersion(state.version, state.flavor === 'mariadb' ? 'mariadb' : '');
}

async function run(ctx: OperateContext, name: string, action: Action, state: InstanceState, only?: (sql: string) => boolean): Promise<void> {
  const statements = statementsFor(action, versionOf(state), ctx.replication).filter((s) => !only || only(s.sql));
  await runStatements(ctx, name, statements);
}

async function runStatements(ctx: OperateContext, name: string, statements: readonly Statement[]): Promise<void> {
  const session = await ctx.ports.open(endpointOf(ctx, name), ctx.admin, ctx.timeouts);
  try {
    // mysql2 escapes literals with backslashes; under NO_BACKSLASH_ESCAPES a quote in a password
    // could end its literal early. Make the session's escaping match the client's first.
    if (statements.some((s) => s.values.length > 0)) {
      await session.query("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
    }
    for (const s of statements) {
      ctx.onEvent({ type: 'statement', instance: name, sql: displaySql(s) });
      // Replication statements can take longer than a probe query (STOP waits for the threads).
      await session.query(s.sql, s.values, Math.max(ctx.timeouts.queryMs, 10_000));
    }
  } finally {
    await session.close();
  }
}

/** Polls until `ok` holds on a fresh probe of `name`, or fails after `limitMs` saying `what`. */
async function waitFor(ctx: OperateContext, name: string, what: string, limitMs: number, ok: (s: InstanceState) => boolean | string): Promise<InstanceState> {
  const start = ctx.ports.now();
  let lastReport = start;
  for (;;) {
    const s = await fresh(ctx, name);
    const verdict = ok(s);
    if (verdict === true) return s;
    if (typeof verdict === 'string') throw new StepFailed(verdict);
    const elapsed = ctx.ports.now() - start;
    if (elapsed >= limitMs) throw new StepFailed(`${name}: gave up after ${Math.round(elapsed / 1000)}s waiting until ${what}`);
    if (ctx.ports.now() - lastReport >= 1000) {
      lastReport = ctx.ports.now();
      ctx.onEvent({ type: 'waiting', instance: name, what, elapsedMs: elapsed, limitMs });
    }
    // Short: while a switchover waits here the cluster accepts no writes.
    await ctx.ports.sleep(20);
  }
}

export async function runAction(a: Action, ctx: OperateContext): Promise<void> {
  const verifyMs = ctx.verifyTimeoutMs ?? 10_000;
  switch (a.kind) {
    case 'set-read-only': {
      const s = await fresh(ctx, a.instance);
      if (!a.readOnly) {
        // Never two writable primaries: refuse if anything else replicating from nobody is writable.
        await assertNoOtherWritablePrimary(ctx, a.instance);
      }
      await run(ctx, a.instance, a, s);
      // MySQL 5.7.8+: read_only alone lets SUPER users write; fenced means super_read_only too.
      await waitFor(ctx, a.instance, `read_only is ${a.readOnly ? 'ON' : 'OFF'}`, verifyMs, (x) => x.readOnly === a.readOnly && (!a.readOnly || x.superReadOnly !== false));
      return;
    }
    case 'start-replication': {
      const s = await fresh(ctx, a.instance);
      await run(ctx, a.instance, a, s);
      await waitFor(ctx, a.instance, 'both replication threads run', verifyMs, threadsRunning);
      return;
    }
    case 'change-source': {
      const s = await fresh(ctx, a.instance);
      if (s.replication.length === 0 && !s.readOnly) {
        // A writable server that replicates from nobody is (or was) a primary: fence it first.
        await run(ctx, a.instance, { kind: 'set-read-only', instance: a.instance, readOnly: true }, s);
      }
      await waitSourceHasAll(ctx, a, a.waitForSource ? 30_000 : 0);
      const before = await fresh(ctx, a.instance);
      if (before.semiSync?.source) await runStatements(ctx, a.instance, [setSemiSyncSource(versionOf(before), false, before.semiSync.newNames)]);
      // MariaDB: a server that replicates from nobody (a demoted or returning primary) has a stale
      // or empty gtid_slave_pos; MASTER_USE_GTID=slave_pos would ask its new source for history it
      // already has — or, once that is purged, fail with 1236. It resumes after its own binlog.
      const adopt = adoptBinlogPosition(versionOf(before), before.replication.length === 0);
      if (adopt) await runStatements(ctx, a.instance, [adopt]);
      await run(ctx, a.instance, a, before);
      await waitFor(ctx, a.instance, `it replicates from ${a.source} with both threads running`, verifyMs, (x) => {
        const ch = x.replication[0];
        if (!ch || `${ch.sourceHost}:${ch.sourcePort}` !== endpointKey(a)) return false;
        if (ch.lastIoErrno !== 0 && ch.ioThread === 'no') return `${a.instance}: replication from ${a.source} failed: ${ch.lastIoErrno}: ${ch.lastIoError}`;
        if (ch.lastSqlErrno !== 0) return `${a.instance}: SQL error after repointing: ${ch.lastSqlErrno}: ${ch.lastSqlError}`;
        return threadsRunning(x);
      });
      return;
    }
    case 'wait-caught-up': {
      const target = await fresh(ctx, a.target);
      const snapshot: GtidState = target.gtid;
      await waitFor(ctx, a.instance, `it has executed everything ${a.target} had (${snapshot.executed || 'nothing'})`, a.timeoutSeconds * 1000, (x) => hasAll(x.flavor, x.gtid, snapshot));
      return;
    }
    case 'drain-relay-log': {
      const s = await fresh(ctx, a.instance);
      const ch = s.replication[0];
      if (!ch) return;
      const sqlError = ch.lastSqlErrno !== 0;
      // Never restart an applier that stopped on an error: that replica is reported, not promoted.
      await run(ctx, a.instance, a, s, (sql) => /IO_THREAD/.test(sql) || (!sqlError && ch.sqlThread === 'no'));
      // A delayed replica is not waited out (its applier would take MASTER_DELAY seconds): it only
      // stops receiving, and keeps its relay log.
      if (sqlError || a.wait === false) return;
      await waitFor(ctx, a.instance, 'it applied everything it received', a.timeoutSeconds * 1000, (x) => {
        const c = x.replication[0];
        if (!c || !c.retrievedGtid) return true;
        if (c.lastSqlErrno !== 0) return true; // stopped on an error while draining: reported by the caller
        return hasAll(x.flavor, x.gtid, { executed: c.retrievedGtid });
      });
      return;
    }
    case 'undelay': {
      const s = await fresh(ctx, a.instance);
      const ch = s.replication[0];
      if (!ch || ch.lastSqlErrno !== 0) return;
      const delay = ch.sqlDelay ?? 0;
      await run(ctx, a.instance, a, s);
      // Where the applier stopped, read after it stopped: the relay log from there on is kept.
      const stopped = (await fresh(ctx, a.instance)).replication[0];
      const v = versionOf(s);
      if (s.flavor === 'mariadb' && (!stopped?.relayLogFile || stopped.relayLogPos === undefined)) throw new StepFailed(`${a.instance}: cannot read where its applier stopped (Relay_Log_File/Relay_Log_Pos); not undelayed`);
      const relayLog = stopped?.relayLogFile && stopped.relayLogPos !== undefined ? { file: stopped.relayLogFile, pos: stopped.relayLogPos } : undefined;
      await runStatements(ctx, a.instance, [setReplicaDelay(v, 0, relayLog), startSqlThread(v)]);
      await waitFor(ctx, a.instance, 'it applied everything it received, without its delay', a.timeoutSeconds * 1000, (x) => {
        const c = x.replication[0];
        if (!c || !c.retrievedGtid || c.lastSqlErrno !== 0) return true;
        return hasAll(x.flavor, x.gtid, { executed: c.retrievedGtid });
      });
      // Back to GTID positioning and its own delay (nothing is left in the relay log to lose).
      await runStatements(ctx, a.instance, [stopSqlThread(v), resumeGtidPositioning(v, delay)]);
      return;
    }
    case 'route': {
      const router = ctx.ports.router;
      if (!router) throw new StepFailed(`${a.router.kind} ${a.router.address}: no router adapter in this process`);
      const change = { backend: a.backend, server: a.instance, to: a.to, shutdownSessions: a.shutdownSessions, why: '' };
      ctx.onEvent({ type: 'statement', instance: a.instance, sql: `-- ${a.router.kind} ${a.router.address}: set server ${a.backend}/${a.instance} state ${a.to}${a.shutdownSessions ? ' (sessions shut down)' : ''}` });
      try {
        await router.apply(a.router, change, ROUTER_STEP_TIMEOUT_MS);
        const now = (await router.read(a.router, [a.backend], ROUTER_STEP_TIMEOUT_MS)).find((x) => x.server === a.instance);
        if (now?.admin !== a.to) throw new Error(`read back: ${a.backend}/${a.instance} is ${now?.admin ?? 'missing'}, not ${a.to}`);
      } catch (e) {
        throw new StepFailed((e as Error).message.split('\n')[0] ?? 'router step failed');
      }
      return;
    }
    case 'promote': {
      const s = await fresh(ctx, a.instance);
      await assertNoOtherWritablePrimary(ctx, a.instance);
      await run(ctx, a.instance, a, s);
      // A semi-sync replica becomes a semi-sync primary: acknowledged writes stay lossless.
      if (s.semiSync?.replica && !s.semiSync.source) await runStatements(ctx, a.instance, [setSemiSyncSource(versionOf(s), true, s.semiSync.newNames)]);
      await waitFor(ctx, a.instance, 'it replicates from nobody and is writable', verifyMs, (x) => x.replication.length === 0 && !x.readOnly);
      return;
    }
  }
}

function threadsRunning(s: InstanceState): boolean {
  const ch = s.replication[0];
  return ch !== undefined && ch.ioThread === 'yes' && ch.sqlThread === 'yes';
}

/** Before repointing: the new source must have (or get, within the wait) every replica transaction. */
async function waitSourceHasAll(ctx: OperateContext, a: Extract<Action, { kind: 'change-source' }>, limitMs: number): Promise<void> {
  const replica = await fresh(ctx, a.instance);
  await waitFor(ctx, a.source, `${a.source} has every transaction ${a.instance} has`, limitMs, (src) => {
    const v = canReplicateFrom(src.flavor, replica.gtid, src.gtid, src.gtid);
    if (v.kind === 'ok') return true;
    if (limitMs === 0) return `${a.instance} has transactions ${a.source} lacks (${v.kind === 'errant' ? v.errant : v.kind === 'source-behind' ? v.missing : v.why}); refusing to repoint it`;
    return false;
  });
}

async function assertNoOtherWritablePrimary(ctx: OperateContext, except: string): Promise<void> {
  const others = ctx.spec.instances.filter((i) => i.name !== except);
  const probes = await Promise.all(others.map((i) => ctx.ports.probe({ host: i.host, port: i.port }, ctx.admin, ctx.timeouts)));
  probes.forEach((r, n) => {
    if (r.ok && r.state.replication.length === 0 && !r.state.readOnly) {
      throw new StepFailed(`refusing to make ${except} writable: ${others[n]?.name} is writable and replicates from nobody (two writable primaries)`);
    }
  });
}

/** One probe round of every instance of the cluster, at once. */
export function probeCluster(ctx: Pick<OperateContext, 'spec' | 'ports' | 'admin' | 'timeouts'>): Promise<Map<string, ProbeResult>> {
  return probeRound.probeCluster(ctx.spec, ctx.ports.probe, ctx.admin, ctx.timeouts);
}

/** Starts replication again on the given replicas whose IO thread was stopped without an SQL error (an undone failover). */
export async function restartReplication(ctx: OperateContext, names: readonly string[]): Promise<void> {
  for (const name of names) await runAction({ kind: 'start-replication', instance: name }, ctx).catch(() => undefined);
}

/**
 * Fences a server that must not take writes: read_only (and super_read_only where it exists),
 * verified, then every client session is killed — an open transaction must not commit later, and
 * on MariaDB a user with SUPER or READ ONLY ADMIN could go on writing through read_only. Replication
 * threads, system threads and topogit's own admin user are left alone. Returns the sessions killed.
 */
export async function fence(ctx: OperateContext, name: string): Promise<number> {
  await runAction({ kind: 'set-read-only', instance: name, readOnly: true }, ctx);
  const session = await ctx.ports.open(endpointOf(ctx, name), ctx.admin, ctx.timeouts);
  let killed = 0;
  try {
    for (const id of clientSessions(await session.query(PROCESSLIST_SQL), ctx.admin.user)) {
      const kill = killConnection(id);
      ctx.onEvent({ type: 'statement', instance: name, sql: displaySql(kill) });
      // Gone already (it ended on its own): nothing to do.
      await session.query(kill.sql, kill.values).then(() => killed++, () => undefined);
    }
  } finally {
    await session.close();
  }
  return killed;
}

/** Best effort, quickly: fence a server that may be partitioned rather than dead. */
export async function tryFence(ctx: OperateContext, name: string): Promise<boolean> {
  const quick = { ...ctx, timeouts: { ...ctx.timeouts, connectMs: Math.min(ctx.timeouts.connectMs, 500), queryMs: Math.min(ctx.timeouts.queryMs, 500) }, verifyTimeoutMs: 1000 };
  return fence(quick, name).then(
    () => true,
    () => false,
  );
}
