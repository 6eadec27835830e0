// decideFailover: every step a failover can take and every refusal, table-driven over probe
// results built from rows captured on real MariaDB 10.11 servers (test/fixtures/rows). The
// sandbox: db001 127.0.0.11 (server_id 1) the file's primary, db002 (2), db003 (3) its replicas.
import { describe, expect, it } from 'vitest';
import { decideFailover, failoverAnalysis, type FailoverRequest, type FailoverStep, type FailoverStepKind } from '../../src/core/failover.js';
import type { ClusterSpec, InstanceSpec, ProbeResult, Promotion } from '../../src/core/model.js';
import { EMPTY_STATE, type ClusterState, type FailoverJournal, type FailoverPhase, type Maintenance } from '../../src/core/state.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';

class Rows extends FixtureRows {
  /** MariaDB: every position variable at `pos`, and the IO thread received up to `io`. */
  at(pos: string, io: string = pos): this {
    const vars = this.vars({ gtid_current_pos: pos, gtid_binlog_pos: pos, gtid_slave_pos: pos, gtid_binlog_state: pos });
    return this.rows.replicaStatus.length > 0 ? vars.status({ Gtid_IO_Pos: io, Gtid_Slave_Pos: pos }) : vars;
  }
}

const ID: Record<string, number> = { db001: 1, db002: 2, db003: 3 };
const id = (name: string) => ID[name] as number;

function spec(promotion: Partial<Record<string, Promotion>> = {}, preFailover: readonly string[] = []): ClusterSpec {
  const inst = (name: string, source?: string): InstanceSpec => ({ name, host: `127.0.0.1${id(name)}`, port: 3306, ...(source ? { source } : {}), promotion: promotion[name] ?? 'neutral' });
  return {
    cluster: 'sandbox',
    flavor: 'auto',
    credentials: { admin: { user: 'topogit', passwordEnv: 'TOPOGIT_PASSWORD' }, replication: { user: 'repl', passwordEnv: 'TOPOGIT_REPL_PASSWORD' } },
    instances: [inst('db001'), inst('db002', 'db001'), inst('db003', 'db001')],
    failover: { ...DEFAULT_FAILOVER, auto: true, hooks: { preFailover, postFailover: [] } },
    writeBack: DEFAULT_WRITE_BACK,
    file: 'topologies/sandbox.yaml',
  };
}

const S = spec();
const withFailover = (f: Partial<ClusterSpec['failover']>): ClusterSpec => ({ ...S, failover: { ...S.failover, ...f } });
type Probe = [string, ProbeResult];
/** The primary, answering and writable. */
const primaryUp = (): Probe => probeUp(S, 'db001', Rows.of('mariadb-10.11-primary'));
const down = (name: string): Probe => probeDown(S, name);
/** A replica still connected to db001 (IO Yes). */
const following = (name: string, pos = '0-1-6'): Probe => probeUp(S, name, Rows.of('mariadb-10.11-replica-ok').as(id(name)).at(pos));
/** A replica that lost db001: IO Connecting, error 2003 (the captured row). */
const lost = (name: string, pos = '0-1-6', io = pos): Probe => probeUp(S, name, Rows.of('mariadb-10.11-replica-source-dead').as(id(name)).at(pos, io));
/** After the drain: IO thread stopped, the last connection error kept, the relay log applied. */
const drained = (name: string, pos = '0-1-6'): Probe => probeUp(S, name, Rows.of('mariadb-10.11-replica-source-dead').as(id(name)).at(pos).status({ Slave_IO_Running: 'No' }));
/** Delayed by MASTER_DELAY: IO stopped (drained), `io` received, only `pos` applied. */
const delayed = (name: string, pos: string, io: string, delay = 30): Probe => probeUp(S, name, Rows.of('mariadb-10.11-replica-source-dead').as(id(name)).at(pos, io).status({ Slave_IO_Running: 'No', SQL_Delay: delay, Seconds_Behind_Master: null }));
/** Promoted: replicates from nobody, writable. */
const promoted = (name: string, pos = '0-1-6'): Probe => probeUp(S, name, Rows.of('mariadb-10.11-primary').as(id(name)).at(pos));
/** Replicating from another member with both threads running. */
const under = (name: string, source: string, pos = '0-1-6'): Probe => probeUp(S, name, Rows.of('mariadb-10.11-replica-ok').as(id(name)).from(id(source)).at(pos));

