#!/usr/bin/env node
// The daemon at rest, at default settings: its resident memory, the statements per second it sends
// each idle instance (the servers' own counters: SHOW GLOBAL STATUS 'Questions'), and how many
// connections it holds to each (the same at the start and the end of the window). Writes
// bench/results/daemon-rest-<N>.json.   node scripts/bench-daemon.mjs [--instances 3] [--seconds 60]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '3' }, seconds: { type: 'string', default: '60' }, 'base-ip': { type: 'string', default: '11' } } });
const n = Number(values.instances);
const seconds = Number(values.seconds);
const base = Number(values['base-ip']);
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-daemon-'));
const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'), TOPOGIT_PASSWORD: 'bench-pw', TOPOGIT_REPL_PASSWORD: 'bench-repl', TOPOGIT_LOG_JSON: '1' };
const topogit = (...args) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hosts = Array.from({ length: n }, (_, i) => `127.0.0.${base + i}`);

const intervalMs = 2500; // the default (src/config/defaults.ts); the sandbox's file sets none
let daemon;
let conns = [];
try {
  const up = topogit('sandbox', 'up', '--cluster', 'rest', '--instances', String(n), '--base-ip', String(base));
  if (up.status !== 0) throw new Error(up.stderr);
  daemon = spawn(process.execPath, [bin, 'watch'], { cwd: dir, env, stdio: 'ignore' });
  await sleep(8000); // first passes, settings applied, steady state
  conns = await Promise.all(hosts.map((host) => mysql.createConnection({ host, port: 3306, user: 'topogit', password: 'bench-pw' })));
  const questions = async () => Promise.all(conns.map(async (c) => Number((await c.query("SHOW GLOBAL STATUS LIKE 'Questions'"))[0][0].Value)));
  // The daemon's connections: every topogit session but this measuring one.
  const held = async () => Promise.all(conns.map(async (c) => Number((await c.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'topogit' AND ID <> CONNECTION_ID()"))[0][0].n)));
  const heldBefore = await held();
  const before = await questions();
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const after = await questions();
  const heldAfter = await held();
  const elapsed = (Date.now() - t0) / 1000;
  // Our own SHOW GLOBAL STATUS counts once per sample on each server.
  const qps = after.map((a, i) => (a - (before[i] ?? 0) - 1) / elapsed);
  const status = readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // The stack's floor beside it: Node and mysql2 alone (and with the other libraries) holding the
  // same connections, probed at the same interval, for 30 s (after the window: their statements
  // must not count).
  const floorRssKb = await Promise.all([[], ['--libs']].map(async (extra) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./lib/floor-client.mjs', import.meta.url)), '--hosts', hosts.join(','), '--interval-ms', String(intervalMs), ...extra], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await sleep(30_000);
      const out = new Promise((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
      child.kill('SIGUSR2');
      return await out;
    } finally {
      child.kill('SIGTERM');
    }
  }));
  const result = {
    date: new Date().toISOString(),
    instances: n,
    intervalMs,
    daemonConnectionsPerInstance: { before: heldBefore, after: heldAfter },
    seconds: elapsed,
    daemonRssMiB: +(rssKb / 1024).toFixed(1),
    floorRssMiB: { mysql2: +(floorRssKb[0] / 1024).toFixed(1), mysql2AndLibraries: +(floorRssKb[1] / 1024).toFixed(1) },
    queriesPerSecondPerInstance: { median: +qps.sort((a, b) => a - b)[Math.floor(qps.length / 2)].toFixed(2), min: +Math.min(...qps).toFixed(2), max: +Math.max(...qps).toFixed(2) },
  };
  console.log(`| daemon at rest, ${n} instances, default settings (detection.intervalMs ${intervalMs}) | value |\n|---|---|`);
  console.log(`| resident memory (VmRSS) | ${result.daemonRssMiB} MiB |`);
  console.log(`| the stack's floor: Node + mysql2 alone, the same connections and probes (VmRSS) | ${result.floorRssMiB.mysql2} MiB |`);
  console.log(`| the stack's floor with yaml, ajv, pino, simple-git, commander, chokidar loaded | ${result.floorRssMiB.mysql2AndLibraries} MiB |`);
  console.log(`| statements per second per idle instance (server's Questions counter over ${Math.round(elapsed)} s, median) | ${result.queriesPerSecondPerInstance.median} |`);
  console.log(`| daemon connections per instance, start / end of the window | ${heldBefore.join(',')} / ${heldAfter.join(',')} |`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/daemon-rest-${n}.json`, JSON.stringify(result, null, 2) + '\n');
} finally {
  await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  topogit('sandbox', 'down', '--cluster', 'rest');
  rmSync(dir, { recursive: true, force: true });
}
