// The apply engine against a fake port with failure injection (the servers' real behaviour is
// covered by the integration tests): a switchover that stopped writes on the old primary but
// could not promote gives the old primary its writes back.
import { describe, expect, it } from 'vitest';
import type { InstanceState, ProbeResult } from '../../src/core/model.js';
import type { Step } from '../../src/core/plan.js';
import { applyPlan, type ApplyEvent } from '../../src/engine/apply.js';
import { sandboxSpec } from '../support/spec.js';

const spec = sandboxSpec('shop', { db001: null, db002: 'db001' }, { db001: 'neutral', db002: 'neutral' }, { flavor: 'mariadb' });

function state(o: { readOnly: boolean; executed: string; source?: string }): InstanceState {
  return {
    version: '10.11.19-MariaDB',
    flavor: 'mariadb',
    serverId: o.source ? 2 : 1,
    hostname: 'h',
    port: 3306,
    readOnly: o.readOnly,
    logBin: true,
    logReplicaUpdates: true,
    binlogFormat: 'ROW',
    gtid: { executed: o.executed, binlogState: o.executed },
    replication: o.source
      ? [
          {
            channel: '',
            sourceHost: o.source,
            sourcePort: 3306,
            sourceUser: 'repl',
            ioThread: 'yes',
            sqlThread: 'yes',
            lastIoErrno: 0,
            lastIoError: '',
            lastSqlErrno: 0,
            lastSqlError: '',
            secondsBehindSource: 0,
            gtidAutoPosition: true,
            retrievedGtid: o.executed,
          },
        ]
      : [],
    seenReplicas: [],
  };
}

/** Two servers in memory: SET GLOBAL read_only changes them; the replica never catches up. */
function fakeServers() {
  const servers: Record<string, InstanceState> = {
    '127.0.0.11': state({ readOnly: false, executed: '0-1-10' }),
    '127.0.0.12': state({ readOnly: true, executed: '0-1-5', source: '127.0.0.11' }),
  };
  let clock = 0;
  const statements: string[] = [];
  return {
    servers,
    statements,
    ports: {
      probe: async (e: { host: string; port: number }): Promise<ProbeResult> => ({ ok: true, endpoint: e, state: servers[e.host] as InstanceState, ms: 1 }),
      open: async (e: { host: string; port: number }) => ({
        async query(sql: string) {
          statements.push(`${e.host}> ${sql}`);
          const m = /^SET GLOBAL read_only = (\d)$/.exec(sql);
          if (m) servers[e.host] = { ...(servers[e.host] as InstanceState), readOnly: m[1] === '1' };
          return [];
        },
        async close() {},
      }),
      sleep: async (ms: number) => {
        clock += ms;
      },
      now: () => clock,
    },
  };
}

const switchover: Step = {
  id: '1',
  instance: 'db002',
  symbol: '~',
  summary: 'switchover db001 -> db002',
  reason: 'test',
  actions: [],
  substeps: [
    { id: '1.1', instance: 'db001', symbol: '~', summary: 'db001 read_only OFF -> ON', reason: '', actions: [{ kind: 'set-read-only', instance: 'db001', readOnly: true }] },
    { id: '1.2', instance: 'db002', symbol: '~', summary: 'wait', reason: '', actions: [{ kind: 'wait-caught-up', instance: 'db002', target: 'db001', timeoutSeconds: 1 }] },
    { id: '1.3', instance: 'db002', symbol: '~', summary: 'promote', reason: '', actions: [{ kind: 'promote', instance: 'db002' }] },
  ],
};

/** The switchover plan run against `ports`. */
function runSwitchover(ports: Parameters<typeof applyPlan>[1]['ports'], onEvent: (e: ApplyEvent) => void = () => undefined) {
  return applyPlan(
    { cluster: 'shop', file: spec.file, flavor: 'mariadb', steps: [switchover], notices: [] },
    { spec, admin: { user: 'topogit', password: 'x' }, replication: { user: 'repl', password: 'y' }, timeouts: { connectMs: 100, queryMs: 100 }, ports, onEvent },
  );
}

describe('applyPlan with a fake port', () => {
  it('gives the old primary its writes back when a switchover cannot promote', async () => {
    const f = fakeServers();
    const events: ApplyEvent[] = [];
    const report = await runSwitchover(f.ports, (e) => events.push(e));
    expect(report.failed?.error).toMatch(/gave up after 1s waiting until it has executed everything db001 had/);
    expect(report.failed?.error).toContain('rolled back: db001 accepts writes again');
    expect(f.servers['127.0.0.11']?.readOnly).toBe(false);
    expect(f.servers['127.0.0.12']?.readOnly).toBe(true);
    // Nothing was promoted: no RESET on the candidate.
    expect(f.statements.some((s) => /RESET/.test(s))).toBe(false);
    expect(f.statements).toEqual(['127.0.0.11> SET GLOBAL read_only = 1', '127.0.0.11> SET GLOBAL read_only = 0']);
  });

  it('does not roll back when another member is writable (never two writable primaries)', async () => {
    const f = fakeServers();
    const report = await runSwitchover({
      ...f.ports,
      // Someone made the candidate writable and detached it behind topogit's back.
      sleep: async (ms: number) => {
        await f.ports.sleep(ms);
        f.servers['127.0.0.12'] = { ...(f.servers['127.0.0.12'] as InstanceState), readOnly: false, replication: [] };
      },
    });
    expect(report.failed?.error).toMatch(/rolling back db001 failed too .*two writable primaries.*: it is read-only/);
    expect(f.servers['127.0.0.11']?.readOnly).toBe(true);
  });

  it('asks the command\'s lock before each change: once it is lost, nothing more, and no rollback that could make a second writer', async () => {
    const f = fakeServers();
    let asked = 0;
    // Held for the first change (read_only on db001), lost before the next one.
    const report = await runSwitchover({ ...f.ports, mayAct: async () => ++asked <= 1 });
    expect(report.failed?.error).toMatch(/lost its lock on the cluster; nothing more is changed; not rolled back: the lock was lost, db001 stays read-only/);
    expect(f.statements).toEqual(['127.0.0.11> SET GLOBAL read_only = 1']);
    expect(f.servers['127.0.0.11']?.readOnly).toBe(true);
  });
});
