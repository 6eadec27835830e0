// The daemon's side of keeping Git true: one Git operation at a time in its clone (a pass's
// write-back, the pull, a retry), the pull (fast-forward, or a rebase of local commits onto the
// upstream), and the retry of pending write-backs — after every pass of a cluster, on its own
// backoff timer (250 ms doubling, capped at 2 s: a commit reaches the remote within about 2 s of
// it coming back), and at once when a pull succeeds after failing (the remote is back). What is
// still pending is reported for WriteBackPending.
import type { Logger } from 'pino';
import type { ClusterSpec } from '../core/model.js';
import type { StatePort, WriteBackRetryRequest, WriteBackRetryResult } from '../core/ports.js';
import type { PendingWriteBack } from '../core/state.js';
import { redactSecrets } from '../core/write-back.js';
import { retryPendingWriteBacks, type RetryOutcome } from '../engine/write-back.js';
import { pullUpstream, RebaseConflict, retryWriteBack, type PullResult } from '../adapters/git-sync.js';
import { REAL_TIMERS, type LoopTimers } from './loop.js';

export interface GitKeeperDeps {
  readonly repoDir: string;
  readonly log: Logger;
  /** The state the records live in (the coordinator's). */
  readonly state: StatePort;
  /** May this daemon act on the cluster now? Asked before each attempt. */
  readonly mayAct: (cluster: string) => boolean | Promise<boolean>;
  /** After a pull moved HEAD: reload the files. */
  readonly reload: (reason: string) => Promise<void>;
  /** The text a retry's edit wrote: our own, not a human's change. */
  readonly onSelfWrite: (file: string, text: string) => void;
  /** What is still pending for the cluster after an attempt (empty: nothing). */
  readonly onPending: (cluster: string, pending: readonly PendingWriteBack[]) => void;
  /**
   * With a coordinator that fences (etcd): runs one retry holding the cluster, with the state and the
   * check that hold gives; undefined when this daemon may not act on it now.
   */
  readonly holding?: <T>(cluster: string, fn: (h: { readonly state: StatePort; readonly mayAct: () => Promise<boolean> }) => Promise<T>) => Promise<T | undefined>;
  readonly timers?: LoopTimers;
  /** Tests: the Git side of one attempt and of the pull. */
  readonly retryWriteBack?: (req: WriteBackRetryRequest) => Promise<WriteBackRetryResult>;
  readonly pullUpstream?: (repoDir: string) => Promise<PullResult>;
}

/** A timer that lets a cluster whose daemon may not act now look again later. */
const NOT_ACTING_RECHECK_MS = 2000;
const MIN_DELAY_MS = 20;

export class GitKeeper {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly specs = new Map<string, ClusterSpec>();
  private readonly timers = new Map<string, unknown>();
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  private readonly forced = new Set<string>();
  /** The last failure logged per file, so a remote that stays away is one warning, not one per attempt. */
  private readonly lastLogged = new Map<string, string>();
  private lastPullError: string | undefined;
  private pulling = false;
  private stopped = false;
  private readonly t: LoopTimers;

  constructor(private readonly deps: GitKeeperDeps) {
    this.t = deps.timers ?? REAL_TIMERS;
  }

  /** Runs `fn` after every Git operation queued before it (one at a time in the clone). */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Like serial, but waits at most `ms` for the operations queued before it (a fetch or push to a
   * remote that hangs holds the queue for up to 15 s): then `late()` is the answer and `fn` is not
   * run at all. A failover's write-back uses it: the servers are right already, and a write-back
   * that waits too long is left pending for the retry instead of holding the failover open.
   */
  serialWithin<T>(ms: number, fn: () => Promise<T>, late: () => T): Promise<T> {
    let gaveUp = false;
    let started = false;
    let timer: unknown;
    const queued = this.serial(async () => {
      if (gaveUp) return late();
      started = true;
      return fn();
    });
    const timeout = new Promise<T>((resolve) => {
      timer = this.t.setTimeout(() => {
        if (started) return;
        gaveUp = true;
        resolve(late());
      }, ms);
    });
    return Promise.race([queued.finally(() => this.t.clearTimeout(timer)), timeout]);
  }

  /** Fetch, then fast-forward or rebase; a new HEAD reloads the files. Never throws. */
  async pull(): Promise<void> {
    if (this.pulling || this.stopped) return;
    this.pulling = true;
    const wasFailing = this.lastPullError !== undefined;
    try {
      const r = await this.serial(() => (this.deps.pullUpstream ?? pullUpstream)(this.deps.repoDir));
      this.lastPullError = undefined;
      // The remote answers again: every pending write-back is tried now, not at its next backoff step.
      if (wasFailing) for (const cluster of this.specs.keys()) this.start(cluster, true);
      if (r.pulled) {
        this.deps.log.info({ from: r.from.slice(0, 12), to: r.to.slice(0, 12), rebased: r.rebased }, r.rebased > 0 ? `pulled new commits and rebased ${r.rebased} local commit(s) onto them` : 'pulled new commits');
        await this.deps.reload(`pulled ${r.to.slice(0, 12)}`);
      }
    } catch (e) {
      const text = redactSecrets((e as Error).message.split('\n')[0] ?? '');
      const files = e instanceof RebaseConflict ? e.files : undefined;
      // The same failure again (the remote still away) is logged once at warn, then at debug.
      const level = text === this.lastPullError ? 'debug' : 'warn';
      this.lastPullError = text;
      this.deps.log[level]({ ...(files ? { conflicts: files } : {}) }, `git pull failed: ${text}`);
    } finally {
      this.pulling = false;
    }
  }

