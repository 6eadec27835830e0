#!/usr/bin/env node
// What coordination on etcd costs a failover: the same SIGKILL drill with the daemon on the file
// coordinator and on a real 3-member etcd (loopback, data on this machine's disk, fsync on),
// alternating drill by drill so that both see the same machine. Read from the daemon's JSON log:
// detection -> writable (the promotion), detection -> repointed, detection -> commit pushed; with
// etcd every step is proven in a transaction first and the journal is written to etcd.
//   node scripts/bench-coordination.mjs [--drills 10] [--base-ip 11]   (needs `npm run build`)
// Prints medians per mode and their difference; writes bench/results/coordination.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchEnv, gitSandbox, median, p95, sleep, until } from './lib/bench.mjs';

const { values } = parseArgs({ options: { drills: { type: 'string', default: '10' }, 'base-ip': { type: 'string', default: '11' } } });
const drills = Number(values.drills);
const base = Number(values['base-ip']);
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const { startEtcdCluster } = await import(new URL('../dist/adapters/sandbox/etcd.js', import.meta.url).href);
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-coordination-'));
const env = benchEnv(dir);
const sh = (cmd, args, cwd) => spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
const topogit = (cwd, ...args) => sh(process.execPath, [bin, ...args], cwd);

let work = path.join(dir, 'work');
let etcd;
const results = { file: [], etcd: [] };
try {
  const g = gitSandbox({ dir, sh, topogit, base, failover: 'failover:\n  auto: true\n  blockSeconds: 0\n' });
  work = g.work;
  const ops = g.ops;
  etcd = await startEtcdCluster({ dir: path.join(dir, 'etcd'), addresses: ['127.0.0.251', '127.0.0.252', '127.0.0.253'] });
  const primary = () => /^ {2}(db00\d): \{ host: [\d.]+, port: 3306 \}/m.exec(readFileSync(path.join(ops, 'topologies', 'bench.yaml'), 'utf8'))?.[1];
  const statusOf = () => JSON.parse(topogit(ops, 'status', '--json').stdout || '{"clusters":[]}').clusters[0];
  for (let k = 0; k < 2 * drills; k++) {
    const mode = k % 2 === 0 ? 'file' : 'etcd';
    const args = mode === 'etcd' ? ['--coordinator', etcd.url, 'watch', '--name', 'bench', '--pull-interval', '1000'] : ['watch', '--pull-interval', '1000'];
    let log = '';
    const daemon = spawn(process.execPath, [bin, ...args], { cwd: ops, env: { ...env, TOPOGIT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout.on('data', (d) => (log += d));
    daemon.stderr.on('data', (d) => (log += d));
    try {
      await until('the cluster is healthy', () => statusOf()?.healthy && statusOf()?.inSync);
      await until(`the ${mode} daemon acts`, () => /"msg":"(this daemon holds the lease and acts|this daemon leads bench)/.test(log));
      sh('git', ['pull', '-q', '--ff-only'], ops);
      const p = primary();
      await sleep(500 + Math.random() * 1000);
      const offset = log.length;
      const pid = Number(readFileSync(path.join(dir, '.sandbox', 'bench', p, 'mysqld.pid'), 'utf8'));
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await until('the failover commit', () => /"step":"written-back"/.test(log.slice(offset)));
      await sleep(100);
      const lines = log.slice(offset).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const at = (pred) => lines.find(pred)?.time;
      const detected = at((l) => l.analysis === 'DeadPrimary' || l.analysis === 'DeadPrimaryAndSomeReplicas');
      const r = { killed: p, killToWritableMs: at((l) => l.step === 'promoted') - killedAt, writableMs: at((l) => l.step === 'promoted') - detected, repointedMs: at((l) => l.step === 'repointed') - detected, commitMs: at((l) => l.step === 'written-back') - detected };
      results[mode].push(r);
      process.stdout.write(`drill ${k + 1} (${mode}): ${p} killed; from detection: writable ${r.writableMs} ms, repointed ${r.repointedMs} ms, committed+pushed ${r.commitMs} ms (kill -> writable ${r.killToWritableMs} ms)\n`);
      topogit(work, 'sandbox', 'start', p);
      await until('the old primary rejoined', () => {
        const s = statusOf();
        return s?.healthy && s?.inSync && s.instances.every((i) => i.health === 'OK');
      });
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
  }
} finally {
  topogit(work, 'sandbox', 'down', '--cluster', 'bench');
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
}
const phases = { writableMs: 'detection -> writable new primary', repointedMs: 'detection -> every replica repointed', commitMs: 'detection -> commit pushed', killToWritableMs: 'SIGKILL -> writable (includes where the kill fell in the interval)' };
console.log(`\n| ${drills} drills each, alternating | file: median (p95) | etcd: median (p95) | etcd - file (medians) |\n|---|---|---|---|`);
const med = {};
for (const [ph, label] of Object.entries(phases)) {
  const f = results.file.map((r) => r[ph]);
  const e = results.etcd.map((r) => r[ph]);
  med[ph] = { file: median(f), etcd: median(e) };
  console.log(`| ${label} | ${median(f)} (${p95(f)}) ms | ${median(e)} (${p95(e)}) ms | ${median(e) - median(f)} ms |`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/coordination.json', JSON.stringify({ date: new Date().toISOString(), drills, results, median: med }, null, 2) + '\n');
