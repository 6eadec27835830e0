// Git kept true when the remote is down, against real MariaDB servers (127.0.0.225-227), a real
// bare remote and the real daemon: (a) the remote is moved away, the primary SIGKILLed: the
// failover finishes, /api/clusters says WriteBackPending, and once the remote is back the commit
// reaches it (the time it took is printed); (b) a failover commit the daemon could not push while
// a colleague pushed is rebased onto theirs and both are pushed, nothing forced; (c) a CI-style
// `apply` from a clone that lacks the failover commits refuses and changes nothing on the servers.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { runIn, startFleet, TEST_PASSWORD, TEST_REPL_PASSWORD, type Fleet } from './fleet.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const INTERVAL_MS = 500;
const FILE = 'topologies/shop.yaml';
let fleet: Fleet;
let daemon: { child: ChildProcess; port: number; log: () => string } | undefined;
/** The bare remote, and the path the daemon's clone reaches it by (a link: removing it takes the remote away from the daemon alone). */
let bare: string;
let daemonsView: string;
let work: string;
let ops: string;
let ci: string;

const gitEnv = () => ({ ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });
const git = async (cwd: string, ...args: string[]) => (await exec('git', args, { cwd, env: gitEnv() })).stdout;
const onRemote = async (...args: string[]) => (await exec('git', ['--git-dir', bare, ...args], { env: gitEnv() })).stdout;

interface ApiCluster {
  lastFailover: { from: string; to: string; commit: string | null } | null;
  conditions: { type: string; status: boolean; reason: string }[];
}
async function api(): Promise<ApiCluster> {
  const r = await fetch(`http://127.0.0.1:${daemon?.port ?? 0}/api/clusters`);
  const body = (await r.json()) as { clusters: ApiCluster[] };
  return body.clusters[0] as ApiCluster;
}
const condition = async (type: string) => (await api()).conditions.find((c) => c.type === type);
const metric = async () => /topogit_write_back_pending\{cluster="shop"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${daemon?.port ?? 0}/metrics`)).text())?.[1];
/** Each member: read_only, and whom it replicates from (or why it cannot say: it is down). */
async function servers(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of fleet.names) {
    try {
      out[n] = `ro=${await fleet.readOnly(n)} source=${(await fleet.sourceOf(n)) ?? 'none'}`;
    } catch {
      out[n] = 'down';
    }
  }
  return out;
}

beforeAll(async () => {
  fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 225 });
  bare = path.join(fleet.dir, 'remote.git');
  daemonsView = path.join(fleet.dir, 'daemons-view-of-remote.git');
  await exec('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await symlink(bare, daemonsView);
  // The operator's clone, where the sandbox's file is committed with automatic failover on.
  work = path.join(fleet.dir, 'work');
  await exec('git', ['clone', '-q', bare, work], { env: gitEnv() });
  const text = withFailover(await readFile(path.join(fleet.dir, FILE), 'utf8'), `  auto: true\n  blockSeconds: 0\n  detection: { intervalMs: ${INTERVAL_MS} }\n`);
  await exec('mkdir', ['-p', path.join(work, 'topologies')]);
  await writeFile(path.join(work, FILE), text.replaceAll('../.sandbox', '../../.sandbox'));
  await writeFile(path.join(work, '.gitignore'), '.topogit/\n');
  await git(work, 'add', '.');
  await git(work, 'commit', '-qm', 'shop');
  await git(work, 'push', '-qu', 'origin', 'main');
  // A CI runner's clone, made now: it will lack every failover commit.
  ci = path.join(fleet.dir, 'ci');
  await exec('git', ['clone', '-q', bare, ci], { env: gitEnv() });
  // The daemon's clone, reaching the remote through the link.
  ops = path.join(fleet.dir, 'ops');
  await exec('git', ['clone', '-q', daemonsView, ops], { env: gitEnv() });
  let out = '';
  const child = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'watch', '--http', '127.0.0.1:0', '--pull-interval', '300', '--log-level', 'debug'], {
    cwd: ops,
    env: { ...gitEnv(), TOPOGIT_LOG_JSON: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const HTTP_LINE = /http on http:\/\/127\.0\.0\.1:(\d+)/;
  const log = await waitFor('the daemon to log its HTTP address', () => out, (l) => HTTP_LINE.test(l), 15_000);
  daemon = { child, port: Number(HTTP_LINE.exec(log)?.[1]), log: () => out };
  await waitFor('the daemon to be ready', async () => (await fetch(`http://127.0.0.1:${daemon?.port ?? 0}/readyz`)).status, (s) => s === 200, 15_000);
});

afterAll(async () => {
  if (process.env.TOPOGIT_TEST_DAEMON_LOG) await writeFile(process.env.TOPOGIT_TEST_DAEMON_LOG, daemon?.log() ?? '');
  daemon?.child.kill('SIGKILL');
  await fleet?.down();
});

