// Real etcd clusters for the tests and the benchmarks: one member per loopback address (client
// URL addr:2379, peer URL addr:2380), data dirs and logs in a directory of the caller's, every
// member a child of this process (killed with it). Members can be killed and restarted one by one
// to take quorum away and give it back. No test-framework imports: the benchmarks use it from dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { which } from './binaries.js';

export interface EtcdClusterOptions {
  /** Data dirs (`<dir>/<name>.data`) and logs (`<dir>/<name>.log`, appended to) go here. */
  readonly dir: string;
  /** One member per address, e.g. ['127.0.0.241', '127.0.0.242', '127.0.0.243']; one address: a single-member cluster. */
  readonly addresses: readonly string[];
  readonly clientPort?: number; // default 2379
  readonly peerPort?: number; // default 2380
  /** The etcd binary; default: TOPOGIT_ETCD, then `etcd` on PATH or in /usr/bin. */
  readonly binary?: string;
  /** Raft heartbeat and election timeout; default 50 and 500 ms (etcd's own: 100 and 1000 ms). */
  readonly heartbeatMs?: number;
  readonly electionMs?: number;
  /** How long the start (of the cluster, or of one member) may take; default 20 s. */
  readonly startTimeoutMs?: number;
  /** Told what happens to the members (started, killed, stopped), one line each. */
  readonly log?: (line: string) => void;
  /**
   * TLS on the client port (PEM files): https client URLs, and clients must show a certificate
   * signed by `ca`. Health and metrics are then served over http on port 2381 (`--listen-metrics-urls`).
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

export interface EtcdMember {
  /** etcd1, etcd2, ... in the order of the addresses. */
  readonly name: string;
  readonly address: string;
  readonly pid: number | undefined; // while it runs
  readonly logFile: string;
  readonly dataDir: string;
  /** Where its /health, /metrics (and without TLS the v3 gateway) answer over http, e.g. http://127.0.0.241:2379. */
  readonly endpoint: string;
}

export interface EtcdCluster {
  /** Every member's client address: etcd://127.0.0.241:2379,127.0.0.242:2379,... */
  readonly url: string;
  /** Every member's client URL: http://127.0.0.241:2379, ... (https:// with TLS) */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** Sends `signal` (default SIGKILL) to member i and waits for it to exit (SIGKILL after 5 s). */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Restarts member i (a no-op when it runs) with its data dir and waits until its /health says
   * true, or, when fewer than a quorum of members run, until its client port listens.
   */
  start(i: number): Promise<void>;
  /** SIGTERM to every member (the leader last), SIGKILL to one still there after 5 s; waits for them all. Twice is no error. */
  stop(): Promise<void>;
  /** Every member runs and its /health says true. */
  healthy(): Promise<boolean>;
  /** The index of the leader, as the running members see it; undefined when they know none. */
  leader(): Promise<number | undefined>;
}

export const ETCD_INSTALL_HINT = 'no etcd binary found (looked at TOPOGIT_ETCD, on PATH and in /usr/bin); on Debian/Ubuntu run `bash scripts/ensure-etcd.sh` or `sudo apt-get install -y etcd-server`';

export function findEtcd(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TOPOGIT_ETCD) return existsSync(env.TOPOGIT_ETCD) ? env.TOPOGIT_ETCD : undefined;
  return which('etcd', env);
}

const name = (i: number) => `etcd${i + 1}`;
const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const POLL_MS = 50; // poll interval while a member starts or exits
const METRICS_PORT = 2381; // health and metrics over http when the client port has TLS

