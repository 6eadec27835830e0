// The sandbox's etcd clusters (src/adapters/sandbox/etcd.ts) against real etcd 3.4 processes,
// through the etcd3 npm client: a key survives the loss of one member of three, writes stop
// (within a deadline, not a hang) when two are gone, and come back when they restart. Also a
// one-member cluster, and a start that fails. Loopback addresses 127.0.0.245-247 belong to this file.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_INSTALL_HINT, etcdHealth, findEtcd, startEtcdCluster, type EtcdCluster } from '../../src/adapters/sandbox/etcd.js';
import { waitFor, within } from '../support/wait.js';

const ADDRESSES = ['127.0.0.245', '127.0.0.246', '127.0.0.247'];

/** Whether the process is gone (no such pid). */
const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

const listens = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function scratch(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `topogit-etcd-${name}-`));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('etcd sandbox: three members (real etcd 3.4, etcd3 client)', () => {
  let cluster: EtcdCluster;
  let client: Etcd3;
  const lines: string[] = [];

  beforeAll(async () => {
    if (!findEtcd()) throw new Error(`these tests need etcd: ${ETCD_INSTALL_HINT}`);
    const dir = await scratch('three');
    cluster = await startEtcdCluster({ dir, addresses: ADDRESSES, log: (l) => lines.push(l) });
    cleanup.push(() => cluster.stop());
    client = new Etcd3({ hosts: cluster.endpoints });
    cleanup.push(async () => client.close());
  });

  it('runs one healthy member per address, each with its pid, log file and client URL', async () => {
    expect(cluster.url).toBe('etcd://127.0.0.245:2379,127.0.0.246:2379,127.0.0.247:2379');
    expect(cluster.endpoints).toEqual(['http://127.0.0.245:2379', 'http://127.0.0.246:2379', 'http://127.0.0.247:2379']);
    expect(cluster.members.map((m) => `${m.name}@${m.address}`)).toEqual(['etcd1@127.0.0.245', 'etcd2@127.0.0.246', 'etcd3@127.0.0.247']);
    for (const m of cluster.members) {
      expect(m.pid).toBeGreaterThan(0);
      expect(gone(m.pid!)).toBe(false);
      expect(await readFile(m.logFile, 'utf8')).toMatch(/serving client traffic/);
    }
    expect(await cluster.healthy()).toBe(true);
    expect(await cluster.leader()).toBeGreaterThanOrEqual(0);
    expect(lines.filter((l) => l.startsWith('etcd: started'))).toHaveLength(3);
  });

  it('a key put through the client reads back', async () => {
    await client.put('topogit/test').value('one');
    expect(await client.get('topogit/test').string()).toBe('one');
  });

  it('with the leader killed a new one is elected and the key is still readable and writable', async () => {
    const old = (await cluster.leader())!;
    const pid = cluster.members[old]!.pid!;
    await cluster.kill(old);
    expect(gone(pid)).toBe(true);
    expect(cluster.members[old]!.pid).toBeUndefined();
    await waitFor('a new leader among the two members left', () => cluster.leader(), (i) => i !== undefined && i !== old, 10_000);
    // A put proposed while the old leader was still believed in waits out etcd's request timeout
    // (5 s + 2 elections) before the client retries: none is in flight here, so this is quick.
    await within('a put with one member of three gone', client.put('topogit/test').value('two').exec(), 5000);
    expect(await within('a get with one member of three gone', client.get('topogit/test').string(), 5000)).toBe('two');
    expect(await cluster.healthy()).toBe(false);
  });

  it('with a second member killed there is no quorum: a put fails by its deadline, only a serializable read answers', async () => {
    const killed = cluster.members.findIndex((m) => m.pid === undefined);
    const second = cluster.members.findIndex((m, i) => i !== killed && m.pid !== undefined);
    await cluster.kill(second);
    const survivor = cluster.members.find((m) => m.pid !== undefined)!;
    await waitFor(`${survivor.name}'s /health to say false`, () => etcdHealth(survivor.endpoint), (h) => !h, 10_000);

    // Without a deadline the client retries etcd's own request timeout (5 s + 2 elections) three
    // times. With one it fails by then: DEADLINE_EXCEEDED from the survivor, or UNAVAILABLE (or an
    // open circuit breaker) when its tries land on the dead members. Such a put is not known to
    // have failed: if the survivor was leading it is in its log, committed once quorum is back.
    const started = Date.now();
    const put = client.put('topogit/test').value('lost').options({ deadline: Date.now() + 1500 }).exec();
    await expect(within('a put without quorum', put, 10_000)).rejects.toThrow(/DEADLINE_EXCEEDED|UNAVAILABLE|circuit breaker is open/);
    expect(Date.now() - started).toBeLessThan(3000);

    // The survivor answers from its own copy (possibly stale) when asked to: no quorum needed.
    const local = new Etcd3({ hosts: [survivor.endpoint] });
    cleanup.push(async () => local.close());
    expect(await within('a serializable get from the survivor', local.get('topogit/test').serializable(true).string(), 5000)).toBe('two');
    const linearizable = local.get('topogit/test').options({ deadline: Date.now() + 1000 }).string();
    await expect(within('a linearizable get without quorum', linearizable, 10_000)).rejects.toThrow(/DEADLINE_EXCEEDED/);
  });

  it('restarting both members brings quorum back: puts succeed again and every member is healthy', async () => {
    const down = cluster.members.flatMap((m, i) => (m.pid === undefined ? [i] : []));
    expect(down).toHaveLength(2);
    for (const i of down) await cluster.start(i);
    expect(cluster.members.every((m) => m.pid !== undefined)).toBe(true);
    // The client's per-host circuit breakers may still be open from the failures above (5 s).
    await waitFor(
      'a put to succeed once quorum is back',
      () => client.put('topogit/test').value('three').options({ deadline: Date.now() + 1000 }).exec(),
      () => true,
      15_000,
    );
    expect(await client.get('topogit/test').string()).toBe('three');
    await waitFor('every member to be healthy', () => cluster.healthy(), (h) => h, 10_000);
    const starts = await Promise.all(cluster.members.map(async (m) => (await readFile(m.logFile, 'utf8')).split('--- topogit:').length - 1));
    expect(starts.sort()).toEqual([1, 2, 2]); // the two restarted members appended to their logs
  });

  it('stop() ends every member', async () => {
    const pids = cluster.members.map((m) => m.pid!);
    await within('stop()', cluster.stop(), 8000);
    expect(pids.every(gone)).toBe(true);
    expect(cluster.members.every((m) => m.pid === undefined)).toBe(true);
    expect(await cluster.healthy()).toBe(false);
    await cluster.stop(); // twice is no error
  });
});

