// Maintenance (`topogit maintenance CLUSTER INSTANCE on|off`): the records and their expiry, and
// what the reconcile decision does while an instance is in maintenance — no failover because the
// primary is gone, no fencing or rejoin of a former primary, no drift repair on it — table-driven
// over probes built from rows captured on real MariaDB 10.11 (test/fixtures/rows).
import { describe, expect, it } from 'vitest';
import { analyzeCluster } from '../../src/core/analysis.js';
import { endMaintenance, leaveAlone, parseDuration, startMaintenance } from '../../src/core/maintenance.js';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import { planCluster, type ClusterPlan } from '../../src/core/plan.js';
import { decideReconcile, type ReconcileStep } from '../../src/core/reconcile.js';
import { activeMaintenance, EMPTY_STATE, type ClusterState, type Maintenance } from '../../src/core/state.js';
import { DEFAULT_FAILOVER } from '../../src/config/defaults.js';
import { classifyCluster, DEFAULT_CLASSIFY } from '../../src/core/classify.js';
import { statusJson } from '../../src/core/status-document.js';
import { reportCluster } from '../../src/core/report.js';
import { renderStatusText } from '../../src/cli/render-status.js';
import { planObservations } from '../../src/engine/plan-run.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { sandboxSpec, SERVER_ID, type SandboxName } from '../support/spec.js';

class Rows extends FixtureRows {
  /** MariaDB: every position variable at `pos`. */
  at(pos: string): this {
    return this.vars({ gtid_current_pos: pos, gtid_binlog_pos: pos, gtid_slave_pos: pos, gtid_binlog_state: pos });
  }
}

const NOW = Date.parse('2026-12-04T12:00:00Z');
const auto = { failover: { ...DEFAULT_FAILOVER, auto: true } };
/** db001 the primary, db002 and db003 its replicas. */
const SHOP = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db001' }, {}, auto);
/** After a failover to db002: db001 is a former primary under it in the file. */
const AFTER = sandboxSpec('shop', { db001: 'db002', db002: null, db003: 'db002' }, {}, auto);

type Probe = [string, ProbeResult];
const id = (n: SandboxName) => SERVER_ID[n];
const primary = (s: ClusterSpec, n: SandboxName, ro = false): Probe => probeUp(s, n, Rows.of('mariadb-10.11-primary').as(id(n)).at('0-1-6').vars({ read_only: ro ? 'ON' : 'OFF' }));
const replica = (s: ClusterSpec, n: SandboxName, source: SandboxName): Probe => probeUp(s, n, Rows.of('mariadb-10.11-replica-ok').as(id(n)).from(id(source)).at('0-1-6').status({ Connect_Retry: 2, Slave_heartbeat_period: 1 }));
const lost = (n: SandboxName): Probe => probeUp(SHOP, n, Rows.of('mariadb-10.11-replica-source-dead').as(id(n)).at('0-1-6'));
const stopped = (n: SandboxName): Probe => probeUp(SHOP, n, Rows.of('mariadb-10.11-replica-stopped').as(id(n)).from(1).at('0-1-6').status({ Connect_Retry: 2, Slave_heartbeat_period: 1 }));

const on = (m: Record<string, Partial<Maintenance>>, base: ClusterState = EMPTY_STATE): ClusterState => ({
  ...base,
  maintenance: Object.fromEntries(Object.entries(m).map(([n, x]) => [n, { since: '2026-12-04T11:00:00Z', until: null, reason: null, ...x }])),
});
const FORMER: ClusterState = { ...EMPTY_STATE, formerPrimaries: [{ name: 'db001', failoverId: 'shop-x', newPrimary: 'db002' }] };

interface Case {
  readonly title: string;
  readonly spec?: ClusterSpec;
  readonly state: ClusterState;
  readonly probes: readonly Probe[];
  readonly expect: Partial<ReconcileStep> & { readonly kind: ReconcileStep['kind'] };
  /** For a drift step: what its plan must (not) hold. */
  readonly plan?: (p: ClusterPlan) => void;
}