  /** Try the cluster's pending write-backs now if any is due (after a pass), then on the backoff timer. */
  kick(spec: ClusterSpec): void {
    if (this.stopped) return;
    this.specs.set(spec.cluster, spec);
    this.start(spec.cluster, false);
  }

  private start(cluster: string, force: boolean): void {
    if (this.stopped) return;
    if (this.running.has(cluster)) {
      this.again.add(cluster);
      if (force) this.forced.add(cluster);
      return;
    }
    void this.run(cluster, force);
  }

  /** The cluster is no longer managed here. */
  forget(cluster: string): void {
    this.specs.delete(cluster);
    this.clearTimer(cluster);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of [...this.timers.keys()]) this.clearTimer(c);
    await this.chain;
  }

  private clearTimer(cluster: string): void {
    const h = this.timers.get(cluster);
    if (h !== undefined) this.t.clearTimeout(h);
    this.timers.delete(cluster);
  }

  private async run(cluster: string, force = false): Promise<void> {
    const spec = this.specs.get(cluster);
    if (!spec || this.stopped) return;
    this.clearTimer(cluster);
    this.running.add(cluster);
    let delay: number | undefined;
    try {
      const attempt = (state: StatePort, mayAct: () => boolean | Promise<boolean>) =>
        retryPendingWriteBacks(
          spec,
          {
            now: this.t.now,
            sleep: (ms) => new Promise((r) => this.t.setTimeout(() => r(), ms)),
            state,
            mayAct,
            // Asked again when its turn comes: the queue may have held it behind a slow fetch.
            retryWriteBack: (req) =>
              this.serial(async (): Promise<WriteBackRetryResult> => ((await mayAct()) ? (this.deps.retryWriteBack ?? retryWriteBack)({ ...req, edit: (text) => this.recorded(req.file, req.edit(text)) }) : { kind: 'failed', error: 'this daemon may no longer act on the cluster' })),
          },
          this.deps.repoDir,
          { force },
        );
      const holding = this.deps.holding;
      const report = holding
        ? await holding(cluster, (h) => attempt(h.state, async () => (await this.deps.mayAct(cluster)) && (await h.mayAct())))
        : await attempt(this.deps.state, () => this.deps.mayAct(cluster));
      if (report === undefined) {
        // Not leading it now (or a command holds it): look again later.
        delay = NOT_ACTING_RECHECK_MS;
      } else {
        for (const o of report.outcomes) this.logOutcome(cluster, o);
        this.deps.onPending(cluster, report.pending);
        if (report.outcomes.some((o) => o.kind === 'not-acting')) delay = NOT_ACTING_RECHECK_MS;
        else if (report.nextAt !== undefined) delay = Math.max(MIN_DELAY_MS, report.nextAt - this.t.now());
      }
    } catch (e) {
      // The state could not be read or written: look again at the capped interval.
      this.deps.log.warn({ cluster }, `retrying the pending write-backs failed: ${redactSecrets((e as Error).message)}`);
      delay = NOT_ACTING_RECHECK_MS;
    } finally {
      this.running.delete(cluster);
    }
    if (this.stopped) return;
    if (this.again.delete(cluster)) {
      const again = this.forced.delete(cluster);
      this.timers.set(cluster, this.t.setTimeout(() => void this.run(cluster, again), 0));
      return;
    }
    if (delay !== undefined) this.timers.set(cluster, this.t.setTimeout(() => void this.run(cluster), delay));
  }

  private recorded(file: string, text: string): string {
    this.deps.onSelfWrite(file, text);
    return text;
  }

  private logOutcome(cluster: string, o: RetryOutcome): void {
    const log = this.deps.log;
    switch (o.kind) {
      case 'pushed':
        this.lastLogged.delete(o.file);
        log.warn({ cluster, file: o.file, commit: o.commit.slice(0, 12) }, `the pending write-back of ${o.file} is pushed`);
        return;
      case 'already':
        this.lastLogged.delete(o.file);
        log.warn({ cluster, file: o.file, upstream: o.upstream.slice(0, 12) }, `the pending write-back of ${o.file} was already on the upstream (someone pushed the same change): dropped`);
        return;
      case 'failed': {
        const level = this.lastLogged.get(o.file) === o.error ? 'debug' : 'warn';
        this.lastLogged.set(o.file, o.error);
        log[level]({ cluster, file: o.file, attempts: o.attempts }, `the write-back of ${o.file} is still not pushed: ${o.error}`);
        return;
      }
      case 'not-due':
      case 'not-acting':
        return;
    }
  }
}
