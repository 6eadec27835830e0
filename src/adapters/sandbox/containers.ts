// The sandbox fleet in Docker containers, for machines with a Docker engine but no server binary.
// Each container uses HOST networking, so its server binds its own 127.0.0.x:3306 exactly like the
// local fleet and the topology file is the same. Loaded only on that path: it pulls in testcontainers.
//
// Linux only: host networking puts the container on the host's own loopback, which Docker Desktop
// (a VM), rootless Docker (its own network namespace) and a remote engine cannot do.
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerRuntimeClient } from 'testcontainers';
import { TopogitError } from '../../core/errors.js';
import type { Flavor } from '../../core/model.js';
import { openSession } from '../mysql/session.js';
import type { Session } from '../../core/ports.js';
import { parseVersion, atLeast } from '../mysql/dialect.js';
import type { ServerBinary } from './binaries.js';
import { allocateAddresses, makeWritable, serverArgs, userStatements, wireReplica, type SandboxInstance, type SandboxState, type UpOptions } from './local.js';

export const IMAGES: Readonly<Record<Flavor, string>> = { mariadb: 'mariadb:10.11', mysql: 'mysql:8.4' };

/** First start initialises the data directory (two server starts in the entrypoint): allow for it. */
const READY_MS = 180_000;
const LABEL_CLUSTER = 'topogit.cluster';
const LABEL_INSTANCE = 'topogit.instance';

type DockerContainer = ReturnType<ContainerRuntimeClient['container']['getById']>;

/**
 * The server settings of the local fleet (serverArgs), less what the image owns: paths (datadir,
 * socket, pid file; the error log goes to the container's stderr), --no-defaults (the image's
 * config files set datadir and socket, which its entrypoint reads) and --user (the entrypoint
 * drops to `mysql` itself). Arguments starting with `-` are appended to mariadbd/mysqld by the
 * official images' entrypoints.
 */
export function containerArgs(flavor: Flavor, i: Pick<SandboxInstance, 'host' | 'port' | 'serverId'>): string[] {
  const bin: ServerBinary = { flavor, server: IMAGES[flavor], version: '' };
  const inst: SandboxInstance = { name: '', dir: '', host: i.host, port: i.port, serverId: i.serverId };
  const owned = ['--no-defaults', '--datadir=', '--socket=', '--pid-file=', '--log-error=', '--user='];
  return serverArgs(bin, inst).filter((a) => !owned.some((o) => a === o || (o.endsWith('=') && a.startsWith(o))));
}

/**
 * Entrypoint settings. Empty root password, and root@'%' (the images' default root host, stated
 * here because the sandbox logs in as root over TCP). Time-zone tables are skipped: the MySQL
 * image loads them with binary logging on, which would give every instance its own GTIDs.
 */
export function containerEnv(flavor: Flavor): Record<string, string> {
  return flavor === 'mariadb'
    ? { MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1', MARIADB_ROOT_HOST: '%', MARIADB_INITDB_SKIP_TZINFO: '1' }
    : { MYSQL_ALLOW_EMPTY_PASSWORD: 'yes', MYSQL_ROOT_HOST: '%', MYSQL_INITDB_SKIP_TZINFO: '1' };
}

/** `topogit-<cluster>-<instance>`: visible in `docker ps`, and found again if an id was never recorded. */
export function containerName(cluster: string, instance: string): string {
  return `topogit-${cluster.replace(/[^a-zA-Z0-9_.-]/g, '-')}-${instance}`;
}

/** Does a Docker engine answer? Never throws; gives up after `timeoutMs`. */
export async function dockerAvailable(timeoutMs = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(
      () => true,
      () => false,
    );
    const giveUp = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    return await Promise.race([probe, giveUp]);
  } catch {
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function runtime(): Promise<ContainerRuntimeClient> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    return await getContainerRuntimeClient();
  } catch (e) {
    throw new TopogitError('TOPOGIT_SANDBOX', `no Docker engine answered: ${(e as Error).message}`, 'start the Docker engine, or point DOCKER_HOST at one, and try again');
  }
}