function journal(phases: readonly FailoverPhase[], extra: Partial<FailoverJournal> = {}): FailoverJournal {
  return {
    id: 'sandbox-2026-12-04T00:00:00.000Z',
    cluster: 'sandbox',
    failedPrimary: 'db001',
    startedAt: '2026-12-04T00:00:00.000Z',
    trigger: 'auto',
    steps: phases.map((step) => ({ step, at: '2026-12-04T00:00:00.000Z' })),
    ...(phases.includes('chosen') ? { candidate: 'db002' } : {}),
    ...extra,
  };
}

interface Case {
  readonly title: string;
  readonly spec?: ClusterSpec;
  readonly journal?: FailoverJournal;
  /** The journal was there when the run began. Default: true when there is a journal. */
  readonly resumed?: boolean;
  readonly request?: Partial<FailoverRequest>;
  readonly probes: readonly Probe[];
  readonly state?: ClusterState;
  readonly mayWait?: boolean;
  readonly expect: FailoverStep | { readonly kind: FailoverStepKind; readonly reason: RegExp };
}

const ALL_DEAD = [down('db001'), lost('db002'), lost('db003')];
/** The decisions' clock: noon on the day the journals were written. */
const NOW = Date.parse('2026-12-04T12:00:00Z');
/** `topogit maintenance sandbox NAME on` records. */
const inMaintenance = (m: Record<string, Partial<Maintenance>>): ClusterState => ({
  ...EMPTY_STATE,
  maintenance: Object.fromEntries(Object.entries(m).map(([n, x]) => [n, { since: '2026-12-04T11:00:00Z', until: null, reason: null, ...x }])),
});
const UNTIL_EVENING = { until: '2026-12-04T18:30:00Z', reason: 'kernel upgrade' };
const AFTER_DRAIN = [down('db001'), drained('db002'), drained('db003')];

