// The daemon lease: one holder acts, the others stand by and take over when it expires, stops, or
// (same host) its process dies. Real files in a temp dir; the lease clock is injected except where a
// second real process is involved.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Lease, processAlive, type LeaseOptions, type LeaseRecord } from '../../src/daemon/lease.js';

const HOST = hostname();
const HOLDER = fileURLToPath(new URL('../fixtures/lease-holder.mjs', import.meta.url));

let dir: string;
let t: number;
const now = (): number => t;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'topogit-lease-')), '.topogit');
  t = Date.parse('2025-01-01T00:00:00.000Z');
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await once(c, 'exit');
    }
  }
  await rm(join(dir, '..'), { recursive: true, force: true });
});

type Change = readonly [role: 'active' | 'standby', holder: string | null];

function lease(id: string, extra: Partial<LeaseOptions> = {}): Lease & { changes: Change[] } {
  const changes: Change[] = [];
  const l = new Lease({
    dir,
    ttlMs: 3000,
    renewEveryMs: 1000,
    identity: { id, pid: process.pid, host: HOST },
    now,
    onChange: (role, holder) => changes.push([role, holder?.id ?? null]),
    ...extra,
  });
  return Object.assign(l, { changes });
}

async function record(): Promise<LeaseRecord> {
  return JSON.parse(await readFile(join(dir, 'lease.json'), 'utf8')) as LeaseRecord;
}

async function spawnHolder(...args: string[]): Promise<ChildProcess & { pid: number }> {
  const child = spawn(process.execPath, [HOLDER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`lease-holder exited early (${code})`)));
  });
  expect(child.pid).toBeTypeOf('number');
  return child as ChildProcess & { pid: number };
}

async function kill9(child: ChildProcess & { pid: number }): Promise<void> {
  process.kill(child.pid, 'SIGKILL');
  await once(child, 'exit'); // reaped: the pid is gone, not a zombie
  expect(await processAlive(child.pid)).toBe(false);
}

describe('Lease: acquire, stand by, renew', () => {
  it('the first tick acquires, another identity stays standby, renewals keep the first active', async () => {
    const a = lease('a');
    const b = lease('b');
    expect(a.role).toBe('standby');
    expect(a.isActive()).toBe(false);

    expect(await a.tick()).toBe('active');
    expect(a.isActive()).toBe(true);
    const first = await record();
    expect(first).toMatchObject({ id: 'a', pid: process.pid, host: HOST, acquiredAt: '2025-01-01T00:00:00.000Z' });
    expect(first.expiresAt).toBe('2025-01-01T00:00:03.000Z');

    expect(await b.tick()).toBe('standby');
    expect(b.isActive()).toBe(false);
    expect((await b.holder())?.id).toBe('a');

    for (let i = 1; i <= 5; i++) {
      t += 1000;
      expect(await a.tick()).toBe('active');
      expect(a.isActive()).toBe(true);
      expect(await b.tick()).toBe('standby');
    }
    const renewed = await record();
    expect(renewed.acquiredAt).toBe(first.acquiredAt);
    expect(renewed.renewedAt).toBe('2025-01-01T00:00:05.000Z');
    expect(renewed.expiresAt).toBe('2025-01-01T00:00:08.000Z');

    expect(a.changes).toEqual([['active', 'a']]);
    expect(b.changes).toEqual([['standby', 'a']]);
    expect(a.lastError).toBeNull();
    // No mutex or temp files left behind.
    expect((await readdir(dir)).sort()).toEqual(['lease.json']);
  });

  it('creates the directory when it is missing', async () => {
    const a = lease('a', { dir: join(dir, 'deeper') });
    expect(await a.tick()).toBe('active');
    expect(await readdir(join(dir, 'deeper'))).toEqual(['lease.json']);
  });

  it('rejects settings under which the holder could not stay active between renewals', () => {
    expect(() => lease('a', { renewEveryMs: 2000 })).toThrow(RangeError); // 2000 >= 3000 - 1000
    expect(() => lease('a', { ttlMs: 0 })).toThrow(RangeError);
    expect(() => lease('a', { safetyMarginMs: 3000 })).toThrow(RangeError);
    expect(() => lease('a', { ttlMs: 3000, renewEveryMs: 1000, safetyMarginMs: 500 })).not.toThrow();
  });
});

