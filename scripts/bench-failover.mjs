#!/usr/bin/env node
// Failover timings with the real daemon: SIGKILL the primary N times (default 5) and read, from
// the daemon's own JSON log, when it detected the dead primary, when the new primary was
// writable, when every replica replicated from it, and when the commit was made and pushed.
// Prints median and p95 of each phase and writes bench/results/failover-<intervalMs>ms.json.
//   node scripts/bench-failover.mjs [--drills 5] [--interval-ms N]   (default: the product's default interval)
// The clock starts at the kill itself (process.kill of the server's pid), not at a CLI that sends it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchEnv, gitSandbox, median, p95, sleep, until } from './lib/bench.mjs';

const { values } = parseArgs({ options: { drills: { type: 'string', default: '5' }, 'interval-ms': { type: 'string' }, 'base-ip': { type: 'string', default: '11' } } });
const drills = Number(values.drills);
const intervalMs = values['interval-ms'] === undefined ? undefined : Number(values['interval-ms']);
const base = Number(values['base-ip']);
const names = ['db001', 'db002', 'db003'];
const host = (n) => `127.0.0.${base + names.indexOf(n)}`;
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-failover-'));
const env = benchEnv(dir);
const sh = (cmd, args, cwd) => spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
const topogit = (cwd, ...args) => sh(process.execPath, [bin, ...args], cwd);

let work = path.join(dir, 'work');
let ops = path.join(dir, 'ops');
let bare = path.join(dir, 'remote.git');
let daemon;
let log = '';
const results = [];
try {
  ({ work, ops, bare } = gitSandbox({ dir, sh, topogit, base, failover: `failover:\n  auto: true\n  blockSeconds: 0\n${intervalMs === undefined ? '' : `  detection: { intervalMs: ${intervalMs} }\n`}` }));
  daemon = spawn(process.execPath, [bin, 'watch', '--pull-interval', '1000'], { cwd: ops, env, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout.on('data', (d) => (log += d));
  daemon.stderr.on('data', (d) => (log += d));
  const primary = () => /^ {2}(db00\d): \{ host: [\d.]+, port: 3306 \}/m.exec(readFileSync(path.join(ops, 'topologies', 'bench.yaml'), 'utf8'))?.[1];
  const statusOf = () => JSON.parse(topogit(ops, 'status', '--json').stdout || '{"clusters":[]}').clusters[0];
  await until('the cluster is healthy', () => statusOf()?.healthy && statusOf()?.inSync);
  for (let k = 0; k < drills; k++) {
    const p = primary();
    const offset = log.length;
    // Kill at a random phase of the detection interval, as a real crash would.
    await sleep(Math.random() * (intervalMs ?? 2500));
    const pid = Number(readFileSync(path.join(dir, '.sandbox', 'bench', p, 'mysqld.pid'), 'utf8'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await until('the failover commit', () => /"step":"written-back"/.test(log.slice(offset)));
    await sleep(100);
    const lines = log.slice(offset).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const at = (pred) => lines.find(pred)?.time;
    const detected = at((l) => l.analysis === 'DeadPrimary' || l.analysis === 'DeadPrimaryAndSomeReplicas');
    const r = {
      killed: p,
      detectionMs: detected - killedAt,
      writableMs: at((l) => l.step === 'promoted') - killedAt,
      repointedMs: at((l) => l.step === 'repointed') - killedAt,
      commitMs: at((l) => l.step === 'written-back') - killedAt,
    };
    results.push(r);
    process.stdout.write(`drill ${k + 1}: ${p} killed; detected ${r.detectionMs} ms, writable ${r.writableMs} ms, repointed ${r.repointedMs} ms, committed+pushed ${r.commitMs} ms\n`);
    // Bring the old primary back; the daemon rejoins it before the next drill.
    topogit(work, 'sandbox', 'start', p);
    await until('the old primary rejoined', () => {
      const s = statusOf();
      return s?.healthy && s?.inSync && s.instances.every((i) => i.health === 'OK');
    });
  }
} finally {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  topogit(work, 'sandbox', 'down', '--cluster', 'bench');
  rmSync(dir, { recursive: true, force: true });
}
const phases = ['detectionMs', 'writableMs', 'repointedMs', 'commitMs'];
console.log(`\n| from SIGKILL of the primary (${results.length} drills, detection.intervalMs ${intervalMs ?? 'default'}) | median | p95 |\n|---|---|---|`);
const label = { detectionMs: 'detection (dead primary confirmed)', writableMs: 'writable new primary', repointedMs: 'every replica replicating from it', commitMs: 'commit written and pushed' };
for (const ph of phases) console.log(`| ${label[ph]} | ${median(results.map((r) => r[ph]))} ms | ${p95(results.map((r) => r[ph]))} ms |`);
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  `bench/results/failover-${intervalMs ?? 'default'}${intervalMs === undefined ? '' : 'ms'}.json`,
  JSON.stringify({ date: new Date().toISOString(), drills: results.length, intervalMs, results, median: Object.fromEntries(phases.map((ph) => [ph, median(results.map((r) => r[ph]))])) }, null, 2) + '\n',
);
