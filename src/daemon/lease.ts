// The lease that lets exactly one `topogit watch` daemon act on a repository while others stand by.
//
// The record lives in `<dir>/lease.json` and names the holder and when its claim expires. Every
// read-decide-write of that record happens under a mutex file, `<dir>/lease.lock`, created with
// open(…, 'wx') so that only one process (or one Lease in a process) is deciding at a time; the
// record itself is replaced with a temp file + rename, so readers never see half a record.
//
// Acquire when there is no record, it has expired (now > expiresAt), it is ours (renew), or it names
// a holder on this host whose process is gone (fast takeover after kill -9: no wait for expiry).
// A holder that cannot renew keeps its role only as long as its own claim stands and acts only while
// `isActive()`: the last renewal is younger than ttlMs minus a safety margin, so it stops acting
// before anyone else may take over.
//
// Time: the lease clock is `now()` (Date.now by default; tests inject one). The mutex is a file
// mutex (adapters/mutex.ts), a mechanical guard of a few milliseconds that always uses the real
// clock: a mutex older than lockStaleMs (2 s), or held by a dead process on this host, is stale and
// may be broken (safely: moved aside, compared, put back if it changed). A holder also re-checks that
// the mutex is still its own, and that it has not held it too long, just before it commits a record.
import { randomUUID } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireMutex, errCode, ignoreCode, processAlive, type HeldMutex } from '../adapters/mutex.js';

export { processAlive };

export type LeaseRole = 'active' | 'standby';

export interface LeaseIdentity {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
}

export interface LeaseOptions {
  /** Where the record and the mutex live: `<repo>/.topogit` (created when missing). */
  readonly dir: string;
  /** A holder that has not renewed for this long is gone, e.g. 3000. */
  readonly ttlMs: number;
  /** How often `start()` ticks, e.g. 1000. Must be below ttlMs minus the safety margin. */
  readonly renewEveryMs: number;
  readonly identity: LeaseIdentity;
  /** The lease clock (ms since the epoch). Date.now by default. */
  readonly now?: () => number;
  /** Called after a tick when the role changed (and after the first tick), and on stop() when it was active. */
  readonly onChange?: (role: LeaseRole, holder: LeaseRecord | null) => void;
  /** `isActive()` turns false this long before the claim expires. Default ttlMs / 3. */
  readonly safetyMarginMs?: number;
  /** How long one tick waits for the mutex before giving up this round. Default min(500, renewEveryMs / 2). */
  readonly lockWaitMs?: number;
  /** A mutex older than this (real clock) is stale. Default 2000. */
  readonly lockStaleMs?: number;
}

export interface LeaseRecord {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly acquiredAt: string;
  readonly renewedAt: string;
  readonly expiresAt: string;
}

export const LEASE_FILE = 'lease.json';
export const LOCK_FILE = 'lease.lock';
const DEFAULT_LOCK_STALE_MS = 2000;

export class Lease {
  readonly #dir: string;
  readonly #recordPath: string;
  readonly #lockPath: string;
  readonly #ttlMs: number;
  readonly #renewEveryMs: number;
  readonly #marginMs: number;
  readonly #lockWaitMs: number;
  readonly #lockStaleMs: number;
  readonly #identity: LeaseIdentity;
  readonly #now: () => number;
  readonly #onChange: ((role: LeaseRole, holder: LeaseRecord | null) => void) | undefined;

  /** We wrote the current record (as of our last successful tick). */
  #believedActive = false;
  /** Lease-clock time of our last successful acquire/renew (the record's renewedAt). */
  #renewedAt = 0;
  #reported: LeaseRole | null = null;
  #lastError: Error | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #running = false;

