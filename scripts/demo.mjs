#!/usr/bin/env node
// The README's demo: the walkthrough's story, declaratively. Three real MariaDB/MySQL servers on
// loopback, their topology in a Git repository with a bare remote, the `topogit watch` daemon
// reconciling it; the primary is killed, the daemon promotes a replica and pushes the commit; the
// old primary comes back and is fenced, then rejoined. Everything is torn down at the end.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-demo-'));
const env = {
  ...process.env,
  TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'),
  // The servers get random passwords; the files only name the variables.
  TOPOGIT_PASSWORD: randomBytes(12).toString('base64url'),
  TOPOGIT_REPL_PASSWORD: randomBytes(12).toString('base64url'),
  TOPOGIT_LOG_JSON: '1',
  GIT_AUTHOR_NAME: 'demo',
  GIT_AUTHOR_EMAIL: 'demo@localhost',
  GIT_COMMITTER_NAME: 'demo',
  GIT_COMMITTER_EMAIL: 'demo@localhost',
};
const work = path.join(dir, 'work');
const ops = path.join(dir, 'ops');
const bare = path.join(dir, 'topologies.git');
const started = Date.now();
let daemon;
let daemonLog = '';

const say = (title) => process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m  (+${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
function run(cmd, args, cwd, { show = true, quiet = false } = {}) {
  if (show) process.stdout.write(`$ ${cmd === process.execPath ? 'topogit' : cmd} ${(cmd === process.execPath ? args.slice(1) : args).join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
  if (!quiet) process.stdout.write(r.stdout + r.stderr);
  return r;
}
const topogit = (cwd, ...args) => run(process.execPath, [bin, ...args], cwd);
const git = (cwd, ...args) => run('git', args, cwd, { show: false, quiet: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting until ${what}`);
}
const statusJson = () => JSON.parse(run(process.execPath, [bin, 'status', '--json'], ops, { show: false, quiet: true }).stdout || '{"clusters":[]}');
const instance = (name) => statusJson().clusters[0]?.instances.find((i) => i.name === name);

let failed = false;
try {
  say('1. Three real servers on 127.0.0.11-13, GTID replication, db001 the primary; HAProxy on 127.0.0.14 in front of them');
  git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
  git(dir, 'clone', '-q', bare, work);
  const up = topogit(work, 'sandbox', 'up', '--cluster', 'shop', '--router', 'haproxy');
  if (up.status !== 0) throw new Error('sandbox up failed');

  say('2. The topology goes into Git: automatic failover on, db003 never promoted');
  const file = path.join(work, 'topologies', 'shop.yaml');
  const text = readFileSync(file, 'utf8')
    .replace('db003: { host: 127.0.0.13, port: 3306, source: db001 }', 'db003: { host: 127.0.0.13, port: 3306, source: db001, promotion: never }')
    .replace(/^failover:\n(?: {2}.*\n)+/m, 'failover:\n  auto: true               # like RecoverMasterClusterFilters: ["*"]\n  detection: { intervalMs: 500 }\n');
  writeFileSync(file, text);
  writeFileSync(path.join(work, '.gitignore'), '.topogit/\n');
  git(work, 'add', '.');
  git(work, 'commit', '-qm', 'shop: three servers, db001 primary');
  git(work, 'push', '-q', 'origin', 'main');
  process.stdout.write(readFileSync(file, 'utf8'));
  git(dir, 'clone', '-q', bare, ops);

  say('3. Start the daemon on its own clone: topogit watch --http 127.0.0.1:0');
  daemon = spawn(process.execPath, [bin, 'watch', '--http', '127.0.0.1:0', '--pull-interval', '500'], { cwd: ops, env, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout.on('data', (d) => (daemonLog += d));
  daemon.stderr.on('data', (d) => (daemonLog += d));
  await until('the daemon listens', () => /http on http:\/\/127\.0\.0\.1:(\d+)/.test(daemonLog));
  const port = /http on http:\/\/127\.0\.0\.1:(\d+)/.exec(daemonLog)[1];
  await until('the daemon is ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
  process.stdout.write(`daemon ready: http://127.0.0.1:${port}/api/clusters, /metrics, /healthz\n`);
  topogit(ops, 'status');

  say('4. An application writes through HAProxy (127.0.0.14:3306, never a server address), every 20 ms; then the primary is killed (SIGKILL), as `docker stop db001` did in the walkthrough');
  const mysql = (await import('mysql2/promise')).default;
  const FRONTEND = '127.0.0.14';
  const conn = async () => mysql.createConnection({ host: FRONTEND, port: 3306, user: 'topogit', password: env.TOPOGIT_PASSWORD, connectTimeout: 500 });
  const c1 = await conn();
  await c1.query('CREATE DATABASE topogit_demo');
  await c1.query('CREATE TABLE topogit_demo.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(20), server_id INT, at DATETIME(6) DEFAULT NOW(6))');
  await c1.end();
  // The application: one connection, reopened after an error, an order every 20 ms.
  let app;
  let appErrors = 0;
  let acked = 0;
  let writing = true;
  const writer = (async () => {
    while (writing) {
      try {
        app ??= await conn();
        await app.query({ sql: "INSERT INTO topogit_demo.orders (item, server_id) VALUES ('order', @@server_id)", timeout: 1000 });
        acked++;
      } catch {
        appErrors++;
        app?.destroy();
        app = undefined;
      }
      await sleep(20); // the application's pace
    }
  })();
  await until('the application wrote its first orders', async () => {
    const c = await conn();
    const [[{ n }]] = await c.query('SELECT COUNT(*) AS n FROM topogit_demo.orders');
    await c.end();
    return n >= 10;
  });
  topogit(work, 'sandbox', 'kill', 'db001');
  const killed = Date.now();
  await until('the daemon pushed its failover commit', () => /^failover\(shop\)/.test(run('git', ['--git-dir', bare, 'log', '-1', '--format=%s'], dir, { show: false, quiet: true }).stdout));
  process.stdout.write(`the daemon failed over and pushed the commit ${((Date.now() - killed) / 1000).toFixed(1)} s after the kill\n`);
  // The held connection's close (the event that started the pass), then each failover step.
  const steps = daemonLog.split('\n').filter((l) => l.includes('"step"') || /"msg":"connection to db001 lost/.test(l)).map((l) => JSON.parse(l));
  for (const s of steps) process.stdout.write(`  daemon: ${s.msg}\n`);
  await until('the application wrote to db002 for a moment', async () => {
    const c = await conn();
    const [[{ n }]] = await c.query('SELECT COUNT(*) AS n FROM topogit_demo.orders WHERE server_id = 2');
    await c.end();
    return n >= 10;
  });
  writing = false;
  await writer;
  app?.destroy();
  git(work, 'pull', '-q', '--ff-only');
  process.stdout.write('$ git log -p -1\n');
  process.stdout.write(run('git', ['log', '-p', '-1', '--format=commit %h%nAuthor: %an <%ae>%n%n%B'], work, { show: false, quiet: true }).stdout);
  // What the application lived through, read from the rows themselves (the servers' clocks).
  const c2 = await conn();
  const [rows] = await c2.query('SELECT server_id, UNIX_TIMESTAMP(at) * 1000 AS t FROM topogit_demo.orders ORDER BY at');
  await c2.end();
  let gap = 0;
  for (let i = 1; i < rows.length; i++) gap = Math.max(gap, Number(rows[i].t) - Number(rows[i - 1].t));
  const on = (id) => rows.filter((r) => Number(r.server_id) === id).length;
  process.stdout.write(`the application kept its one address (${FRONTEND}:3306): ${on(1)} orders went to db001, then ${on(2)} to db002; its longest pause between two orders around the kill: ${Math.round(gap)} ms (${appErrors} failed attempts, retried)\n`);
  process.stdout.write(rows.length >= acked ? `db002 has every order the application saw acknowledged (${acked}), and took the new ones\n` : `db002 has ${rows.length} of the ${acked} orders the application saw acknowledged: the last ${acked - rows.length} never left db001 (asynchronous replication)\n`);
  topogit(ops, 'status');

  say('5. Bring db001 back: it restarts read-only (--read-only); the daemon finds no errant GTIDs and rejoins it under db002');
  const fromStart = daemonLog.lastIndexOf('\n') + 1;
  topogit(work, 'sandbox', 'start', 'db001');
  await until('db001 rejoined under the new primary', () => instance('db001')?.liveSource === instance('db002')?.name && instance('db001')?.health === 'OK');
  await sleep(300); // let the daemon's last log lines arrive
  for (const l of daemonLog.slice(fromStart).split('\n').filter((x) => /"msg":"db001 (is back|rejoined)|"instance":"db001"/.test(x) && !/"step"/.test(x))) {
    const j = JSON.parse(l);
    process.stdout.write(`  daemon: ${j.sql ? `db001> ${j.sql}` : j.msg}\n`);
  }
  topogit(ops, 'status');
} catch (e) {
  failed = true;
  process.stderr.write(`demo failed: ${e.message}\n`);
  if (daemonLog) process.stderr.write(`daemon log (last lines):\n${daemonLog.split('\n').slice(-15).join('\n')}\n`);
} finally {
  say('6. Tear down: stop the daemon (SIGTERM), stop and remove the servers and the scratch directory');
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  spawnSync(process.execPath, [bin, 'sandbox', 'down', '--cluster', 'shop', '--topologies', path.join(work, 'topologies')], { cwd: work, env, stdio: 'inherit' });
  if (process.env.TOPOGIT_DEMO_LOG) writeFileSync(process.env.TOPOGIT_DEMO_LOG, daemonLog);
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`\ndemo ${failed ? 'FAILED' : 'done'} in ${((Date.now() - started) / 1000).toFixed(1)} s; nothing left running.\n`);
}
process.exit(failed ? 1 : 0);
