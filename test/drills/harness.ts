// Fault drills: a fresh sandbox, its topology in a repository with a bare remote, a real `topogit
// watch` daemon, a real HAProxy that the daemon keeps on the primary (the file's routing section),
// a writer that inserts numbered rows through HAProxy's writer frontend as an application would
// (about 50 a second, every acknowledged id recorded) and a sampler that reads read_only
// on every instance every 50 ms. A drill injects one fault and reports what an operator would ask.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { startFleet, TEST_PASSWORD, type Fleet } from '../integration/fleet.js';
import { primaryOfText, withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { startHaproxy, type RunningHaproxy } from '../../src/adapters/sandbox/haproxy.js';
import { isShapedDrill, runShapedDrill } from './shaped-drills.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin', 'topogit.js');

export type DrillKind = 'kill' | 'stop' | 'freeze' | 'partition' | 'kill-two' | 'daemon-crash' | 'errant' | 'semisync' | 'maintenance' | ShapedDrillKind;
/** The drills of test/drills/shaped-drills.ts: each shapes the topology (or the links) before its fault. */
export type ShapedDrillKind = 'minority' | 'reset' | 'intermediate' | 'delayed' | 'semisync-lagging' | 'restart';

export interface DrillReport {
  readonly drill: DrillKind;
  readonly run: number;
  readonly detail: string;
  readonly failedOver: boolean;
  readonly detectionMs: number | null;
  readonly writableMs: number | null;
  readonly repointedMs: number | null;
  readonly commitMs: number | null;
  /** Samples in which two instances were writable at once. Must be zero. */
  readonly twoWritableSamples: number;
  readonly ackedWrites: number;
  /** The writer had a write acknowledged by the primary after the fault (before the report was made). */
  readonly writesResumed: boolean;
  /** Acknowledged ids missing on the primary at the end (exact list in `missingIds`). */
  readonly missingAcked: number;
  readonly missingIds: readonly number[];
  /** Instances that should replicate from the primary but do not, at the end. Must be zero. */
  readonly replicasLeftBehind: number;
  /** Failovers that should not have happened. Must be zero. */
  readonly unexpectedFailovers: number;
  readonly ok: boolean;
}

interface LogLine {
  time: number;
  msg?: string;
  step?: string;
  analysis?: string;
}

export class DrillEnv {
  fleet!: Fleet;
  hosts: Record<string, string> = {};
  daemon?: ChildProcess;
  daemonLog = '';
  port = 0;
  private writerStop = false;
  private samplerStop = false;
  private acked: number[] = [];
  /** The last id each instance acknowledged. */
  private lastAck = new Map<string, number>();
  private nextId = 1;
  /** read_only samples taken so far. */
  samples = 0;
  /** The application's one way in: HAProxy's writer frontend, which topogit keeps on the primary. */
  haproxy?: RunningHaproxy;
  frontend = '';
  private app?: { c: mysql.Connection; server: string };
  twoWritable = 0;
  private loops: Promise<void>[] = [];

  constructor(
    readonly baseOctet: number,
    readonly intervalMs = 1000,
  ) {}

  get ops(): string {
    return path.join(this.fleet.dir, 'ops');
  }
  get bare(): string {
    return path.join(this.fleet.dir, 'remote.git');
  }
  git(cwd: string, ...args: string[]) {
    return exec('git', args, { cwd, env: { ...process.env, ...this.fleet.env, GIT_AUTHOR_NAME: 'drill', GIT_AUTHOR_EMAIL: 'drill@localhost', GIT_COMMITTER_NAME: 'drill', GIT_COMMITTER_EMAIL: 'drill@localhost' } });
  }