/** The command line of member i (pure). The same on a restart: with a data dir, etcd ignores the --initial-* flags. */
export function etcdMemberArgs(o: EtcdClusterOptions, i: number): string[] {
  const client = o.clientPort ?? 2379;
  const peer = o.peerPort ?? 2380;
  const address = o.addresses[i];
  if (address === undefined) throw new Error(`etcd: no member ${i} (the cluster has ${o.addresses.length})`);
  const peerUrl = `http://${hostPort(address, peer)}`;
  const clientUrl = `${o.tls ? 'https' : 'http'}://${hostPort(address, client)}`;
  const tls = o.tls
    ? [`--cert-file=${o.tls.cert}`, `--key-file=${o.tls.key}`, `--trusted-ca-file=${o.tls.ca}`, '--client-cert-auth=true', `--listen-metrics-urls=http://${hostPort(address, METRICS_PORT)}`]
    : [];
  return [
    ...tls,
    `--name=${name(i)}`,
    `--data-dir=${path.join(o.dir, `${name(i)}.data`)}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${o.addresses.map((a, j) => `${name(j)}=http://${hostPort(a, peer)}`).join(',')}`,
    '--initial-cluster-state=new',
    // Members of another cluster (a leftover of an earlier run in another dir) are refused.
    `--initial-cluster-token=topogit-${path.basename(o.dir)}`,
    `--heartbeat-interval=${o.heartbeatMs ?? 50}`,
    `--election-timeout=${o.electionMs ?? 500}`,
    // A restarted member asks before it campaigns: it does not depose a leader that is doing fine.
    '--pre-vote=true',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

/** What an etcd HTTP endpoint answers (a POST when `body` is given), or undefined when nothing comes within `timeoutMs`. */
function request(url: string, timeoutMs: number, body?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    // agent: false, a connection of its own that is closed after the answer: nothing lingers.
    const req = http.request(url, { method: body === undefined ? 'GET' : 'POST', agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

async function requestJson<T>(url: string, timeoutMs: number, body?: string): Promise<Partial<T> | undefined> {
  try {
    return JSON.parse((await request(url, timeoutMs, body)) ?? '') as Partial<T>;
  } catch {
    return undefined;
  }
}

/** GET <endpoint>/health: true when etcd answers {"health":"true"} (etcd 3.4 says false, with a 503, when it has no leader). */
export async function etcdHealth(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  return (await requestJson<{ health: string }>(`${endpoint}/health`, timeoutMs))?.health === 'true';
}

/** The member's own id and its leader's (decimal strings), from the gRPC gateway's maintenance status. */
async function etcdStatus(endpoint: string, timeoutMs = 1000): Promise<{ id?: string; leader?: string }> {
  const s = await requestJson<{ header: { member_id?: string }; leader: string }>(`${endpoint}/v3/maintenance/status`, timeoutMs, '{}');
  return { id: s?.header?.member_id, leader: s?.leader };
}

function listening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => void (s.destroy(), resolve(ok));
    s.once('connect', () => done(true)).once('timeout', () => done(false)).once('error', () => done(false));
  });
}

/** The last lines of a log, for an error message. */
async function tail(file: string, lines = 4): Promise<string> {
  const text = (await readFile(file, 'utf8').catch(() => '')).trimEnd();
  if (!text) return `no output (${file})`;
  return `${text.split('\n').slice(-lines).map((l) => l.slice(0, 400)).join(' | ')} (${file})`;
}

// Every member still running is killed when this process exits, whatever the way out (a test
// file's worker that ends without afterAll, a benchmark that throws).
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

type Proc = { readonly child: ChildProcess; readonly exited: Promise<void>; exit?: string };

/**
 * Starts one etcd member per address as children of this process and returns once every member's
 * /health says true; throws (having stopped them all) naming the member that exited or did not
 * become healthy in time, with the tail of its log.
 */
export async function startEtcdCluster(o: EtcdClusterOptions): Promise<EtcdCluster> {
  if (o.addresses.length === 0) throw new Error('etcd: a cluster needs at least one address');
  if (new Set(o.addresses).size !== o.addresses.length) throw new Error(`etcd: the addresses repeat: ${o.addresses.join(', ')}`);
  const binary = o.binary ?? findEtcd();
  if (!binary) throw new Error(ETCD_INSTALL_HINT);
  await mkdir(o.dir, { recursive: true });
  const clientPort = o.clientPort ?? 2379;
  const startTimeoutMs = o.startTimeoutMs ?? 20_000;
  const log = o.log ?? (() => undefined);
  const procs: (Proc | undefined)[] = o.addresses.map(() => undefined);
  const running = (i: number) => procs[i] !== undefined && procs[i]!.exit === undefined;

  const members: EtcdMember[] = o.addresses.map((address, i) => ({
    name: name(i),
    address,
    get pid() {
      return running(i) ? procs[i]!.child.pid : undefined;
    },
    logFile: path.join(o.dir, `${name(i)}.log`),
    dataDir: path.join(o.dir, `${name(i)}.data`),
    endpoint: `http://${hostPort(address, o.tls ? METRICS_PORT : clientPort)}`,
  }));
  const member = (i: number): EtcdMember => {
    if (!members[i]) throw new Error(`etcd: no member ${i} (the cluster has ${members.length})`);
    return members[i];
  };

  const spawnMember = (i: number): void => {
    const m = member(i);
    const fd = openSync(m.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(fd, `--- topogit: ${new Date().toISOString()} starting ${binary} ${m.name} on ${m.address}\n`);
      child = spawn(binary, etcdMemberArgs(o, i), { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    track(child);
    let exited!: () => void;
    const proc: Proc = { child, exited: new Promise<void>((r) => (exited = r)) };
    const ended = (why: string) => {
      proc.exit ??= why;
      live.delete(child);
      exited();
    };
    child.once('error', (e) => ended(`cannot run ${binary}: ${e.message}`));
    child.once('exit', (code, signal) => ended(signal ? `signal ${signal}` : `code ${code}`));
    procs[i] = proc;
    log(`etcd: started ${m.name} on ${m.address} (pid ${child.pid})`);
  };

  /** Until member i's /health says true (or, `listenOnly`, its client port listens); throws when it exits or the time runs out. */
  const awaitMember = async (i: number, listenOnly: boolean): Promise<void> => {
    const m = member(i);
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const p = procs[i]!;
      if (p.exit !== undefined) throw new Error(`etcd member ${m.name} (${m.address}) exited while starting (${p.exit}): ${await tail(m.logFile)}`);
      // A short timeout: a member that is starting can hold a request until it is ready.
      if (listenOnly ? await listening(m.address, clientPort, 300) : await etcdHealth(m.endpoint, 300)) return;
      if (Date.now() >= deadline) {
        const what = listenOnly ? `did not listen on ${hostPort(m.address, clientPort)}` : `did not report {"health":"true"} at ${m.endpoint}/health`;
        throw new Error(`etcd member ${m.name} (${m.address}) ${what} within ${startTimeoutMs} ms: ${await tail(m.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const m = member(i);
    const p = procs[i];
    if (!p || p.exit !== undefined) return;
    p.child.kill(signal);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000); // a deadline for a member that does not exit
    await p.exited;
    clearTimeout(timer);
    log(`etcd: ${m.name} exited (${p.exit})`);
  };

  const leader = async (): Promise<number | undefined> => {
    // With TLS the v3 gateway needs a client certificate: a single member is its own leader, more are not asked.
    if (o.tls) return members.length === 1 && running(0) ? 0 : undefined;
    const seen = await Promise.all(members.map((m, i) => (running(i) ? etcdStatus(m.endpoint) : { id: undefined, leader: undefined })));
    const id = seen.find((s) => s.leader)?.leader;
    const i = seen.findIndex((s) => s.id !== undefined && s.id === id);
    return i < 0 ? undefined : i;
  };

  // The followers first, then the leader once it has seen them go (its etcd_network_active_peers
  // all 0): a leader told to stop hands its leadership over first, and to a member it still
  // believes in, one that is gone, it waits for etcd's request timeout (5 s + 2 elections).
  const stop = async (): Promise<void> => {
    const last = await leader().catch(() => undefined);
    await Promise.all(members.map((_, i) => (i === last ? undefined : kill(i, 'SIGTERM'))));
    if (last === undefined) return;
    const until = Date.now() + 2000;
    const peersActive = async () => /^etcd_network_active_peers\{[^}]*\} [1-9]/m.test((await request(`${member(last).endpoint}/metrics`, 500)) ?? '');
    while (Date.now() < until && (await peersActive())) await new Promise((r) => setTimeout(r, POLL_MS));
    await kill(last, 'SIGTERM');
  };

  const start = async (i: number): Promise<void> => {
    if (running(i)) return;
    spawnMember(i);
    const quorum = procs.filter((_, j) => running(j)).length > members.length / 2;
    await awaitMember(i, !quorum);
  };

  try {
    for (let i = 0; i < members.length; i++) spawnMember(i);
    await Promise.all(members.map((_, i) => awaitMember(i, false)));
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url: `${o.tls ? 'etcds' : 'etcd'}://${o.addresses.map((a) => hostPort(a, clientPort)).join(',')}`,
    endpoints: o.addresses.map((a) => `${o.tls ? 'https' : 'http'}://${hostPort(a, clientPort)}`),
    members,
    kill,
    start,
    stop,
    leader,
    healthy: async () => (await Promise.all(members.map((m, i) => running(i) && etcdHealth(m.endpoint, 1000)))).every(Boolean),
  };
}
