// The etcd coordinator's parts against a real etcd (127.0.0.248): command locks that exclude each
// other and a daemon's pass, fencing (a hold that lost its leadership or its lease writes nothing),
// the state shared by every clone, and authentication without the password ever shown.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcdCluster, type EtcdCluster } from '../../src/adapters/sandbox/etcd.js';
import { main } from '../../src/cli/main.js';
import { openCoordinator, type Coordinator, type Elections } from '../../src/coordination/coordinator.js';
import { EtcdCoordinator, EtcdHold, keysUnder } from '../../src/coordination/etcd.js';
import { waitFor } from '../support/wait.js';

const exec = promisify(execFile);
let dir: string;
let etcd: EtcdCluster;
const PREFIX = '/t/';
const open = (env: NodeJS.ProcessEnv = {}, prefix = PREFIX) => openCoordinator({ url: etcd.url, prefix, ttlSeconds: 2 }, dir, env);
const opened: Coordinator[] = [];
async function coordinator(env: NodeJS.ProcessEnv = {}, prefix = PREFIX): Promise<Coordinator> {
  const c = await open(env, prefix);
  opened.push(c);
  return c;
}
async function cli(cwd: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['--coordinator', etcd.url, '--coordinator-prefix', PREFIX, '--coordinator-ttl', '2', ...argv], { out: (s) => (out += s), err: (s) => (err += s), env: { TOPOGIT_PASSWORD: 'x-Secret-1', TOPOGIT_REPL_PASSWORD: 'y-Secret-2' }, cwd });
  return { code, out, err };
}

/** A daemon's elections on `c`, started, leading `cluster` (awaited). */
async function leading(c: Coordinator, name: string, cluster: string): Promise<Elections> {
  const e = await c.elections({ name, busy: () => false, onChange: () => undefined });
  await e.start();
  e.setClusters([cluster]);
  await waitFor(`${name} to lead ${cluster}`, () => e.leads(cluster), (x) => x, 5000);
  return e;
}