const stepsOn = (p: ClusterPlan, n: string) => p.steps.filter((s) => s.instance === n || s.actions.some((a) => a.instance === n));
const DEAD = [probeDown(SHOP, 'db001'), lost('db002'), lost('db003')];

const CASES: readonly Case[] = [
  { title: 'primary dead: fail over', state: EMPTY_STATE, probes: DEAD, expect: { kind: 'fail-over' } },
  {
    title: 'primary dead and in maintenance: blocked, saying until when and how to end it',
    state: on({ db001: { until: '2026-12-04T18:30:00Z', reason: 'kernel upgrade' } }),
    probes: DEAD,
    expect: { kind: 'blocked', reason: 'db001 is in maintenance until 2026-12-04T18:30:00Z (kernel upgrade): no failover; `topogit maintenance shop db001 off` to end it' },
  },
  { title: 'primary dead, its maintenance expired a second ago: fail over', state: on({ db001: { until: '2026-12-04T11:59:59Z' } }), probes: DEAD, expect: { kind: 'fail-over' } },
  { title: 'primary dead, only a replica in maintenance: fail over', state: on({ db003: {} }), probes: DEAD, expect: { kind: 'fail-over' } },
  {
    title: 'a failover in progress is resumed although its primary is in maintenance',
    state: on({ db001: {} }, { ...EMPTY_STATE, journal: { id: 'j', cluster: 'shop', failedPrimary: 'db001', startedAt: '2026-12-04T10:00:00Z', trigger: 'auto', steps: [{ step: 'started', at: '2026-12-04T10:00:00Z' }] } }),
    probes: DEAD,
    expect: { kind: 'resume-failover' },
  },
  { title: 'former primary back writable: fenced', spec: AFTER, state: FORMER, probes: [primary(AFTER, 'db001'), primary(AFTER, 'db002'), replica(AFTER, 'db003', 'db002')], expect: { kind: 'fence-former', instance: 'db001' } },
  {
    title: 'former primary back writable, in maintenance: not fenced, not repaired',
    spec: AFTER,
    state: on({ db001: {} }, FORMER),
    probes: [primary(AFTER, 'db001'), primary(AFTER, 'db002'), replica(AFTER, 'db003', 'db002')],
    expect: { kind: 'drift' },
    plan: (p) => {
      expect(stepsOn(p, 'db001')).toEqual([]);
      expect(p.notices).toContainEqual(expect.objectContaining({ kind: 'refused', instance: 'db001', message: expect.stringMatching(/^db001 is in maintenance until turned off: left alone \(not planned: db001 read_only OFF -> ON; db001 source none -> db002\)$/) }));
    },
  },
  { title: 'former primary back read-only, nothing errant: rejoined', spec: AFTER, state: FORMER, probes: [primary(AFTER, 'db001', true), primary(AFTER, 'db002'), replica(AFTER, 'db003', 'db002')], expect: { kind: 'rejoin-former', instance: 'db001', source: 'db002' } },
  {
    title: 'former primary back read-only, in maintenance: not rejoined',
    spec: AFTER,
    state: on({ db001: {} }, FORMER),
    probes: [primary(AFTER, 'db001', true), primary(AFTER, 'db002'), replica(AFTER, 'db003', 'db002')],
    expect: { kind: 'drift' },
    plan: (p) => expect(stepsOn(p, 'db001')).toEqual([]),
  },
  { title: 'a replica stopped by hand: started again', state: EMPTY_STATE, probes: [primary(SHOP, 'db001'), replica(SHOP, 'db002', 'db001'), stopped('db003')], expect: { kind: 'drift' }, plan: (p) => expect(stepsOn(p, 'db003').map((s) => s.summary)).toEqual(['db003 start replication']) },
  {
    title: 'a replica stopped in maintenance: left alone, with a notice',
    state: on({ db003: { until: '2026-12-04T12:30:00Z', reason: 'backup' } }),
    probes: [primary(SHOP, 'db001'), replica(SHOP, 'db002', 'db001'), stopped('db003')],
    expect: { kind: 'drift', apply: false },
    plan: (p) => {
      expect(p.steps).toEqual([]);
      expect(p.notices).toContainEqual({ kind: 'refused', instance: 'db003', message: 'db003 is in maintenance until 2026-12-04T12:30:00Z (backup): left alone (not planned: db003 start replication)' });
    },
  },
];

