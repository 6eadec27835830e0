// `topogit maintenance`, in process against a scratch repository (no server is needed: it only
// records in .topogit/state/<cluster>.json, under the cluster's apply lock). Real servers, the
// daemon and `status` with maintenance: test/integration/maintenance.test.ts.
import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { acquireLock } from '../../src/adapters/lock.js';
import type { ClusterState } from '../../src/core/state.js';
import { waitFor } from '../support/wait.js';

const env = { TOPOGIT_PASSWORD: 'x', TOPOGIT_REPL_PASSWORD: 'y' };

async function repo(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'topogit-maint-'));
  await mkdir(path.join(dir, 'topologies'));
  await writeFile(path.join(dir, 'topologies', 'shop.yaml'), 'cluster: shop\ninstances:\n  db001: { host: 127.0.0.11 }\n  db002: { host: 127.0.0.12, source: db001 }\n');
  return dir;
}

function cli(dir: string) {
  const r = { out: '', err: '' };
  const run = async (...argv: string[]) => {
    r.out = '';
    r.err = '';
    const code = await main(argv, { out: (s) => (r.out += s), err: (s) => (r.err += s), env, cwd: dir });
    return { code, out: r.out, err: r.err };
  };
  return { run, live: r };
}

const stateOf = async (dir: string) => JSON.parse(await readFile(path.join(dir, '.topogit', 'state', 'shop.json'), 'utf8')) as ClusterState;

describe('topogit maintenance', () => {
  it('on (with --for and --reason), list, off', async () => {
    const dir = await repo();
    const { run } = cli(dir);
    expect(await run('maintenance', 'shop')).toEqual({ code: 0, out: 'shop: no instance is in maintenance\n', err: '' });

    const before = Date.now();
    const on = await run('maintenance', 'shop', 'db001', 'on', '--for', '30m', '--reason', 'kernel upgrade');
    expect(on.code).toBe(0);
    expect(on.out).toMatch(/^db001 is in maintenance until \S+Z \(kernel upgrade\): topogit does not fail over because it is gone, and does not fence, promote or repair it; `topogit maintenance shop db001 off` to end it\n$/);
    const m = (await stateOf(dir)).maintenance?.['db001'];
    expect(m?.reason).toBe('kernel upgrade');
    const until = Date.parse(m?.until ?? '');
    expect(until - Date.parse(m?.since ?? '')).toBe(30 * 60_000);
    expect(Math.abs(Date.parse(m?.since ?? '') - before)).toBeLessThan(60_000);

    expect((await run('maintenance', 'shop', 'db002', 'on')).out).toMatch(/^db002 is in maintenance until turned off: /);
    const list = await run('maintenance', 'shop');
    expect(list.out.split('\n')).toEqual([
      expect.stringMatching(/^shop: db001 is in maintenance until \S+ \(kernel upgrade\), since \S+$/),
      expect.stringMatching(/^shop: db002 is in maintenance until turned off, since \S+$/),
      '',
    ]);

    expect(await run('maintenance', 'shop', 'db001', 'off')).toMatchObject({ code: 0, out: 'db001 of shop is out of maintenance: topogit watches, fails over for and repairs it again\n' });
    expect(await run('maintenance', 'shop', 'db001', 'off')).toMatchObject({ code: 0, out: 'db001 of shop was not in maintenance; nothing changed\n' });
    expect(Object.keys((await stateOf(dir)).maintenance ?? {})).toEqual(['db002']);
  });

  it.each([
    [['maintenance', 'shop', 'db009', 'on'], /^topogit: db009 is not an instance of shop \(topologies\/shop\.yaml\) \(instances: db001, db002\)\n$/],
    [['maintenance', 'shop', 'db001'], /^topogit: say on or off after the instance \(topogit maintenance shop db001 on\|off\)\n$/],
    [['maintenance', 'shop', 'db001', 'maybe'], /^topogit: say on or off after the instance, not "maybe"/],
    [['maintenance', 'shop', 'db001', 'on', '--for', '30'], /^topogit: --for 30 is not a duration \(e\.g\. 90s, 30m, 2h or 1h30m\)\n$/],
    [['maintenance', 'shop', 'db001', 'off', '--reason', 'x'], /^topogit: --for and --reason go with on, not off\n$/],
    [['maintenance', 'shop', '--for', '1h'], /^topogit: --for and --reason need an instance and `on`/],
    [['maintenance', 'shop', 'db001', 'on', '--reason', 'two\nlines'], /^topogit: --reason must be one line of at most 200 characters\n$/],
    [['maintenance', 'blog', 'db001', 'on'], /^topogit: no cluster named blog in topologies/],
  ])('%j: exit 1, one line, nothing recorded', async (argv, err) => {
    const dir = await repo();
    const r = await cli(dir).run(...argv);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(err);
    await expect(stateOf(dir)).rejects.toThrow(/ENOENT/);
  });

  it('writes under the cluster lock: it waits for the holder (a daemon pass, an apply)', async () => {
    const dir = await repo();
    const { run, live } = cli(dir);
    const lock = await acquireLock('shop', { dir: path.join(dir, '.topogit', 'locks'), timeoutMs: 1000, command: 'topogit watch (test)' });
    const pending = run('maintenance', 'shop', 'db001', 'on');
    await waitFor('the command to wait for the lock', () => live.err, (e) => /waiting for the lock on shop, held by pid \d+ \(topogit watch \(test\)\)/.test(e), 10_000);
    await expect(stateOf(dir)).rejects.toThrow(/ENOENT/);
    await lock.release();
    expect((await pending).code).toBe(0);
    expect(Object.keys((await stateOf(dir)).maintenance ?? {})).toEqual(['db001']);
  });
});
