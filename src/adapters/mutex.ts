// A file mutex: the one way topogit keeps two processes (or two callers in one process) out of the
// same critical section. Used by the per-cluster apply lock (adapters/lock.ts) and by the daemons'
// lease record (daemon/lease.ts).
//
// Acquire: open(path, 'wx') — O_EXCL, atomic on local file systems — and write one JSON line that
// names the holder: {pid, host, token, at, ...meta}. `at` is the real clock (Date.now) and `token` a
// random UUID, so two holders never write the same content.
//
// Stale, and so breakable, when (in this order):
//   - it names a holder on this host whose process is gone (no waiting, e.g. after kill -9);
//   - maxAgeMs is set and it is older than that (by its `at`, else the file's mtime) — the lease's
//     mutex is a guard of milliseconds; the apply lock has no maximum since an apply may be long;
//   - it is empty or unreadable (the writer died between create and write) and its mtime is older
//     than unreadableStaleMs.
// Removing a mutex file — breaking a stale one, or releasing one's own — is a compare-and-remove,
// which POSIX cannot do in one call. So every removal runs under a guard, `<path>.break` (O_EXCL,
// held for a few milliseconds): under it the file is read and removed only if it still holds the
// content judged stale (or, on release, our own), by renaming it aside, comparing again, and putting
// it back if it changed. No one else removes meanwhile and no one can create it while it exists, so a
// breaker that judged an older holder stale can never remove a newer one's file. A guard left by a
// dead process (or older than GUARD_STALE_MS) is itself broken by rename-aside-compare-restore.
import { randomUUID } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a mutex file says about its holder. Other fields (`meta`) come along as they were written. */
export interface MutexHolder {
  readonly pid: number;
  readonly host: string;
  readonly token?: string;
  /** Real time (ms since the epoch) the holder created it. */
  readonly at?: number;
  readonly [field: string]: unknown;
}

export interface MutexOptions {
  /** The mutex file, e.g. `.topogit/locks/shop.lock`. Its directory is created when missing. */
  readonly path: string;
  /** Written into the file besides pid, host, token and at (e.g. what command holds it). */
  readonly meta?: Readonly<Record<string, unknown>>;
  /** The host name written and compared for the dead-holder rule. Default os.hostname(). */
  readonly host?: string;
  /** Older than this (by `at`, else mtime) is stale whoever holds it. Default: no maximum. */
  readonly maxAgeMs?: number;
  /** An empty or unreadable file whose mtime is older than this is stale. */
  readonly unreadableStaleMs: number;
  /** How long to keep trying while someone else holds it; 0 = one attempt. */
  readonly waitMs: number;
  /** Pause between attempts (ms), or a function giving it (e.g. jittered). */
  readonly pollMs: number | (() => number);
  /** Called after each attempt that found the mutex held and not stale (and before waiting again). */
  readonly onBusy?: (holder: MutexHolder | undefined, waitedMs: number) => void;
}

export interface HeldMutex {
  readonly path: string;
  /** The exact text written; what release and stillOurs compare with. */
  readonly content: string;
  readonly token: string;
  /** Real time it was taken (Date.now). */
  readonly at: number;
  /** Is the file on disk still this one (not broken and replaced meanwhile)? */
  stillOurs(): Promise<boolean>;
  /** Removes the file only if it is still this one. */
  release(): Promise<void>;
}

export type MutexAttempt =
  | { readonly acquired: true; readonly mutex: HeldMutex }
  /** `holder`: what the file said at the last look (undefined when empty or unreadable). */
  | { readonly acquired: false; readonly holder: MutexHolder | undefined; readonly waitedMs: number };

/** Tries to take the mutex, breaking a stale one, for up to waitMs. Throws only on file system errors. */
export async function acquireMutex(o: MutexOptions): Promise<MutexAttempt> {
  const host = o.host ?? hostname();
  const started = Date.now();
  let madeDir = false;
  for (;;) {
    const token = randomUUID();
    const at = Date.now();
    const content = `${JSON.stringify({ ...o.meta, pid: process.pid, host, token, at })}\n`;
    let fh: FileHandle;
    try {
      fh = await open(o.path, 'wx', 0o644);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT' && !madeDir) {
        await mkdir(path.dirname(o.path), { recursive: true });
        madeDir = true;
        continue;
      }
      if (code !== 'EEXIST') throw e;
      const seen = await inspect(o.path);
      if (seen === 'gone') continue; // released meanwhile
      if (await isStale(seen, host, o)) {
        await removeIfUnchanged(o.path, seen.text, host);
        continue;
      }
      const waitedMs = Date.now() - started;
      if (waitedMs >= o.waitMs) return { acquired: false, holder: seen.holder, waitedMs };
      o.onBusy?.(seen.holder, waitedMs);
      await sleep(typeof o.pollMs === 'function' ? o.pollMs() : o.pollMs);
      continue;
    }
    await writeOrRemove(fh, o.path, content);
    return {
      acquired: true,
      mutex: {
        path: o.path,
        content,
        token,
        at,
        stillOurs: async () => (await readFile(o.path, 'utf8').catch(() => '')) === content,
        release: () => removeIfUnchanged(o.path, content, host),
      },
    };
  }
}

