// Every command, the daemon's logs, HTTP responses, plans and commits are produced with a
// recognisable password, and none of them contains it.
//
// Real MariaDB servers on 127.0.0.81-83, a real git repository with a bare remote. Each command
// runs in-process through the CLI entry point with TEST_PASSWORD / TEST_REPL_PASSWORD set; a real
// `topogit watch` child process serves HTTP and logs JSON. Everything they print, every file
// topogit writes and the whole history of both repositories is searched for the passwords and
// their base64 and hex encodings. Failing commands with a wrong password must not print it either.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { primaryOfText, withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { runIn, startFleet, TEST_PASSWORD, TEST_REPL_PASSWORD, type Fleet, type Run } from './fleet.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const WRONG_PASSWORD = 'Wr0ng-admin-Secret-7e2';
const WRONG_REPL_PASSWORD = 'Wr0ng-repl-Secret-1d8';
let fleet: Fleet;

// ---------------------------------------------------------------------------------------------
// What must never appear, and where we looked

/** A secret as it could leak: itself, base64 (also of `user:secret`, as HTTP basic auth has it), hex. */
function encodings(secret: string): string[] {
  const b = Buffer.from(secret, 'utf8');
  const forms = [secret, b.toString('base64'), b.toString('base64url'), b.toString('hex'), b.toString('hex').toUpperCase()];
  for (const user of ['topogit', 'repl']) forms.push(Buffer.from(`${user}:${secret}`).toString('base64'));
  // base64 without padding, as it appears inside a longer encoded string.
  forms.push(b.toString('base64').replace(/=+$/, ''));
  return [...new Set(forms)];
}
const FORBIDDEN = [TEST_PASSWORD, TEST_REPL_PASSWORD, WRONG_PASSWORD, WRONG_REPL_PASSWORD].flatMap(encodings);

const checked: { where: string; bytes: number }[] = [];

/** Asserts `text` holds no secret in any encoding, and records that it was looked at. */
function expectClean(where: string, text: string): void {
  for (const f of FORBIDDEN) {
    const at = text.indexOf(f);
    if (at !== -1) {
      const context = text.slice(Math.max(0, at - 120), at + f.length + 40);
      expect.fail(`${where} contains a secret (${f}) near: ${JSON.stringify(context)}`);
    }
  }
  checked.push({ where, bytes: text.length });
}

/** Runs a command in-process, checks its output, and returns it. */
async function run(...argv: string[]): Promise<Run> {
  const r = await fleet.run(...argv);
  expectClean(`topogit ${argv.join(' ')} (exit ${r.code})`, r.out + r.err);
  expect(r.out + r.err).not.toContain('internal error');
  expect(r.out + r.err).not.toContain('\n    at ');
  return r;
}

