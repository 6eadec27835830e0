// A per-cluster lock file, so two applies (or an apply and the daemon) never interleave.
// O_EXCL create is atomic on local file systems; a lock whose holder died on this host is stale.
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { TopogitError } from '../core/errors.js';

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

export async function acquireLock(cluster: string, o: LockOptions): Promise<Lock> {
  await mkdir(o.dir, { recursive: true });
  const file = path.join(o.dir, `${cluster}.lock`);
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: o.command };
  const started = Date.now();
  let lastReport = 0;
  for (;;) {
    try {
      const fh = await open(file, 'wx', 0o644);
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      return { release: () => rm(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readHolder(file);
    if (holder && holder.host === me.host && !alive(holder.pid)) {
      // The holder died without releasing: its lock protects nothing any more. Move it aside and
      // check it is still the dead one's (another waiter may have broken it and taken the lock
      // in between); if not, put it back.
      const aside = `${file}.stale.${process.pid}`;
      try {
        await rename(file, aside);
        const moved = await readHolder(aside);
        if (moved && moved.pid === holder.pid && moved.since === holder.since) await rm(aside, { force: true });
        else await link(aside, file).catch(() => undefined).finally(() => rm(aside, { force: true }));
      } catch {
        /* someone else moved it first */
      }
      continue;
    }
    if (!holder) {
      // An empty or unreadable lock file: its writer died between creating and writing it. Once it
      // is clearly older than a write takes, it protects nothing.
      const age = await stat(file).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (age > 5000) {
        await rm(file, { force: true });
        continue;
      }
    }
    const waited = Date.now() - started;
    if (waited >= o.timeoutMs) {
      const who = holder ? `pid ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.since})` : 'an unknown holder';
      throw new TopogitError('TOPOGIT_LOCKED', `cluster ${cluster} is locked by ${who}; gave up after ${Math.round(waited / 1000)} s`, `wait for it to finish, or raise --lock-timeout; remove ${file} only if that process is gone`);
    }
    if (Date.now() - lastReport >= 1000) {
      lastReport = Date.now();
      o.onWait?.(holder, waited);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
