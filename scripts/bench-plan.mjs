#!/usr/bin/env node
// Benchmarks plan, apply and switchover on a real 3-instance sandbox. Prints a table and writes
// bench/results/plan-apply.json. Medians of N runs (default 10): this machine is noisy.
// The switchover's "no writable primary" window is observed from outside: a sampler reads
// @@read_only on both instances every few milliseconds over its own connections.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, 'base-ip': { type: 'string', default: '11' } } });
const runs = Number(values.runs);
const base = Number(values['base-ip']);
const hosts = [0, 1, 2].map((i) => `127.0.0.${base + i}`);
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-'));
const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'), TOPOGIT_PASSWORD: 'bench-pw', TOPOGIT_REPL_PASSWORD: 'bench-repl' };
const topogit = (...args) => {
  const t = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8' });
  if (r.status !== 0 && !(args[0] === 'plan' && r.status === 2)) throw new Error(`topogit ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return performance.now() - t;
};
// Asynchronous, so the sampler keeps running while the command does.
const topogitAsync = (...args) =>
  new Promise((resolve, reject) => {
    const t = performance.now();
    const c = spawn(process.execPath, [bin, ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve(performance.now() - t) : reject(new Error(`topogit ${args.join(' ')} exited ${code}: ${err}`))));
  });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const connect = (host) => mysql.createConnection({ host, port: 3306, user: 'topogit', password: 'bench-pw' });

const out = { date: new Date().toISOString(), runs, planMs: [], applyNoopMs: [], applyRepointMs: [], switchoverMs: [], unwritableMs: [] };
let conns = [];
try {
  topogit('sandbox', 'up', '--cluster', 'bench', '--base-ip', String(base));
  conns = await Promise.all(hosts.map(connect));
  for (let k = 0; k < runs; k++) out.planMs.push(topogit('plan'));
  for (let k = 0; k < runs; k++) out.applyNoopMs.push(topogit('apply', '--yes'));
  for (let k = 0; k < runs; k++) {
    // Drift made by hand: db003 pointed at db002; apply repoints it back (stop, change, start, verify).
    await conns[2].query('STOP SLAVE');
    await conns[2].query(`CHANGE MASTER TO MASTER_HOST='${hosts[1]}'`);
    await conns[2].query('START SLAVE');
    out.applyRepointMs.push(topogit('apply', '--yes'));
  }
  await conns[0].query('CREATE DATABASE IF NOT EXISTS topogit_demo');
  for (let k = 0; k < runs; k++) {
    const to = k % 2 === 0 ? 'db002' : 'db001';
    const pair = [conns[0], conns[1]];
    let sampling = true;
    let lastWritable = performance.now();
    let longest = 0;
    const sampler = (async () => {
      while (sampling) {
        const ro = await Promise.all(pair.map(async (c) => (await c.query('SELECT @@read_only AS ro'))[0][0].ro));
        const now = performance.now();
        if (ro.some((x) => Number(x) === 0)) lastWritable = now;
        else longest = Math.max(longest, now - lastWritable);
      }
    })();
    out.switchoverMs.push(await topogitAsync('switchover', 'bench', '--to', to, '--yes'));
    sampling = false;
    await sampler;
    out.unwritableMs.push(longest);
  }
} finally {
  await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  spawnSync(process.execPath, [bin, 'sandbox', 'down', '--cluster', 'bench'], { cwd: dir, env });
  rmSync(dir, { recursive: true, force: true });
}
const row = (label, xs) => `| ${label} | ${median(xs).toFixed(0)} ms | ${p95(xs).toFixed(0)} ms |`;
console.log(`| measure (3-instance MariaDB sandbox, ${runs} runs, whole CLI process) | median | p95 |\n|---|---|---|`);
console.log(row('topogit plan, no changes', out.planMs));
console.log(row('topogit apply --yes, nothing to do', out.applyNoopMs));
console.log(row('topogit apply --yes, repoint one replica', out.applyRepointMs));
console.log(row('topogit switchover --yes (3 instances)', out.switchoverMs));
console.log(row('no writable primary during a switchover (sampled)', out.unwritableMs));
mkdirSync('bench/results', { recursive: true });
const summary = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.isArray(v) ? { median: Math.round(median(v)), p95: Math.round(p95(v)), runs: v.map(Math.round) } : v]));
writeFileSync('bench/results/plan-apply.json', JSON.stringify(summary, null, 2) + '\n');