/** Runs a command with other environment variables (a wrong password). */
async function runWith(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<Run> {
  const r = await runIn(fleet.dir, { ...fleet.env, ...env }, argv);
  expectClean(`topogit ${argv.join(' ')} with ${Object.keys(env).join(', ')} (exit ${r.code})`, r.out + r.err);
  expect(r.out + r.err).not.toContain('internal error');
  expect(r.out + r.err).not.toContain('\n    at ');
  return r;
}

const gitEnv = () => ({ ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });
const git = async (cwd: string, ...args: string[]) => (await exec('git', args, { cwd, env: gitEnv(), maxBuffer: 64 * 1024 * 1024 })).stdout;
const topologyFile = () => path.join(fleet.dir, 'topologies', 'leak.yaml');

/** The file's primary: the instance line without a source. */
const primaryInFile = async () => primaryOfText(await readFile(topologyFile(), 'utf8'));
const sourceOf = (name: string) => fleet.sourceOf(name);
/**
 * Repoints the last replica of the file at the other replica, by hand: drift that `plan` repairs
 * with a CHANGE MASTER carrying the replication password. Only MASTER_HOST changes, so this test's
 * own statement holds no password.
 */
async function makeDrift(): Promise<{ replica: string; wrongSource: string; primary: string }> {
  const primary = await primaryInFile();
  const [other, replica] = fleet.names.filter((n) => n !== primary) as [string, string];
  await fleet.sql(fleet.host(replica), 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${fleet.host(other)}'`, 'START SLAVE');
  expect(await sourceOf(replica)).toBe(other);
  return { replica, wrongSource: other, primary };
}

/** Every file under `dir`, recursively, except the servers' own files (data directories, logs). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'data' || e.name === '.git' || e.name === 'remote.git') continue;
      out.push(...(await filesUnder(p)));
    } else if (e.isFile() && !['error.log', 'mysqld.pid', 'mysqld.sock', 'hook.env'].includes(e.name)) {
      out.push(p);
    }
  }
  return out;
}

describe('no password leaks, on real MariaDB servers with a real git remote', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'leak', instances: 3, baseOctet: 81 });
    await fleet.commitToRemote({ message: 'leak topology', ignore: ['hook.env'] });
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('the passwords are the recognisable test strings, and the sandbox file names only variables', async () => {
    expect(TEST_PASSWORD).toMatch(/Secret/);
    expect(TEST_REPL_PASSWORD).toMatch(/Secret/);
    expect(fleet.env.TOPOGIT_PASSWORD).toBe(TEST_PASSWORD);
    expect(fleet.env.TOPOGIT_REPL_PASSWORD).toBe(TEST_REPL_PASSWORD);
    const text = await readFile(topologyFile(), 'utf8');
    expect(text).toContain('passwordEnv: TOPOGIT_PASSWORD');
    expectClean('topologies/leak.yaml as sandbox up wrote it', text);
    // The check itself finds every encoding.
    expect(() => expectClean('self-test', `x${Buffer.from(TEST_PASSWORD).toString('hex')}x`)).toThrow();
    expect(() => expectClean('self-test', `Basic ${Buffer.from(`repl:${TEST_REPL_PASSWORD}`).toString('base64')}`)).toThrow();
  });

  it('validate, status, status --json, discover', async () => {
    expect((await run('validate')).code).toBe(0);
    expect((await run('status')).code).toBe(0);
    const json = await run('status', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ formatVersion: 1 });
    expect((await run('discover', fleet.host('db002'))).code).toBe(0);
    const d = await run('discover', fleet.host('db003'), '-c', 'leak', '-f', 'topologies', '-o', 'discovered.yaml');
    expect(d.code, d.err).toBe(0);
    expectClean('discovered.yaml', await readFile(path.join(fleet.dir, 'discovered.yaml'), 'utf8'));
  });

  it('plan in every format, plan --out, then apply --yes and apply PLANFILE repair drift', async () => {
    const drift = await makeDrift();
    const text = await run('plan');
    expect(text.code).toBe(0);
    expect(text.out).toContain(`${drift.replica} source ${drift.wrongSource} -> ${drift.primary}`);
    expect(text.out).toContain("MASTER_PASSWORD='****'");
    expect((await run('plan', '--format', 'markdown')).out).toContain("MASTER_PASSWORD='****'");
    const json = await run('plan', '--format', 'json');
    expect(JSON.parse(json.out)).toMatchObject({ formatVersion: 1 });
    expect((await run('plan', '--detailed-exitcode')).code).toBe(2);
    const saved = await run('plan', '--out', 'plan.json');
    expect(saved.code, saved.err).toBe(0);
    const planText = await readFile(path.join(fleet.dir, 'plan.json'), 'utf8');
    expect(planText).toContain("MASTER_PASSWORD='****'");
    expectClean('plan.json', planText);

    const applied = await run('apply', '--yes');
    expect(applied.code, applied.err + applied.out).toBe(0);
    expect(await sourceOf(drift.replica)).toBe(drift.primary);
    expect((await run('plan', '--detailed-exitcode')).code).toBe(0);

    // A saved plan, applied from its file.
    await makeDrift();
    expect((await run('plan', '--out', 'plan2.json')).code).toBe(0);
    expectClean('plan2.json', await readFile(path.join(fleet.dir, 'plan2.json'), 'utf8'));
    const fromFile = await run('apply', 'plan2.json');
    expect(fromFile.code, fromFile.err + fromFile.out).toBe(0);
    expect(await sourceOf(drift.replica)).toBe(drift.primary);
  });

  it('switchover, committed and pushed by the operator', async () => {
    const before = await primaryInFile();
    const to = before === 'db002' ? 'db003' : 'db002';
    const r = await run('switchover', 'leak', '--to', to, '--yes');
    expect(r.code, r.err + r.out).toBe(0);
    expect(await primaryInFile()).toBe(to);
    await git(fleet.dir, 'commit', '-qam', `switchover to ${to}`);
    await git(fleet.dir, 'push', '-q');
    expect((await run('status')).code).toBe(0);
  });

  it('failover after a SIGKILL, written back and pushed; reconcile rejoins; ack', async () => {
    // A post-failover hook that records its environment (checked in the last test).
    const text = await readFile(topologyFile(), 'utf8');
    await writeFile(topologyFile(), withFailover(text, '  auto: false\n  hooks:\n    postFailover: ["env > hook.env"]\n'));
    expect((await run('validate')).code).toBe(0);
    await git(fleet.dir, 'commit', '-qam', 'record the environment after a failover');
    await git(fleet.dir, 'push', '-q');
    const dead = await primaryInFile();
    expect((await run('sandbox', 'kill', dead)).code).toBe(0);
    const status = await run('status');
    expect(status.code).toBe(2);
    expect([0, 1, 2]).toContain((await run('plan')).code);
    const f = await run('failover', 'leak', '--yes');
    expect(f.code, f.err + f.out).toBe(0);
    expect(f.out).toMatch(/failover db00\d -> db00\d done/);
    expect(await primaryInFile()).not.toBe(dead);
    expect((await git(fleet.dir, 'log', '-1', '--format=%s')).trim()).toMatch(/^failover\(leak\): /);
    expect((await run('sandbox', 'start', dead)).code).toBe(0);
    const rec = await run('reconcile');
    expect(rec.code, rec.err + rec.out).toBe(0);
    const np = await primaryInFile();
    await waitFor(`the returning ${dead} to replicate from ${np}`, () => sourceOf(dead), (s) => s === np, 15_000);
    expect((await run('ack', 'leak')).code).toBe(0);
    expect((await run('reconcile')).code).toBe(0);
    expect((await run('sandbox', 'ls')).code).toBe(0);
  });

  it('commands with a wrong admin password fail without printing it', async () => {
    const env = { TOPOGIT_PASSWORD: WRONG_PASSWORD };
    const status = await runWith(env, 'status');
    expect(status.code).toBe(2);
    expect(status.out).toContain('Access denied');
    for (const argv of [['plan'], ['apply', '--yes'], ['discover', fleet.host('db001')], ['reconcile'], ['switchover', 'leak', '--to', 'db001', '--yes'], ['failover', 'leak', '--yes']]) {
      const r = await runWith(env, ...argv);
      expect([0, 1, 2], `${argv.join(' ')}: ${r.err}`).toContain(r.code);
      expect(r.out + r.err, argv.join(' ')).toMatch(/Access denied|unreachable|Unreachable|cannot/);
    }
    // The same wrong password from a file: outside the fleet directory, which is searched below.
    const pwDir = await mkdtemp(path.join(tmpdir(), 'topogit-leak-pw-'));
    try {
      await writeFile(path.join(pwDir, 'wrong.pw'), `${WRONG_PASSWORD}\n`);
      const d = await run('discover', fleet.host('db001'), '--password-file', path.join(pwDir, 'wrong.pw'));
      expect(d.code).toBe(1);
      expect(d.err).toMatch(/^topogit: .*Access denied/);
    } finally {
      await rm(pwDir, { recursive: true, force: true });
    }
  });

  it('topogit watch: HTTP answers and the whole log, across a repair it makes, hold no password', async () => {
    let log = '';
    const child: ChildProcess = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'watch', '--http', '127.0.0.1:0', '--pull-interval', '500', '--log-level', 'trace'], {
      cwd: fleet.dir,
      env: { ...gitEnv(), TOPOGIT_LOG_JSON: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      const HTTP_LINE = /http on http:\/\/127\.0\.0\.1:(\d+)/;
      const port = Number(HTTP_LINE.exec(await waitFor('the daemon to log its HTTP address', () => log, (l) => HTTP_LINE.test(l), 15_000))?.[1]);
      const get = async (p: string): Promise<{ status: number; body: string }> => {
        const r = await fetch(`http://127.0.0.1:${port}${p}`);
        const body = await r.text();
        expectClean(`GET ${p} (${r.status}) ${JSON.stringify([...r.headers])}`, `${JSON.stringify([...r.headers])}\n${body}`);
        return { status: r.status, body };
      };
      expect((await get('/healthz')).status).toBe(200);
      await waitFor('the daemon to answer /readyz with 200', () => get('/readyz'), (r) => r.status === 200, 15_000);
      // The daemon repairs drift with a CHANGE MASTER that carries the replication password.
      const drift = await makeDrift();
      await waitFor(`the daemon to repoint ${drift.replica} under ${drift.primary}`, () => sourceOf(drift.replica), (s) => s === drift.primary, 15_000);
      // Replication stopped by hand is started again.
      await fleet.sql(fleet.host(drift.replica), 'STOP SLAVE');
      await waitFor(`the daemon to start replication on ${drift.replica} again`, () => fleet.replication(drift.replica), (r) => r === `${drift.primary} IO Yes SQL Yes`, 15_000);
      expect((await get('/metrics')).body).toContain('topogit_instance_up');
      const clusters = await get('/api/clusters');
      expect(clusters.status).toBe(200);
      expect(clusters.body).toContain('"leak"');
      expect((await get('/api/clusters/leak')).status).toBe(200);
      expect((await get('/api/clusters/nope')).status).toBe(404);
      expect((await get('/no/such/path')).status).toBe(404);
      expect((await get('/api/clusters/leak?password=1')).status).toBeLessThan(500);
      // More of the log to search: two more whole passes (probes, SQL, trace lines) after the repairs.
      const passes = async () => {
        const id = (JSON.parse((await get('/api/clusters/leak')).body) as { lastPass: { id: string } | null }).lastPass?.id ?? 'leak-0';
        return Number(id.slice(id.lastIndexOf('-') + 1));
      };
      const from = await passes();
      await waitFor('two more passes of the daemon', passes, (n) => n >= from + 2, 15_000);
    } finally {
      child.kill('SIGTERM');
    }
    const { code } = await exited;
    expect(code, log).toBe(0);
    expect(log).toContain("MASTER_PASSWORD='****'");
    expect(log).not.toContain('\n    at ');
    expectClean('topogit watch stdout+stderr', log);
  });

  it('a wrong replication password reaches the server only as a literal and is never printed', async () => {
    // Last: afterwards the replica cannot connect to its source.
    const env = { TOPOGIT_REPL_PASSWORD: WRONG_REPL_PASSWORD };
    const drift = await makeDrift();
    const plan = await runWith(env, 'plan', '--format', 'json');
    expect(plan.code).toBe(0);
    const applied = await runWith(env, 'apply', '--yes');
    // The CHANGE MASTER ran with the wrong password: the replica now fails to connect, and says so.
    expect([0, 1]).toContain(applied.code);
    expect(await sourceOf(drift.replica)).toBe(drift.primary);
    const status = await waitFor(
      `status to show ${drift.replica} failing to connect with the wrong replication password`,
      () => runWith(env, 'status'),
      (r) => new RegExp(`! ${drift.replica}: Disconnected: IO thread connecting: .*Access denied for user 'repl'`).test(r.out),
      15_000,
    );
    expect(status.code).toBe(2);
    expect((await runWith(env, 'status', '--json')).code).toBe(2);
  });

  it('the state under .topogit/, every other file topogit wrote, and the history of both repositories', async () => {
    const files = await filesUnder(fleet.dir);
    expect(files.some((f) => f.includes(`${path.sep}.topogit${path.sep}`))).toBe(true);
    expect(files.some((f) => f.endsWith('sandbox.json'))).toBe(true);
    for (const f of files) expectClean(path.relative(fleet.dir, f), await readFile(f, 'utf8'));

    const local = await git(fleet.dir, 'log', '-p', '--all', '--format=fuller');
    expect(local).toMatch(/failover\(leak\): /);
    expectClean('git log -p --all (working repository)', local);
    const remote = (await exec('git', ['--git-dir', path.join(fleet.dir, 'remote.git'), 'log', '-p', '--all', '--format=fuller'], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    expect(remote).toMatch(/failover\(leak\): /);
    expectClean('git log -p --all (bare remote)', remote);
    const config = await readFile(path.join(fleet.dir, '.git', 'config'), 'utf8');
    expectClean('.git/config', config);
    expectClean('git reflog', await git(fleet.dir, 'reflog', '--all'));
  });

  it('looked at every kind of output', () => {
    const where = checked.map((c) => c.where).join('\n');
    for (const kind of [
      'topogit validate',
      'topogit status',
      'topogit status --json',
      'topogit discover',
      'topogit plan --format markdown',
      'topogit plan --format json',
      'topogit plan --out',
      'plan.json',
      'topogit apply --yes',
      'topogit apply plan2.json',
      'topogit switchover',
      'topogit sandbox kill',
      'topogit failover',
      'topogit reconcile',
      'topogit ack',
      'topogit sandbox ls',
      'with TOPOGIT_PASSWORD',
      'with TOPOGIT_REPL_PASSWORD',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'GET /api/clusters ',
      'GET /api/clusters/leak',
      'GET /no/such/path (404)',
      'topogit watch stdout+stderr',
      '.topogit/',
      'git log -p --all (bare remote)',
    ]) {
      expect(where, kind).toContain(kind);
    }
    expect(checked.reduce((n, c) => n + c.bytes, 0)).toBeGreaterThan(20_000);
  });

  // Hooks run with a minimal environment plus the TOPOGIT_* facts: never topogit's passwords.
  it('a failover hook does not receive the passwords', async () => {
    const env = await readFile(path.join(fleet.dir, 'hook.env'), 'utf8');
    expect(env).toContain('TOPOGIT_CLUSTER=leak');
    expect(env).toContain('TOPOGIT_NEW_PRIMARY=');
    expectClean('the environment of a postFailover hook', env);
  });
});