const CASES: readonly Case[] = [
  // Before anything is journaled: does the analysis allow a failover at all?
  { title: 'primary dead, confirmed by every replica: start (with the veto hooks)', spec: spec({}, ['./pre.sh']), probes: ALL_DEAD, expect: { kind: 'start', failed: 'db001', why: expect.stringMatching(/^DeadPrimary: db001 is dead/) as unknown as string, hooks: ['./pre.sh'], fence: [], forced: false } },
  // Quorum: more than half of the primary's replicas must confirm (those topogit cannot reach count against).
  { title: 'primary dead, one of two replicas unreachable: no majority, refuse', probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'refuse', reason: /^DeadPrimaryAndSomeReplicas: .*no majority of db001's replicas confirms it is dead.*configure failover.fence, or fail over by hand with `topogit failover --force`/ } },
  { title: 'no majority, manual: refuse, pointing at --force', request: { trigger: 'manual' }, probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'refuse', reason: /`--force` fails over anyway, or configure failover.fence\)$/ } },
  { title: 'no majority, manual --force: start, forced', request: { trigger: 'manual', force: true }, probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'start', failed: 'db001', why: expect.stringMatching(/^DeadPrimaryAndSomeReplicas/) as unknown as string, hooks: [], fence: [], forced: true } },
  { title: 'no majority, quorum any: start', spec: withFailover({ quorum: 'any' }), probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'start', failed: 'db001', why: expect.stringMatching(/^DeadPrimaryAndSomeReplicas/) as unknown as string, hooks: [], fence: [], forced: false } },
  { title: 'no majority, a fence command configured: start, fencing first', spec: withFailover({ fence: { command: ['./stonith.sh'], timeoutSeconds: 9 } }), probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'start', failed: 'db001', why: expect.stringMatching(/^DeadPrimaryAndSomeReplicas/) as unknown as string, hooks: [], fence: ['./stonith.sh'], forced: false } },
  { title: 'a replica connecting without an error yet is no evidence: no majority', probes: [down('db001'), lost('db002'), probeUp(S, 'db003', Rows.of('mariadb-10.11-replica-source-dead').as(3).status({ Last_IO_Errno: 0, Last_IO_Error: '' }))], expect: { kind: 'refuse', reason: /no majority/ } },
  { title: 'the primary answers with an error (too many connections): alive, refuse', probes: [[ 'db001', { ok: false, endpoint: { host: '127.0.0.11', port: 3306 }, error: 'Too many connections', code: 'ER_CON_COUNT_ERROR', ms: 1, answered: true }], lost('db002'), lost('db003')], expect: { kind: 'refuse', reason: /^PrimaryReachable: db001 answers, with an error: Too many connections/ } },
  { title: 'started, minority with a fence command: run it before anything else', spec: withFailover({ fence: { command: ['./stonith.sh'], timeoutSeconds: 9 } }), journal: journal(['started'], { stonith: ['./stonith.sh'] }), resumed: false, probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'stonith', instance: 'db001', commands: ['./stonith.sh'], timeoutSeconds: 9 } },
  { title: 'fenced by the command: drain', journal: journal(['started', 'stonith'], { stonith: ['./stonith.sh'] }), resumed: false, probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'drain', replicas: ['db002'], delayed: [] } },
  { title: 'the primary answers again before the promotion (not resumed): undo, it was not dead', journal: journal(['started', 'drained', 'chosen']), resumed: false, probes: [primaryUp(), drained('db002'), drained('db003')], expect: { kind: 'undo', reason: /^the failover of db001 was undone: PrimaryReachable/, restart: ['db002', 'db003'] } },
  { title: 'primary answers: refuse, pointing at switchover', probes: [primaryUp(), following('db002'), following('db003')], expect: { kind: 'refuse', reason: /^PrimaryReachable: .*use `topogit switchover` \(or --force/ } },
  { title: 'primary answers, --force: start (it is fenced first)', request: { trigger: 'manual', force: true }, probes: [primaryUp(), following('db002'), following('db003')], expect: { kind: 'start', reason: /./ } },
  { title: 'only topogit lost the primary (a replica still follows it): refuse', probes: [down('db001'), following('db002'), lost('db003')], expect: { kind: 'refuse', reason: /^UnreachablePrimary: / } },
  { title: 'UnreachablePrimary and --force: still refuse (it may be alive and writable)', request: { trigger: 'manual', force: true }, probes: [down('db001'), following('db002'), lost('db003')], expect: { kind: 'refuse', reason: /^UnreachablePrimary: / } },
  { title: 'manual, the replicas have not noticed yet: wait for them', request: { trigger: 'manual' }, mayWait: true, probes: [down('db001'), following('db002'), following('db003')], expect: { kind: 'wait-confirmation', reason: /still replicate/ } },
  { title: 'manual, the wait is over and they still follow it: refuse', request: { trigger: 'manual' }, mayWait: false, probes: [down('db001'), following('db002'), following('db003')], expect: { kind: 'refuse', reason: /^UnreachablePrimary: / } },
  { title: 'automatic never waits for confirmation', mayWait: true, probes: [down('db001'), following('db002'), following('db003')], expect: { kind: 'refuse', reason: /^UnreachablePrimary: / } },
  { title: 'no replica reachable: refuse', probes: [down('db001'), down('db002'), down('db003')], expect: { kind: 'refuse', reason: /^NoReplicasReachable: / } },

  // Started: fence a primary that answers (forced), else drain.
  { title: 'started, primary dead: drain every reachable replica', journal: journal(['started']), resumed: false, probes: ALL_DEAD, expect: { kind: 'drain', replicas: ['db002', 'db003'], delayed: [] } },
  { title: 'started (forced), a replica unreachable: drain the others', journal: journal(['started'], { forced: true }), resumed: false, probes: [down('db001'), lost('db002'), down('db003')], expect: { kind: 'drain', replicas: ['db002'], delayed: [] } },
  { title: 'started by --force, primary answers: fence it first', journal: journal(['started'], { forced: true }), resumed: false, request: { trigger: 'manual', force: true }, probes: [primaryUp(), following('db002'), following('db003')], expect: { kind: 'fence-old', instance: 'db001', replicas: ['db002', 'db003'] } },
  { title: 'fenced-old: drain', journal: journal(['started', 'fenced-old']), probes: [primaryUp(), following('db002'), following('db003')], expect: { kind: 'drain', replicas: ['db002', 'db003'], delayed: [] } },

  // Resumed after a crash: undo when the primary came back before anything was promoted.
  { title: 'resumed before promotion, the primary answers again: undo, restart the drained replicas', journal: journal(['started', 'drained']), probes: [primaryUp(), drained('db002'), drained('db003')], expect: { kind: 'undo', reason: /interrupted failover of db001 was undone: PrimaryReachable/, restart: ['db002', 'db003'] } },
  { title: 'resumed before promotion, a replica follows the primary again: undo', journal: journal(['started']), probes: [down('db001'), following('db002'), drained('db003')], expect: { kind: 'undo', reason: /UnreachablePrimary/, restart: ['db003'] } },
  { title: 'resumed after promotion, the old primary answers: finish (repoint), never undo', journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [primaryUp(), promoted('db002'), drained('db003')], expect: { kind: 'repoint', newPrimary: 'db002', moves: ['db003'], skipped: [] } },

  // Choosing, and choosing again when the chosen one died before promotion.
  { title: 'drained: choose the most advanced', journal: journal(['started', 'drained']), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-7')], expect: { kind: 'choose', reason: /most advanced/ } },
  { title: 'drained: prefer ranks before a more advanced neutral', spec: spec({ db002: 'prefer' }), journal: journal(['started', 'drained']), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-7')], expect: { kind: 'choose', reason: /promotion: prefer/ } },
  { title: 'drained: a replica that did not drain in time is not chosen', journal: journal(['started', 'drained'], { undrained: ['db003'] }), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-7')], expect: { kind: 'choose', reason: /./ } },
  { title: 'drained, nobody may be promoted: abandon and restart replication', spec: spec({ db002: 'never', db003: 'never' }), journal: journal(['started', 'drained']), probes: AFTER_DRAIN, expect: { kind: 'abandon', reason: /no replica of db001 can be promoted \(db002: promotion: never; db003: promotion: never\)/, restart: ['db002', 'db003'] } },
  { title: 'drained, a fenced former primary is never chosen', journal: journal(['started', 'drained']), state: { ...EMPTY_STATE, formerPrimaries: [{ name: 'db003', failoverId: 'x', newPrimary: 'db001', errant: '0-3-1' }] }, probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-7')], expect: { kind: 'choose', reason: /./ } },
  { title: 'chosen db002, which died before promotion: choose again among the living', journal: journal(['started', 'drained', 'chosen']), probes: [down('db001'), down('db002'), drained('db003')], expect: { kind: 'choose', reason: /^db002 was chosen but is unreachable now; / } },
  { title: 'chosen by --to db002, which died: abandon (the operator asked for that one)', journal: journal(['started', 'drained', 'chosen'], { to: 'db002' }), probes: [down('db001'), down('db002'), drained('db003')], expect: { kind: 'abandon', reason: /db002 was chosen but is unreachable now; db002 cannot be promoted: unreachable/ } },
  { title: 'chosen, a never-promote replica is ahead: catch up from it first', spec: spec({ db003: 'never' }), journal: journal(['started', 'drained', 'chosen']), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-9')], expect: { kind: 'catch-up', candidate: 'db002', donor: 'db003' } },
  { title: 'chosen and caught up: promote', spec: spec({ db003: 'never' }), journal: journal(['started', 'drained', 'chosen', 'caught-up']), probes: [down('db001'), under('db002', 'db003', '0-1-9'), drained('db003', '0-1-9')], expect: { kind: 'promote', candidate: 'db002' } },
  { title: 'a catch-up for an earlier candidate does not count for a new one', spec: spec({ db003: 'never' }), journal: journal(['started', 'drained', 'chosen', 'caught-up', 'chosen']), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-9')], expect: { kind: 'catch-up', candidate: 'db002', donor: 'db003' } },
  { title: 'chosen, nobody ahead: promote', journal: journal(['started', 'drained', 'chosen']), probes: AFTER_DRAIN, expect: { kind: 'promote', candidate: 'db002' } },

  // Delayed replicas (MASTER_DELAY): never waited out, never automatic candidates unless prefer.
  { title: 'started, a delayed replica: it only stops receiving, it is not waited out', journal: journal(['started']), resumed: false, probes: [down('db001'), lost('db002'), probeUp(S, 'db003', Rows.of('mariadb-10.11-replica-source-dead').as(3).at('0-1-4', '0-1-6').status({ SQL_Delay: 20 }))], expect: { kind: 'drain', replicas: ['db002'], delayed: ['db003'] } },
  { title: 'drained, the delayed replica holds nothing others lack: choose the current one', journal: journal(['started', 'drained']), probes: [down('db001'), drained('db002', '0-1-6'), delayed('db003', '0-1-4', '0-1-6')], expect: { kind: 'choose', reason: /./ } },
  { title: 'drained, the delayed replica holds transactions nobody applied: undelay it first', journal: journal(['started', 'drained']), probes: [down('db001'), drained('db002', '0-1-6'), delayed('db003', '0-1-4', '0-1-8')], expect: { kind: 'undelay', instance: 'db003' } },
  { title: 'a delayed replica with promotion: prefer is chosen, then caught up from a donor', spec: spec({ db003: 'prefer' }), journal: journal(['started', 'drained', 'chosen'], { candidate: 'db003' }), probes: [down('db001'), drained('db002', '0-1-6'), delayed('db003', '0-1-4', '0-1-6')], expect: { kind: 'catch-up', candidate: 'db003', donor: 'db002' } },

  // After the promotion.
  { title: 'promoted: repoint the other replicas', journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [down('db001'), promoted('db002'), drained('db003')], expect: { kind: 'repoint', newPrimary: 'db002', moves: ['db003'], skipped: [] } },
  { title: 'promoted, routers in the file: the writer backends first, before the replicas and Git', spec: { ...S, routing: [{ kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw', reader: 'ro' }] }, journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [down('db001'), promoted('db002'), drained('db003')], expect: { kind: 'route', newPrimary: 'db002', routers: [{ kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw', reader: 'ro' }] } },
  { title: 'routed: repoint the other replicas', spec: { ...S, routing: [{ kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw' }] }, journal: journal(['started', 'drained', 'chosen', 'promoted', 'routed']), probes: [down('db001'), promoted('db002'), drained('db003')], expect: { kind: 'repoint', newPrimary: 'db002', moves: ['db003'], skipped: [] } },
  { title: 'promoted: a replica with transactions the new primary lacks is left stopped', journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [down('db001'), promoted('db002', '0-1-6'), drained('db003', '0-1-6,1-3-1')], expect: { kind: 'repoint', newPrimary: 'db002', moves: [], skipped: [{ name: 'db003', why: expect.stringMatching(/^not repointed: it holds transactions db002 lacks/) as unknown as string }] } },
  { title: 'promoted: a replica already under the new primary is not moved again', journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [down('db001'), promoted('db002'), under('db003', 'db002')], expect: { kind: 'repoint', newPrimary: 'db002', moves: [], skipped: [] } },
  { title: 'written back: try to fence the old primary', journal: journal(['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back']), probes: [down('db001'), promoted('db002'), under('db003', 'db002')], expect: { kind: 'fence-attempt', instance: 'db001' } },
  { title: 'repointed: write back at once', journal: journal(['started', 'drained', 'chosen', 'promoted', 'repointed']), probes: [down('db001'), promoted('db002'), under('db003', 'db002')], expect: { kind: 'write-back', newPrimary: 'db002' } },
  { title: 'fence attempted after the write-back: finish', journal: journal(['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted']), probes: [down('db001'), promoted('db002'), under('db003', 'db002')], expect: { kind: 'finish', newPrimary: 'db002' } },

  // Maintenance: an operator is working on an instance on purpose.
  { title: 'primary dead but in maintenance: refuse, naming it, until when and how to end it', state: inMaintenance({ db001: UNTIL_EVENING }), probes: ALL_DEAD, expect: { kind: 'refuse', reason: 'db001 is in maintenance until 2026-12-04T18:30:00Z (kernel upgrade): no failover; `topogit maintenance sandbox db001 off` to end it' } },
  { title: 'primary in maintenance without --for: refuse, until turned off', state: inMaintenance({ db001: {} }), probes: ALL_DEAD, expect: { kind: 'refuse', reason: /^db001 is in maintenance until turned off: no failover/ } },
  { title: 'primary in maintenance, manual --force: still refuse', request: { trigger: 'manual', force: true }, state: inMaintenance({ db001: UNTIL_EVENING }), probes: ALL_DEAD, expect: { kind: 'refuse', reason: /^db001 is in maintenance until 2026-12-04T18:30:00Z/ } },
  { title: 'primary in maintenance that expired: start', state: inMaintenance({ db001: { until: '2026-12-04T11:59:59Z' } }), probes: ALL_DEAD, expect: { kind: 'start', reason: /^DeadPrimary: / } },
  { title: 'a replica in maintenance does not block the failover of its primary', state: inMaintenance({ db003: {} }), probes: ALL_DEAD, expect: { kind: 'start', reason: /^DeadPrimary: / } },
  { title: 'a failover already in progress goes on although its primary is now in maintenance', journal: journal(['started']), resumed: false, state: inMaintenance({ db001: UNTIL_EVENING }), probes: ALL_DEAD, expect: { kind: 'drain', replicas: ['db002', 'db003'], delayed: [] } },
  { title: 'drained: the most advanced replica is in maintenance, the other is chosen', journal: journal(['started', 'drained']), state: inMaintenance({ db003: {} }), probes: [down('db001'), drained('db002', '0-1-6'), drained('db003', '0-1-7')], expect: { kind: 'choose', reason: /./ } },
  { title: 'drained, --to a replica in maintenance: abandon', journal: journal(['started', 'drained'], { to: 'db003' }), state: inMaintenance({ db003: {} }), probes: AFTER_DRAIN, expect: { kind: 'abandon', reason: /^db003 cannot be promoted: in maintenance$/ } },
  { title: 'written back, the old primary is in maintenance now: no fence attempt on it', journal: journal(['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back']), state: inMaintenance({ db001: UNTIL_EVENING }), probes: [down('db001'), promoted('db002'), under('db003', 'db002')], expect: { kind: 'fence-attempt', instance: 'db001', skip: 'db001 is in maintenance until 2026-12-04T18:30:00Z (kernel upgrade)' } },
  { title: 'abort while the primary is in maintenance: undo all the same', request: { trigger: 'manual', abort: true }, journal: journal(['started', 'drained']), state: inMaintenance({ db001: {} }), probes: AFTER_DRAIN, expect: { kind: 'undo', reason: /aborted by an operator/, restart: ['db002', 'db003'] } },

  // An operator's abort.
  { title: 'abort with nothing in progress: refuse', request: { trigger: 'manual', abort: true }, probes: ALL_DEAD, expect: { kind: 'refuse', reason: /^no failover of sandbox is in progress$/ } },
  { title: 'abort before promotion: undo', request: { trigger: 'manual', abort: true }, journal: journal(['started', 'drained', 'chosen']), probes: AFTER_DRAIN, expect: { kind: 'undo', reason: /aborted by an operator/, restart: ['db002', 'db003'] } },
  { title: 'abort after promotion: refuse, it can only be finished', request: { trigger: 'manual', abort: true }, journal: journal(['started', 'drained', 'chosen', 'promoted']), probes: [down('db001'), promoted('db002'), drained('db003')], expect: { kind: 'refuse', reason: /db002 was already promoted: the failover can only be finished/ } },

  // What cannot be decided.
  { title: 'the journal names an instance the file no longer has: refuse', journal: journal(['started'], { failedPrimary: 'db009' }), probes: ALL_DEAD, expect: { kind: 'refuse', reason: /the journal names db009, which is not in topologies\/sandbox.yaml any more/ } },
];

function decide(c: Case): FailoverStep {
  const s = c.spec ?? S;
  const probes = new Map(c.probes);
  return decideFailover({
    spec: s,
    journal: c.journal,
    resumed: c.resumed ?? c.journal !== undefined,
    request: { trigger: 'auto', ...c.request },
    analysis: failoverAnalysis(s, probes, c.journal),
    probes,
    state: c.state ?? EMPTY_STATE,
    mayWaitForConfirmation: c.mayWait ?? false,
    now: NOW,
  });
}

describe('decideFailover', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_t, c) => {
    const got = decide(c);
    if ('reason' in c.expect && c.expect.reason instanceof RegExp) {
      expect(got.kind).toBe(c.expect.kind);
      expect('reason' in got ? got.reason : 'why' in got ? got.why : '').toMatch(c.expect.reason);
    } else {
      expect(got).toEqual(c.expect);
    }
  });

  it('chooses the candidate the policy ranks first', () => {
    const pick = (c: Case) => {
      const got = decide(c);
      return got.kind === 'choose' ? got.candidate : got.kind;
    };
    const byTitle = (t: string) => CASES.find((c) => c.title.startsWith(t)) as Case;
    expect(pick(byTitle('drained: choose the most advanced'))).toBe('db003');
    expect(pick(byTitle('drained: prefer ranks'))).toBe('db002');
    expect(pick(byTitle('drained: a replica that did not drain'))).toBe('db002');
    expect(pick(byTitle('drained, a fenced former primary'))).toBe('db002');
    expect(pick(byTitle('chosen db002, which died'))).toBe('db003');
    expect(pick(byTitle('drained, the delayed replica holds nothing'))).toBe('db002');
    // prefer lets a delayed replica be chosen (then caught up, never waited out)
    expect(pick({ title: '', spec: spec({ db003: 'prefer' }), journal: journal(['started', 'drained']), probes: [down('db001'), drained('db002', '0-1-6'), delayed('db003', '0-1-4', '0-1-6')], expect: { kind: 'choose', reason: /./ } })).toBe('db003');
    expect(pick(byTitle('drained: the most advanced replica is in maintenance'))).toBe('db002');
  });

  it('the table covers every step kind', () => {
    const kinds: Record<FailoverStepKind, true> = {
      refuse: true, 'wait-confirmation': true, start: true, stonith: true, undelay: true, undo: true, 'fence-old': true, drain: true, choose: true, abandon: true,
      'catch-up': true, promote: true, route: true, repoint: true, 'fence-attempt': true, 'write-back': true, finish: true,
    };
    expect(new Set(CASES.map((c) => c.expect.kind))).toEqual(new Set(Object.keys(kinds)));
  });

  it('never promotes while the analysis does not confirm the death, whatever the request', () => {
    for (const probes of [[primaryUp(), following('db002'), following('db003')], [down('db001'), following('db002'), lost('db003')], [down('db001'), down('db002'), down('db003')]]) {
      for (const request of [{}, { trigger: 'manual' as const }, { trigger: 'manual' as const, to: 'db002' }]) {
        const got = decide({ title: '', probes, request, expect: { kind: 'refuse', reason: /./ } });
        expect(['refuse', 'wait-confirmation', 'start']).toContain(got.kind);
        if (got.kind === 'start') expect(probes[0]?.[1].ok).toBe(false); // only a dead primary starts without --force
      }
    }
  });
});