  constructor(o: LeaseOptions) {
    const margin = o.safetyMarginMs ?? Math.round(o.ttlMs / 3);
    if (!(o.ttlMs > 0) || !(o.renewEveryMs > 0)) throw new RangeError('lease: ttlMs and renewEveryMs must be positive');
    if (!(margin >= 0) || margin >= o.ttlMs) throw new RangeError('lease: safetyMarginMs must be in [0, ttlMs)');
    if (o.renewEveryMs >= o.ttlMs - margin) {
      throw new RangeError(`lease: renewEveryMs (${o.renewEveryMs}) must be below ttlMs - safetyMarginMs (${o.ttlMs - margin})`);
    }
    this.#dir = o.dir;
    this.#recordPath = join(o.dir, LEASE_FILE);
    this.#lockPath = join(o.dir, LOCK_FILE);
    this.#ttlMs = o.ttlMs;
    this.#renewEveryMs = o.renewEveryMs;
    this.#marginMs = margin;
    this.#lockWaitMs = o.lockWaitMs ?? Math.min(500, o.renewEveryMs / 2);
    this.#lockStaleMs = o.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.#identity = o.identity;
    this.#now = o.now ?? Date.now;
    this.#onChange = o.onChange;
  }

  /** Active while our claim has not expired by our own clock (even if the last renewals failed). */
  get role(): LeaseRole {
    return this.#believedActive && this.#now() - this.#renewedAt < this.#ttlMs ? 'active' : 'standby';
  }

  /** Act only when this is true: active, and the last renewal is younger than ttlMs minus the safety margin. */
  isActive(): boolean {
    return this.#believedActive && this.#now() - this.#renewedAt < this.#ttlMs - this.#marginMs;
  }

  /** Why the last tick could not acquire or renew (null after a tick that completed). */
  get lastError(): Error | null {
    return this.#lastError;
  }

  /** The record as it is on disk (whoever holds it, expired or not), or null when there is none or it is unreadable. */
  async holder(): Promise<LeaseRecord | null> {
    return this.#readRecord();
  }

