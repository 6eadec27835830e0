// The daemon's status page in a real headless Chromium (the system's, through puppeteer-core), on a
// real sandbox with a bare remote: the token is enforced, the tree shows db001 primary, a SIGKILL of
// db001 shows it Unreachable without a reload, then db002 primary with the failover's commit, and a
// hostile error string from a server is rendered as text. Screenshots: test-results/browser/.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withFailover } from '../support/spec.js';
import { launchBrowser, screenshot } from '../support/browser.js';
import { waitFor } from '../support/wait.js';
import { startFleet, type Fleet } from './fleet.js';

const root = path.resolve(import.meta.dirname, '../..');
const TOKEN = 'page-test-token-7d1f0c9b2e4a';
const HOSTILE = '<img src=x onerror=window.__pwned=1>';
let fleet: Fleet;
let daemon: ChildProcess;
let out = '';
let base = '';
let port = 0;
let browser: Browser;
let page: Page;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address() as AddressInfo;
      srv.close(() => resolve(a.port));
    });
  });
}

/** The daemon on the test's fixed port (a restart keeps the page's address), ready when this returns. */
async function startDaemon(): Promise<void> {
  out = '';
  daemon = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'watch', '--http', `127.0.0.1:${port}`, '--http-token-file', 'token', '--commit-url', 'https://git.example/ops/topologies/commit/{sha}'], {
    cwd: fleet.dir,
    env: { ...process.env, ...fleet.env, TOPOGIT_LOG_JSON: '1', GIT_AUTHOR_NAME: 'topogit', GIT_AUTHOR_EMAIL: 'topogit@localhost', GIT_COMMITTER_NAME: 'topogit', GIT_COMMITTER_EMAIL: 'topogit@localhost' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  daemon.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the daemon to be ready', async () => (await fetch(`${base}/readyz`).catch(() => ({ status: 0 }))).status, (s) => s === 200, 15_000);
}

/** Waits in the page for `fn` to hold; throws (with what it waited for) when it never does. */
async function until(what: string, fn: string, ms: number): Promise<void> {
  try {
    await page.waitForFunction(fn, { timeout: ms, polling: 'mutation' });
  } catch (e) {
    throw new Error(`timed out after ${ms} ms waiting in the page for ${what}: ${(e as Error).message}`);
  }
}
const attr = (name: string, a: string) => `document.querySelector('[data-instance="${name}"]')?.getAttribute('${a}')`;

describe('the status page in a real browser', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 191 });
    await fleet.commitToRemote({
      message: 'shop',
      ignore: ['token'],
      prepare: async () => {
        const f = path.join(fleet.dir, 'topologies', 'shop.yaml');
        await writeFile(f, withFailover(await readFile(f, 'utf8'), '  auto: true\n  blockSeconds: 0\n  reconcile: report\n  detection: { intervalMs: 1000 }\n'));
      },
    });
    await writeFile(path.join(fleet.dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    await startDaemon();
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
  });
  afterAll(async () => {
    await browser?.close();
    daemon?.kill('SIGKILL');
    await fleet?.down();
  });

  it('the token is enforced: a sign-in form, the API refused, then the page after signing in', async () => {
    const first = await page.goto(base, { waitUntil: 'domcontentloaded' });
    expect(first?.status()).toBe(401);
    expect(await page.$('[data-cluster]')).toBeNull();
    expect(await page.$('form[action="/login"] input[type="password"]')).not.toBeNull();
    const api = await page.evaluate(`fetch('/api/clusters').then((r) => r.status)`);
    expect(api).toBe(401);
    await screenshot(page, 'sign-in');
    await page.type('#token', 'not-the-token-at-all');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type="submit"]')]);
    expect(await page.$('[data-cluster]')).toBeNull();
    await page.type('#token', TOKEN);
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type="submit"]')]);
    expect(page.url()).toBe(`${base}/`);
    expect(await page.$('[data-cluster="shop"]')).not.toBeNull();
    // The session cookie is not the token.
    const cookies = await page.cookies();
    expect(cookies.map((c) => c.value).join(' ')).not.toContain(TOKEN);
  });

  it('shows the tree with db001 primary and its replicas under it, live', async () => {
    await until('db001 as primary', `${attr('db001', 'data-role')} === 'primary'`, 10_000);
    const tree = (await page.evaluate(`(() => { const el = document.querySelector('[data-cluster="shop"] .tree');
      return { roots: el.querySelectorAll(':scope > ul > li').length, nested: [...el.querySelectorAll(':scope > ul > li > ul [data-instance]')].map((n) => n.getAttribute('data-instance')), text: el.innerText }; })()`)) as { roots: number; nested: string[]; text: string };
    expect(tree.roots).toBe(1);
    expect(tree.nested.sort()).toEqual(['db002', 'db003']);
    expect(tree.text).toContain('OK');
    await until('the event stream to be open', `document.getElementById('live')?.textContent.startsWith('Live:')`, 10_000);
    await screenshot(page, 'tree');
  });

  it('SIGKILL of db001: Unreachable within 2 s without a reload, then db002 primary with the failover commit', async () => {
    await page.evaluate('window.notReloaded = true');
    const killed = await fleet.run('sandbox', 'kill', 'db001');
    expect(killed.code, killed.err).toBe(0);
    await until('db001 shown Unreachable (within 2 s of the kill)', `${attr('db001', 'data-health')} === 'Unreachable'`, 2000);
    await screenshot(page, 'unreachable');
    await until('db002 shown as primary', `${attr('db002', 'data-role')} === 'primary'`, 15_000);
    await until('a failover entry in the history', `!!document.querySelector('[data-cluster="shop"] tr[data-kind="failover"] a[href*="/commit/"]')`, 15_000);
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    const remoteHead = (await fleet.git(['--git-dir', path.join(fleet.dir, 'remote.git'), 'log', '-1', '--format=%H %s', 'main'])).trim();
    expect(remoteHead).toMatch(/ failover\(shop\): db001 -> db002$/);
    const sha = remoteHead.split(' ')[0] ?? '';
    const row = (await page.evaluate(`(() => { const tr = document.querySelector('[data-cluster="shop"] tr[data-kind="failover"]'); return { text: tr.innerText, href: tr.querySelector('a')?.getAttribute('href') }; })()`)) as { text: string; href: string };
    expect(row.href).toBe(`https://git.example/ops/topologies/commit/${sha}`);
    expect(row.text).toContain('db001 -> db002');
    expect(row.text).toContain('DeadPrimary');
    expect(row.text).toMatch(/writable \d+ ms/);
    await screenshot(page, 'after-failover');
  });

  it('fits a phone width without sideways scrolling, and the keyboard reaches the skip link first', async () => {
    await page.setViewport({ width: 390, height: 844 });
    const fit = (await page.evaluate('({ page: document.documentElement.scrollWidth, view: window.innerWidth })')) as { page: number; view: number };
    expect(fit.page).toBeLessThanOrEqual(fit.view);
    await screenshot(page, 'phone');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.className')).toBe('skip');
    await page.setViewport({ width: 1280, height: 800 });
  });

  it('a hostile error string from a server is shown as text, never run', async () => {
    // Keyboard focus on the failover's commit link survives the section being replaced below.
    await page.focus('[data-cluster="shop"] tr[data-kind="failover"] a');
    const focused = await page.evaluate('document.activeElement.getAttribute("href")');
    // db003's replication user becomes markup; its IO thread fails with that name in the error.
    await fleet.sql(fleet.host('db003'), 'STOP SLAVE', `CHANGE MASTER TO MASTER_USER='${HOSTILE}'`, 'START SLAVE');
    await until('the error naming the hostile user on the page', `document.querySelector('[data-instance="db003"]')?.textContent.includes(${JSON.stringify(HOSTILE)})`, 15_000);
    expect(await page.evaluate('document.activeElement.getAttribute("href")')).toBe(focused);
    const probe = await page.evaluate(`({ pwned: window.__pwned === undefined ? 'no' : 'yes', imgs: document.querySelectorAll('main img').length })`);
    expect(probe).toEqual({ pwned: 'no', imgs: 0 });
    await screenshot(page, 'hostile');
  });

  it('without JavaScript the page is complete and reloads itself', async () => {
    const plain = await browser.newPage();
    await plain.setJavaScriptEnabled(false);
    await plain.setCookie(...(await page.cookies()));
    await plain.goto(base, { waitUntil: 'domcontentloaded' });
    expect(await plain.$('[data-instance="db002"][data-role="primary"]')).not.toBeNull();
    const html = await plain.content();
    expect(html).toMatch(/<noscript><meta http-equiv="refresh" content="5"><\/noscript>/);
    await plain.close();
  });

  it('the daemon is killed and started again: the page says so, then resumes by itself', async () => {
    daemon.kill('SIGKILL');
    await until('the page to say the connection is lost', `document.getElementById('live')?.textContent.includes('lost')`, 10_000);
    await screenshot(page, 'daemon-lost');
    await startDaemon();
    await until('the page to be live again', `document.getElementById('live')?.textContent.startsWith('Live:')`, 15_000);
    await until('db002 shown as primary after the restart', `${attr('db002', 'data-role')} === 'primary'`, 15_000);
  });
});