  async setup(): Promise<void> {
    this.fleet = await startFleet({ cluster: 'drill', instances: 3, baseOctet: this.baseOctet });
    this.hosts = { db001: `127.0.0.${this.baseOctet}`, db002: `127.0.0.${this.baseOctet + 1}`, db003: `127.0.0.${this.baseOctet + 2}` };
    const work = path.join(this.fleet.dir, 'work');
    await exec('git', ['init', '-q', '--bare', '-b', 'main', this.bare]);
    await exec('git', ['clone', '-q', this.bare, work]);
    await mkdir(path.join(work, 'topologies'), { recursive: true });
    // HAProxy in front of the servers (the first free address after them, 4 up: .110 is the
    // minority drill's forwarder): the writer writes through it, as an application would.
    this.frontend = `127.0.0.${this.baseOctet + 4}`;
    this.haproxy = await startHaproxy({
      dir: path.join(this.fleet.dir, 'haproxy'),
      runtime: { host: this.frontend, port: 9999 },
      writer: { bind: { host: this.frontend, port: 3306 }, backend: 'mysql_rw' },
      servers: Object.entries(this.hosts).map(([name, host]) => ({ name, host, port: 3306 })),
      primary: 'db001',
    });
    const text = withFailover(await readFile(path.join(this.fleet.dir, 'topologies', 'drill.yaml'), 'utf8'), `  auto: true\n  blockSeconds: 0\n  detection: { intervalMs: ${this.intervalMs} }\n`);
    await writeFile(path.join(work, 'topologies', 'drill.yaml'), `${text}routing:\n  - haproxy: ${this.frontend}:9999\n    writer: mysql_rw\n`);
    await writeFile(path.join(work, '.gitignore'), '.topogit/\n');
    await this.git(work, 'add', '.');
    await this.git(work, 'commit', '-qm', 'drill');
    await this.git(work, 'push', '-q', 'origin', 'main');
    await exec('git', ['clone', '-q', this.bare, this.ops]);
    await this.sql('db001', 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.drill (id INT PRIMARY KEY)');
  }

  async sql(name: string, ...statements: string[]): Promise<unknown[]> {
    return this.fleet.sql(this.hosts[name] as string, ...statements);
  }

  /** `as.gid`: the daemon's group (still root otherwise), which nftables can match (`meta skgid`). */
  async startDaemon(extraEnv: NodeJS.ProcessEnv = {}, args: string[] = [], as: { gid?: number } = {}): Promise<void> {
    // One log across restarts, so phase times are read from the daemon that finished the work.
    const logStart = this.daemonLog.length;
    const child = spawn(process.execPath, [bin, ...args, 'watch', '--http', '127.0.0.1:0', '--pull-interval', '1000'], {
      cwd: this.ops,
      env: { ...process.env, ...this.fleet.env, TOPOGIT_LOG_JSON: '1', GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@x', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@x', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...as,
    });
    child.stdout?.on('data', (d: Buffer) => (this.daemonLog += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.daemonLog += d.toString()));
    this.daemon = child;
    const HTTP_LINE = /http on http:\/\/127\.0\.0\.1:(\d+)/;
    const log = await waitFor('the daemon to log its HTTP address', () => this.daemonLog.slice(logStart), (l) => HTTP_LINE.test(l), 15_000);
    this.port = Number(HTTP_LINE.exec(log)?.[1]);
    await waitFor('the daemon to answer /readyz with 200', () => this.get('/readyz'), (r) => r.status === 200, 15_000);
  }

  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill(signal);
    await exited;
  }

  async get(p: string): Promise<{ status: number; body: string }> {
    const r = await fetch(`http://127.0.0.1:${this.port}${p}`);
    return { status: r.status, body: await r.text() };
  }

  async primaryFromDaemon(): Promise<string | null> {
    try {
      const j = JSON.parse((await this.get('/api/clusters')).body) as { clusters: { primary: string | null }[] };
      return j.clusters[0]?.primary ?? null;
    } catch {
      return null;
    }
  }

  /**
   * The application's connection, through HAProxy's writer frontend, and the server it reached
   * (asked once per connection: HAProxy keeps a connection on one server; topogit cuts it when
   * that server stops being the primary).
   */
  private async appConnection(): Promise<{ c: mysql.Connection; server: string }> {
    if (this.app) return this.app;
    // The application's user: it cannot write to a read-only server, as a real application.
    const c = await mysql.createConnection({ host: this.frontend, port: 3306, user: 'app', password: TEST_PASSWORD, connectTimeout: 500 });
    c.on('error', () => {
      if (this.app?.c === c) this.app = undefined;
    });
    try {
      const [rows] = (await c.query({ sql: 'SELECT @@server_id AS id', timeout: 1000 })) as unknown as [{ id: number }[]];
      const server = `db${String(Number(rows[0]?.id)).padStart(3, '0')}`;
      this.app = { c, server };
      return this.app;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }



  /** About 50 writes a second through HAProxy's writer frontend, which topogit keeps on the primary. */
  startWriter(): void {
    this.writerStop = false;
    this.loops.push(
      (async () => {
        while (!this.writerStop) {
          const id = this.nextId++;
          try {
            const app = await this.appConnection();
            await app.c.query({ sql: 'INSERT INTO topogit_demo.drill (id) VALUES (?)', values: [id], timeout: 1000 });
            this.acked.push(id);
            this.lastAck.set(app.server, id);
          } catch {
            this.app?.c.destroy();
            this.app = undefined;
          }
          await new Promise((r) => setTimeout(r, 20)); // pacing: about 50 writes a second is the load the drill applies
        }
      })(),
    );
  }

  /** read_only of every instance every 50 ms: two writable at once is the one thing never allowed. */
  startSampler(): void {
    this.samplerStop = false;
    const sampleConns = new Map<string, mysql.Connection>();
    this.loops.push(
      (async () => {
        while (!this.samplerStop) {
          const ro = await Promise.all(
            Object.keys(this.hosts).map(async (n) => {
              try {
                let c = sampleConns.get(n);
                if (!c) {
                  c = await mysql.createConnection({ host: this.hosts[n], port: 3306, user: 'topogit', password: TEST_PASSWORD, connectTimeout: 200 });
                  c.on('error', () => sampleConns.delete(n));
                  sampleConns.set(n, c);
                }
                const [rows] = (await c.query({ sql: 'SELECT @@read_only AS ro', timeout: 200 })) as unknown as [{ ro: number }[]];
                return Number(rows[0]?.ro);
              } catch {
                sampleConns.get(n)?.destroy();
                sampleConns.delete(n);
                return null;
              }
            }),
          );
          if (ro.filter((x) => x === 0).length >= 2) this.twoWritable++;
          this.samples++;
          await new Promise((r) => setTimeout(r, 50)); // sampling period: read_only every 50 ms is what the drill measures
        }
        for (const c of sampleConns.values()) c.destroy();
      })(),
    );
  }

  async stopLoad(): Promise<void> {
    this.writerStop = true;
    this.samplerStop = true;
    await Promise.all(this.loops);
    this.loops = [];
    this.app?.c.destroy();
    this.app = undefined;
  }

  failoverCommits = async (): Promise<number> => {
    const { stdout } = await exec('git', ['--git-dir', this.bare, 'log', '--format=%s', 'main']);
    return stdout.split('\n').filter((s) => s.startsWith('failover(')).length;
  };

  /** The file's primary in the bare remote (what Git says now). */
  async primaryInGit(): Promise<string> {
    const { stdout } = await exec('git', ['--git-dir', this.bare, 'show', 'main:topologies/drill.yaml']);
    return primaryOfText(stdout);
  }

  /** Phase times from the daemon's log, relative to `t0`. */
  phases(t0: number, fromOffset = 0): Pick<DrillReport, 'detectionMs' | 'writableMs' | 'repointedMs' | 'commitMs'> {
    const lines = this.daemonLog
      .slice(fromOffset)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
    const at = (p: (l: LogLine) => boolean) => {
      const t = lines.find(p)?.time;
      return t === undefined ? null : t - t0;
    };
    return {
      detectionMs: at((l) => l.analysis === 'DeadPrimary' || l.analysis === 'DeadPrimaryAndSomeReplicas'),
      writableMs: at((l) => l.step === 'promoted'),
      repointedMs: at((l) => l.step === 'repointed'),
      commitMs: at((l) => l.step === 'written-back'),
    };
  }

  /** Acknowledged ids missing on the primary once replication settled. */
  async missing(primary: string): Promise<number[]> {
    const rows = (await this.sql(primary, 'SELECT id FROM topogit_demo.drill')) as { id: number }[];
    const have = new Set(rows.map((r) => r.id));
    return this.acked.filter((id) => !have.has(id));
  }

  get ackedCount(): number {
    return this.acked.length;
  }

  /** Every acknowledged id so far, in the order acknowledged. */
  get ackedIds(): readonly number[] {
    return this.acked;
  }

  /** The id the writer will use next: every id from it on was written after this moment. */
  get nextWriteId(): number {
    return this.nextId;
  }

  /** The last id `name` acknowledged (0: none). */
  lastAckedOn(name: string): number {
    return this.lastAck.get(name) ?? 0;
  }

  /** How many passes the daemon's cluster loop has finished (its last pass id is `drill-<n>`). */
  async passes(): Promise<number> {
    const j = JSON.parse((await this.get('/api/clusters')).body) as { clusters: { lastPass: { id: string } | null }[] };
    const id = j.clusters[0]?.lastPass?.id ?? 'drill-0';
    return Number(id.slice(id.lastIndexOf('-') + 1));
  }

  /** The health word /api/clusters gives `name` now ('' when the daemon does not show it). */
  async healthOf(name: string): Promise<string> {
    const j = JSON.parse((await this.get('/api/clusters')).body) as { clusters: { tree: { name: string; health: string }[] }[] };
    return j.clusters[0]?.tree.find((i) => i.name === name)?.health ?? '';
  }

  /** Why automatic failover is blocked, as /api/clusters says (its FailoverBlocked condition), or ''. */
  async blockedReason(): Promise<string> {
    const j = JSON.parse((await this.get('/api/clusters')).body) as { clusters: { conditions: { type: string; status: boolean; reason: string }[] }[] };
    const c = j.clusters[0]?.conditions.find((x) => x.type === 'FailoverBlocked');
    return c?.status ? c.reason : '';
  }

  /** Commits and pushes a `failover.fence` command to the topology, and waits until the daemon pulled it. */
  async setFence(command: string): Promise<void> {
    const work = path.join(this.fleet.dir, 'work');
    await this.git(work, 'pull', '-q', '--ff-only');
    const file = path.join(work, 'topologies', 'drill.yaml');
    const text = (await readFile(file, 'utf8')).replace(/^failover:\n/m, `failover:\n  fence:\n    command: [${JSON.stringify(command)}]\n    timeoutSeconds: 10\n`);
    await writeFile(file, text);
    await this.git(work, 'commit', '-qam', 'drill: a fence command');
    await this.git(work, 'push', '-q', 'origin', 'main');
    const offset = this.daemonLog.length;
    await waitFor('the daemon to pull the fence command', async () => this.daemonLog.slice(offset), (l) => l.includes('pulled new commits'), 15_000);
    await this.afterPasses(1, 'with the fence command loaded');
  }

  /** `topogit maintenance drill NAME on|off ...` in the daemon's clone, as an operator would run it. */
  async maintenance(name: string, ...args: string[]): Promise<string> {
    const { stdout } = await exec(process.execPath, [bin, 'maintenance', 'drill', name, ...args], { cwd: this.ops, env: { ...process.env, ...this.fleet.env } });
    return stdout;
  }

  /** Proving a negative: wait until the daemon has decided `n` more times from fresh probes. */
  async afterPasses(n: number, why: string): Promise<void> {
    const from = await this.passes();
    await waitFor(`${n} more passes of the daemon ${why}`, () => this.passes(), (k) => k >= from + n, 15_000 + n * 3 * this.intervalMs);
  }

  /** Members that should replicate from `primary` (all but it and `except`) but do not, with both threads. */
  async leftBehind(primary: string, except: readonly string[] = []): Promise<number> {
    let n = 0;
    for (const name of Object.keys(this.hosts)) {
      if (name === primary || except.includes(name)) continue;
      // Left behind is what this counts (the report's verdict), so a wait that runs out is a count.
      const ok = await waitFor(
        `${name} to replicate from ${primary} with both threads running`,
        async () => {
          const rows = (await this.sql(name, 'SHOW SLAVE STATUS')) as { Master_Host: string; Slave_IO_Running: string; Slave_SQL_Running: string }[];
          const r = rows[0];
          return r ? `${r.Master_Host} IO ${r.Slave_IO_Running} SQL ${r.Slave_SQL_Running}` : 'not replicating';
        },
        (x) => x === `${this.hosts[primary]} IO Yes SQL Yes`,
        20_000,
      ).then(
        () => true,
        (e: Error) => {
          process.stderr.write(`drill: ${e.message}\n`);
          return false;
        },
      );
      if (!ok) n++;
    }
    return n;
  }

  /**
   * Which of `ids` (acknowledged, missing on the new primary) some other survivor holds: a write
   * that a replica had received and the failover threw away. Asynchronous replication may lose the
   * last writes the dead primary acknowledged before it sent them to anyone; it must never lose
   * one that a survivor has. `except`: the dead primary (its unsent writes are its own) and the new one.
   */
  async heldElsewhere(ids: readonly number[], except: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const found: string[] = [];
    for (const name of Object.keys(this.hosts)) {
      if (except.includes(name)) continue;
      const rows = (await this.sql(name, `SELECT id FROM topogit_demo.drill WHERE id IN (${ids.map(Number).join(',')})`).catch(() => [])) as { id: number }[];
      for (const r of rows) found.push(`${r.id} on ${name}`);
    }
    return found;
  }

  /** The daemon's log of the whole drill, kept for reading after a failed run (test-results/ is gitignored). */
  async teardown(name = 'drill'): Promise<void> {
    await mkdir('test-results/drills', { recursive: true }).then(() => writeFile(`test-results/drills/${name}-daemon.log`, this.daemonLog)).catch(() => undefined);
    if (process.env.TOPOGIT_DRILL_LOG) await writeFile(process.env.TOPOGIT_DRILL_LOG, this.daemonLog).catch(() => undefined);
    await this.stopLoad().catch(() => undefined);
    await this.stopDaemon('SIGKILL').catch(() => undefined);
    await this.haproxy?.stop().catch(() => undefined);
    await exec('nft', ['delete', 'table', 'inet', 'topogit_drill']).catch(() => undefined);
    await this.fleet?.down();
  }
}

/**
 * Acknowledged writes missing on the new primary, explained. Asynchronous replication may lose what
 * the dead primary acknowledged and never sent (MariaDB and MySQL acknowledge before sending); a
 * write that another survivor holds was thrown away by the failover (LOST WRITES: a failure). The
 * dead primary keeps its unsent writes, so it must not replicate again (REJOINED: a failure).
 * Call it after the dead primary is back, so that what it kept can be seen.
 */
export async function judgeMissing(env: DrillEnv, missingIds: readonly number[], failed: string, newPrimary: string, alsoDead: readonly string[] = []): Promise<string> {
  if (missingIds.length === 0) return '';
  // Survivors: neither the dead primary nor the new one, nor a replica that died with the primary.
  const survivors = await env.heldElsewhere(missingIds, [failed, newPrimary, ...alsoDead]);
  const own = await env.heldElsewhere(missingIds, Object.keys(env.hosts).filter((n) => n !== failed));
  const replicating = ((await env.sql(failed, 'SHOW SLAVE STATUS').catch(() => [])) as unknown[]).length > 0;
  const parts: string[] = [];
  if (survivors.length > 0) parts.push(`LOST WRITES A SURVIVOR HAD (${survivors.join(', ')})`);
  else parts.push(`${missingIds.length} acknowledged by ${failed} and never sent to a replica (asynchronous replication)${own.length > 0 ? `, kept on ${failed}` : ''}`);
  if (own.length > 0 && replicating) parts.push(`REJOINED ${failed} WITH WRITES NOBODY ELSE HAS`);
  return parts.join('; ');
}

/** Runs one drill on a fresh environment and returns one report per run. */
export async function runDrill(kind: DrillKind, o: { baseOctet: number; repeat?: number; intervalMs?: number }): Promise<DrillReport[]> {
  // The drills that shape the topology first have their own runner (and repeat counts).
  if (isShapedDrill(kind)) return runShapedDrill(kind, o);
  const env = new DrillEnv(o.baseOctet, o.intervalMs ?? 1000);
  const reports: DrillReport[] = [];
  try {
    await env.setup();
    if (kind === 'semisync') {
      for (const n of Object.keys(env.hosts)) {
        // Lossless semi-sync (built into MariaDB since 10.3): a commit is acknowledged only after a
        // replica has it in its relay log. Enabled everywhere, so it holds after a failover too.
        // The source side on the primary only: a replica waiting for acknowledgements itself would
        // stall its applier. topogit moves it with the primary role on failover.
        await env.sql(n, 'SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC', 'SET GLOBAL rpl_semi_sync_master_timeout = 10000', 'SET GLOBAL rpl_semi_sync_slave_enabled = 1');
        if (n === 'db001') await env.sql(n, 'SET GLOBAL rpl_semi_sync_master_enabled = 1');
        else await env.sql(n, 'STOP SLAVE IO_THREAD', 'START SLAVE IO_THREAD');
      }
    }
    await env.startDaemon({}, kind === 'partition' ? ['--local-address', '127.0.0.200'] : []);
    env.startWriter();
    env.startSampler();
    // Under load before the first fault: writes acknowledged and read_only sampled.
    await waitFor('the writer and the sampler to run (20 acknowledged writes, 5 samples)', async () => ({ acked: env.ackedCount, samples: env.samples }), (x) => x.acked >= 20 && x.samples >= 5, 15_000);
    const crashSteps = ['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted'];
    // kill-two: first with the default quorum (one of two replicas left: no majority, no failover),
    // then with a fence command configured (it runs, then the last replica is promoted).
    const repeat = kind === 'kill' ? (o.repeat ?? 10) : kind === 'daemon-crash' ? crashSteps.length : kind === 'kill-two' ? 2 : 1;
    for (let run = 1; run <= repeat; run++) {
      const before = await env.failoverCommits();
      const primary = await env.primaryInGit();
      const offset = env.daemonLog.length;
      let expectFailover = true;
      let detail = '';
      /** The freeze drill: from SIGSTOP to the daemon reporting the primary Unreachable (its "detected"). */
      let unreachableMs: number | null = null;
      let down: string[] = [];
      await new Promise((r) => setTimeout(r, Math.random() * (o.intervalMs ?? 1000))); // random jitter: the fault lands at a random moment of the detection interval, as a real crash would
      const t0 = Date.now();
      const firstIdAfterFault = env.nextWriteId;
      switch (kind) {
        case 'kill':
        case 'semisync':
          await env.fleet.run('sandbox', 'kill', primary);
          down = [primary];
          detail = `SIGKILL ${primary}`;
          break;
        case 'stop':
          await env.fleet.run('sandbox', 'stop', primary);
          down = [primary];
          detail = `clean shutdown of ${primary}`;
          break;
        case 'freeze': {
          expectFailover = false;
          await env.fleet.run('sandbox', 'freeze', primary);
          const frozenAt = Date.now();
          // A frozen server emits no event: the daemon must still report it Unreachable, within one
          // interval plus the query timeout (1000 ms), while it stays frozen.
          unreachableMs = await waitFor(`the daemon to see ${primary} Unreachable`, () => env.healthOf(primary), (h) => h === 'Unreachable', 9_000).then(
            () => Date.now() - frozenAt,
            () => null,
          );
          await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - frozenAt)))); // the fault itself: the primary stays frozen for 10 s
          await env.fleet.run('sandbox', 'thaw', primary);
          const bound = (o.intervalMs ?? 1000) + 1000;
          detail = `SIGSTOP ${primary} for 10 s, then SIGCONT; ${unreachableMs === null ? 'THE FREEZE DID NOT LAND (never reported Unreachable)' : `reported Unreachable after ${unreachableMs} ms (interval + query timeout: ${bound} ms)`}`;
          break;
        }
        case 'partition':
          expectFailover = false;
          // Only the daemon's own source address (127.0.0.200) loses the primary; loopback only.
          await exec('nft', ['add', 'table', 'inet', 'topogit_drill']);
          await exec('nft', ['add', 'chain', 'inet', 'topogit_drill', 'out', '{ type filter hook output priority 0; }']);
          await exec('nft', ['add', 'rule', 'inet', 'topogit_drill', 'out', 'ip', 'saddr', '127.0.0.200', 'ip', 'daddr', env.hosts[primary] as string, 'tcp', 'dport', '3306', 'drop']);
          // The fault must land: the daemon sees the primary Unreachable while its replicas keep it.
          const landed = await waitFor(`the daemon to see ${primary} Unreachable`, () => env.healthOf(primary), (h) => h === 'Unreachable', 8000).then(
            () => true,
            () => false,
          );
          await new Promise((r) => setTimeout(r, 10_000)); // the fault itself: the daemon stays cut off for 10 s
          await exec('nft', ['delete', 'table', 'inet', 'topogit_drill']);
          detail = `daemon cut off from ${primary} for 10 s (nftables drop from 127.0.0.200)${landed ? `; the daemon saw ${primary} Unreachable` : '; THE CUT DID NOT LAND'}`;
          break;
        case 'kill-two': {
          const fence = run === 2;
          if (fence) await env.setFence('mkdir -p .topogit && echo "$TOPOGIT_FAILED_PRIMARY" >> .topogit/fenced.log');
          expectFailover = fence;
          const replica = Object.keys(env.hosts).find((n) => n !== primary) as string;
          await Promise.all([env.fleet.run('sandbox', 'kill', primary), env.fleet.run('sandbox', 'kill', replica)]);
          down = [primary, replica];
          detail = fence ? `SIGKILL ${primary} and ${replica} together; failover.fence set` : `SIGKILL ${primary} and ${replica} together; no majority and no fence command`;
          break;
        }
        case 'daemon-crash': {
          const step = crashSteps[run - 1] as string;
          await env.stopDaemon('SIGTERM');
          await env.startDaemon({ TOPOGIT_FAULT_AFTER: step });
          await env.fleet.run('sandbox', 'kill', primary);
          down = [primary];
          await waitFor(`the daemon to kill itself right after "${step}"`, async () => env.daemon?.signalCode, (s) => s === 'SIGKILL', 20_000);
          await env.startDaemon();
          detail = `SIGKILL ${primary}; the daemon killed right after "${step}", then restarted`;
          break;
        }
        case 'maintenance':
          // An operator restarts the primary on purpose and says so first: no failover.
          expectFailover = false;
          await env.maintenance(primary, 'on', '--reason', 'drill: planned restart');
          await env.fleet.run('sandbox', 'kill', primary);
          down = [primary];
          detail = `maintenance on for ${primary}, then SIGKILL ${primary}`;
          break;
        case 'errant': {
          await env.fleet.run('sandbox', 'kill', primary);
          down = [primary];
          detail = `SIGKILL ${primary}; it comes back with a transaction nobody else has`;
          break;
        }
      }
      let newPrimary = primary;
      if (expectFailover) {
        // No failover at all is the report's verdict (failedOver false, not ok), not an exception.
        const committed = await waitFor('a failover commit on the remote', env.failoverCommits, (n) => n > before, 30_000).then(
          () => true,
          (e: Error) => {
            detail += `; ${e.message}`;
            return false;
          },
        );
        // The push lands a moment before the daemon logs it: wait for the log line too.
        if (committed) await waitFor('the daemon to log "written-back"', async () => env.daemonLog.slice(offset), (l) => l.includes('"step":"written-back"'), 5000);
        newPrimary = await env.primaryInGit();
      } else {
        // No failover must happen: the daemon decides three more times after the fault ended.
        await env.afterPasses(3, 'after the fault ended');
        if (kind === 'kill-two') detail += (await env.blockedReason()).startsWith('quorum:') ? '; blocked: quorum' : '; NOT BLOCKED BY QUORUM';
        if (kind === 'maintenance') {
          // FailoverBlocked must say why (a wait that runs out is the verdict, not an exception).
          const said = await waitFor('FailoverBlocked to name the maintenance', () => env.blockedReason(), (r) => r.startsWith(`${primary} is in maintenance until turned off (drill: planned restart): no failover`), 10_000).then(
            () => true,
            () => false,
          );
          detail += said ? '; blocked: maintenance (FailoverBlocked says so)' : `; NOT BLOCKED BY MAINTENANCE (FailoverBlocked: ${await env.blockedReason()})`;
        }
        // Nothing was promoted: writes resume only when the dead come back (read-only; the daemon
        // makes the file's primary writable again once it is the only one).
        for (const d of down) await env.fleet.run('sandbox', 'start', d);
        down = [];
        if (kind === 'maintenance') {
          // Left read-only while in maintenance; the operator ends it, the daemon makes it writable.
          await env.maintenance(primary, 'off');
          detail += '; started again, then maintenance off';
        }
      }
      if (kind === 'kill-two' && expectFailover) {
        const log = await readFile(path.join(env.ops, '.topogit', 'fenced.log'), 'utf8').catch(() => '');
        detail += log.includes(primary) ? `; the fence command ran for ${primary} first` : '; THE FENCE COMMAND DID NOT RUN';
      }
      const phases = env.phases(t0, offset);
      const failovers = (await env.failoverCommits()) - before;
      // Writes resume: the primary acknowledges a write made after the fault.
      const writesResumed = await waitFor(`${newPrimary} to acknowledge a write made after the fault`, async () => env.lastAckedOn(newPrimary), (id) => id >= firstIdAfterFault, 30_000).then(
        () => true,
        (e: Error) => {
          detail += `; ${e.message}`;
          return false;
        },
      );
      // The acknowledged writes must be on the primary now (before anything comes back).
      const missingIds = await env.missing(newPrimary);
      const downAtFault = [...down];
      let fenced: string[] = [];
      if (kind === 'errant') {
        await env.stopDaemon('SIGTERM');
        await env.fleet.run('sandbox', 'start', primary);
        await env.sql(primary, 'INSERT INTO topogit_demo.drill (id) VALUES (-1)');
        await env.startDaemon();
        fenced = [primary];
        await waitFor(`the returning ${primary} to be fenced read-only`, async () => Number(((await env.sql(primary, 'SELECT @@read_only AS ro')) as { ro: number }[])[0]?.ro), (ro) => ro === 1, 10_000);
        // Never rejoined: the daemon decides three more times with it back, then look.
        await env.afterPasses(3, `with ${primary} back and fenced`);
        const rows = (await env.sql(primary, 'SHOW SLAVE STATUS')) as unknown[];
        if (rows.length > 0) detail += '; REJOINED (must not happen)';
        else detail += '; fenced: read-only, not replicating';
      } else {
        for (const d of down) await env.fleet.run('sandbox', 'start', d);
      }
      const behind = await env.leftBehind(newPrimary, fenced);
      const loss = await judgeMissing(env, missingIds, primary, newPrimary, downAtFault);
      if (loss) detail += `; ${loss}`;
      const report: DrillReport = {
        drill: kind,
        run,
        detail,
        failedOver: failovers > 0,
        ...phases,
        ...(unreachableMs !== null ? { detectionMs: unreachableMs } : {}),
        twoWritableSamples: env.twoWritable,
        ackedWrites: env.ackedCount,
        writesResumed,
        missingAcked: missingIds.length,
        missingIds,
        replicasLeftBehind: behind,
        unexpectedFailovers: expectFailover ? Math.max(0, failovers - 1) : failovers,
        ok: env.twoWritable === 0 && behind === 0 && writesResumed && (expectFailover ? failovers === 1 : failovers === 0) && (kind !== 'semisync' || missingIds.length === 0) && !/REJOINED|LOST WRITES|NOT BLOCKED|DID NOT RUN|DID NOT LAND/.test(detail),
      };
      reports.push(report);
      if (kind === 'errant') break;
    }
  } finally {
    await env.teardown(kind);
  }
  return reports;
}

export function tableRow(r: DrillReport): string {
  const ms = (x: number | null) => (x === null ? '-' : `${x}`);
  return `| ${r.drill} #${r.run} | ${r.detail} | ${ms(r.detectionMs)} | ${ms(r.writableMs)} | ${ms(r.repointedMs)} | ${ms(r.commitMs)} | ${r.twoWritableSamples} | ${r.ackedWrites} | ${r.missingAcked} | ${r.replicasLeftBehind} | ${r.unexpectedFailovers} | ${r.ok ? 'ok' : 'FAIL'} |`;
}

export const TABLE_HEADER =
  '| drill | fault | detect ms | writable ms | repointed ms | commit ms | 2-writable samples | acked writes | acked missing | replicas left behind | unexpected failovers | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|';