  /** Tries once to acquire or renew; returns the role after the attempt. Never throws. */
  tick(): Promise<LeaseRole> {
    const next = this.#chain.then(() => this.#tick());
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Ticks now and then every renewEveryMs (unref'd timer) until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const loop = (): void => {
      if (!this.#running) return;
      void this.tick().finally(() => {
        if (!this.#running) return;
        this.#timer = setTimeout(loop, this.#renewEveryMs);
        this.#timer.unref();
      });
    };
    loop();
  }

  /** Stops ticking and, if active, deletes the record so a standby takes over on its next tick. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const done = this.#chain.then(() => this.#release());
    this.#chain = done.catch(() => undefined);
    await done;
  }

  // -------------------------------------------------------------------------------------------

  async #tick(): Promise<LeaseRole> {
    try {
      const lock = await this.#acquireLock();
      if (lock === null) {
        throw new Error(`lease: ${this.#lockPath} is busy (waited ${this.#lockWaitMs} ms)`);
      }
      let holder: LeaseRecord | null;
      try {
        const t = this.#now();
        const current = await this.#readRecord();
        const mine = current !== null && this.#isMine(current);
        if (current === null || mine || this.#expired(current, t) || !(await this.#holderAlive(current))) {
          const record: LeaseRecord = {
            ...this.#identityFields(),
            acquiredAt: mine && current ? current.acquiredAt : new Date(t).toISOString(),
            renewedAt: new Date(t).toISOString(),
            expiresAt: new Date(t + this.#ttlMs).toISOString(),
          };
          await this.#writeRecord(record, lock);
          this.#believedActive = true;
          this.#renewedAt = t;
          holder = record;
        } else {
          this.#believedActive = false;
          holder = current;
        }
      } finally {
        await this.#releaseLock(lock).catch(() => undefined);
      }
      this.#lastError = null;
      this.#report(holder);
    } catch (e) {
      // Could not acquire or renew: the role stands only until our own claim would have expired.
      this.#lastError = e instanceof Error ? e : new Error(String(e));
      if (this.role === 'standby') this.#believedActive = false;
      this.#report(this.#believedActive ? null : await this.#readRecord().catch(() => null));
    }
    return this.role;
  }

  async #release(): Promise<void> {
    const wasActive = this.#believedActive;
    this.#believedActive = false;
    if (!wasActive) return;
    try {
      const lock = await this.#acquireLock();
      if (lock !== null) {
        try {
          const current = await this.#readRecord();
          if (current !== null && this.#isMine(current)) await unlink(this.#recordPath).catch(ignoreCode('ENOENT'));
        } finally {
          await this.#releaseLock(lock).catch(() => undefined);
        }
      }
      // Without the mutex the record is left to expire.
    } catch (e) {
      this.#lastError = e instanceof Error ? e : new Error(String(e));
    }
    this.#report(null);
  }

  #report(holder: LeaseRecord | null): void {
    const role = this.role;
    if (role === this.#reported) return;
    this.#reported = role;
    this.#onChange?.(role, holder);
  }

  #identityFields(): Pick<LeaseRecord, 'id' | 'pid' | 'host'> {
    return { id: this.#identity.id, pid: this.#identity.pid, host: this.#identity.host };
  }

  #isMine(r: LeaseRecord): boolean {
    return r.id === this.#identity.id && r.pid === this.#identity.pid && r.host === this.#identity.host;
  }

  #expired(r: LeaseRecord, t: number): boolean {
    const expires = Date.parse(r.expiresAt);
    return Number.isNaN(expires) || t > expires;
  }

  /** False only when the holder is on this host and its process is certainly gone. */
  async #holderAlive(r: LeaseRecord): Promise<boolean> {
    if (r.host !== this.#identity.host) return true;
    return processAlive(r.pid);
  }

  async #readRecord(): Promise<LeaseRecord | null> {
    let text: string;
    try {
      text = await readFile(this.#recordPath, 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return null;
      throw e;
    }
    return parseRecord(text);
  }

  async #writeRecord(record: LeaseRecord, lock: HeldMutex): Promise<void> {
    const tmp = join(this.#dir, `${LEASE_FILE}.${process.pid}.${randomUUID()}.tmp`);
    let fh: FileHandle | null = null;
    try {
      fh = await open(tmp, 'wx');
      await fh.writeFile(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
      await fh.sync();
      await fh.close();
      fh = null;
      // Commit only while the mutex is still ours and young: a holder that stalled past the stale
      // age may have had its mutex broken by someone who is now deciding on their own.
      if (Date.now() - lock.at > this.#lockStaleMs / 2) throw new Error('lease: held the mutex too long; not committing');
      if (!(await lock.stillOurs())) throw new Error('lease: the mutex was broken while held; not committing');
      await rename(tmp, this.#recordPath);
    } catch (e) {
      if (fh) await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  // -- the mutex ------------------------------------------------------------------------------

  /** The mutex, or null when it stayed busy for lockWaitMs. */
  async #acquireLock(): Promise<HeldMutex | null> {
    const got = await acquireMutex({
      path: this.#lockPath,
      host: this.#identity.host,
      maxAgeMs: this.#lockStaleMs,
      unreadableStaleMs: this.#lockStaleMs,
      waitMs: this.#lockWaitMs,
      pollMs: () => 2 + Math.floor(Math.random() * 10),
    });
    return got.acquired ? got.mutex : null;
  }

  async #releaseLock(lock: HeldMutex): Promise<void> {
    await lock.release();
  }
}

// ---------------------------------------------------------------------------------------------

/** The lease record in `dir`, or null (none, unreadable). For `status`. */
export async function readLeaseRecord(dir: string): Promise<LeaseRecord | null> {
  try {
    return parseRecord(await readFile(join(dir, LEASE_FILE), 'utf8'));
  } catch {
    return null;
  }
}

function parseRecord(text: string): LeaseRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const strings = ['id', 'host', 'acquiredAt', 'renewedAt', 'expiresAt'] as const;
  if (!strings.every((k) => typeof r[k] === 'string') || typeof r['pid'] !== 'number') return null;
  return {
    id: r['id'] as string,
    pid: r['pid'],
    host: r['host'] as string,
    acquiredAt: r['acquiredAt'] as string,
    renewedAt: r['renewedAt'] as string,
    expiresAt: r['expiresAt'] as string,
  };
}
