// `topogit watch`: keeps the live servers and the Git repository in agreement. Files come from the
// working tree (chokidar, debounced) and from the upstream (pulls: a fast-forward, or a rebase of
// unpushed local commits); one loop per cluster does the work; a lease decides which of several
// daemons acts; HTTP reports health.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { formatIssue, loadTopologies, resolveCredentials } from '../config/load.js';
import { committedText, headCommit, recentCommits } from '../adapters/git.js';
import { describePendingWriteBack } from '../core/write-back.js';
import { GitKeeper } from './git-keeper.js';
import { clusterHistory, type CommitText, type HistoryEntry } from '../core/history.js';
import { HeldConnections } from '../adapters/mysql/held.js';
import { failoverPorts } from '../adapters/ports.js';
import type { StatePort, Timeouts, WriteBackResult } from '../core/ports.js';
import { reconcileOnce } from '../engine/reconcile.js';
import { startHttp } from './http.js';
import { guardedOpen, type ClusterHold, type Coordinator } from '../coordination/coordinator.js';
import { ClusterLoop, type PassRequest } from './loop.js';
import { committedTextWanted, issuesByFile, loadedFiles, planReload, type FileState, type ReloadAction, type ReloadFacts } from './reload.js';
import { Metrics } from './metrics.js';
import type { ClusterSnapshot, DaemonSnapshot } from './model.js';

export interface WatchOptions {
  readonly repoDir: string;
  readonly topologies: string;
  readonly env: NodeJS.ProcessEnv;
  readonly timeouts: Timeouts;
  readonly log: Logger;
  /** token: needed by the page and the API (--http-token-file); commitUrl: commit links on the page. */
  readonly http?: { readonly host: string; readonly port: number; readonly token?: string; readonly commitUrl?: string };
  readonly pullIntervalMs: number;
  readonly debounceMs?: number;
  /** Who may act on which cluster, and where the state lives (`--coordinator`). */
  readonly coordinator: Coordinator;
  /** This daemon's name among the others (`--name`, default host:pid). */
  readonly name: string;
}

export interface RunningDaemon {
  readonly httpAddress?: { host: string; port: number };
  snapshot(): DaemonSnapshot;
  reload(reason: string): Promise<void>;
  stop(): Promise<void>;
}

/** How long a pass's write-back waits for the clone behind another Git operation. */
const WRITE_BACK_QUEUE_MS = 2000;

