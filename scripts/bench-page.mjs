#!/usr/bin/env node
// The status page's cost to the daemon: the page's weight (the HTML at / and the same-origin CSS and
// JS it references), and the daemon's CPU over a window at rest, first with no page open, then with
// N pages open in one headless Chromium (each in its own browser context: Chromium opens at most 6
// connections per host in one context, and every page holds one for its event stream), with the
// established connections on the HTTP port to show the streams are open. Writes
// bench/results/page.json.   node scripts/bench-page.mjs [--pages 100] [--seconds 60] [--base-ip 11]
// Needs a Chromium (bash scripts/ensure-chromium.sh, or TOPOGIT_CHROMIUM) and a MariaDB server.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';

const { values } = parseArgs({ options: { pages: { type: 'string', default: '100' }, seconds: { type: 'string', default: '60' }, 'base-ip': { type: 'string', default: '11' } } });
const pageCount = Number(values.pages);
const seconds = Number(values.seconds);
const base = Number(values['base-ip']);
const instances = 3;
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-page-'));
const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'), TOPOGIT_PASSWORD: 'bench-pw', TOPOGIT_REPL_PASSWORD: 'bench-repl', TOPOGIT_LOG_JSON: '1' };
const topogit = (...args) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const loadConcurrency = 4; // pages loading at once: more only queues on 2 cores
const LOAD_TIMEOUT_MS = 60_000;

