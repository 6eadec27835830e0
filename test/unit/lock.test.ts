// The per-cluster apply lock (adapters/lock.ts) over the file mutex: who holds it, the TOPOGIT_LOCKED
// error, waiting, and its liveness rules (dead holder on this host, empty file older than 5 s, never
// stale by age alone).
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, type LockHolder } from '../../src/adapters/lock.js';
import { TopogitError } from '../../src/core/errors.js';

const HOST = hostname();
let dir: string;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'topogit-lock-')), 'locks');
});

afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<TopogitError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TopogitError) return e;
    throw e;
  }
  throw new Error('expected the lock to be refused');
}

describe('acquireLock', () => {
  it('creates <dir>/<cluster>.lock naming pid, host, since and command; release removes it', async () => {
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'topogit apply' });
    const held = JSON.parse(await readFile(join(dir, 'shop.lock'), 'utf8')) as LockHolder;
    expect(held).toMatchObject({ pid: process.pid, host: HOST, command: 'topogit apply' });
    expect(Number.isNaN(Date.parse(held.since))).toBe(false);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a held lock refuses with TOPOGIT_LOCKED naming the holder; another cluster is independent', async () => {
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'test holder' });
    const e = await refusal(acquireLock('shop', { dir, timeoutMs: 0, command: 'second' }));
    expect(e.code).toBe('TOPOGIT_LOCKED');
    expect(e.message).toMatch(new RegExp(`^cluster shop is locked by pid ${process.pid} on ${HOST} \\(test holder, since .+\\); gave up after 0 s$`));
    const other = await acquireLock('other', { dir, timeoutMs: 0, command: 'x' });
    await other.release();
    await lock.release();
  });

  it('waits for the holder, reporting it through onWait, and gets the lock once it is released', async () => {
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'test holder' });
    const seen: (LockHolder | undefined)[] = [];
    const waiting = acquireLock('shop', {
      dir,
      timeoutMs: 20_000,
      command: 'waiter',
      onWait: (h) => {
        seen.push(h);
        void lock.release();
      },
    });
    const got = await waiting;
    expect(seen[0]).toMatchObject({ pid: process.pid, host: HOST, command: 'test holder' });
    expect(JSON.parse(await readFile(join(dir, 'shop.lock'), 'utf8'))).toMatchObject({ command: 'waiter' });
    await got.release();
  });

  it('a lock whose holder died on this host is taken over; one held on another host is not, however old', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'shop.lock'), JSON.stringify({ pid: dead, host: HOST, since: '2020-01-01T00:00:00.000Z', command: 'crashed' }));
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'next' });
    await lock.release();

    await writeFile(join(dir, 'shop.lock'), JSON.stringify({ pid: dead, host: 'elsewhere', since: '2020-01-01T00:00:00.000Z', command: 'remote' }));
    const e = await refusal(acquireLock('shop', { dir, timeoutMs: 0, command: 'next' }));
    expect(e.message).toContain(`locked by pid ${dead} on elsewhere (remote, since 2020-01-01T00:00:00.000Z)`);
  });

  it('an empty lock file is respected while younger than 5 s and removed once older', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'shop.lock'), '');
    const old = new Date(Date.now() - 4000);
    await utimes(join(dir, 'shop.lock'), old, old);
    const e = await refusal(acquireLock('shop', { dir, timeoutMs: 0, command: 'next' }));
    expect(e.message).toMatch(/^cluster shop is locked by an unknown holder; gave up after 0 s$/);
    const older = new Date(Date.now() - 6000);
    await utimes(join(dir, 'shop.lock'), older, older);
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'next' });
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('release does not remove a lock file that is no longer its own', async () => {
    const lock = await acquireLock('shop', { dir, timeoutMs: 0, command: 'first' });
    const theirs = JSON.stringify({ pid: process.ppid, host: HOST, since: new Date().toISOString(), command: 'someone else' });
    await writeFile(join(dir, 'shop.lock'), theirs);
    await lock.release();
    expect(await readFile(join(dir, 'shop.lock'), 'utf8')).toBe(theirs);
  });
});