describe.sequential('the etcd coordinator', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'topogit-etcd-coord-'));
    etcd = await startEtcdCluster({ dir: path.join(dir, 'etcd'), addresses: ['127.0.0.248'] });
    for (const clone of ['one', 'two']) {
      await mkdir(path.join(dir, clone, 'topologies'), { recursive: true });
      await writeFile(path.join(dir, clone, 'topologies', 'shop.yaml'), 'cluster: shop\ninstances:\n  db001: { host: 127.0.0.249 }\n  db002: { host: 127.0.0.250, source: db001 }\n');
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of opened) await c.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a command lock excludes another command until released, naming its holder', async () => {
    const c = await coordinator();
    const first = await c.lockCluster('shop', { command: 'topogit apply', timeoutMs: 1000 });
    const waits: string[] = [];
    await expect(c.lockCluster('shop', { command: 'topogit failover shop', timeoutMs: 400, onWait: (h) => waits.push(h) })).rejects.toThrow(/cluster shop is locked by .*\(topogit apply, since .*\) \(etcd 127\.0\.0\.248:2379\)/);
    expect(waits.length).toBeGreaterThan(0);
    expect(await first.confirm()).toBe(true);
    await first.release();
    const second = await c.lockCluster('shop', { command: 'topogit failover shop', timeoutMs: 1000 });
    await second.release();
  });

  it('a command holding the lock makes the leader skip its pass; after release the pass runs', async () => {
    const c = await coordinator();
    const changes: string[] = [];
    const e: Elections = await c.elections({ name: 'd1', busy: () => false, onChange: (cl, leads) => changes.push(`${cl}:${leads}`) });
    await e.start();
    e.setClusters(['shop']);
    await waitFor('d1 to lead shop', () => e.leads('shop'), (x) => x, 5000);
    const lock = await c.lockCluster('shop', { command: 'topogit apply', timeoutMs: 1000 });
    expect(await e.pass('shop', async () => 'ran')).toBeUndefined();
    await lock.release();
    expect(await e.pass('shop', async (hold) => ((await hold.confirm()) ? 'ran and acted' : 'refused'))).toBe('ran and acted');
    // The pass's lock went with the pass: a command gets it at once.
    await (await c.lockCluster('shop', { command: 'topogit apply', timeoutMs: 0 })).release();
    await e.stop();
    expect(changes).toEqual(['shop:true', 'shop:false']);
  });

  it('fencing: a leader whose key changed (another daemon leads) proves nothing and writes no state', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const e = await leading(c, 'd2', 'fenced');
    const result = await e.pass('fenced', async (hold) => {
      const state = c.stateFor(hold);
      await state.update('fenced', (s) => ({ ...s, ackedAt: 'first' }));
      // Someone else takes the leadership (as a daemon would after this one's lease expired).
      const raw = new Etcd3({ hosts: etcd.endpoints });
      try {
        await raw.put(keysUnder(PREFIX).leader('fenced')).value(JSON.stringify({ name: 'intruder', since: 'now' }));
      } finally {
        raw.close();
      }
      const confirmed = await hold.confirm();
      const write = await state.update('fenced', (s) => ({ ...s, ackedAt: 'second' })).then(() => 'written', (err: Error) => err.message);
      return { confirmed, refusal: hold.refusal, write };
    });
    expect(result).toMatchObject({ confirmed: false, refusal: 'another daemon leads fenced now', write: expect.stringMatching(/not writing the state of fenced/) });
    expect((await c.state.read('fenced')).ackedAt).toBe('first');
    await e.stop();
  });

  it('two holds of one daemon (a pass and a write-back retry) share the lock: each proves leadership in etcd, the last one out lets it go', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const e = await leading(c, 'd3', 'shared');
    const raw = new Etcd3({ hosts: etcd.endpoints });
    const lockKey = keysUnder(PREFIX).lock('shared');
    try {
      let releaseFirst: () => void = () => undefined;
      const firstMayEnd = new Promise<void>((r) => (releaseFirst = r));
      let secondConfirmed: boolean | undefined;
      const first = e.pass('shared', async (hold) => {
        expect(await hold.confirm()).toBe(true);
        await firstMayEnd;
      });
      await waitFor('the first hold to take the lock', () => raw.get(lockKey).string(), (v) => v !== null, 3000);
      const second = e.pass('shared', async (hold) => {
        expect(await hold.confirm()).toBe(true);
        // Someone else leads now: the shared lock proves nothing by itself.
        await raw.put(keysUnder(PREFIX).leader('shared')).value(JSON.stringify({ name: 'intruder', since: 'now' }));
        secondConfirmed = await hold.confirm();
        releaseFirst();
      });
      await Promise.all([first, second]);
      expect(secondConfirmed).toBe(false);
      // The last one out released it: a command gets the cluster at once.
      expect(await raw.get(lockKey).string()).toBeNull();
    } finally {
      raw.close();
      await e.stop();
    }
  });

  it('a write-back retry that starts as a pass ends shares its lock: it never adopts the revision being let go', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const e = await leading(c, 'd5', 'relay');
    let retry: Promise<boolean | undefined> | undefined;
    await e.pass('relay', async (hold) => {
      expect(await hold.confirm()).toBe(true);
      // As the daemon does: the retry is kicked as the pass finishes.
      retry = e.pass('relay', async (h) => {
        await new Promise((r) => setTimeout(r, 50));
        return h.confirm();
      });
    });
    expect(await retry).toBe(true);
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      expect(await raw.get(keysUnder(PREFIX).lock('relay')).string()).toBeNull();
    } finally {
      raw.close();
      await e.stop();
    }
  });

  it('a leader key of ours that this daemon does not know of (a campaign whose answer was lost) is taken up, not left stuck', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const e = await c.elections({ name: 'd4', busy: () => false, onChange: () => undefined });
    await e.start();
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      const member = await raw.get(keysUnder(PREFIX).member('d4')).exec();
      const lease = member.kvs[0]?.lease as string;
      await raw.put(keysUnder(PREFIX).leader('orphan')).value(JSON.stringify({ name: 'd4', since: 'then' })).lease(lease);
      e.setClusters(['orphan']);
      await waitFor('d4 to take up its own leader key', () => e.leads('orphan'), (x) => x, 5000);
    } finally {
      raw.close();
      await e.stop();
    }
  });

  it('a name is one live daemon\'s: a second daemon with the same --name waits, and says why', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const a = await leading(c, 'twin', 't1');
    const b = await c.elections({ name: 'twin', busy: () => false, onChange: () => undefined });
    await b.start();
    b.setClusters(['t1', 't2']);
    await waitFor('the second twin to say why it does not campaign', () => b.view().problem ?? '', (p) => /another live daemon is named twin/.test(p), 5000);
    expect(b.leads('t2')).toBe(false);
    await a.stop();
    await waitFor('the second twin to lead once the first is gone', () => b.leads('t1') && b.leads('t2'), (x) => x, 5000);
    await b.stop();
  });

  it('fencing: a command whose lease is gone (paused past its TTL) proves nothing', async () => {
    const c = (await coordinator()) as EtcdCoordinator;
    const hold = (await c.lockCluster('paused', { command: 'topogit apply', timeoutMs: 1000 })) as EtcdHold;
    expect(await hold.confirm()).toBe(true);
    // What a pause past the TTL looks like from etcd: the lease and the lock attached to it are gone.
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      const lock = await raw.get(keysUnder(PREFIX).lock('paused')).exec();
      await raw.leaseClient.leaseRevoke({ ID: lock.kvs[0]?.lease ?? '0' });
    } finally {
      raw.close();
    }
    expect(await hold.confirm()).toBe(false);
    await expect(c.stateFor(hold).update('paused', (s) => ({ ...s, ackedAt: 'x' }))).rejects.toThrow(/paused is locked|not writing/);
    expect((await c.state.read('paused')).ackedAt).toBeUndefined();
    await hold.release();
  });

  it('the state is shared: maintenance set from one clone is seen from another, and nothing is written under .topogit', async () => {
    const on = await cli(path.join(dir, 'one'), 'maintenance', 'shop', 'db002', 'on', '--reason', 'disk swap');
    expect(on.err).toBe('');
    expect(on.code).toBe(0);
    const list = await cli(path.join(dir, 'two'), 'maintenance', 'shop');
    expect(list.out).toMatch(/shop: db002 is in maintenance[^\n]*disk swap/);
    await expect(rm(path.join(dir, 'one', '.topogit', 'state'), { recursive: false })).rejects.toThrow(/ENOENT/);
    expect((await cli(path.join(dir, 'two'), 'maintenance', 'shop', 'db002', 'off')).code).toBe(0);
  });

  it('unreachable etcd: a command says so in one line and changes nothing', async () => {
    let err = '';
    const code = await main(['--coordinator', 'etcd://127.0.0.248:2399', '--coordinator-ttl', '2', 'maintenance', 'shop', 'db002', 'on'], { out: () => undefined, err: (s) => (err += s), env: { TOPOGIT_PASSWORD: 'x-Secret-1', TOPOGIT_REPL_PASSWORD: 'y-Secret-2' }, cwd: path.join(dir, 'one') });
    expect(code).toBe(1);
    expect(err).toMatch(/^topogit: cannot lock shop: etcd 127\.0\.0\.248:2399.*\n$/);
  });

  it('authentication: user and password from the environment, a wrong password refused without showing it', async () => {
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      await raw.user('root').create('r00t-Secret-77');
      await raw.user('root').addRole('root');
      await raw.auth.authEnable();
    } finally {
      raw.close();
    }
    const good = await coordinator({ TOPOGIT_ETCD_USER: 'root', TOPOGIT_ETCD_PASSWORD: 'r00t-Secret-77' }, '/auth/');
    await good.state.update('shop', (s) => ({ ...s, ackedAt: 'with auth' }));
    expect((await good.state.read('shop')).ackedAt).toBe('with auth');
    const bad = await coordinator({ TOPOGIT_ETCD_USER: 'root', TOPOGIT_ETCD_PASSWORD: 'wr0ng-Secret-88' }, '/auth/');
    const err = await bad.state.read('shop').then(() => 'read', (e: Error) => e.message);
    expect(err).toMatch(/etcd 127\.0\.0\.248:2379/);
    expect(err).not.toContain('wr0ng-Secret-88');
    expect(err).not.toContain('r00t-Secret-77');
    let out = '';
    const code = await main(['--coordinator', etcd.url, '--coordinator-prefix', '/auth/', 'maintenance', 'shop'], { out: (s) => (out += s), err: (s) => (out += s), env: { TOPOGIT_PASSWORD: 'x-Secret-1', TOPOGIT_REPL_PASSWORD: 'y-Secret-2', TOPOGIT_ETCD_USER: 'root', TOPOGIT_ETCD_PASSWORD: 'wr0ng-Secret-88' }, cwd: path.join(dir, 'one') });
    expect(code).toBe(1);
    expect(out).not.toContain('wr0ng-Secret-88');
  });

  it('TLS: etcds:// with --etcd-ca, --etcd-cert and --etcd-key; without the client certificate, refused in one line', async () => {
    const pki = path.join(dir, 'pki');
    await mkdir(pki);
    const ssl = (...args: string[]) => exec('openssl', args, { cwd: pki });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=topogit-test-ca');
    for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.240\nextendedKeyUsage=serverAuth,clientAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
      await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      await writeFile(path.join(pki, `${name}.ext`), `${ext}\n`);
      await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
    }
    const secure = await startEtcdCluster({ dir: path.join(dir, 'etcd-tls'), addresses: ['127.0.0.240'], tls: { cert: path.join(pki, 'server.pem'), key: path.join(pki, 'server.key'), ca: path.join(pki, 'ca.pem') } });
    try {
      expect(secure.url).toBe('etcds://127.0.0.240:2379');
      const env = { TOPOGIT_PASSWORD: 'x-Secret-1', TOPOGIT_REPL_PASSWORD: 'y-Secret-2' };
      const run = async (...argv: string[]) => {
        let out = '';
        const code = await main(['--coordinator', secure.url, ...argv], { out: (x) => (out += x), err: (x) => (out += x), env, cwd: path.join(dir, 'one') });
        return { code, out };
      };
      const certs = ['--etcd-ca', path.join(pki, 'ca.pem'), '--etcd-cert', path.join(pki, 'client.pem'), '--etcd-key', path.join(pki, 'client.key')];
      const on = await run(...certs, 'maintenance', 'shop', 'db001', 'on', '--reason', 'over tls');
      expect(on).toMatchObject({ code: 0 });
      expect((await run(...certs, 'maintenance', 'shop')).out).toMatch(/db001 is in maintenance[^\n]*over tls/);
      // The CA alone (no client certificate): the server refuses.
      const noCert = await run('--etcd-ca', path.join(pki, 'ca.pem'), 'maintenance', 'shop', 'db001', 'off');
      expect(noCert.code).toBe(1);
      expect(noCert.out).toMatch(/^topogit: cannot lock shop: etcd 127\.0\.0\.240:2379[^\n]*\n$/);
      // Plain etcd:// to a TLS port: refused too.
      const plain = await main(['--coordinator', 'etcd://127.0.0.240:2379', 'maintenance', 'shop', 'db001', 'off'], { out: () => undefined, err: () => undefined, env, cwd: path.join(dir, 'one') });
      expect(plain).toBe(1);
    } finally {
      await secure.stop();
    }
  });
});