describe('Lease: takeover', () => {
  it('a holder that stops renewing stops acting before its claim expires; after ttl the standby takes over', async () => {
    const a = lease('a');
    const b = lease('b');
    expect(await a.tick()).toBe('active'); // renewed at t0, expires at t0 + 3000
    expect(await b.tick()).toBe('standby');

    t += 1999;
    expect(a.isActive()).toBe(true);
    t += 1; // ttl - margin: a must not act any more, though nobody may take over yet
    expect(a.isActive()).toBe(false);
    expect(a.role).toBe('active');
    expect(await b.tick()).toBe('standby');

    t += 1000; // exactly at expiresAt: not expired yet (now > expiresAt)
    expect(await b.tick()).toBe('standby');
    t += 1;
    expect(a.role).toBe('standby');
    expect(await b.tick()).toBe('active');
    expect(b.isActive()).toBe(true);
    expect((await record()).id).toBe('b');

    // a comes back and ticks: it sees another holder and stands by.
    expect(await a.tick()).toBe('standby');
    expect(a.isActive()).toBe(false);
    expect(a.changes).toEqual([
      ['active', 'a'],
      ['standby', 'b'],
    ]);
    expect(b.changes).toEqual([
      ['standby', 'a'],
      ['active', 'b'],
    ]);
    t += 1000;
    expect(await b.tick()).toBe('active');
    expect(await a.tick()).toBe('standby');
  });

  it('stop() releases the lease and a standby becomes active on its next tick', async () => {
    const a = lease('a');
    const b = lease('b');
    await a.tick();
    await b.tick();
    await b.stop(); // a standby's stop leaves the holder's record alone
    expect((await record()).id).toBe('a');
    b.changes.length = 0;

    await a.stop();
    expect(a.role).toBe('standby');
    expect(a.isActive()).toBe(false);
    expect(a.changes.at(-1)).toEqual(['standby', null]);
    expect(await a.holder()).toBeNull();
    expect(await readdir(dir)).toEqual([]);

    expect(await b.tick()).toBe('active'); // no waiting for the ttl
    expect(b.changes).toEqual([['active', 'b']]);
  });

  it('an unreadable record is treated as no record', async () => {
    await lease('x').tick();
    await writeFile(join(dir, 'lease.json'), '{ not json');
    const a = lease('a');
    expect(await a.holder()).toBeNull();
    expect(await a.tick()).toBe('active');
  });

  it('a holder whose renewals fail (file system errors) drops to standby when its own claim expires', async () => {
    const a = lease('a');
    expect(await a.tick()).toBe('active');
    // Replace the directory with a plain file: every open/mkdir below it fails.
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory');

    t += 1000;
    expect(await a.tick()).toBe('active'); // the claim still stands
    expect(a.lastError).toBeInstanceOf(Error);
    expect(a.isActive()).toBe(true);
    t += 1000;
    expect(await a.tick()).toBe('active');
    expect(a.isActive()).toBe(false); // 2000 ms since the last renewal: inside the safety margin, do not act
    t += 1000;
    expect(await a.tick()).toBe('standby');
    expect(a.isActive()).toBe(false);
    expect(a.changes).toEqual([
      ['active', 'a'],
      ['standby', null],
    ]);

    // The file system heals: a reacquires (its old record is gone).
    await rm(dir);
    t += 1000;
    expect(await a.tick()).toBe('active');
    expect(a.lastError).toBeNull();
  });
});

describe('Lease: a second real process', () => {
  it('is not taken over while alive and unexpired; after kill -9 it is taken at once, without waiting for the ttl', async () => {
    t = Date.now();
    const child = await spawnHolder('record', dir, HOST, '60000');
    const b = lease('b');
    for (let i = 0; i < 3; i++) {
      expect(await b.tick()).toBe('standby');
      t += 1000; // far from the child's 60 s expiry
    }
    const held = await b.holder();
    expect(held).toMatchObject({ pid: child.pid, host: HOST });
    expect(b.changes).toEqual([['standby', `holder-${child.pid}`]]);

    await kill9(child);
    expect(await b.tick()).toBe('active');
    expect(b.isActive()).toBe(true);
    expect(await record()).toMatchObject({ id: 'b', pid: process.pid });
    expect(Date.parse(held!.expiresAt)).toBeGreaterThan(t + 50_000); // it really did not wait
  });

  it('a dead pid on another host is not trusted: that record is honoured until it expires', async () => {
    const child = await spawnHolder('record', dir, 'some-other-host', '5000');
    await kill9(child);
    const expiresAt = Date.parse((await record()).expiresAt);
    t = expiresAt - 4000;
    const b = lease('b');
    expect(await b.tick()).toBe('standby');
    t = expiresAt;
    expect(await b.tick()).toBe('standby');
    t = expiresAt + 1;
    expect(await b.tick()).toBe('active');
  });
});

