// Applications follow the primary (issue 13), with real parts: three MariaDB servers, a real
// HAProxy 2.6 in front of them (writer and reader frontends, the runtime API), a bare Git remote
// and the `topogit watch` daemon. A client through the writer frontend reaches the primary; a
// SIGKILL moves the writer backend to the new primary alone; an HAProxy reload that enabled every
// server (router drift) is corrected; a router down during a failover leaves RoutingStale, then is
// put in step when it is back.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackend, runtimeCommand } from '../../src/adapters/haproxy.js';
import { startHaproxy, type RunningHaproxy } from '../../src/adapters/sandbox/haproxy.js';
import { withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, type Fleet } from './fleet.js';

const root = path.resolve(import.meta.dirname, '../..');
const FRONT = '127.0.0.224';
let fleet: Fleet;
let haproxy: RunningHaproxy | undefined;
let runtimePort = 0;
let daemon: ChildProcess;
let out = '';
let api = '';

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address() as AddressInfo;
      srv.close(() => resolve(a.port));
    });
  });
}

/** HAProxy as a fresh start (or a reload) leaves it: the given server alone enabled for writes. */
async function startRouter(primary: string): Promise<RunningHaproxy> {
  return startHaproxy({
    dir: path.join(fleet.dir, 'haproxy'),
    runtime: { host: FRONT, port: runtimePort },
    writer: { bind: { host: FRONT, port: 3306 }, backend: 'mysql_rw' },
    reader: { bind: { host: FRONT, port: 3307 }, backend: 'mysql_ro' },
    servers: fleet.names.map((name) => ({ name, host: fleet.host(name), port: 3306 })),
    primary,
  });
}

const address = () => `${FRONT}:${runtimePort}`;
/** The writer backend as `db001 ready, db002 maint, ...`. */
async function writer(): Promise<string> {
  return (await readBackend(address(), 'mysql_rw', 1000)).map((s) => `${s.server} ${s.admin}`).join(', ');
}
async function reader(): Promise<string> {
  return (await readBackend(address(), 'mysql_ro', 1000)).map((s) => `${s.server} ${s.admin}`).join(', ');
}
/** Who answers a new connection through the writer frontend (its server_id), as an application would connect. */
async function writerServerId(): Promise<number> {
  const c = await mysql.createConnection({ host: FRONT, port: 3306, user: 'topogit', password: TEST_PASSWORD, connectTimeout: 2000 });
  try {
    const [rows] = (await c.query('SELECT @@server_id AS id')) as unknown as [{ id: number }[]];
    return Number(rows[0]?.id);
  } finally {
    await c.end().catch(() => undefined);
  }
}
async function condition(type: string): Promise<{ status: boolean; reason: string } | undefined> {
  const body = (await (await fetch(`${api}/api/clusters`)).json()) as { clusters: { conditions: { type: string; status: boolean; reason: string }[] }[] };
  return body.clusters[0]?.conditions.find((c) => c.type === type);
}
const remoteHead = async () => (await fleet.git(['--git-dir', path.join(fleet.dir, 'remote.git'), 'log', '-1', '--format=%s', 'main'])).trim();