/** What the file holds now: its text, the holder it names (if it parses), and its mtime. */
interface Seen {
  readonly text: string;
  readonly holder: MutexHolder | undefined;
  readonly mtimeMs: number;
}

async function inspect(file: string): Promise<Seen | 'gone'> {
  try {
    const [text, mtimeMs] = await Promise.all([readFile(file, 'utf8'), stat(file).then((s) => s.mtimeMs)]);
    return { text, holder: parseHolder(text), mtimeMs };
  } catch (e) {
    if (errCode(e) === 'ENOENT') return 'gone';
    throw e;
  }
}

async function isStale(seen: Seen, host: string, o: Pick<MutexOptions, 'maxAgeMs' | 'unreadableStaleMs'>): Promise<boolean> {
  const h = seen.holder;
  if (!h) return Date.now() - seen.mtimeMs > o.unreadableStaleMs;
  if (h.host === host && h.pid !== process.pid && !(await processAlive(h.pid))) return true;
  if (o.maxAgeMs !== undefined) return Date.now() - (typeof h.at === 'number' ? h.at : seen.mtimeMs) > o.maxAgeMs;
  return false;
}

/** The holder a mutex file names, or undefined when it is empty (being written, or its writer died) or garbage. */
export function parseHolder(text: string): MutexHolder | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    if (v && typeof v === 'object' && typeof v['pid'] === 'number' && typeof v['host'] === 'string') return v as MutexHolder;
  } catch {
    // judged by mtime
  }
  return undefined;
}

/** A guard older than this (or held by a dead process on this host, or empty and this old) is stale. */
const GUARD_STALE_MS = 2000;

/**
 * Removes the mutex file only if it still holds `expected` (a no-op when it is gone or holds
 * something else). Runs under the guard; see the top of this file.
 */
export async function removeIfUnchanged(file: string, expected: string, host: string = hostname()): Promise<void> {
  await underGuard(`${file}.break`, host, async () => {
    const now = await readFile(file, 'utf8').catch((e: unknown) => {
      if (errCode(e) === 'ENOENT') return undefined;
      throw e;
    });
    if (now === expected) await moveAsideUnlessChanged(file, expected);
  });
}

/** Runs `fn` holding the guard file; when the guard's directory is gone, so is the mutex: `fn` does not run. */
async function underGuard(guard: string, host: string, fn: () => Promise<void>): Promise<void> {
  const content = `${JSON.stringify({ pid: process.pid, host, token: randomUUID(), at: Date.now() })}\n`;
  for (;;) {
    let fh: FileHandle;
    try {
      fh = await open(guard, 'wx', 0o644);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT') return;
      if (code !== 'EEXIST') throw e;
      const seen = await inspect(guard);
      if (seen === 'gone') continue;
      if (await isStale(seen, host, { maxAgeMs: GUARD_STALE_MS, unreadableStaleMs: GUARD_STALE_MS })) await moveAsideUnlessChanged(guard, seen.text);
      else await sleep(1);
      continue;
    }
    await writeOrRemove(fh, guard, content);
    break;
  }
  try {
    await fn();
  } finally {
    await moveAsideUnlessChanged(guard, content);
  }
}

/**
 * Renames `file` aside (atomic: whatever is there now), compares it with `expected`, and deletes it
 * when it matches, or puts it back (unless a newer one exists already) when it does not.
 */
async function moveAsideUnlessChanged(file: string, expected: string): Promise<void> {
  const aside = `${file}.${process.pid}.${randomUUID()}.aside`;
  try {
    await rename(file, aside);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw e;
  }
  let got: string;
  try {
    got = await readFile(aside, 'utf8');
  } catch {
    got = '\0'; // unreadable: not ours to delete
  }
  if (got !== expected) await link(aside, file).catch(ignoreCode('EEXIST'));
  await unlink(aside).catch(ignoreCode('ENOENT'));
}

/**
 * Is the process alive on this host? process.kill(pid, 0): ESRCH means gone, EPERM means it exists
 * (another user). On Linux a zombie (exited, not yet reaped) counts as gone. Unknown pids (not a
 * positive integer) count as alive, so their claim is honoured.
 */
export async function processAlive(pid: number): Promise<boolean> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return errCode(e) !== 'ESRCH';
  }
  if (process.platform === 'linux') {
    try {
      const s = await readFile(`/proc/${pid}/stat`, 'utf8');
      const state = s.slice(s.lastIndexOf(')') + 2).charAt(0);
      if (state === 'Z' || state === 'X') return false;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
    }
  }
  return true;
}

export function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

export function ignoreCode(code: string): (e: unknown) => void {
  return (e) => {
    if (errCode(e) !== code) throw e;
  };
}

/** Writes a file just created with O_EXCL; if that fails, the half-made file is removed. */
async function writeOrRemove(fh: FileHandle, path: string, content: string): Promise<void> {
  try {
    await fh.writeFile(content, 'utf8');
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw e;
  }
}