export async function startDaemon(o: WatchOptions): Promise<RunningDaemon> {
  const startedAt = new Date().toISOString();
  const metrics = new Metrics();
  const selfWritten = new Map<string, string>(); // file -> text we wrote
  const real = await failoverPorts(o.repoDir, o.env);
  const loops = new Map<string, ClusterLoop>(); // by cluster
  /** Which cluster and instance an endpoint is, for the held connections' events and counts. */
  const whose = (e: { host: string; port: number }) => {
    for (const l of loops.values()) {
      const i = l.spec.instances.find((x) => x.host === e.host && x.port === e.port);
      if (i) return { loop: l, instance: i.name };
    }
    return undefined;
  };
  // One held connection per instance: probes without a handshake, and a closed connection (a
  // killed or stopped server) is a reason to look at its cluster now, not at the next interval.
  const held = new HeldConnections({
    onLost: (e, why) => {
      const w = whose(e);
      if (!w || stopping) return;
      o.log.info({ cluster: w.loop.spec.cluster, instance: w.instance, why }, `connection to ${w.instance} lost: looking at ${w.loop.spec.cluster} now`);
      w.loop.trigger(`connection to ${w.instance} lost (${why})`);
    },
    onStatements: (e, kind, n) => {
      const w = whose(e);
      if (w) metrics.statements(w.loop.spec.cluster, w.instance, kind, n);
    },
  });
  // Git in the daemon's clone: one operation at a time (a pass's write-back, the pull, the retry
  // of pending write-backs, which runs after every pass and on its own backoff timer).
  const keeper = new GitKeeper({
    repoDir: o.repoDir,
    log: o.log,
    state: o.coordinator.state,
    mayAct: (cluster) => elections.leads(cluster) && !stopping,
    // With etcd a retry holds the cluster like a pass: proven before each attempt, its state writes fenced.
    ...(o.coordinator.kind === 'etcd'
      ? { holding: <T>(cluster: string, fn: (h: { state: StatePort; mayAct: () => Promise<boolean> }) => Promise<T>) => elections.pass(cluster, (hold) => fn({ state: o.coordinator.stateFor(hold), mayAct: () => hold.confirm() })) }
      : {}),
    reload: (reason) => reload(reason),
    onSelfWrite: (file, text) => selfWritten.set(file, text),
    onPending: (cluster, pending) => {
      loops.get(cluster)?.setCondition('WriteBackPending', pending.length > 0, pending.length > 0 ? pending.map(describePendingWriteBack).join('; ') : 'every write-back is on the upstream');
      metrics.setWriteBackPending(cluster, pending.length);
      requestPublish(cluster);
    },
  });
  // Our own write-back must not look like a human's commit when the watcher sees the file change:
  // remember the text before it reaches the disk.
  const ports = {
    ...real,
    state: o.coordinator.state,
    probe: held.probe,
    // A pass's write-back waits at most WRITE_BACK_QUEUE_MS behind a slow Git operation; then it
    // is left pending (the failover finishes) and the keeper pushes it.
    writeBack: (req: Parameters<typeof real.writeBack>[0]) =>
      keeper.serialWithin(
        WRITE_BACK_QUEUE_MS,
        () =>
          real.writeBack({
            ...req,
            edit: (text: string) => {
              const out = req.edit(text);
              selfWritten.set(req.file, out);
              return out;
            },
          }),
        (): WriteBackResult => ({ kind: 'failed', error: `another Git operation held the clone for ${WRITE_BACK_QUEUE_MS} ms (a remote that does not answer?): left pending`, attempts: 0 }),
      ),
  };
  const topoDir = path.resolve(o.repoDir, o.topologies);
  // The page's history comes from Git: topogit's own commits under the topology directory, read
  // after every reload (a pull, a write-back, a human's edit); an older read never replaces a newer one.
  let commits: CommitText[] = [];
  let historyReads = 0;
  let historyShown = 0;
  const refreshHistory = async (): Promise<void> => {
    const n = ++historyReads;
    const read = await recentCommits(o.repoDir, o.topologies, 200).catch(() => undefined);
    if (read === undefined || n < historyShown) return;
    historyShown = n;
    commits = read;
    requestPublish();
  };
  // Open pages are told after the work that observed something, never inside it: one deferred,
  // coalesced publish per tick, and only of the clusters observed ('' for all).
  let publishTo: ((cluster?: string) => void) | undefined;
  const toPublish = new Set<string>();
  const requestPublish = (cluster = ''): void => {
    if (!publishTo) return;
    if (toPublish.size === 0) {
      setImmediate(() => {
        const names = [...toPublish];
        toPublish.clear();
        if (names.includes('')) publishTo?.();
        else for (const n of names) publishTo?.(n);
      });
    }
    toPublish.add(cluster);
  };
  const files = new Map<string, FileState>(); // by file path relative to repoDir
  let loaded = false;
  let stopping = false;

  // Who acts on which cluster: with the file coordinator one lease for all of them, with etcd a
  // leader per cluster spread across the daemons. A pass holds its cluster (`holds`): every step
  // is proven to the coordinator first, and the state it writes is fenced by the same hold.
  const holds = new Map<string, ClusterHold>();
  const elections = await o.coordinator.elections({
    name: o.name,
    // A cluster with a failover journal open is not handed over (a pass in flight never is).
    busy: (cluster) => loops.get(cluster)?.failoverInProgress === true,
    onChange: (cluster, leads, why) => {
      for (const c of cluster === '' ? [...loops.keys()] : [cluster]) metrics.setLeads(c, leads);
      if (cluster === '') o.log.warn({ role: leads ? 'active' : 'standby' }, why);
      else o.log.warn({ cluster, leads, coordinator: o.coordinator.kind }, why);
      if (leads && cluster !== '') loops.get(cluster)?.trigger('this daemon leads it now');
      requestPublish(cluster);
    },
    onHealth: (healthy, problem) => {
      metrics.setCoordinatorUp(healthy);
      if (healthy) o.log.warn({ coordinator: o.coordinator.kind }, 'the coordinator answers: this daemon acts on the clusters it leads');
      else o.log.error({ coordinator: o.coordinator.kind, problem }, `cannot reach the coordinator: not acting on any cluster until it answers (${problem})`);
      requestPublish();
    },
  });
  await elections.start();
  metrics.setCoordinatorUp(elections.view().healthy);

  const loopDeps = {
    env: o.env,
    timeouts: o.timeouts,
    probe: ports.probe,
    metrics,
    readState: (cluster: string) => ports.state.read(cluster),
    reconcile: (p: PassRequest) => {
      const hold = holds.get(p.spec.cluster);
      return reconcileOnce({
        spec: p.spec,
        ctx: { admin: p.credentials.admin, replication: p.credentials.replication, timeouts: o.timeouts },
        ports: hold ? { ...ports, open: guardedOpen(ports.open, hold), state: o.coordinator.stateFor(hold), mayAct: () => hold.confirm() } : { ...ports, mayAct: async () => false },
        repoDir: o.repoDir,
        allowSwitchover: p.allowSwitchover,
        ...(p.detectedAt !== undefined ? { detectedAt: p.detectedAt } : {}),
        onEvent: p.onEvent,
      }).finally(() => keeper.kick(p.spec));
    },
    isActive: (cluster: string) => elections.leads(cluster) && !stopping,
    standbyReason: (cluster: string) => elections.whyNot(cluster),
    withClusterLock: <T>(cluster: string, fn: () => Promise<T>): Promise<T | undefined> =>
      elections.pass(cluster, async (hold) => {
        holds.set(cluster, hold);
        try {
          return await fn();
        } finally {
          holds.delete(cluster);
        }
      }),
    // The write-back's own edit recorded the text it wrote (ports.writeBack above); recording it
    // again here, after a reload may already have used the record up, would make a human's later
    // commit of the same text look like ours. Only the history is read again.
    onSelfWrite: async (_file: string) => {
      void refreshHistory();
    },
    onObserved: (cluster: string) => requestPublish(cluster),
    watched: () => (http?.clients ?? 0) > 0,
    headCommit: () => headCommit(o.repoDir),
  };

  const apply = async (a: ReloadAction, reason: string): Promise<void> => {
    switch (a.kind) {
      case 'invalid':
        if (a.cluster !== undefined) {
          loops.get(a.cluster)?.setCondition('FileInvalid', true, a.issues.join('; '));
          metrics.setFileValid(a.cluster, false);
        }
        o.log.error({ file: a.file, issues: a.issues }, `${a.file} does not validate; its cluster keeps its last valid version`);
        return;
      case 'stop':
        await loops.get(a.cluster)?.stop();
        loops.delete(a.cluster);
        keeper.forget(a.cluster);
        metrics.forgetCluster(a.cluster);
        if (a.why === 'renamed') o.log.warn({ file: a.file }, `${a.file} renamed cluster ${a.cluster} to ${a.to}`);
        else o.log.warn({ file: a.file }, `${a.file} was removed: cluster ${a.cluster} is no longer managed`);
        return;
      case 'start': {
        metrics.setFileValid(a.spec.cluster, true);
        metrics.setLeads(a.spec.cluster, elections.leads(a.spec.cluster));
        const l = new ClusterLoop(a.spec, { ...loopDeps, log: o.log.child({ cluster: a.spec.cluster }) });
        l.setCondition('FileInvalid', false, 'file valid');
        loops.set(a.spec.cluster, l);
        l.start();
        o.log.info({ file: a.file, instances: a.spec.instances.length }, `managing cluster ${a.spec.cluster}`);
        return;
      }
      case 'valid':
      case 'update': {
        metrics.setFileValid(a.spec.cluster, true);
        const loop = loops.get(a.spec.cluster);
        loop?.setCondition('FileInvalid', false, 'file valid');
        if (a.kind === 'valid') return;
        loop?.update(a.spec, a.byHuman, a.committed);
        const ours = !a.byHuman;
        o.log.info({ file: a.file, reason, ownWriteBack: ours, committed: a.committed }, ours ? `${a.file}: our own write-back, no pass of its own` : `${a.file} changed: reconciling`);
        return;
      }
    }
  };

  const reloadNow = async (reason: string): Promise<void> => {
    if (stopping) return;
    let result;
    try {
      result = await loadTopologies([topoDir], { env: o.env, cwd: o.repoDir });
    } catch (e) {
      o.log.error({ reason }, `cannot load topology files: ${(e as Error).message}`);
      return;
    }
    const issues = issuesByFile(result.issues.map((i) => ({ file: i.file, line: formatIssue(i) })));
    const texts = new Map(
      await Promise.all(loadedFiles({ specs: result.specs, issues }).map(async (f) => [f, await readFile(path.resolve(o.repoDir, f), 'utf8').catch(() => undefined)] as const)),
    );
    const facts: ReloadFacts = { files, running: new Set(loops.keys()), specs: result.specs, issues, texts, selfWritten };
    const committed = new Map(await Promise.all(committedTextWanted(facts).map(async (f) => [f, await committedText(o.repoDir, f)] as const)));
    const plan = planReload({ ...facts, committed: (f) => committed.get(f) });
    for (const f of plan.consumed) selfWritten.delete(f);
    files.clear();
    for (const [f, st] of plan.files) files.set(f, st);
    for (const a of plan.actions) await apply(a, reason);
    // Connections to servers (or logins) no file names any more are closed.
    held.retain(
      [...loops.values()].flatMap((l) => {
        try {
          const { admin } = resolveCredentials(l.spec, o.env);
          return l.spec.instances.map((i) => ({ endpoint: { host: i.host, port: i.port }, login: admin }));
        } catch {
          return [];
        }
      }),
    );
    elections.setClusters([...loops.keys()]);
    loaded = true;
  };
  // One reload at a time: each decides from what the one before it left.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (reason: string): Promise<void> => {
    const next = reloading.then(() => reloadNow(reason)).finally(() => void refreshHistory());
    reloading = next.catch(() => undefined);
    return next;
  };

  await reload('start');
  await refreshHistory();

  // chokidar: an editor's burst of writes is one reload.
  let debounce: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(topoDir, { ignoreInitial: true, depth: 0, awaitWriteFinish: false });
  watcher.on('all', (_event, p) => {
    if (!/\.ya?ml$/i.test(p)) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => void reload(`file ${path.relative(o.repoDir, p)} changed`), o.debounceMs ?? 200);
  });

  // A `git push` reaches the daemon through pulls of the upstream.
  let pulling = false;
  const pull = async () => {
    // With the file coordinator the daemons share one clone: only the active one pulls.
    if (pulling || stopping || (o.coordinator.kind === 'file' && !elections.leads(''))) return;
    pulling = true;
    try {
      // A fast-forward, or a rebase of unpushed local commits (a pending write-back) onto the upstream.
      await keeper.pull();
    } finally {
      pulling = false;
    }
  };
  const puller = setInterval(() => void pull(), o.pullIntervalMs);

  // Each cluster's history, recomputed only when the commits or its switchovers change.
  const historyMemo = new Map<string, { commits: CommitText[]; switchovers: readonly HistoryEntry[]; entries: HistoryEntry[] }>();
  const historyOf = (cluster: string, switchovers: readonly HistoryEntry[]): HistoryEntry[] => {
    const m = historyMemo.get(cluster);
    if (m && m.commits === commits && m.switchovers === switchovers) return m.entries;
    const entries = clusterHistory(cluster, commits, switchovers);
    historyMemo.set(cluster, { commits, switchovers, entries });
    return entries;
  };

  const snapshot = (): DaemonSnapshot => {
    const clusters: ClusterSnapshot[] = [...loops.values()].map((l) => {
      const f = [...files.values()].find((x) => x.spec?.cluster === l.spec.cluster);
      return {
        name: l.spec.cluster,
        file: l.spec.file,
        view: l.view,
        analysis: l.analysis,
        conditions: l.conditions,
        lastPass: l.lastPass,
        lastFailover: l.lastFailover,
        fileValid: (f?.issues.length ?? 0) === 0,
        fileIssues: f?.issues ?? [],
        driftCount: l.driftCount,
        shapes: l.report?.shapes ?? [],
        failover: l.report?.failover ?? null,
        drift: l.driftSteps,
        history: historyOf(l.spec.cluster, l.switchovers),
        routers: l.routers,
      };
    });
    const coordination = elections.view();
    const role = o.coordinator.kind === 'file' ? (elections.leads('') ? 'active' : 'standby') : coordination.clusters.some((c) => c.mine) ? 'active' : 'standby';
    return { startedAt, ready: loaded && [...loops.values()].every((l) => l.probedOnce), role, clusters, coordination };
  };

  const http = o.http
    ? await startHttp({
        host: o.http.host,
        port: o.http.port,
        snapshot,
        metrics,
        page: o.http.commitUrl ? { commitUrl: o.http.commitUrl } : {},
        ...(o.http.token ? { token: o.http.token } : {}),
      })
    : undefined;
  if (http) {
    publishTo = (cluster) => http.publish(cluster);
    o.log.info({ address: http.address, token: o.http?.token ? 'required' : 'none' }, `http on http://${http.address.host}:${http.address.port} (status page at /)`);
  }

  return {
    ...(http ? { httpAddress: http.address } : {}),
    snapshot,
    reload,
    async stop() {
      // Stop taking new work, let each loop finish the step in flight, then close everything.
      stopping = true;
      clearInterval(puller);
      if (debounce) clearTimeout(debounce);
      await watcher.close();
      await Promise.all([...loops.values()].map((l) => l.stop()));
      await keeper.stop();
      await http?.close();
      await held.close();
      await elections.stop();
    },
  };
}