/** Host networking must land on this machine's loopback; say why not where it cannot. */
async function assertHostNetworking(client: ContainerRuntimeClient): Promise<void> {
  const why = (reason: string) =>
    new TopogitError('TOPOGIT_SANDBOX', `the Docker sandbox needs host networking on this machine's loopback, but ${reason}`, 'install a server binary instead: `sudo apt-get install -y mariadb-server` on Debian/Ubuntu');
  if (process.platform !== 'linux') throw why(`this is ${process.platform}, where Docker runs in a VM`);
  const rt = client.info.containerRuntime;
  if (/docker desktop/i.test(rt.operatingSystem)) throw why('the engine is Docker Desktop, which runs in a VM');
  if (!['localhost', '127.0.0.1', '::1'].includes(rt.host)) throw why(`the engine is reached at ${rt.host} (a remote engine, or topogit runs inside a container)`);
  const info = (await client.container.dockerode.info().catch(() => ({}))) as { SecurityOptions?: string[] };
  if ((info.SecurityOptions ?? []).some((o) => /rootless/.test(o))) throw why('the engine is rootless Docker, whose host network is its own namespace');
}

/** Throws a clear error where this engine's host networking would not reach this machine's loopback. */
export async function checkHostNetworking(): Promise<void> {
  await assertHostNetworking(await runtime());
}

/** root over TCP to the instance's own address: the images leave root@'%' without a password. */
export function containerRootSession(i: SandboxInstance): Promise<Session> {
  return openSession({ host: i.host, port: i.port }, { user: 'root', password: '' }, { connectMs: 1000, queryMs: 10_000 });
}