describe('Git kept true when the remote is down', () => {
  it('(a) fails over with the remote away, says WriteBackPending, and pushes the commit once the remote is back', async () => {
    expect((await condition('WriteBackPending'))?.status).toBe(false);
    await rename(bare, `${bare}.away`);
    await fleet.run('sandbox', 'kill', 'db001');
    // The failover finishes without Git: the servers are right.
    const c = await waitFor('/api/clusters to report the failover', api, (x) => x.lastFailover !== null, 30_000);
    expect(c.lastFailover).toMatchObject({ from: 'db001', to: 'db002' });
    expect(await fleet.readOnly('db002')).toBe(0);
    const pending = await waitFor('WriteBackPending on /api/clusters', () => condition('WriteBackPending'), (x) => x?.status === true, 10_000);
    expect(pending?.reason).toMatch(/^failover\(shop\): db001 -> db002 \(topologies\/shop\.yaml\) not pushed since \S+: \d+ attempts?; local commit [0-9a-f]{12}; last error: git (push|fetch)/);
    expect(pending?.reason).not.toContain(TEST_PASSWORD);
    expect(await metric()).toBe('1');
    // The commit is in the daemon's clone, not on the remote.
    expect((await git(ops, 'log', '-1', '--format=%s')).trim()).toBe('failover(shop): db001 -> db002');
    // `topogit status` in the daemon's clone says so too.
    expect((await runIn(ops, fleet.env, ['status'])).out).toContain('! WriteBackPending: failover(shop): db001 -> db002');

    // Away long enough for the retry's backoff to reach its 2 s cap: the slowest case.
    await waitFor('six attempts at the write-back', () => condition('WriteBackPending'), (x) => Number(/: (\d+) attempts/.exec(x?.reason ?? '')?.[1] ?? 0) >= 6, 20_000);
    await rename(`${bare}.away`, bare);
    const back = Date.now();
    await waitFor('the failover commit on the remote', async () => (await onRemote('log', '-1', '--format=%s', 'main')).trim(), (s) => s === 'failover(shop): db001 -> db002', 10_000);
    const ms = Date.now() - back;
    console.log(`remote back -> failover commit on the remote: ${ms} ms`);
    await waitFor('WriteBackPending to clear', () => condition('WriteBackPending'), (x) => x?.status === false, 10_000);
    expect(await metric()).toBe('0');
    expect((await onRemote('show', `main:${FILE}`)).match(/db002: \{[^}]*\}/)?.[0]).not.toContain('source');
  });

  it('(b) rebases a failover commit it could not push onto a colleague push, and pushes both', async () => {
    // The old primary returns and rejoins; then the remote goes away for the daemon alone.
    expect((await fleet.run('sandbox', 'start', 'db001')).code).toBe(0);
    await waitFor('db001 to replicate from db002', () => fleet.replication('db001'), (r) => r === 'db002 IO Yes SQL Yes', 20_000);
    await rm(daemonsView);
    await fleet.run('sandbox', 'kill', 'db002');
    const c = await waitFor('the second failover', api, (x) => x.lastFailover?.from === 'db002', 30_000);
    const promoted = c.lastFailover?.to as string;
    await waitFor('WriteBackPending for the second failover', () => condition('WriteBackPending'), (x) => x?.status === true && x.reason.startsWith(`failover(shop): db002 -> ${promoted}`), 10_000);
    // Meanwhile a colleague pushes an unrelated line of the same file.
    await git(work, 'pull', '-q', '--ff-only');
    const f = path.join(work, FILE);
    await writeFile(f, `# reviewed by Bob\n${await readFile(f, 'utf8')}`);
    await git(work, 'commit', '-qam', 'shop: reviewed');
    await git(work, 'push', '-q');
    const theirs = (await git(work, 'rev-parse', 'HEAD')).trim();

    await symlink(bare, daemonsView);
    const back = Date.now();
    const subject = `failover(shop): db002 -> ${promoted}`;
    await waitFor('the rebased failover commit on the remote', async () => (await onRemote('log', '-1', '--format=%s', 'main')).trim(), (s) => s === subject, 10_000);
    console.log(`remote back (after a colleague push) -> rebased failover commit on the remote: ${Date.now() - back} ms`);
    // Theirs is its parent (nothing forced, nothing merged), and the file has both changes.
    expect((await onRemote('rev-parse', 'main~1')).trim()).toBe(theirs);
    expect((await onRemote('rev-list', '--count', '--merges', 'main')).trim()).toBe('0');
    const remoteText = await onRemote('show', `main:${FILE}`);
    expect(remoteText.startsWith('# reviewed by Bob\n')).toBe(true);
    expect(remoteText.match(new RegExp(`${promoted}: \\{[^}]*\\}`))?.[0]).not.toContain('source');
    await waitFor('WriteBackPending to clear', () => condition('WriteBackPending'), (x) => x?.status === false, 10_000);
    expect((await git(ops, 'status', '--porcelain')).trim()).toBe('');
    expect((await git(ops, 'rev-parse', 'HEAD')).trim()).toBe((await onRemote('rev-parse', 'main')).trim());
  });

  it('(c) a CI-style apply from a clone that lacks the failover commits refuses and changes nothing', async () => {
    const before = await servers();
    const newest = (await onRemote('log', '-1', '--format=%cI%x1f%s%x1f%b', 'main', '--grep=^failover(shop)', '--', FILE)).split('\x1f');
    const [at = '', subject = '', body = ''] = newest;
    const [from, to] = subject.replace('failover(shop): ', '').split(' -> ');
    const id = /^Failover-Id: (.+)$/m.exec(body)?.[1];
    const expected = `the file predates failover ${id} (${from} -> ${to} at ${at.trim()}); pull first`;
    const applied = await runIn(ci, fleet.env, ['apply', '--yes']);
    expect(applied.code).not.toBe(0);
    expect(applied.err).toContain(`topogit: ${expected}`);
    expect(applied.out).not.toMatch(/applying shop/);
    const planned = await runIn(ci, fleet.env, ['plan']);
    expect(planned.out).toContain(expected);
    expect(await servers()).toEqual(before);
    // After a pull the same clone has nothing stale to refuse.
    await git(ci, 'pull', '-q', '--ff-only');
    expect((await runIn(ci, fleet.env, ['plan'])).out).not.toContain('predates');
    for (const s of [applied.out, applied.err, daemon?.log() ?? '']) {
      expect(s).not.toContain(TEST_PASSWORD);
      expect(s).not.toContain(TEST_REPL_PASSWORD);
    }
  });
});