describe('etcd sandbox: one member, and a start that fails', () => {
  it('a one-member cluster starts, takes a put and stops', async () => {
    const single = await startEtcdCluster({ dir: await scratch('one'), addresses: ['127.0.0.245'], clientPort: 2479, peerPort: 2480 });
    cleanup.push(() => single.stop());
    expect(single.url).toBe('etcd://127.0.0.245:2479');
    expect(await single.leader()).toBe(0);
    const c = new Etcd3({ hosts: single.endpoints });
    cleanup.push(async () => c.close());
    await c.put('k').value('v');
    expect(await c.get('k').string()).toBe('v');
    c.close();
    const pid = single.members[0]!.pid!;
    await within('stop()', single.stop(), 8000);
    expect(gone(pid)).toBe(true);
    expect(await listens('127.0.0.245', 2479)).toBe(false);
  });

  it('fails naming the member that cannot start, with its log, and stops the others', async () => {
    // Holds etcd2's client port; the health probes that reach it are hung up on.
    const taken = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => taken.listen(2579, '127.0.0.246', resolve));
    cleanup.push(() => new Promise<void>((r) => taken.close(() => r())));
    const lines: string[] = [];
    const start = startEtcdCluster({ dir: await scratch('fail'), addresses: ['127.0.0.245', '127.0.0.246'], clientPort: 2579, peerPort: 2580, log: (l) => lines.push(l) });
    await expect(within('a start that fails', start, 30_000)).rejects.toThrow(/^etcd member etcd2 \(127\.0\.0\.246\) exited while starting \(code \d+\): .*address already in use/);
    const pids = lines.map((l) => Number(/pid (\d+)/.exec(l)?.[1])).filter((p) => p > 0);
    expect(pids).toHaveLength(2);
    expect(pids.every(gone)).toBe(true);
  });
});
