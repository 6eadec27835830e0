#!/usr/bin/env node
// The README's demo: a real three-server MariaDB/MySQL sandbox on loopback, driven only through
// the topogit CLI, in a scratch directory. Always tears everything down, even when a step fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-demo-'));
const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox') };
delete env.TOPOGIT_PASSWORD; // the sandbox makes its own passwords and keeps them in 0600 files
const started = Date.now();

function step(title) {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m  (+${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
function topogit(...args) {
  process.stdout.write(`$ topogit ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, stdio: 'inherit' });
  return r.status ?? 1;
}
function must(...args) {
  const code = topogit(...args);
  if (code !== 0) throw new Error(`topogit ${args.join(' ')} exited ${code}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let failed = false;
try {
  step('1. Start three real servers on 127.0.0.11-13 with GTID replication (db001 primary)');
  must('sandbox', 'up', '--cluster', 'shop');
  step('2. The topology file the sandbox wrote, and its validation');
  process.stdout.write(`$ cat topologies/shop.yaml\n`);
  spawnSync('cat', ['topologies/shop.yaml'], { cwd: dir, stdio: 'inherit' });
  must('validate');
  step('3. Discover the tree from a replica, as Orchestrator\'s Cluster > Discover does');
  must('discover', '127.0.0.13', '-f', 'topologies');
  step('4. Live status');
  must('status');
  step('5. Kill the primary (SIGKILL): db001 Unreachable, db002/db003 Disconnected');
  must('sandbox', 'kill', 'db001');
  await sleep(300);
  topogit('status');
  step('6. Bring db001 back: replicas reconnect');
  must('sandbox', 'start', 'db001');
  await sleep(1500);
  topogit('status');
} catch (e) {
  failed = true;
  process.stderr.write(`demo failed: ${e.message}\n`);
} finally {
  step('7. Tear down');
  topogit('sandbox', 'down', '--cluster', 'shop');
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`\ndemo ${failed ? 'FAILED' : 'done'} in ${((Date.now() - started) / 1000).toFixed(1)} s; nothing left running.\n`);
}
process.exit(failed ? 1 : 0);