describe('decideReconcile with instances in maintenance', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_t, c) => {
    const spec = c.spec ?? SHOP;
    const probes = new Map(c.probes);
    const got = decideReconcile({ spec, state: c.state, analysis: analyzeCluster(spec, probes), probes, now: NOW, acknowledgedByCommit: false, allowSwitchover: true });
    expect(got).toMatchObject(c.expect);
    if (c.plan) {
      if (got.kind !== 'drift') throw new Error(`expected a drift step, got ${got.kind}`);
      c.plan(got.plan);
    }
  });
});

describe('leaveAlone', () => {
  it('drops a switchover that involves an instance in maintenance, and every step planned around it', () => {
    const spec = sandboxSpec('shop', { db001: 'db002', db002: null, db003: 'db002' });
    const probes = new Map([primary(SHOP, 'db001'), replica(SHOP, 'db002', 'db001'), replica(SHOP, 'db003', 'db001')]);
    const full = planCluster(spec, probes);
    expect(full.steps.some((s) => s.summary === 'switchover db001 -> db002')).toBe(true);
    const plan = leaveAlone(full, spec, new Map([['db002', { since: '2026-12-04T11:00:00Z', until: null, reason: null }]]));
    expect(plan.steps).toEqual([]);
    expect(plan.notices.at(-1)).toMatchObject({ kind: 'refused', about: 'switchover', instance: 'db002', message: expect.stringMatching(/^db002 is in maintenance until turned off: left alone \(not planned: switchover db001 -> db002, nor the steps planned around it\)$/) });
  });

  it('renumbers the steps that remain; an instance no longer in the file is ignored', () => {
    const spec = SHOP;
    const probes = new Map([primary(SHOP, 'db001'), stopped('db002'), stopped('db003')]);
    const full = planCluster(spec, probes);
    expect(full.steps.map((s) => s.id)).toEqual(['1', '2']);
    const m = { since: '2026-12-04T11:00:00Z', until: null, reason: null };
    const plan = leaveAlone(full, spec, new Map([['db002', m], ['db009', m]]));
    expect(plan.steps.map((s) => [s.id, s.summary])).toEqual([['1', 'db003 start replication']]);
    expect(plan.notices.filter((n) => n.message.includes('maintenance')).map((n) => n.instance)).toEqual(['db002']);
    expect(leaveAlone(full, spec, new Map())).toBe(full);
  });
});

describe('maintenance records', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    [' 45s ', 45_000],
    ['0s', undefined],
    ['30', undefined],
    ['m', undefined],
    ['-5m', undefined],
    ['1.5h', undefined],
    ['2 h', undefined],
    ['30min', undefined],
    ['', undefined],
  ] as const)('parseDuration(%j) = %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('on with --for lasts until then, without it until off; off removes it; expired records are ignored and dropped', () => {
    const t = NOW;
    let s = startMaintenance(EMPTY_STATE, 'db001', t, { forMs: 30 * 60_000, reason: 'kernel upgrade' });
    expect(s.maintenance).toEqual({ db001: { since: '2026-12-04T12:00:00Z', until: '2026-12-04T12:30:00Z', reason: 'kernel upgrade' } });
    s = startMaintenance(s, 'db002', t, {});
    expect(s.maintenance?.['db002']).toEqual({ since: '2026-12-04T12:00:00Z', until: null, reason: null });
    expect([...activeMaintenance(s, t + 30 * 60_000 - 1).keys()]).toEqual(['db001', 'db002']);
    expect([...activeMaintenance(s, t + 30 * 60_000).keys()]).toEqual(['db002']);
    expect([...activeMaintenance(s, t + 365 * 86_400_000).keys()]).toEqual(['db002']);
    // A later write drops db001's expired record.
    const later = startMaintenance(s, 'db003', t + 3_600_000, {});
    expect(Object.keys(later.maintenance ?? {})).toEqual(['db002', 'db003']);
    const off = endMaintenance(endMaintenance(later, 'db002', t + 3_600_000), 'db003', t + 3_600_000);
    expect(off).toEqual(EMPTY_STATE);
    expect('maintenance' in off).toBe(false);
    expect(endMaintenance(EMPTY_STATE, 'db001', t)).toEqual(EMPTY_STATE);
    // An unreadable `until` counts as expired rather than as forever.
    expect(activeMaintenance(on({ db001: { until: 'soon' } }), t).size).toBe(0);
  });
});

