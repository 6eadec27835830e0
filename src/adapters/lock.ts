// A per-cluster lock file, so two applies (or an apply and the daemon) never interleave.
// A file mutex (adapters/mutex.ts): a lock whose holder died on this host is stale at once, an
// empty one (its writer died before writing) once it is 5 s old; a live holder's lock never goes
// stale by age, since an apply may take long.
import { hostname } from 'node:os';
import path from 'node:path';
import { TopogitError } from '../core/errors.js';
import { acquireMutex, type MutexHolder } from './mutex.js';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  readonly command: string;
}

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  readonly dir: string;
  readonly timeoutMs: number;
  readonly command: string;
  readonly onWait?: (holder: LockHolder | undefined, waitedMs: number) => void;
}

/** An empty lock file older than this lost its writer between create and write. */
const UNREADABLE_STALE_MS = 5000;
const POLL_MS = 100;
const REPORT_EVERY_MS = 1000;

function asLockHolder(h: MutexHolder | undefined): LockHolder | undefined {
  if (!h) return undefined;
  return { pid: h.pid, host: h.host, since: String(h['since'] ?? ''), command: String(h['command'] ?? '') };
}

export async function acquireLock(cluster: string, o: LockOptions): Promise<Lock> {
  const file = path.join(o.dir, `${cluster}.lock`);
  let lastReport = 0;
  const got = await acquireMutex({
    path: file,
    host: hostname(),
    meta: { since: new Date().toISOString(), command: o.command },
    unreadableStaleMs: UNREADABLE_STALE_MS,
    waitMs: o.timeoutMs,
    pollMs: POLL_MS,
    onBusy: (holder, waitedMs) => {
      if (Date.now() - lastReport < REPORT_EVERY_MS) return;
      lastReport = Date.now();
      o.onWait?.(asLockHolder(holder), waitedMs);
    },
  });
  if (got.acquired) return { release: () => got.mutex.release() };
  const holder = asLockHolder(got.holder);
  const who = holder ? `pid ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.since})` : 'an unknown holder';
  throw new TopogitError('TOPOGIT_LOCKED', `cluster ${cluster} is locked by ${who}; gave up after ${Math.round(got.waitedMs / 1000)} s`, `wait for it to finish, or raise --lock-timeout; remove ${file} only if that process is gone`);
}
