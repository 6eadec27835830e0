// The daemon against a real sandbox and a real repository with a bare remote: a pushed change is
// applied, a SIGKILLed primary ends in a failover and a pushed commit, a malformed file is
// reported and never reaches a server, HTTP reflects all of it, a standby takes over after the
// active daemon is killed -9, SIGTERM exits cleanly, and no password ever reaches a log.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editSources, promotionEdits } from '../../src/config/edit.js';
import { withFailover } from '../support/spec.js';
import { waitFor, within } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, TEST_REPL_PASSWORD, type Fleet } from './fleet.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const INTERVAL_MS = 500;
let fleet: Fleet;
let work: string;

interface Daemon {
  child: ChildProcess;
  port: number;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
const daemons: Daemon[] = [];

const gitEnv = () => ({ ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });
const git = async (cwd: string, ...args: string[]) => (await exec('git', args, { cwd, env: gitEnv() })).stdout;

async function startDaemon(name: string): Promise<Daemon> {
  let out = '';
  const child = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'watch', '--http', '127.0.0.1:0', '--pull-interval', '300', '--log-level', 'debug'], {
    cwd: path.join(fleet.dir, 'ops'),
    env: { ...gitEnv(), TOPOGIT_LOG_JSON: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const HTTP_LINE = /http on http:\/\/127\.0\.0\.1:(\d+)/;
  const log = await waitFor(`daemon ${name} to log its HTTP address`, () => out, (l) => HTTP_LINE.test(l), 15_000);
  const port = Number(HTTP_LINE.exec(log)?.[1]);
  const d = { child, port, log: () => out, exited };
  daemons.push(d);
  return d;
}

async function get(d: Daemon, p: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${d.port}${p}`);
  return { status: r.status, body: await r.text() };
}
interface ApiCluster {
  name: string;
  primary: string;
  fileValid: boolean;
  fileIssues: string[];
  lastFailover: { from: string; to: string; commit: string | null } | null;
  conditions: { type: string; status: boolean; reason: string }[];
  lastPass: { id: string; outcome: string } | null;
  tree: { name: string; liveSource: string | null; health: string }[];
  shapes: { code: string; instance: string }[];
  failover: { ready: boolean; candidate: string | null; reasons: string[] } | null;
}
async function api(d: Daemon): Promise<{ role: string; clusters: ApiCluster[] }> {
  return JSON.parse((await get(d, '/api/clusters')).body) as { role: string; clusters: ApiCluster[] };
}
/** How many passes the daemon's cluster loop has finished (its last pass id is `shop-<n>`). */
async function passes(d: Daemon): Promise<number> {
  const id = (await api(d)).clusters[0]?.lastPass?.id;
  return id ? Number(id.slice(id.lastIndexOf('-') + 1)) : 0;
}
/**
 * Proving a negative ("nothing happens"): instead of sleeping, wait until the daemon has finished
 * `n` more passes, each deciding from a fresh probe, then look.
 */
async function afterPasses(d: Daemon, n: number, why: string): Promise<void> {
  const from = await passes(d);
  await waitFor(`${n} more passes of the daemon ${why}`, () => passes(d), (k) => k >= from + n, 10_000 + n * 3 * INTERVAL_MS);
}
const sourceOf = (name: string) => fleet.sourceOf(name);
async function rowCount(name: string): Promise<number> {
  const [row] = (await fleet.sql(fleet.host(name), 'SELECT COUNT(*) AS n FROM topogit_demo.t')) as { n: number }[];
  return Number(row?.n ?? -1);
}
async function pushFile(edit: (text: string) => string, message: string) {
  await git(work, 'pull', '-q', '--ff-only');
  const f = path.join(work, 'topologies', 'shop.yaml');
  await writeFile(f, edit(await readFile(f, 'utf8')));
  await git(work, 'commit', '-qam', message);
  await git(work, 'push', '-q');
}

describe('topogit watch', () => {
  let a: Daemon;
  let b: Daemon;

  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 71 });
    const bare = path.join(fleet.dir, 'remote.git');
    await exec('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    // The operator's clone, where topologies/shop.yaml was written by the sandbox.
    work = path.join(fleet.dir, 'work');
    await exec('git', ['clone', '-q', bare, work], { env: gitEnv() });
    const text = withFailover(await readFile(path.join(fleet.dir, 'topologies', 'shop.yaml'), 'utf8'), `  auto: true\n  blockSeconds: 0\n  detection: { intervalMs: ${INTERVAL_MS} }\n`);
    await exec('mkdir', ['-p', path.join(work, 'topologies')]);
    await writeFile(path.join(work, 'topologies', 'shop.yaml'), text.replaceAll('../.sandbox', '../../.sandbox'));
    await writeFile(path.join(work, '.gitignore'), '.topogit/\n');
    await git(work, 'add', '.');
    await git(work, 'commit', '-qm', 'shop');
    await git(work, 'push', '-qu', 'origin', 'main');
    // The daemon's own clone on the operations host.
    await exec('git', ['clone', '-q', bare, path.join(fleet.dir, 'ops')], { env: gitEnv() });
    await fleet.sql(fleet.host('db001'), 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT AUTO_INCREMENT PRIMARY KEY)');
    a = await startDaemon('a');
    b = await startDaemon('b');
  });
  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGKILL');
    await fleet?.down();
  });

  it('is alive, becomes ready, and exactly one daemon acts', async () => {
    expect((await get(a, '/healthz')).status).toBe(200);
    await waitFor('daemon a to answer /readyz with 200', () => get(a, '/readyz'), (r) => r.status === 200, 10_000);
    const roles = [(await api(a)).role, (await api(b)).role].sort();
    expect(roles).toEqual(['active', 'standby']);
    const c = (await api(a)).clusters[0] as ApiCluster;
    expect(c.name).toBe('shop');
    expect(c.tree.map((i) => `${i.name}:${i.health}`)).toEqual(['db001:OK', 'db002:OK', 'db003:OK']);
    // Before any failure: it could fail over, and says to which replica.
    expect(c.shapes).toEqual([]);
    expect(c.failover).toEqual({ ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: neutral, 0s behind)'] });
    const active = (await api(a)).role === 'active' ? a : b;
    const metrics = (await get(active, '/metrics')).body;
    expect(metrics).toContain('topogit_failover_ready{cluster="shop"} 1');
    expect(metrics).not.toContain('topogit_failure_shape{');
  });

  it('applies a pushed change: pulled by the active daemon, which repoints the replica', async () => {
    const active = (await api(a)).role === 'active' ? a : b;
    const logFrom = active.log().length;
    await pushFile((t) => editSources(t, new Map([['db003', 'db002']])), 'db003 under db002');
    await waitFor('db003 to replicate from db002 after the push', () => sourceOf('db003'), (s) => s === 'db002', 10_000);
    // The daemon did it, from the pushed commit: it pulled, and ran the repoint itself.
    const log = await waitFor('the active daemon to log the pull and the repoint', () => active.log().slice(logFrom), (l) => l.includes('"msg":"pulled new commits"') && l.includes('"steps":["db003 source db001 -> db002"],"applied":true'));
    expect(log).toMatch(/"committed":true,"msg":"topologies\/shop\.yaml changed: reconciling"/);
    await waitFor('/api/clusters to show db003 under db002', async () => (await api(active)).clusters[0]?.tree.find((i) => i.name === 'db003')?.liveSource, (s) => s === 'db002');
  });

  it('reports a malformed pushed file and leaves the servers untouched', async () => {
    await pushFile((t) => t.replace('source: db002', 'source: db009'), 'broken');
    const active = (await api(a)).role === 'active' ? a : b;
    const c = await waitFor('/api/clusters to report the pushed file invalid', async () => (await api(active)).clusters[0] as ApiCluster, (x) => !x.fileValid, 10_000);
    expect(c.fileIssues.join('\n')).toContain('"db009" is not an instance of cluster shop');
    expect(c.conditions.find((x) => x.type === 'FileInvalid')?.status).toBe(true);
    expect((await get(active, '/metrics')).body).toMatch(/topogit_file_valid\{cluster="shop"\} 0/);
    await afterPasses(active, 3, 'with the invalid file');
    expect(await sourceOf('db003')).toBe('db002');
    expect(a.child.exitCode).toBeNull();
    await pushFile((t) => t.replace('source: db009', 'source: db002'), 'fixed');
    await waitFor('/api/clusters to report the fixed file valid', async () => (await api(active)).clusters[0]?.fileValid, (v) => v === true, 10_000);
  });

  it('fails over by itself after a SIGKILL of the primary, and pushes the commit', async () => {
    await fleet.run('sandbox', 'kill', 'db001');
    const bare = path.join(fleet.dir, 'remote.git');
    const subject = await waitFor(
      'a failover commit on the remote',
      async () => (await exec('git', ['--git-dir', bare, 'log', '-1', '--format=%s', 'main'])).stdout.trim(),
      (s) => s.startsWith('failover(shop)'),
      20_000,
    );
    expect(subject).toBe('failover(shop): db001 -> db002');
    const active = (await api(a)).role === 'active' ? a : b;
    const c = await waitFor('/api/clusters to report the failover', async () => (await api(active)).clusters[0] as ApiCluster, (x) => x.lastFailover !== null, 10_000);
    expect(c.lastFailover).toMatchObject({ from: 'db001', to: 'db002' });
    expect((await get(active, '/metrics')).body).toMatch(/topogit_failovers_total\{cluster="shop"\} 1/);
    // db003 was under db002 already: it stays there, and db002 is the writable primary.
    expect(await fleet.readOnly('db002')).toBe(0);
    // A write on the new primary while the old one is down: the old one must receive it on rejoining.
    await fleet.sql(fleet.host('db002'), 'INSERT INTO topogit_demo.t VALUES (NULL)');
    const rows = await rowCount('db002');
    // The old primary returns: read-only (it must never take writes again by itself), and, with no
    // errant transaction, rejoined by the daemon as a replica of the new primary.
    expect((await fleet.run('sandbox', 'start', 'db001')).code).toBe(0);
    await waitFor('db001 to replicate from db002 with both threads running', () => fleet.replication('db001'), (r) => r === 'db002 IO Yes SQL Yes', 15_000);
    expect(await fleet.readOnly('db001')).toBe(1);
    // It was the daemon's rejoin (not, say, a plan's repoint).
    await waitFor('the active daemon to log the rejoin of db001', () => active.log(), (l) => l.includes('"msg":"db001 rejoined under db002"'));
    await waitFor('db001 to have the row written on db002 while it was down', () => rowCount('db001'), (n) => n === rows);
    const back = await waitFor('/api/clusters to show db001 OK under db002', async () => (await api(active)).clusters[0]?.tree.find((i) => i.name === 'db001'), (i) => i?.liveSource === 'db002' && i.health === 'OK');
    expect(back).toMatchObject({ liveSource: 'db002', health: 'OK' });
  });

  it('lets the standby take over when the active daemon is killed -9', async () => {
    const [active, standby] = (await api(a)).role === 'active' ? [a, b] : [b, a];
    active.child.kill('SIGKILL');
    await waitFor('the standby daemon to take the lease', async () => (await api(standby)).role, (r) => r === 'active', 10_000);
    // The new active daemon acts: replication stopped by hand is started again.
    await fleet.sql(fleet.host('db003'), 'STOP SLAVE');
    await waitFor('the new active daemon to start replication on db003 again', () => fleet.replication('db003'), (r) => r === 'db002 IO Yes SQL Yes', 10_000);
  });

  it('moves the primary only when a pushed commit names another one', async () => {
    // The daemon left standing after the kill -9 above.
    const active = daemons.find((d) => d.child.exitCode === null && d.child.signalCode === null) as Daemon;
    expect((await api(active)).role).toBe('active');
    // An uncommitted edit in the daemon's own clone does not move the primary.
    const opsFile = path.join(fleet.dir, 'ops', 'topologies', 'shop.yaml');
    const committed = await readFile(opsFile, 'utf8');
    const drifted = async () => (await api(active)).clusters[0]?.conditions.find((x) => x.type === 'Drifted');
    await waitFor('the live tree to match the committed file before the edit', drifted, (x) => x?.status === false);
    const logFrom = active.log().length;
    await writeFile(opsFile, editSources(committed, promotionEdits([{ name: 'db001', source: 'db002' }, { name: 'db002' }, { name: 'db003', source: 'db002' }], 'db003')));
    // The daemon saw the edit (as not committed) and says the live tree differs from it...
    await waitFor('the daemon to load the uncommitted edit', () => active.log().slice(logFrom), (l) => /"committed":false,"msg":"topologies\/shop\.yaml changed: reconciling"/.test(l));
    const differs = await waitFor('/api/clusters to report the live tree differs from the edited file', drifted, (x) => x?.status === true);
    expect(differs?.reason).toBe('live tree differs from the file');
    // ...and several passes later has still not moved the primary.
    await afterPasses(active, 4, 'with the uncommitted edit');
    expect(await fleet.readOnly('db003')).toBe(1);
    expect(await sourceOf('db003')).toBe('db002');
    await writeFile(opsFile, committed);
    // A pushed commit does: switchover db002 -> db001.
    await pushFile((t) => editSources(t, promotionEdits([{ name: 'db001', source: 'db002' }, { name: 'db002' }, { name: 'db003', source: 'db002' }], 'db001')), 'db001 primary again');
    await waitFor('db002 to replicate from db001 after the pushed switchover', () => sourceOf('db002'), (s) => s === 'db001', 15_000);
    expect(await fleet.readOnly('db001')).toBe(0);
    await waitFor('db003 to replicate from db001 after the pushed switchover', () => sourceOf('db003'), (s) => s === 'db001', 10_000);
    expect(active.child.exitCode).toBeNull();
  });

  it('stops cleanly on SIGTERM, and never logs a password', async () => {
    const alive = daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    for (const d of alive) {
      d.child.kill('SIGTERM');
      // Past its own 10 s limit the daemon exits 1 ("did not stop within 10 s"): exit 0 and the
      // "stopped" line are the clean stop.
      const { code } = await within('the daemon to exit after SIGTERM', d.exited, 20_000);
      expect(code, d.log()).toBe(0);
      expect(d.log()).toContain('"msg":"stopped"');
      expect(d.log()).not.toContain('did not stop within 10 s');
    }
    for (const d of daemons) {
      expect(d.log()).not.toContain(TEST_PASSWORD);
      expect(d.log()).not.toContain(TEST_REPL_PASSWORD);
    }
    // The SQL it ran is logged, with the password masked.
    expect(daemons.some((d) => d.log().includes("MASTER_PASSWORD='****'"))).toBe(true);
  });
});