function statusCode(e: unknown): number | undefined {
  const c = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** Docker's log stream for a non-TTY container is framed: [stream, 0, 0, 0, size(4, big-endian)] payload. */
function demux(buf: Buffer): string {
  let out = '';
  let at = 0;
  while (at + 8 <= buf.length) {
    const kind = buf[at];
    const size = buf.readUInt32BE(at + 4);
    if ((kind !== 1 && kind !== 2) || at + 8 + size > buf.length) return buf.toString('utf8');
    out += buf.toString('utf8', at + 8, at + 8 + size);
    at += 8 + size;
  }
  return at === buf.length ? out : buf.toString('utf8');
}

async function lastError(c: DockerContainer): Promise<string | undefined> {
  try {
    const lines = demux(await c.logs({ stdout: true, stderr: true, tail: 40 }))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return lines.filter((l) => /ERROR/.test(l)).slice(-1)[0] ?? lines.slice(-1)[0];
  } catch {
    return undefined;
  }
}

/**
 * Waits for the real server: the entrypoint's temporary one runs with --skip-networking, so the
 * first root login over TCP to host:port is the server that stays. Fails fast if the container exits.
 */
export async function waitForServer(client: ContainerRuntimeClient, id: string, i: SandboxInstance, ms = READY_MS): Promise<void> {
  const c = client.container.getById(id);
  const deadline = Date.now() + ms;
  let nextInspect = 0;
  for (;;) {
    try {
      const s = await containerRootSession(i);
      await s.close();
      return;
    } catch {
      if (Date.now() >= nextInspect) {
        nextInspect = Date.now() + 1000;
        const st = await c.inspect().then(
          (r) => r.State,
          () => undefined,
        );
        if (!st || (!st.Running && !st.Restarting)) {
          const last = (await lastError(c)) ?? (st ? `exit code ${st.ExitCode}` : 'container is gone');
          throw new TopogitError('TOPOGIT_SANDBOX', `${i.name}: container exited while starting: ${last}`, `see \`docker logs ${id.slice(0, 12)}\``);
        }
      }
      if (Date.now() > deadline) {
        throw new TopogitError('TOPOGIT_SANDBOX', `${i.name}: server did not accept connections within ${Math.round(ms / 1000)} s`, `see \`docker logs ${id.slice(0, 12)}\``);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function upContainers(o: UpOptions & { flavor: Flavor }): Promise<SandboxState> {
  const dir = path.join(o.stateDir, o.cluster);
  try {
    await access(path.join(dir, 'sandbox.json'));
    throw new TopogitError('TOPOGIT_SANDBOX', `sandbox ${o.cluster} already exists in ${dir}`, `run \`topogit sandbox down --cluster ${o.cluster}\` first`);
  } catch (e) {
    if (e instanceof TopogitError) throw e;
  }
  // The containers must outlive this process: no Ryuk reaper. withAutoCleanup(false) below keeps
  // these containers out of any reaper session; the variable keeps testcontainers from starting one.
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  const { GenericContainer, ImageName } = await import('testcontainers');
  const client = await runtime();
  await assertHostNetworking(client);
  const image = IMAGES[o.flavor];
  const addrs = await allocateAddresses(o.count, o.baseOctet);
  const instances: SandboxInstance[] = addrs.map((a, n) => {
    const name = `db${String(n + 1).padStart(3, '0')}`;
    return { name, host: a.host, port: a.port, serverId: n + 1, dir: path.join(dir, name) };
  });
  for (const i of instances) {
    const name = containerName(o.cluster, i.name);
    const exists = await client.container
      .getById(name)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (exists) throw new TopogitError('TOPOGIT_SANDBOX', `a container named ${name} already exists`, `remove it with \`docker rm -f ${name}\``);
  }

  const containers: Record<string, string> = {};
  const stateNow = (version: string): SandboxState => ({
    cluster: o.cluster,
    flavor: o.flavor,
    version,
    server: image,
    dir,
    instances,
    adminUser: o.admin.user,
    replUser: o.repl.user,
    backend: 'docker',
    containers: { ...containers },
  });
  // Written before any container exists and again as each starts, so `down` after a failed `up`
  // finds every container (by id, or by name for one that failed before its id was known).
  let writes: Promise<void> = Promise.resolve();
  const save = (version: string) => (writes = writes.then(() => writeFile(path.join(dir, 'sandbox.json'), JSON.stringify(stateNow(version), null, 2))));
  await mkdir(dir, { recursive: true });
  await save(image);

  // Pull once, not once per container.
  try {
    await client.image.pull(ImageName.fromString(image));
  } catch (e) {
    throw new TopogitError('TOPOGIT_SANDBOX', `pulling ${image} failed: ${(e as Error).message.split('\n')[0]}`, 'check the network, or `docker pull` the image by hand');
  }
  // allSettled: on a failure, every container has its id recorded before `down` cleans up.
  const starts = await Promise.allSettled(
    instances.map(async (i) => {
      const started = await new GenericContainer(image)
        .withName(containerName(o.cluster, i.name))
        .withLabels({ [LABEL_CLUSTER]: o.cluster, [LABEL_INSTANCE]: i.name })
        .withNetworkMode('host')
        .withEnvironment(containerEnv(o.flavor))
        .withCommand(containerArgs(o.flavor, i))
        .withAutoCleanup(false)
        .withAutoRemove(false)
        .start();
      containers[i.name] = started.getId();
      await save(image);
      await waitForServer(client, started.getId(), i);
    }),
  );
  await writes;
  const failed = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  const [primary, ...replicas] = instances;
  if (!primary) throw new TopogitError('TOPOGIT_USAGE', 'a sandbox needs at least one instance');
  const version = await serverVersion(primary);
  await Promise.all(
    instances.map(async (i) => {
      const s = await containerRootSession(i);
      try {
        // Anything the image's init wrote to the binary log would be a GTID only this instance
        // has: start every member from an empty history, as the local fleet's bootstrap does.
        await s.query(resetBinlog(o.flavor, version));
        for (const st of userStatements(o.flavor, o.admin, o.repl)) await s.query(st.sql, st.values);
      } finally {
        await s.close();
      }
    }),
  );
  const bin: ServerBinary = { flavor: o.flavor, server: image, version };
  await Promise.all(replicas.map((r) => wireReplica(bin, r, primary, o.repl, containerRootSession)));
  await makeWritable(primary, containerRootSession);
  await save(version);
  await writes;
  return stateNow(version);
}

async function serverVersion(i: SandboxInstance): Promise<string> {
  const s = await containerRootSession(i);
  try {
    const [row] = await s.query('SELECT VERSION() AS v');
    return String(row?.v ?? '');
  } finally {
    await s.close();
  }
}

export function resetBinlog(flavor: Flavor, version: string): string {
  if (flavor === 'mariadb') return 'RESET MASTER';
  return atLeast(parseVersion(version), 8, 2, 0) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER';
}

/** A recorded id, else the deterministic name, but only a container that carries this sandbox's labels. */
async function find(client: ContainerRuntimeClient, state: SandboxState, i: SandboxInstance): Promise<DockerContainer | undefined> {
  for (const ref of [state.containers?.[i.name], containerName(state.cluster, i.name)]) {
    if (!ref) continue;
    const c = client.container.getById(ref);
    const labels = await c.inspect().then(
      (r) => r.Config.Labels ?? {},
      () => undefined,
    );
    if (labels && labels[LABEL_CLUSTER] === state.cluster && labels[LABEL_INSTANCE] === i.name) return c;
  }
  return undefined;
}

export interface ContainerRunState {
  readonly running: boolean;
  readonly paused: boolean;
  readonly pid?: number;
}

export async function containerState(state: SandboxState, i: SandboxInstance): Promise<ContainerRunState> {
  const client = await runtime();
  const c = await find(client, state, i);
  const st = c ? await c.inspect().then((r) => r.State, () => undefined) : undefined;
  if (!st?.Running) return { running: false, paused: false };
  return { running: true, paused: st.Paused, ...(st.Pid ? { pid: st.Pid } : {}) };
}

/** Removes every container of the sandbox with its anonymous data volume; returns how many ran. */
export async function removeContainers(state: SandboxState): Promise<number> {
  const client = await runtime();
  let stopped = 0;
  for (const i of state.instances) {
    const c = await find(client, state, i);
    if (!c) continue;
    const running = await c.inspect().then((r) => r.State.Running, () => false);
    try {
      await c.remove({ force: true, v: true });
      if (running) stopped++;
    } catch (e) {
      if (statusCode(e) !== 404) throw new TopogitError('TOPOGIT_SANDBOX', `removing container ${c.id.slice(0, 12)} (${i.name}) failed: ${(e as Error).message}`);
    }
  }
  return stopped;
}

export type ContainerFault = 'kill' | 'stop' | 'start' | 'freeze' | 'thaw';

/** The same faults as the local fleet, through the engine: the data lives on in the container. */
export async function containerFault(state: SandboxState, i: SandboxInstance, fault: ContainerFault): Promise<string> {
  const client = await runtime();
  const c = await find(client, state, i);
  if (!c) throw new TopogitError('TOPOGIT_SANDBOX', `${i.name}: its container is gone`, `run \`topogit sandbox down --cluster ${state.cluster}\` and \`up\` again`);
  const short = c.id.slice(0, 12);
  const st = (await c.inspect()).State;
  switch (fault) {
    case 'start': {
      if (st.Running) return `${i.name} is already running (container ${short})`;
      await c.start();
      await waitForServer(client, c.id, i);
      return `${i.name} started (container ${short})`;
    }
    case 'kill':
    case 'stop': {
      if (!st.Running) return `${i.name} is not running`;
      // The engine refuses to kill or stop a paused container.
      if (st.Paused) await c.unpause();
      if (fault === 'kill') await c.kill({ signal: 'SIGKILL' });
      else await c.stop({ t: 60 });
      await waitExited(c, fault === 'kill' ? 5000 : 70_000);
      return `${i.name} ${fault === 'kill' ? 'killed (SIGKILL)' : 'shut down cleanly'}`;
    }
    case 'freeze':
    case 'thaw': {
      if (!st.Running) throw new TopogitError('TOPOGIT_SANDBOX', `${i.name} is not running`);
      if (fault === 'freeze' && !st.Paused) await c.pause();
      if (fault === 'thaw' && st.Paused) await c.unpause();
      return `${i.name} ${fault === 'freeze' ? 'frozen (docker pause)' : 'thawed (docker unpause)'}`;
    }
  }
}

async function waitExited(c: DockerContainer, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const running = await c.inspect().then((r) => r.State.Running, () => false);
    if (!running) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new TopogitError('TOPOGIT_SANDBOX', `container ${c.id.slice(0, 12)} did not exit within ${ms} ms`);
}