describe('status and plan show an instance in maintenance', () => {
  const probes = new Map([probeDown(SHOP, 'db001'), lost('db002'), stopped('db003')]);
  const maintenance = new Map<string, Maintenance>([
    ['db001', { since: '2026-12-04T11:00:00Z', until: '2026-12-04T18:30:00Z', reason: 'kernel upgrade' }],
    ['db003', { since: '2026-12-04T11:00:00Z', until: null, reason: null }],
  ]);
  const view = classifyCluster(SHOP, probes, { ...DEFAULT_CLASSIFY, maintenance });

  it('in the tree line, with until, and one line saying what it means', () => {
    const lines = renderStatusText([{ view }]).split('\n');
    expect(lines.find((l) => l.startsWith('db001'))).toMatch(/Unreachable .*prefer-promote  maintenance until 2026-12-04T18:30:00Z$/);
    expect(lines.find((l) => l.includes('db003  '))).toMatch(/ gtid \S+  prefer-promote  maintenance$/);
    expect(lines.find((l) => l.includes('db002  '))).not.toMatch(/maintenance/);
    expect(lines).toContain('  ~ db001: in maintenance since 2026-12-04T11:00:00Z, until 2026-12-04T18:30:00Z: kernel upgrade; topogit neither fails over for it nor fences, promotes or repairs it');
  });

  it('in status --json: instances[].maintenance, null when not in maintenance', () => {
    const j = statusJson([{ view, probes, report: reportCluster(SHOP, probes, EMPTY_STATE, NOW) }], new Date(NOW));
    expect(j.clusters[0]?.instances.map((i) => [i.name, i.maintenance])).toEqual([
      ['db001', { since: '2026-12-04T11:00:00Z', until: '2026-12-04T18:30:00Z', reason: 'kernel upgrade' }],
      ['db002', null],
      ['db003', { since: '2026-12-04T11:00:00Z', until: null, reason: null }],
    ]);
  });

  it('plan and apply leave it alone too (from the view status shows)', () => {
    const live = new Map([primary(SHOP, 'db001'), replica(SHOP, 'db002', 'db001'), stopped('db003')]);
    const observation = (v: typeof view) => [{ spec: SHOP, probes: live, view: v }];
    const without = planObservations(observation(classifyCluster(SHOP, live)), { replication: { connectRetry: 2, heartbeatPeriod: 1 }, maxSwitchoverLagSeconds: 10, catchUpTimeoutSeconds: 30 }, {});
    expect(without.plans[0]?.steps.map((x) => x.summary)).toEqual(['db003 start replication']);
    const withM = planObservations(observation(classifyCluster(SHOP, live, { ...DEFAULT_CLASSIFY, maintenance })), { replication: { connectRetry: 2, heartbeatPeriod: 1 }, maxSwitchoverLagSeconds: 10, catchUpTimeoutSeconds: 30 }, {});
    expect(withM.plans[0]?.steps).toEqual([]);
    expect(withM.plans[0]?.notices.map((n) => n.message)).toContain('db003 is in maintenance until turned off: left alone (not planned: db003 start replication)');
  });
});
