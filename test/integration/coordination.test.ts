// Several daemons, each in its own clone (as on two hosts), coordinated by a real 3-member etcd
// cluster on loopback: one failover for one dead primary, leadership that moves when its daemon
// dies, a daemon paused mid-failover that never runs another step, and etcd faults (one member
// down changes nothing; without a majority nobody acts, then everything resumes).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcdCluster, type EtcdCluster } from '../../src/adapters/sandbox/etcd.js';
import { withFailover } from '../support/spec.js';
import { keepLogs, spawnDaemon, type SpawnedDaemon } from '../support/daemon.js';
import { waitFor } from '../support/wait.js';
import { main } from '../../src/cli/main.js';
import { startFleet, type Fleet } from './fleet.js';

const exec = promisify(execFile);
const INTERVAL_MS = 500;
const TTL_S = 2;
let fleet: Fleet;
let etcd: EtcdCluster;
let etcdDir: string;
let bare: string;

type Daemon = SpawnedDaemon;
const daemons: Daemon[] = [];
const gitEnv = () => ({ ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });

async function startDaemon(name: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const clone = path.join(fleet.dir, `clone-${name}`);
  await rm(clone, { recursive: true, force: true });
  await exec('git', ['clone', '-q', bare, clone], { env: gitEnv() });
  const d = await spawnDaemon({ name, cwd: clone, env: { ...gitEnv(), ...extraEnv }, global: ['--coordinator', etcd.url, '--coordinator-ttl', String(TTL_S)], watchArgs: ['--pull-interval', '300', '--log-level', 'debug'] });
  daemons.push(d);
  return d;
}
async function kill9(d: Daemon): Promise<void> {
  d.child.kill('SIGKILL');
  await d.exited;
}
interface Coordination {
  healthy: boolean;
  problem: string | null;
  members: { name: string; leads: number }[];
  clusters: { cluster: string; leader: string | null; mine: boolean }[];
}
async function coordination(d: Daemon): Promise<Coordination> {
  return (await (await fetch(`http://127.0.0.1:${d.port}/api/coordination`)).json()) as Coordination;
}
const leads = async (d: Daemon) => (await coordination(d)).clusters.some((c) => c.cluster === 'shop' && c.mine);
async function leaderOf(ds: readonly Daemon[]): Promise<Daemon> {
  return waitFor('one daemon to lead shop', async () => (await Promise.all(ds.map(async (d) => ((await leads(d)) ? d : undefined)))).filter((d) => d !== undefined), (l) => l.length === 1, 15_000).then((l) => l[0] as Daemon);
}
const failoverCommits = async () => (await exec('git', ['--git-dir', bare, 'log', '--format=%s', 'main'])).stdout.split('\n').filter((s) => s.startsWith('failover(shop)'));
const started = (d: Daemon) => (d.log().match(/"msg":"failover started/g) ?? []).length;
async function writable(): Promise<string[]> {
  const out: string[] = [];
  for (const n of fleet.names) if ((await fleet.readOnly(n).catch(() => 1)) === 0) out.push(n);
  return out;
}
async function primaryNow(): Promise<string> {
  return waitFor('exactly one writable instance', writable, (w) => w.length === 1, 20_000).then((w) => w[0] as string);
}
/** Restarts the old primary (rejoined by the daemon) and says how many failover commits the remote has then. */
async function restartAndCount(name: string, source: string): Promise<number> {
  await restart(name, source);
  return (await failoverCommits()).length;
}
/** The old primary comes back and is rejoined by the daemons (a later failover needs its vote). */
async function restart(name: string, source: string): Promise<void> {
  expect((await fleet.run('sandbox', 'start', name)).code).toBe(0);
  await waitFor(`${name} to replicate from ${source}`, () => fleet.replication(name), (r) => r === `${source} IO Yes SQL Yes`, 30_000);
}

describe.sequential('coordination on etcd', () => {
  beforeAll(async () => {
    etcdDir = await mkdtemp(path.join(tmpdir(), 'topogit-etcd-'));
    etcd = await startEtcdCluster({ dir: etcdDir, addresses: ['127.0.0.241', '127.0.0.242', '127.0.0.243'] });
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 236 });
    bare = path.join(fleet.dir, 'remote.git');
    await exec('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    const work = path.join(fleet.dir, 'work');
    await exec('git', ['clone', '-q', bare, work], { env: gitEnv() });
    const text = withFailover(await readFile(path.join(fleet.dir, 'topologies', 'shop.yaml'), 'utf8'), `  auto: true\n  blockSeconds: 0\n  detection: { intervalMs: ${INTERVAL_MS} }\n`);
    await exec('mkdir', ['-p', path.join(work, 'topologies')]);
    await writeFile(path.join(work, 'topologies', 'shop.yaml'), text.replaceAll('../.sandbox', '../../.sandbox'));
    await writeFile(path.join(work, '.gitignore'), '.topogit/\n');
    await exec('git', ['add', '.'], { cwd: work, env: gitEnv() });
    await exec('git', ['commit', '-qm', 'shop'], { cwd: work, env: gitEnv() });
    await exec('git', ['push', '-qu', 'origin', 'main'], { cwd: work, env: gitEnv() });
  }, 120_000);
  afterAll(async () => {
    // Each daemon's log is kept for whoever reads a failure (gitignored).
    await keepLogs('coordination', daemons);
    for (const d of daemons) d.child.kill('SIGKILL');
    await fleet?.down();
    await etcd?.stop();
    if (etcdDir) await rm(etcdDir, { recursive: true, force: true });
  });

  it('two daemons on two clones: one leads, and a SIGKILLed primary gives exactly one failover', async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b');
    const leader = await leaderOf([a, b]);
    const views = await Promise.all([coordination(a), coordination(b)]);
    for (const v of views) expect(v.clusters.find((c) => c.cluster === 'shop')?.leader).toBe(leader.name);
    expect(views[0]?.members.map((m) => m.name).sort()).toEqual(['a', 'b']);
    // For alerts: across daemons, topogit_leads{cluster} sums to 1.
    const metricsOf = async (d: Daemon) => (await fetch(`http://127.0.0.1:${d.port}/metrics`)).text();
    for (const d of [a, b]) {
      const m = await metricsOf(d);
      expect(m).toContain(`topogit_leads{cluster="shop"} ${d === leader ? 1 : 0}`);
      expect(m).toMatch(/\ntopogit_coordinator_up 1\n/);
    }
    // `status` (from any clone, with the same coordinator) says who leads.
    let out = '';
    await main(['--coordinator', etcd.url, 'status'], { out: (x) => (out += x), err: (x) => (out += x), env: fleet.env, cwd: path.join(fleet.dir, 'clone-a') });
    expect(out).toMatch(new RegExp(`\\n  leader: ${leader.name} \\(etcd, since \\S+\\)\\n`));

    expect((await fleet.run('sandbox', 'kill', 'db001')).code).toBe(0);
    await waitFor('a failover commit on the remote', failoverCommits, (c) => c.length === 1, 30_000);
    expect(await primaryNow()).toBe('db002');
    expect(started(a) + started(b)).toBe(1);
    expect(started(leader)).toBe(1);
    // The other one never moved a server: no statement of its own.
    const other = leader === a ? b : a;
    expect(other.log()).not.toMatch(/"msg":"failover (promoted|repointed)/);
    await restart('db001', 'db002');
    expect(await failoverCommits()).toHaveLength(1);
    expect(started(a) + started(b)).toBe(1);
  }, 120_000);

  it('a CI-style apply from a clone that lacks the failover commit (and has no remote) refuses from the state in etcd, and changes nothing', async () => {
    const ci = path.join(fleet.dir, 'ci');
    await exec('git', ['clone', '-q', bare, ci], { env: gitEnv() });
    const first = (await exec('git', ['rev-list', '--max-parents=0', 'HEAD'], { cwd: ci })).stdout.trim();
    await exec('git', ['reset', '-q', '--hard', first], { cwd: ci });
    await exec('git', ['remote', 'remove', 'origin'], { cwd: ci });
    const before = { writable: await writable(), sources: await Promise.all(fleet.names.map((n) => fleet.sourceOf(n))) };
    let out = '';
    const code = await main(['--coordinator', etcd.url, 'apply', '--yes'], { out: (x) => (out += x), err: (x) => (out += x), env: fleet.env, cwd: ci });
    expect(code).toBe(1);
    expect(out).toMatch(/the file predates failover shop-\S+ \(db001 -> db002 at \S+\); pull first/);
    expect({ writable: await writable(), sources: await Promise.all(fleet.names.map((n) => fleet.sourceOf(n))) }).toEqual(before);
  }, 60_000);

  it('the leading daemon killed -9: the other leads within TTL + 1 s and fails over', async () => {
    const [a, b] = daemons as [Daemon, Daemon];
    const leader = await leaderOf([a, b]);
    const other = leader === a ? b : a;
    const t0 = Date.now();
    await kill9(leader);
    await waitFor('the other daemon to lead shop', () => leads(other), (x) => x, (TTL_S + 1) * 1000);
    const moved = Date.now() - t0;
    console.log(`leadership moved ${moved} ms after kill -9 (TTL ${TTL_S} s)`);
    expect(moved).toBeLessThanOrEqual((TTL_S + 1) * 1000);

    const before = (await failoverCommits()).length;
    expect((await fleet.run('sandbox', 'kill', 'db002')).code).toBe(0);
    await waitFor('a second failover commit on the remote', failoverCommits, (c) => c.length === before + 1, 30_000);
    const primary = await primaryNow();
    expect(primary).not.toBe('db002');
    await restart('db002', primary);
  }, 120_000);

  it('a leader paused (SIGSTOP) right after choosing runs no further step; the other finishes from the journal in etcd', async () => {
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) await kill9(d);
    const p = await startDaemon('p', { TOPOGIT_FAULT_PAUSE_AFTER: 'chosen' });
    await waitFor('p to lead shop', () => leads(p), (x) => x, 15_000);
    const q = await startDaemon('q');
    await waitFor('q to see p lead', async () => (await coordination(q)).clusters.find((c) => c.cluster === 'shop')?.leader, (l) => l === 'p', 10_000);
    const old = await primaryNow();
    const before = (await failoverCommits()).length;
    expect((await fleet.run('sandbox', 'kill', old)).code).toBe(0);
    await waitFor('p to choose and stop', () => p.log(), (l) => /"msg":"failover chosen/.test(l), 20_000);
    // Paused: the other daemon takes shop after the TTL and resumes the failover from the journal.
    await waitFor('q to lead shop', () => leads(q), (x) => x, (TTL_S + 3) * 1000);
    await waitFor('the failover commit (made by q) on the remote', failoverCommits, (c) => c.length === before + 1, 30_000);
    expect(q.log()).toMatch(/"msg":"failover promoted/);
    const primary = await primaryNow();
    // p wakes up: it runs no further step.
    const pFrom = p.log().length;
    p.child.kill('SIGCONT');
    await waitFor('p to say it lost shop', () => p.log().slice(pFrom), (l) => /lost the lease before|the etcd lease expired|q leads shop|leader key of shop is gone/.test(l), 10_000);
    await waitFor('q to report a pass after p woke', () => q.log().length, (n) => n > 0);
    expect(p.log().slice(pFrom)).not.toMatch(/"msg":"failover (promoted|routed|repointed|written-back)/);
    expect(await writable()).toEqual([primary]);
    expect(await failoverCommits()).toHaveLength(before + 1);
    await restart(old, primary);
  }, 150_000);

  it('the remote down at a failover: WriteBackPending in etcd; the leader killed; the other daemon pushes the commit within 5 s of the remote coming back', async () => {
    const live = daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    const leader = await leaderOf(live);
    const other = live.find((d) => d !== leader) as Daemon;
    const away = `${bare}.away`;
    await rename(bare, away);
    const old = await primaryNow();
    const before = (await exec('git', ['--git-dir', away, 'log', '--format=%s', 'main'])).stdout.split('\n').filter((x) => x.startsWith('failover(shop)')).length;
    expect((await fleet.run('sandbox', 'kill', old)).code).toBe(0);
    const pending = async (d: Daemon) => ((await (await fetch(`http://127.0.0.1:${d.port}/api/clusters`)).json()) as { clusters: { conditions: { type: string; status: boolean; reason: string }[] }[] }).clusters[0]?.conditions.find((c) => c.type === 'WriteBackPending');
    await waitFor('the leader to report WriteBackPending', () => pending(leader), (c) => c?.status === true, 30_000);
    const primary = await primaryNow();
    expect(primary).not.toBe(old);
    await kill9(leader);
    await waitFor('the other daemon to lead shop', () => leads(other), (x) => x, (TTL_S + 1) * 1000);
    // The record is in etcd: the new leader knows the write-back is pending though it never made the commit.
    await waitFor('the other daemon to report WriteBackPending', () => pending(other), (c) => c?.status === true, 10_000);
    const back = Date.now();
    await rename(away, bare);
    await waitFor('the failover commit on the remote', failoverCommits, (c) => c.length === before + 1, 5000);
    console.log(`failover commit on the remote ${Date.now() - back} ms after it came back (pushed by the daemon that did not fail over)`);
    await waitFor('WriteBackPending to clear', () => pending(other), (c) => c?.status === false, 10_000);
    const file = (await exec('git', ['--git-dir', bare, 'show', 'main:topologies/shop.yaml'])).stdout;
    expect(file).toMatch(new RegExp(`\\n  ${primary}: \\{ host: [\\d.]+, port: 3306 \\}\\n`));
    await restart(old, primary);
    await startDaemon(leader.name === 'p' ? 'p2' : 'q2');
  }, 150_000);

  it('etcd: one member of three down changes nothing; without a majority nobody acts; once restored they resume', async () => {
    const live = daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    const leader = await leaderOf(live);
    await etcd.kill(2);
    // Still leading, still passing.
    const passesBefore = (leader.log().match(/"pass":"shop-/g) ?? []).length;
    await waitFor('more passes with one etcd member down', () => (leader.log().match(/"pass":"shop-/g) ?? []).length, (n) => n >= passesBefore + 3, 15_000);
    expect(await leads(leader)).toBe(true);
    expect((await coordination(leader)).healthy).toBe(true);

    await etcd.kill(1);
    await waitFor('the leader to say it cannot reach etcd', () => coordination(leader), (c) => !c.healthy && c.problem !== null, (TTL_S + 3) * 1000);
    await waitFor('the leader to log why it does not act', () => leader.log(), (l) => /cannot reach the coordinator: not acting/.test(l), 5000);
    expect(await (await fetch(`http://127.0.0.1:${leader.port}/metrics`)).text()).toMatch(/\ntopogit_coordinator_up 0\n/);
    const old = await primaryNow();
    const before = (await failoverCommits()).length;
    const startedBefore = live.reduce((n, d) => n + started(d), 0);
    expect((await fleet.run('sandbox', 'kill', old)).code).toBe(0);
    // Proving a negative: several standby passes, each deciding from a fresh probe, start nothing.
    const standbyPasses = (l: string) => (l.match(/"outcome":"standby"[^\n]*not acting/g) ?? []).length;
    const s0 = standbyPasses(leader.log());
    await waitFor('4 standby passes of the leader without etcd', () => standbyPasses(leader.log()), (n) => n >= s0 + 4, 20_000);
    expect(live.reduce((n, d) => n + started(d), 0)).toBe(startedBefore);
    expect(await writable()).toEqual([]);

    await etcd.start(1);
    await etcd.start(2);
    await waitFor('the failover after etcd is back', failoverCommits, (c) => c.length === before + 1, 40_000);
    const primary = await primaryNow();
    await restart(old, primary);
  }, 150_000);

  it('a manual `topogit failover` from a CI-style clone with the etcd coordinator: it locks the cluster, its record lands in etcd, and a daemon started afterwards does not fail over again', async () => {
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) await kill9(d);
    const old = await primaryNow();
    const before = (await failoverCommits()).length;
    expect((await fleet.run('sandbox', 'kill', old)).code).toBe(0);
    const ci = path.join(fleet.dir, 'ci-manual');
    await exec('git', ['clone', '-q', bare, ci], { env: gitEnv() });
    let out = '';
    const code = await main(['--coordinator', etcd.url, 'failover', 'shop', '--yes'], { out: (x) => (out += x), err: (x) => (out += x), env: gitEnv(), cwd: ci });
    expect(out).toMatch(/promoted/);
    expect(code).toBe(0);
    const primary = await primaryNow();
    expect(primary).not.toBe(old);
    await waitFor('the manual failover commit on the remote', failoverCommits, (c) => c.length === before + 1, 10_000);
    // The record is in etcd, not in the CI clone: a daemon in another clone knows it.
    const d = await startDaemon('after-manual');
    await waitFor('the new daemon to lead shop', () => leads(d), (x) => x, 10_000);
    expect(await restartAndCount(old, primary)).toBe(before + 1);
    // It knew the returning instance as the failover's former primary (the state in etcd): a rejoin, not a drift repair.
    await waitFor(`the daemon to log the rejoin of ${old}`, () => d.log(), (l) => l.includes(`"msg":"${old} rejoined under ${primary}"`), 10_000);
    expect(started(d)).toBe(0);
  }, 150_000);
});
