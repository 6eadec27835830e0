// Ten clusters, three daemons in three clones, one etcd: each daemon leads 3 or 4 clusters, and
// when one is killed -9 the others take its clusters within TTL + 1 s. The clusters' instances are
// loopback addresses where nothing listens (this is about who leads, not about the servers), with
// automatic failover off.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcdCluster, type EtcdCluster } from '../../src/adapters/sandbox/etcd.js';
import { keepLogs, spawnDaemon, type SpawnedDaemon } from '../support/daemon.js';
import { waitFor } from '../support/wait.js';

const exec = promisify(execFile);
const TTL_S = 2;
const CLUSTERS = Array.from({ length: 10 }, (_, n) => `c${String(n + 1).padStart(2, '0')}`);
let dir: string;
let etcd: EtcdCluster;
const env = () => ({ ...process.env, TOPOGIT_PASSWORD: 'unused-Secret-1', TOPOGIT_REPL_PASSWORD: 'unused-Secret-2', GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });

type Daemon = SpawnedDaemon;
const daemons: Daemon[] = [];

async function startDaemon(name: string): Promise<Daemon> {
  const clone = path.join(dir, `clone-${name}`);
  await exec('git', ['clone', '-q', path.join(dir, 'remote.git'), clone], { env: env() });
  const d = await spawnDaemon({ name, cwd: clone, env: env(), global: ['--coordinator', etcd.url, '--coordinator-ttl', String(TTL_S)], watchArgs: ['--log-level', 'info'] });
  daemons.push(d);
  return d;
}
interface Coordination {
  members: { name: string; leads: number }[];
  clusters: { cluster: string; leader: string | null; mine: boolean }[];
}
const coordination = async (d: Daemon) => (await (await fetch(`http://127.0.0.1:${d.port}/api/coordination`)).json()) as Coordination;
/** Who leads each cluster, as every daemon given sees it (they must agree). */
async function leaders(ds: readonly Daemon[]): Promise<Record<string, string | null>> {
  const views = await Promise.all(ds.map(coordination));
  const out: Record<string, string | null> = {};
  for (const c of CLUSTERS) {
    const seen = new Set(views.map((v) => v.clusters.find((x) => x.cluster === c)?.leader ?? null));
    out[c] = seen.size === 1 ? ([...seen][0] ?? null) : 'disagree';
  }
  return out;
}
const perDaemon = (l: Record<string, string | null>, names: readonly string[]) => names.map((n) => Object.values(l).filter((x) => x === n).length);

describe.sequential('ten clusters across three daemons on etcd', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'topogit-spread-'));
    etcd = await startEtcdCluster({ dir: path.join(dir, 'etcd'), addresses: ['127.0.0.244'] });
    const work = path.join(dir, 'work');
    await exec('git', ['init', '-q', '--bare', '-b', 'main', path.join(dir, 'remote.git')]);
    await exec('git', ['clone', '-q', path.join(dir, 'remote.git'), work], { env: env() });
    await mkdir(path.join(work, 'topologies'));
    for (const [n, c] of CLUSTERS.entries()) {
      await writeFile(path.join(work, 'topologies', `${c}.yaml`), `cluster: ${c}\ninstances:\n  db001: { host: 127.0.0.${121 + n} }\nfailover:\n  auto: false\n`);
    }
    await exec('git', ['add', '.'], { cwd: work, env: env() });
    await exec('git', ['commit', '-qm', 'ten clusters'], { cwd: work, env: env() });
    await exec('git', ['push', '-qu', 'origin', 'main'], { cwd: work, env: env() });
  }, 60_000);
  afterAll(async () => {
    await keepLogs('coordination', daemons, 'spread-');
    for (const d of daemons) d.child.kill('SIGKILL');
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('each of three daemons leads 3 or 4 of the 10 clusters, and they agree who leads what', async () => {
    const ds = [await startDaemon('a'), await startDaemon('b'), await startDaemon('c')];
    const l = await waitFor('every cluster led, 3-4 per daemon, the same view everywhere', () => leaders(ds), (m) => perDaemon(m, ['a', 'b', 'c']).every((k) => k === 3 || k === 4) && Object.values(m).every((x) => x !== null && x !== 'disagree'), 40_000);
    console.log(`spread: ${perDaemon(l, ['a', 'b', 'c']).join(', ')} (a, b, c)`);
    // Each daemon's own view says which are its own.
    for (const d of ds) expect((await coordination(d)).clusters.filter((c) => c.mine).map((c) => c.cluster).sort()).toEqual(CLUSTERS.filter((c) => l[c] === d.name));
  }, 90_000);

  it('one daemon killed -9: its clusters are taken by the others within TTL + 1 s', async () => {
    const l = await leaders(daemons);
    const victim = daemons.reduce((best, d) => (perDaemon(l, [d.name])[0] ?? 0) > (perDaemon(l, [best.name])[0] ?? 0) ? d : best);
    const orphans = CLUSTERS.filter((c) => l[c] === victim.name);
    const survivors = daemons.filter((d) => d !== victim);
    const t0 = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    const after = await waitFor(`${orphans.join(', ')} to be led by the survivors`, () => leaders(survivors), (m) => orphans.every((c) => survivors.some((s) => m[c] === s.name)), (TTL_S + 1) * 1000);
    const took = Date.now() - t0;
    console.log(`${victim.name}'s ${orphans.length} clusters taken ${took} ms after kill -9 (TTL ${TTL_S} s): ${perDaemon(after, survivors.map((s) => s.name)).join(', ')}`);
    expect(took).toBeLessThanOrEqual((TTL_S + 1) * 1000);
    expect(Object.values(after).every((x) => survivors.some((s) => s.name === x))).toBe(true);
  }, 60_000);

  it('a daemon stopped with SIGTERM hands its clusters over at once (its lease is revoked), and exits 0', async () => {
    const live = daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    expect(live).toHaveLength(2);
    const [leaving, staying] = live as [Daemon, Daemon];
    const t0 = Date.now();
    leaving.child.kill('SIGTERM');
    const after = await waitFor(`${staying.name} to lead all ten`, () => leaders([staying]), (m) => Object.values(m).every((x) => x === staying.name), TTL_S * 1000);
    console.log(`${leaving.name} stopped: ${staying.name} leads all 10 clusters ${Date.now() - t0} ms after SIGTERM`);
    expect(Object.keys(after)).toHaveLength(10);
    expect(await leaving.exited).toBe(0);
  }, 30_000);
});
