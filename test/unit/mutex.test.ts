// The file mutex shared by the cluster lock and the lease: O_EXCL create, who holds it, when a held
// mutex is stale (dead holder on this host, too old, empty and old), safe breaking, and release only
// of our own. Real files in a temp dir.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireMutex, parseHolder, processAlive, removeIfUnchanged, type HeldMutex, type MutexOptions } from '../../src/adapters/mutex.js';

const HOST = hostname();
let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'topogit-mutex-'));
  file = join(dir, 'x.lock');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function opts(extra: Partial<MutexOptions> = {}): MutexOptions {
  return { path: file, unreadableStaleMs: 5000, waitMs: 0, pollMs: 5, ...extra };
}

async function take(extra: Partial<MutexOptions> = {}): Promise<HeldMutex> {
  const got = await acquireMutex(opts(extra));
  if (!got.acquired) throw new Error(`mutex busy: ${JSON.stringify(got.holder)}`);
  return got.mutex;
}

/** A pid that certainly belonged to a process on this host and is gone (exited and reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  if (typeof r.pid !== 'number') throw new Error('could not spawn');
  return r.pid;
}

const holderText = (h: Record<string, unknown>): string => `${JSON.stringify(h)}\n`;

describe('acquireMutex', () => {
  it('creates the file (and its directory) naming pid, host, token, time and the meta fields; release removes it', async () => {
    file = join(dir, 'deeper', 'x.lock');
    const before = Date.now();
    const m = await take({ meta: { command: 'test' } });
    const onDisk = await readFile(file, 'utf8');
    expect(onDisk).toBe(m.content);
    const h = parseHolder(onDisk);
    expect(h).toMatchObject({ pid: process.pid, host: HOST, token: m.token, command: 'test' });
    expect(h?.at).toBe(m.at);
    expect(m.at).toBeGreaterThanOrEqual(before);
    expect(await m.stillOurs()).toBe(true);
    await m.release();
    expect(await readdir(join(dir, 'deeper'))).toEqual([]);
  });

  it('a held mutex is busy: the attempt reports who holds it and, when it waits, calls onBusy', async () => {
    const m = await take({ meta: { command: 'first' } });
    const once = await acquireMutex(opts());
    expect(once).toMatchObject({ acquired: false, holder: { pid: process.pid, host: HOST, command: 'first' } });

    const busy: number[] = [];
    const waited = await acquireMutex(opts({ waitMs: 40, onBusy: (_h, ms) => busy.push(ms) }));
    expect(waited.acquired).toBe(false);
    expect(busy.length).toBeGreaterThan(0);
    if (!waited.acquired) expect(waited.waitedMs).toBeGreaterThanOrEqual(40);
    expect(await readFile(file, 'utf8')).toBe(m.content);
  });

  it('a waiter gets the mutex once the holder releases it', async () => {
    const m = await take();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      void m.release();
    };
    // The first busy report releases the holder; the waiter then gets in on a later attempt.
    const got = await acquireMutex(opts({ waitMs: 10_000, onBusy: release }));
    expect(released).toBe(true);
    expect(got.acquired).toBe(true);
  });
});

describe('acquireMutex: stale mutexes', () => {
  it('held by a dead process on this host: broken at once, no maximum age needed', async () => {
    await writeFile(file, holderText({ pid: deadPid(), host: HOST, token: 't', at: Date.now() }));
    const m = await take();
    expect(parseHolder(await readFile(file, 'utf8'))?.pid).toBe(process.pid);
    await m.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a dead pid on another host is not trusted: without a maximum age it stays', async () => {
    const text = holderText({ pid: deadPid(), host: 'elsewhere', token: 't', at: Date.now() - 3_600_000 });
    await writeFile(file, text);
    expect((await acquireMutex(opts())).acquired).toBe(false);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('older than maxAgeMs (by its `at`) is stale whoever holds it; younger is not', async () => {
    // A live holder: this test's parent process.
    const young = holderText({ pid: process.ppid, host: HOST, token: 't', at: Date.now() - 500 });
    await writeFile(file, young);
    expect((await acquireMutex(opts({ maxAgeMs: 2000 }))).acquired).toBe(false);
    expect(await readFile(file, 'utf8')).toBe(young);

    await writeFile(file, holderText({ pid: process.ppid, host: 'elsewhere', token: 't', at: Date.now() - 10_000 }));
    expect((await acquireMutex(opts())).acquired).toBe(false); // no maximum: the cluster lock's rule
    expect((await acquireMutex(opts({ maxAgeMs: 2000 }))).acquired).toBe(true);
  });

  it('without `at`, the age is the file mtime', async () => {
    await writeFile(file, holderText({ pid: process.ppid, host: HOST }));
    expect((await acquireMutex(opts({ maxAgeMs: 2000 }))).acquired).toBe(false);
    const old = new Date(Date.now() - 10_000);
    await utimes(file, old, old);
    expect((await acquireMutex(opts({ maxAgeMs: 2000 }))).acquired).toBe(true);
  });

  it('an empty or garbage file is respected while fresh and broken once older than unreadableStaleMs', async () => {
    for (const text of ['', '{ not json', '{"pid":"x"}']) {
      await writeFile(file, text);
      const fresh = await acquireMutex(opts());
      expect(fresh).toMatchObject({ acquired: false, holder: undefined });
      const old = new Date(Date.now() - 6000);
      await utimes(file, old, old);
      const m = await take();
      await m.release();
    }
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('acquireMutex: concurrency', () => {
  it('concurrent acquirers, one attempt each: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(Array.from({ length: 20 }, () => acquireMutex(opts())));
      const won = results.flatMap((r) => (r.acquired ? [r.mutex] : []));
      expect(won).toHaveLength(1);
      await won[0]!.release();
    }
  });

  it('concurrent waiters: one at a time in the critical section, and every one gets in', async () => {
    let inside = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const m = await take({ waitMs: 20_000, pollMs: () => 1 + Math.floor(Math.random() * 3) });
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setImmediate(r)); // give the others a chance to get in wrongly
        inside--;
        done++;
        await m.release();
      }),
    );
    expect(most).toBe(1);
    expect(done).toBe(10);
    expect(await readdir(dir)).toEqual([]);
  });

  it('concurrent breakers of one stale mutex: exactly one wins, and no breaker removes the winner', async () => {
    // Every breaker judged the dead holder's file stale; the ones that come after the winner must
    // not move the winner's file aside (removal re-checks the content under the guard).
    for (let round = 0; round < 8; round++) {
      await writeFile(file, holderText({ pid: deadPid(), host: HOST, token: 'dead', at: Date.now() }));
      const results = await Promise.all(Array.from({ length: 20 }, () => acquireMutex(opts())));
      const won = results.flatMap((r) => (r.acquired ? [r.mutex] : []));
      expect(won).toHaveLength(1);
      expect(await won[0]!.stillOurs()).toBe(true);
      await won[0]!.release();
      expect(await readdir(dir)).toEqual([]);
    }
  });
});

describe('release and removeIfUnchanged', () => {
  it('release does not delete a mutex that is no longer ours', async () => {
    const m = await take({ maxAgeMs: 2000 });
    // Broken as stale and taken by someone else meanwhile:
    const theirs = holderText({ pid: process.ppid, host: HOST, token: 'theirs', at: Date.now() });
    await writeFile(file, theirs);
    expect(await m.stillOurs()).toBe(false);
    await m.release();
    expect(await readFile(file, 'utf8')).toBe(theirs);
    expect(await readdir(dir)).toEqual(['x.lock']); // nothing left aside
  });

  it('a guard left behind by a dead process (or an old one) does not block removal', async () => {
    const m = await take();
    await writeFile(`${file}.break`, holderText({ pid: deadPid(), host: HOST, token: 'g', at: Date.now() }));
    await m.release();
    expect(await readdir(dir)).toEqual([]);

    const n = await take();
    await writeFile(`${file}.break`, holderText({ pid: process.ppid, host: 'elsewhere', token: 'g', at: Date.now() - 10_000 }));
    await n.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('release after someone removed it is a no-op', async () => {
    const m = await take();
    await rm(file);
    await m.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('removeIfUnchanged deletes only the content it was told about, and puts anything else back', async () => {
    await writeFile(file, 'new holder');
    await removeIfUnchanged(file, 'old holder');
    expect(await readFile(file, 'utf8')).toBe('new holder');
    await removeIfUnchanged(file, 'new holder');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('processAlive', () => {
  it('this process and its parent are alive; an exited child is not; non-pids count as alive', async () => {
    expect(await processAlive(process.pid)).toBe(true);
    expect(await processAlive(process.ppid)).toBe(true);
    expect(await processAlive(deadPid())).toBe(false);
    expect(await processAlive(0)).toBe(true);
    expect(await processAlive(Number.NaN)).toBe(true);
  });
});