describe('Lease: concurrency', () => {
  it('10 instances ticking concurrently: exactly one is active at any time, also across expiries', async () => {
    // A generous mutex wait: this test is about exclusion, not about slow disks.
    const all = Array.from({ length: 10 }, (_, i) => lease(`d${i}`, { lockWaitMs: 10_000 }));
    const holders: string[] = [];
    for (let round = 0; round < 30; round++) {
      const stalled = round % 5 === 4 ? all.find((l) => l.isActive()) : undefined;
      if (stalled) t += 3001; // the active one stalls past its ttl and misses this round
      else t += 1000;
      // Shuffle the start order so different instances race first.
      const order = [...all].filter((l) => l !== stalled).sort(() => Math.random() - 0.5);
      const roles = await Promise.all(order.map((l) => l.tick()));
      expect(roles.filter((r) => r === 'active')).toHaveLength(1);
      const active = all.filter((l) => l.isActive());
      expect(active).toHaveLength(1);
      expect(all.filter((l) => l.role === 'active')).toHaveLength(1);
      const rec = await record();
      expect(rec.id).toBe(active[0]!.changes.at(-1)![1]);
      expect(active[0]!.changes.at(-1)![0]).toBe('active');
      if (stalled) expect(rec.id).not.toBe(`d${all.indexOf(stalled)}`);
      holders.push(rec.id);
      if (stalled) {
        // It comes back and learns it lost.
        expect(await stalled.tick()).toBe('standby');
      }
    }
    expect(new Set(holders).size).toBeGreaterThan(1); // takeovers happened
    for (const l of all) expect(l.lastError).toBeNull(); // nobody starved on the mutex
    expect((await readdir(dir)).sort()).toEqual(['lease.json']);
  });
});

describe('Lease: the mutex file', () => {
  it('a lease.lock held by a live process blocks (bounded); once that process is killed it no longer does', async () => {
    const child = await spawnHolder('lock', dir, HOST);
    const lockText = await readFile(join(dir, 'lease.lock'), 'utf8');
    const a = lease('a', { lockWaitMs: 100 });
    const started = Date.now();
    expect(await a.tick()).toBe('standby');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(a.lastError?.message).toMatch(/busy/);
    expect(await readFile(join(dir, 'lease.lock'), 'utf8')).toBe(lockText); // not broken while alive and fresh

    await kill9(child);
    expect(await a.tick()).toBe('active');
    expect((await readdir(dir)).sort()).toEqual(['lease.json']);
  });

  it('a lease.lock older than 2 s is stale even when its owner cannot be checked', async () => {
    const a = lease('a', { lockWaitMs: 100 });
    await a.tick();
    await a.stop();
    // A lock from another host (pid unknowable) written 10 s ago.
    await writeFile(join(dir, 'lease.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', token: 'x', at: Date.now() - 10_000 }));
    expect(await a.tick()).toBe('active');
    await a.stop();

    // An empty lock (its writer died between open and write): judged by its mtime.
    await writeFile(join(dir, 'lease.lock'), '');
    expect(await a.tick()).toBe('standby'); // fresh: respected
    expect(a.lastError?.message).toMatch(/busy/);
    const old = new Date(Date.now() - 10_000);
    await utimes(join(dir, 'lease.lock'), old, old);
    expect(await a.tick()).toBe('active');
    expect((await readdir(dir)).sort()).toEqual(['lease.json']);
  });
});

describe('Lease: start() and stop()', () => {
  it('ticks on its own; when the active one stops, the standby takes over', async () => {
    const opts = { ttlMs: 600, renewEveryMs: 50, now: Date.now };
    const a = countTicks(lease('a', opts));
    const b = countTicks(lease('b', opts));
    a.start();
    await until(() => a.isActive());
    b.start();
    await until(() => b.changes.length > 0);
    expect(b.role).toBe('standby');
    // Several renewals on both sides (instead of a fixed wait): a stays the holder throughout.
    const [ticksA, ticksB] = [a.ticks, b.ticks];
    await until(() => a.ticks >= ticksA + 4 && b.ticks >= ticksB + 4);
    expect(a.isActive()).toBe(true);
    expect(b.isActive()).toBe(false);
    expect(b.changes).toEqual([['standby', 'a']]);

    await a.stop();
    await until(() => b.isActive());
    expect(a.isActive()).toBe(false);
    await b.stop();
    expect(await b.holder()).toBeNull();
  });
});

/** Counts the ticks start() makes (it calls this.tick()), so a test can wait for renewals to happen. */
function countTicks<L extends Lease>(l: L): L & { ticks: number } {
  const counted = Object.assign(l, { ticks: 0 });
  const tick = l.tick.bind(l);
  counted.tick = () => {
    counted.ticks++;
    return tick();
  };
  return counted;
}

/** Waits for a condition that real timers (start()'s ticks) bring about; throws after timeoutMs. */
async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    // A poll interval, not a fixed wait: the lease ticks on real timers, so time has to pass.
    await new Promise((r) => setTimeout(r, 10));
  }
}