/** The Chromium binary, found as test/support/browser.ts finds it. */
function chromiumPath() {
  const executable = (f) => {
    try {
      accessSync(f, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const fromEnv = process.env.TOPOGIT_CHROMIUM;
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv;
    throw new Error(`TOPOGIT_CHROMIUM=${fromEnv} is not an executable file; no chromium: run bash scripts/ensure-chromium.sh (or apt-get install -y chromium)`);
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const name of ['chromium', 'chromium-browser']) {
    for (const d of dirs) if (executable(path.join(d, name))) return path.join(d, name);
  }
  throw new Error('no chromium: run bash scripts/ensure-chromium.sh (or apt-get install -y chromium)');
}

/** A port free on 127.0.0.1 just now (the daemon logs the real port of :0, this script would have to read it). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15; the command name in field 2 may hold spaces). */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** The process's CPU over the next `seconds`, in percent of one core. */
async function cpuPercent(pid, secs) {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  await sleep(secs * 1000);
  const c1 = cpuSeconds(pid);
  const elapsed = (performance.now() - t0) / 1000;
  return { percentOfOneCore: +((100 * (c1 - c0)) / elapsed).toFixed(2), cpuSeconds: +(c1 - c0).toFixed(2), seconds: +elapsed.toFixed(1) };
}

/** Established TCP connections whose local end is the daemon's HTTP port. */
function establishedOn(port) {
  const r = spawnSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ss failed (exit ${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

/** The value of attribute `name` in one start tag, quoted or not, with &amp; decoded; undefined when absent. */
function attribute(tag, name) {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'=<>\`]+))`, 'i').exec(tag);
  return m ? (m[1] ?? m[2] ?? m[3]).replace(/&amp;/g, '&') : undefined;
}

/** The same-origin stylesheets and scripts an HTML page references, as absolute URLs, each once. */
function assetsOf(html, pageUrl) {
  const refs = [];
  for (const [tag] of html.matchAll(/<link\b[^>]*>/gi)) {
    const rel = (attribute(tag, 'rel') ?? '').toLowerCase().split(/\s+/);
    const href = attribute(tag, 'href');
    if (rel.includes('stylesheet') && href) refs.push({ kind: 'css', href });
  }
  for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
    const src = attribute(tag, 'src');
    if (src) refs.push({ kind: 'js', href: src });
  }
  const origin = new URL(pageUrl).origin;
  const seen = new Set();
  return refs
    .map((r) => ({ kind: r.kind, url: new URL(r.href, pageUrl) }))
    .filter((r) => r.url.origin === origin && !seen.has(r.url.href) && seen.add(r.url.href))
    .map((r) => ({ kind: r.kind, url: r.url.href }));
}

let daemon;
let daemonLog;
let browser;
let sandboxUp = false;
/** The end of the daemon's log, for an error message. */
const logTail = () => {
  try {
    return readFileSync(daemonLog, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
};
try {
  const executablePath = chromiumPath(); // before the sandbox: fail in a second, not after the first window
  const token = randomBytes(24).toString('hex');
  const tokenFile = path.join(dir, 'http-token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const bearer = { authorization: `Bearer ${token}` };

  const up = topogit('sandbox', 'up', '--cluster', 'rest', '--instances', String(instances), '--base-ip', String(base));
  sandboxUp = true;
  if (up.status !== 0) throw new Error(`sandbox up failed: ${up.stderr}`);
  const port = await freePort(); // just before the daemon takes it
  const origin = `http://127.0.0.1:${port}`;
  daemonLog = path.join(dir, 'daemon.log');
  const logFd = openSync(daemonLog, 'a');
  daemon = spawn(process.execPath, [bin, 'watch', '--http', `127.0.0.1:${port}`, '--http-token-file', tokenFile], { cwd: dir, env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise((r) => daemon.once('exit', (code, signal) => r({ code, signal })));

  // Ready: every cluster probed once. Then a few seconds for the first passes to settle.
  const readyDeadline = Date.now() + 60_000;
  let last = 'no answer';
  for (;;) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      const { code, signal } = await exited;
      throw new Error(`the daemon exited (${signal ?? `code ${code}`}) before /readyz answered 200; its log:\n${logTail()}`);
    }
    try {
      const res = await fetch(`${origin}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) break;
      last = `${res.status} ${(await res.text()).trim()}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    if (Date.now() >= readyDeadline) throw new Error(`GET ${origin}/readyz never answered 200 within 60 s (last: ${last}); the daemon's log:\n${logTail()}`);
    await sleep(250);
  }
  await sleep(5000);

  // 1. At rest, nothing open but the daemon's own connections to its servers.
  const atRest = await cpuPercent(daemon.pid, seconds);
  const connectionsAtRest = establishedOn(port);

  // 2. The page's weight, as a browser would fetch it the first time.
  const home = await fetch(`${origin}/`, { headers: bearer, redirect: 'manual' });
  const html = await home.text();
  const type = home.headers.get('content-type') ?? '';
  if (home.status !== 200 || !type.startsWith('text/html')) {
    throw new Error(`GET / with the token answered ${home.status} (${type || 'no content-type'}), not an HTML page: this build of the daemon serves no status page (npm run bench:page builds dist/ from this tree)`);
  }
  const assets = [];
  for (const a of assetsOf(html, `${origin}/`)) {
    const res = await fetch(a.url, { headers: bearer, redirect: 'manual' });
    const bytes = (await res.arrayBuffer()).byteLength;
    if (res.status !== 200) throw new Error(`GET ${a.url} (referenced by /) answered ${res.status}`);
    assets.push({ ...a, path: new URL(a.url).pathname, bytes });
  }
  const htmlBytes = Buffer.byteLength(html, 'utf8');
  const sum = (kind) => assets.filter((a) => a.kind === kind).reduce((s, a) => s + a.bytes, 0);
  const weight = { html: htmlBytes, css: sum('css'), js: sum('js'), total: htmlBytes + sum('css') + sum('js') };

  // 3. A session cookie for the pages' event streams (EventSource sends cookies, not headers).
  const login = await fetch(`${origin}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    redirect: 'manual',
  });
  await login.arrayBuffer();
  const setCookies = login.headers.getSetCookie?.() ?? [login.headers.get('set-cookie') ?? ''];
  const cookieName = `topogit_session_${port}`; // the daemon names its session cookie after its port
  const session = setCookies.map((c) => new RegExp(`^\\s*${cookieName}=([^;]*)`).exec(c)?.[1]).find((v) => v !== undefined);
  if (login.status !== 303 || session === undefined) {
    throw new Error(`POST /login with the token answered ${login.status} with ${setCookies.length ? `Set-Cookie ${JSON.stringify(setCookies)}` : 'no Set-Cookie'}; expected 303 and a ${cookieName} cookie`);
  }

  // 4. N pages in one Chromium, each in its own browser context (its own connection pool).
  browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const pageErrors = [];
  const t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(loadConcurrency, pageCount) }, async () => {
      while (next < pageCount) {
        const i = next++;
        const context = await browser.createBrowserContext();
        await context.setCookie({ name: cookieName, value: session, domain: '127.0.0.1', path: '/' });
        const page = await context.newPage();
        page.on('pageerror', (e) => pageErrors.push(`page ${i}: ${e.message}`));
        await page.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });
        const res = await page.goto(`${origin}/`, { waitUntil: 'domcontentloaded', timeout: LOAD_TIMEOUT_MS });
        if (!res || res.status() !== 200) throw new Error(`page ${i}: GET / in Chromium answered ${res?.status() ?? 'nothing'}`);
      }
    }),
  );
  const loadSeconds = (Date.now() - t0) / 1000;
  // The streams open once each page's script runs: wait for them (up to 30 s), then for the idle
  // keep-alive connections of the loads to close (up to 15 s), so that the window sees the pages
  // at rest with only their streams open.
  const streamDeadline = Date.now() + 30_000;
  while (establishedOn(port) < pageCount && Date.now() < streamDeadline) await sleep(250);
  const idleDeadline = Date.now() + 15_000;
  while (establishedOn(port) > pageCount && Date.now() < idleDeadline) await sleep(250);
  await sleep(1000);
  const connectionsBefore = establishedOn(port);
  const withPages = await cpuPercent(daemon.pid, seconds);
  const connectionsAfter = establishedOn(port);
  if (daemon.exitCode !== null || daemon.signalCode !== null) throw new Error(`the daemon exited during the window; its log:\n${logTail()}`);

  const result = {
    date: new Date().toISOString(),
    instances,
    pages: pageCount,
    pageWeightBytes: weight,
    assets: assets.map(({ kind, path: p, bytes }) => ({ kind, path: p, bytes })),
    cpuAtRestNoPages: atRest,
    cpuWithPages: withPages,
    establishedConnectionsOnHttpPort: { noPages: connectionsAtRest, withPagesStart: connectionsBefore, withPagesEnd: connectionsAfter },
    pagesLoadSeconds: +loadSeconds.toFixed(1),
    pageErrors: pageErrors.slice(0, 20),
    clockTicksPerSecond: clockTicks,
  };
  const kib = (b) => (b / 1024).toFixed(1);
  console.log(`| the status page, daemon at rest, ${instances} instances | value |\n|---|---|`);
  console.log(`| page weight (HTML + CSS + JS), uncompressed | ${kib(weight.total)} KiB (${kib(weight.html)} + ${kib(weight.css)} + ${kib(weight.js)}) |`);
  console.log(`| daemon CPU at rest, no page open (utime+stime over ${atRest.seconds} s) | ${atRest.percentOfOneCore} % of one core |`);
  console.log(`| daemon CPU at rest, ${pageCount} pages open (over ${withPages.seconds} s) | ${withPages.percentOfOneCore} % of one core |`);
  console.log(`| established connections on the HTTP port, no page / ${pageCount} pages (start, end of the window) | ${connectionsAtRest} / ${connectionsBefore}, ${connectionsAfter} |`);
  if (pageErrors.length) console.log(`\n${pageErrors.length} script errors in the pages, the first: ${pageErrors[0]}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/page.json', JSON.stringify(result, null, 2) + '\n');
} finally {
  await browser?.close().catch(() => undefined);
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    // It stops within 10 s by itself (watch-command.ts); do not let a stuck one keep the sandbox up.
    if ((await Promise.race([gone.then(() => true), sleep(15_000).then(() => false)])) === false) {
      daemon.kill('SIGKILL');
      await gone;
    }
  }
  if (sandboxUp) topogit('sandbox', 'down', '--cluster', 'rest');
  rmSync(dir, { recursive: true, force: true });
}