describe('routing through a real HAProxy', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 221 });
    runtimePort = await freePort(FRONT);
    haproxy = await startRouter('db001');
    await fleet.commitToRemote({
      message: 'shop with routing',
      ignore: ['haproxy/', 'hook-pre.env', 'hook-post.env'],
      prepare: async () => {
        const f = path.join(fleet.dir, 'topologies', 'shop.yaml');
        const hooks = '  hooks:\n    preFailover: ["env | grep ^TOPOGIT_ | sort > hook-pre.env"]\n    postFailover: ["env | grep ^TOPOGIT_ | sort > hook-post.env"]\n';
        const text = withFailover(await readFile(f, 'utf8'), `  auto: true\n  blockSeconds: 0\n  detection: { intervalMs: 500 }\n${hooks}`);
        await writeFile(f, `${text}routing:\n  - haproxy: ${address()}\n    writer: mysql_rw\n    reader: mysql_ro\n`);
      },
    });
    const port = await freePort('127.0.0.1');
    api = `http://127.0.0.1:${port}`;
    daemon = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'watch', '--http', `127.0.0.1:${port}`], {
      cwd: fleet.dir,
      env: { ...process.env, ...fleet.env, TOPOGIT_LOG_JSON: '1', GIT_AUTHOR_NAME: 'topogit', GIT_AUTHOR_EMAIL: 'topogit@localhost', GIT_COMMITTER_NAME: 'topogit', GIT_COMMITTER_EMAIL: 'topogit@localhost' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    daemon.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    daemon.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the daemon to be ready', async () => (await fetch(`${api}/readyz`).catch(() => ({ status: 0 }))).status, (s) => s === 200, 20_000);
  });
  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await haproxy?.stop();
    await fleet?.down();
  });

  it('in step from the start: writes to db001 alone, reads to the healthy replicas', async () => {
    await waitFor('the routers in step', () => condition('RoutingStale'), (c) => c?.status === false, 15_000);
    expect(await writer()).toBe('db001 ready, db002 maint, db003 maint');
    expect(await reader()).toBe('db001 maint, db002 ready, db003 ready');
    expect(await writerServerId()).toBe(1);
    // The metric says so.
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toContain(`topogit_router_in_step{cluster="shop",router="haproxy ${address()}"} 1`);
    // The daemon's page shows it.
    const page = await (await fetch(`${api}/`)).text();
    expect(page).toContain(`haproxy ${address()}: <span class="health ok">in step</span>`);
    // `status` reads the router too (and changes nothing).
    const st = await fleet.run('status');
    expect(st.out).toContain(`router haproxy ${address()}: in step`);
    const json = JSON.parse((await fleet.run('status', '--json')).out) as { clusters: { routers: { router: string; inStep: boolean }[] }[] };
    expect(json.clusters[0]?.routers).toEqual([{ router: `haproxy ${address()}`, inStep: true, detail: '' }]);
    // A backend name the router does not have is reported clearly (and a malformed address never validates).
    const text = await readFile(path.join(fleet.dir, 'topologies', 'shop.yaml'), 'utf8');
    await writeFile(path.join(fleet.dir, 'bad.yaml'), text.replace('writer: mysql_rw', 'writer: mysql_nope'));
    const bad = await fleet.run('status', '-f', 'bad.yaml');
    expect(bad.out).toContain(`! RoutingStale: router haproxy ${address()} not in step: haproxy ${address()}: backend mysql_nope does not exist`);
    await writeFile(path.join(fleet.dir, 'bad.yaml'), text.replace(`haproxy: ${address()}`, 'haproxy: not an address'));
    const invalid = await fleet.run('validate', 'bad.yaml');
    expect(invalid.code).not.toBe(0);
    expect(invalid.err).toMatch(/routing/);
    await rm(path.join(fleet.dir, 'bad.yaml'));
    // `topogit routes` prints backends that agree with the file.
    const routes = await fleet.run('routes', 'shop');
    expect(routes.out).toMatch(/backend mysql_rw\n {4}mode tcp\n {4}balance first\n {4}server db001 127\.0\.0\.221:3306\n {4}server db002 127\.0\.0\.222:3306 disabled/);
  });

  it('SIGKILL of db001: the writer backend sends to the new primary alone, and an application reaches it', async () => {
    expect((await fleet.run('sandbox', 'kill', 'db001')).code).toBe(0);
    await waitFor('the failover commit on the remote', remoteHead, (s) => /^failover\(shop\): db001 -> db00[23]$/.test(s), 20_000);
    const to = (await remoteHead()).slice(-5);
    await waitFor('the writer backend to hold the new primary alone', writer, (w) => w === ['db001', 'db002', 'db003'].map((n) => `${n} ${n === to ? 'ready' : 'maint'}`).join(', '), 5000);
    expect(await writerServerId()).toBe(Number(to.slice(-1)));
    // The route step came before the repoint and the write-back.
    const steps = out.split('\n').flatMap((l) => (/"step":"(\w[\w-]*)"/.exec(l)?.[1] ? [/"step":"(\w[\w-]*)"/.exec(l)?.[1]] : []));
    expect(steps.indexOf('routed')).toBeGreaterThan(steps.indexOf('promoted'));
    expect(steps.indexOf('routed')).toBeLessThan(steps.indexOf('repointed'));
    // db001 is back: it rejoins, and stays out of the writer backend.
    expect((await fleet.run('sandbox', 'start', 'db001')).code).toBe(0);
    await waitFor('db001 to rejoin as a replica', () => fleet.replication('db001'), (r) => r === `${to} IO Yes SQL Yes`, 20_000);
    await waitFor('db001 back in the reader backend', reader, (r) => r.includes('db001 ready'), 10_000);
    expect(await writer()).toContain('db001 maint');
  });

  it('an HAProxy reload that enabled every server is corrected by the daemon', async () => {
    const primary = (await remoteHead()).slice(-5);
    for (const n of fleet.names) await runtimeCommand(address(), `set server mysql_rw/${n} state ready`, 1000);
    await waitFor('the writer backend corrected', writer, (w) => w === fleet.names.map((n) => `${n} ${n === primary ? 'ready' : 'maint'}`).join(', '), 10_000);
  });

  it('the router down during a failover: the failover goes on, RoutingStale says so, then it is put in step', async () => {
    const before = (await remoteHead()).slice(-5);
    await haproxy?.stop();
    haproxy = undefined;
    expect((await fleet.run('sandbox', 'kill', before)).code).toBe(0);
    await waitFor('the failover commit on the remote', remoteHead, (s) => s.startsWith(`failover(shop): ${before} -> `), 20_000);
    const to = (await remoteHead()).slice(-5);
    const stale = await waitFor('RoutingStale', () => condition('RoutingStale'), (c) => c?.status === true, 10_000);
    expect(stale?.reason).toMatch(/ECONNREFUSED|cannot connect/);
    expect(await (await fetch(`${api}/metrics`)).text()).toContain(`topogit_router_in_step{cluster="shop",router="haproxy ${address()}"} 0`);
    // The router comes back as its config says: the first primary enabled, the wrong one now.
    haproxy = await startRouter('db001');
    await waitFor('the writer backend put in step', writer, (w) => w === fleet.names.map((n) => `${n} ${n === to ? 'ready' : 'maint'}`).join(', '), 10_000);
    await waitFor('RoutingStale cleared', () => condition('RoutingStale'), (c) => c?.status === false, 10_000);
    expect(await writerServerId()).toBe(Number(to.slice(-1)));
  });

  it('a switchover takes writes away from the old primary first (its sessions cut), then routes the new one', async () => {
    const from = (await remoteHead()).slice(-5);
    // The one the last test killed comes back first and rejoins; the switchover goes to a replica that follows.
    const state = async () => Promise.all(fleet.names.map(async (n) => (n === from ? 'primary' : await fleet.replication(n).catch(() => 'down'))));
    for (const [n, st] of (await state()).map((x, i) => [fleet.names[i], x] as const)) if (st === 'down') expect((await fleet.run('sandbox', 'start', n as string)).code).toBe(0);
    await waitFor(`every replica following ${from}`, state, (xs) => xs.every((x) => x === 'primary' || x === `${from} IO Yes SQL Yes`), 30_000);
    const to = fleet.names.find((n) => n !== from) as string;
    // An application's session through the writer frontend, open on the old primary.
    const app = await mysql.createConnection({ host: FRONT, port: 3306, user: 'topogit', password: TEST_PASSWORD });
    const [before] = (await app.query('SELECT @@server_id AS id')) as unknown as [{ id: number }[]];
    expect(Number(before[0]?.id)).toBe(Number(from.slice(-1)));
    app.on('error', () => undefined); // the cut below is expected: the assertion is on the next query
    const r = await fleet.run('switchover', 'shop', '--to', to, '--yes');
    expect(r.code, r.err + r.out).toBe(0);
    // The router steps are in the plan it ran, around the servers' own steps.
    const lines = r.out.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(new RegExp(`mysql_rw/${from} -> maint, sessions shut down`))).toBeGreaterThanOrEqual(0);
    expect(at(new RegExp(`mysql_rw/${from} -> maint`))).toBeLessThan(at(new RegExp(`${from} read_only OFF -> ON`)));
    expect(at(new RegExp(`mysql_rw/${to} -> ready`))).toBeGreaterThan(at(new RegExp(`${to} promote`)));
    expect(await writer()).toBe(fleet.names.map((n) => `${n} ${n === to ? 'ready' : 'maint'}`).join(', '));
    expect(await writerServerId()).toBe(Number(to.slice(-1)));
    // The switchover ran the failover hooks, as a failover does.
    for (const f of ['hook-pre.env', 'hook-post.env']) {
      const env = await readFile(path.join(fleet.dir, f), 'utf8');
      expect(env, f).toContain(`TOPOGIT_FAILED_PRIMARY=${from}\n`);
      expect(env, f).toContain(`TOPOGIT_NEW_PRIMARY=${to}\n`);
    }
    expect(r.out).toMatch(/preFailover hook .* exited 0/);
    // The old session was cut: it cannot write to the old primary any more.
    await expect(app.query('SELECT 1')).rejects.toThrow(/closed|lost|ECONNRESET|PROTOCOL_CONNECTION_LOST|enqueue/i);
    app.destroy();
    // The operator commits what the switchover wrote, as the README says.
    await fleet.git(['commit', '-qam', `switchover to ${to}`]);
    await fleet.git(['push', '-q']);
  });

  it('without the daemon: plan shows the router drift, apply corrects it, as it does the servers', async () => {
    daemon.kill('SIGKILL');
    // The file's primary: the instance without a source.
    const primary = /^ {2}(db\d+): \{ host: [\d.]+, port: 3306 \}$/m.exec(await readFile(path.join(fleet.dir, 'topologies', 'shop.yaml'), 'utf8'))?.[1] ?? '';
    expect(primary).toMatch(/^db00\d$/);
    // A reload enabled every server for writes.
    for (const n of fleet.names) await runtimeCommand(address(), `set server mysql_rw/${n} state ready`, 1000);
    const plan = await fleet.run('plan', '--detailed-exitcode');
    expect(plan.code, plan.err + plan.out).toBe(2);
    for (const n of fleet.names.filter((x) => x !== primary)) expect(plan.out).toContain(`haproxy ${address()}: mysql_rw/${n} -> maint, sessions shut down`);
    const applied = await fleet.run('apply', '--yes');
    expect(applied.code, applied.err + applied.out).toBe(0);
    expect(await writer()).toBe(fleet.names.map((n) => `${n} ${n === primary ? 'ready' : 'maint'}`).join(', '));
    expect((await fleet.run('plan', '--detailed-exitcode')).code).toBe(0);
  });
});
