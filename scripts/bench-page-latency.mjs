#!/usr/bin/env node
// How soon an open status page shows what the daemon saw: SIGKILL the primary N times (default 10)
// with one page open in headless Chromium, and take (a) the daemon's own observation, the time in
// its JSON log of the analysis that found the primary dead (logged right before the page is
// told, before the failover runs), and (b) the moment the page's DOM showed the primary
// Unreachable (a MutationObserver in the page; same machine, same clock). Prints medians and
// writes bench/results/page-latency.json.   node scripts/bench-page-latency.mjs [--drills 10] [--base-ip 11]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { benchEnv, freePort, gitSandbox, median, sleep, until } from './lib/bench.mjs';

const { values } = parseArgs({ options: { drills: { type: 'string', default: '10' }, 'base-ip': { type: 'string', default: '11' } } });
const drills = Number(values.drills);
const base = Number(values['base-ip']);
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-page-latency-'));
const env = benchEnv(dir);
const sh = (cmd, args, cwd) => spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
const topogit = (cwd, ...args) => sh(process.execPath, [bin, ...args], cwd);
const chromium = ['chromium', 'chromium-browser'].map((n) => sh('sh', ['-c', `command -v ${n}`], dir).stdout.trim()).find(Boolean) ?? process.env.TOPOGIT_CHROMIUM;
if (!chromium) throw new Error('no chromium: run bash scripts/ensure-chromium.sh');

let work = path.join(dir, 'work');
let ops = path.join(dir, 'ops');
let daemon;
let browser;
let log = '';
const results = [];
try {
  ({ work, ops } = gitSandbox({ dir, sh, topogit, base, failover: 'failover:\n  auto: true\n  blockSeconds: 0\n' }));
  const port = await freePort();
  daemon = spawn(process.execPath, [bin, 'watch', '--http', `127.0.0.1:${port}`, '--pull-interval', '1000'], { cwd: ops, env, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout.on('data', (d) => (log += d));
  daemon.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}/`;
  await until('the daemon is ready', async () => (await fetch(`${url}readyz`).catch(() => ({ status: 0 }))).status === 200);
  const primary = () => /^ {2}(db00\d): \{ host: [\d.]+, port: 3306 \}/m.exec(readFileSync(path.join(ops, 'topologies', 'bench.yaml'), 'utf8'))?.[1];
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction("document.getElementById('live')?.textContent.startsWith('Live:')", { timeout: 15_000 });
  // Records, once per drill, when the watched instance is first shown Unreachable.
  await page.evaluate(`(() => {
    window.seen = null;
    new MutationObserver(() => {
      if (window.seen === null && window.watch && document.querySelector('[data-instance="' + window.watch + '"][data-health="Unreachable"]')) window.seen = Date.now();
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  })()`);
  for (let k = 0; k < drills; k++) {
    const p = primary();
    await page.evaluate(`window.watch = ${JSON.stringify(p)}; window.seen = null;`);
    const offset = log.length;
    await sleep(Math.random() * 2500); // a random phase of the detection interval
    const pid = Number(readFileSync(path.join(dir, '.sandbox', 'bench', p, 'mysqld.pid'), 'utf8'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await until('the page to show the primary Unreachable', async () => (await page.evaluate('window.seen')) !== null, 15_000);
    await until('the failover pass to be logged', () => /"outcome":"failover"/.test(log.slice(offset)));
    const lines = log.slice(offset).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const observed = lines.find((l) => typeof l.analysis === 'string' && l.analysis !== 'PrimaryReachable')?.time;
    const seen = await page.evaluate('window.seen');
    results.push({ killed: p, observedMs: observed - killedAt, shownMs: seen - killedAt, pageAfterObservationMs: seen - observed });
    process.stdout.write(`drill ${k + 1}: ${p} killed; the daemon's observation after ${observed - killedAt} ms, on the page after ${seen - killedAt} ms (${seen - observed} ms after the observation)\n`);
    topogit(work, 'sandbox', 'start', p);
    await until('the old primary rejoined and shown OK', async () => (await page.evaluate(`document.querySelector('[data-instance="${p}"]')?.getAttribute('data-health')`)) === 'OK');
  }
} finally {
  await browser?.close().catch(() => undefined);
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  topogit(work, 'sandbox', 'down', '--cluster', 'bench');
  rmSync(dir, { recursive: true, force: true });
}
const m = (k) => median(results.map((r) => r[k]));
console.log(`\n| ${results.length} SIGKILLs of the primary, one page open | median | max |\n|---|---|---|`);
console.log(`| the daemon's observation (its analysis that found it dead, logged) | ${m('observedMs')} ms | ${Math.max(...results.map((r) => r.observedMs))} ms |`);
console.log(`| shown Unreachable on the page, from the kill | ${m('shownMs')} ms | ${Math.max(...results.map((r) => r.shownMs))} ms |`);
console.log(`| on the page after the daemon's observation | ${m('pageAfterObservationMs')} ms | ${Math.max(...results.map((r) => r.pageAfterObservationMs))} ms |`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/page-latency.json', JSON.stringify({ date: new Date().toISOString(), drills: results.length, results, median: { observedMs: m('observedMs'), shownMs: m('shownMs'), pageAfterObservationMs: m('pageAfterObservationMs') } }, null, 2) + '\n');
