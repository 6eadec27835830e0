// `topogit sandbox up|down|kill|stop|start|freeze|thaw|ls`: the fleet's lifecycle and its faults.
import { access, chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TopogitError } from '../../core/errors.js';
import type { Flavor } from '../../core/model.js';
import { renderTopology } from '../../config/render.js';
import { topogitPaths } from '../paths.js';
import { DEFAULT_ADMIN_USER, DEFAULT_REPLICATION_USER } from '../../config/defaults.js';
import { findServerBinary, INSTALL_HINT, type ServerBinary } from './binaries.js';
import { findHaproxy, startHaproxy, stopHaproxy, haproxyPid } from './haproxy.js';
import { canBind, paths, randomPassword, startProcess, upLocal, type SandboxInstance, type SandboxRouter, type SandboxState } from './local.js';

// Docker is the fallback where no server binary exists; only then is testcontainers loaded.
const containers = () => import('./containers.js');

const DOCKER_HINT =
  'or start a Docker engine on Linux, and the sandbox runs the same fleet in mariadb:10.11 containers on host networking; ' +
  'TOPOGIT_SANDBOX_IMAGE_FLAVOR=mysql picks mysql:8.4';

export interface SandboxContext {
  readonly stateDir: string;
  readonly env: NodeJS.ProcessEnv;
}

export function defaultStateDir(cwd: string, env: NodeJS.ProcessEnv): string {
  return topogitPaths(cwd, env).sandbox;
}

/** The named sandbox, else the only one there is, else `sandbox`. */
export async function pickCluster(ctx: SandboxContext, given: string | undefined): Promise<string> {
  if (given) return given;
  const names = await readdir(ctx.stateDir).catch(() => [] as string[]);
  const found: string[] = [];
  for (const n of names) {
    if (!n.startsWith('.') && (await access(path.join(ctx.stateDir, n, 'sandbox.json')).then(() => true, () => false))) found.push(n);
  }
  return found.length === 1 ? (found[0] as string) : 'sandbox';
}

export async function readState(ctx: SandboxContext, cluster: string): Promise<SandboxState> {
  const file = path.join(ctx.stateDir, cluster, 'sandbox.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as SandboxState;
  } catch {
    throw new TopogitError('TOPOGIT_SANDBOX', `no sandbox named ${cluster} in ${ctx.stateDir}`, 'start one with `topogit sandbox up`');
  }
}

export interface UpRequest {
  readonly cluster: string;
  readonly instances: number;
  readonly baseOctet: number;
  /** Directory the topology file is written to. */
  readonly topologiesDir: string;
  /** Also start a router in front of the servers and declare it in the file's `routing:` section. */
  readonly router?: 'haproxy';
}

export interface UpResult {
  readonly state: SandboxState;
  /** The router started with `router`, and its pid. */
  readonly router?: { readonly spec: SandboxRouter; readonly pid: number };
  readonly topologyFile: string;
  readonly ms: number;
}

export const HAPROXY_MISSING_HINT = 'run `bash scripts/ensure-haproxy.sh` (installs Debian\'s haproxy when this user may install packages; otherwise it says what to run), or set TOPOGIT_HAPROXY to an haproxy binary; no server was started';

/** Where the sandbox's router listens: the first loopback address after the instances (writer 3306, reader 3307, runtime API 9999). */
export async function routerEndpoints(count: number, baseOctet: number): Promise<{ host: string; writer: number; reader: number; runtime: number }> {
  let at: { host: string; writer: number; reader: number; runtime: number };
  if (await canBind(`127.0.0.${baseOctet}`, 0)) {
    const octet = baseOctet + count;
    if (octet > 254) throw new TopogitError('TOPOGIT_SANDBOX', `no loopback address left for the router after 127.0.0.${baseOctet}..${octet - 1}`, 'use a lower --base-ip or fewer --instances');
    at = { host: `127.0.0.${octet}`, writer: 3306, reader: 3307, runtime: 9999 };
  } else {
    // Only 127.0.0.1 here: the instances take consecutive ports (allocateAddresses), the router the next three.
    const next = 3306 + 1 + (baseOctet - 11) + count;
    at = { host: '127.0.0.1', writer: next, reader: next + 1, runtime: next + 2 };
  }
  for (const port of [at.writer, at.reader, at.runtime]) {
    if (!(await canBind(at.host, port))) throw new TopogitError('TOPOGIT_SANDBOX', `${at.host}:${port} (the router's) is already in use`, 'run `topogit sandbox down` for an old sandbox, or pick another --base-ip');
  }
  return at;
}

/** `haproxy 127.0.0.14:3306 (writes) :3307 (reads), runtime 127.0.0.14:9999` */
export function describeRouter(r: SandboxRouter): string {
  const reads = r.reader.host === r.writer.host ? `:${r.reader.port}` : `${r.reader.host}:${r.reader.port}`;
  return `${r.kind} ${r.writer.host}:${r.writer.port} (writes) ${reads} (reads), runtime ${r.runtime}`;
}

export async function sandboxUp(ctx: SandboxContext, req: UpRequest): Promise<UpResult> {
  const started = Date.now();
  // The router's binary and addresses are checked before any server starts: nothing to undo.
  let routerAt: Awaited<ReturnType<typeof routerEndpoints>> | undefined;
  const haproxyBinary = req.router === 'haproxy' ? findHaproxy(ctx.env) : undefined;
  if (req.router === 'haproxy') {
    if (!haproxyBinary) {
      throw new TopogitError('TOPOGIT_SANDBOX', '--router haproxy: no haproxy binary found (looked at TOPOGIT_HAPROXY, on PATH and in /usr/sbin)', HAPROXY_MISSING_HINT);
    }
    routerAt = await routerEndpoints(req.instances, req.baseOctet);
  }
  // A local server binary first; else Docker; else say what to install.
  const bin = await findServerBinary(ctx.env);
  const flavor = bin ? undefined : imageFlavor(ctx.env);
  if (!bin) {
    const docker = await containers();
    if (!(await docker.dockerAvailable())) throw new TopogitError('TOPOGIT_NO_SERVER_BINARY', INSTALL_HINT, DOCKER_HINT);
    // Before anything is written: a failed `up` below cleans up, topology file included.
    await docker.checkHostNetworking();
  }
  const secrets = path.join(ctx.stateDir, req.cluster, 'secrets');
  // Passwords come from the environment when set there; otherwise the sandbox makes its own and
  // keeps them in 0600 files beside the servers, which the topology file then names.
  const adminPw = ctx.env.TOPOGIT_PASSWORD ?? randomPassword();
  const replPw = ctx.env.TOPOGIT_REPL_PASSWORD ?? randomPassword();
  const admin = { user: ctx.env.TOPOGIT_USER ?? DEFAULT_ADMIN_USER, password: adminPw };
  const repl = { user: ctx.env.TOPOGIT_REPL_USER ?? DEFAULT_REPLICATION_USER, password: replPw };
  let state: SandboxState;
  try {
    const o = { cluster: req.cluster, count: req.instances, baseOctet: req.baseOctet, stateDir: ctx.stateDir, admin, repl };
    state = bin ? await upLocal(bin, o) : await (await containers()).upContainers({ ...o, flavor: flavor ?? 'mariadb' });
  } catch (e) {
    if (e instanceof TopogitError && /already exists|in use/.test(e.message)) throw e;
    await sandboxDown(ctx, req.cluster, req.topologiesDir).catch(() => undefined);
    throw e;
  }
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  const topologyFile = path.join(req.topologiesDir, `${req.cluster}.yaml`);
  const ref = async (kind: 'admin' | 'replication', envName: string, user: string, pw: string): Promise<Record<string, string>> => {
    if (ctx.env[envName] !== undefined) return { user, passwordEnv: envName };
    const f = path.join(secrets, `${kind}.password`);
    await writeFile(f, pw + '\n', { mode: 0o600 });
    await chmod(f, 0o600);
    return { user, passwordFile: path.relative(req.topologiesDir, f) };
  };
  const credentials = {
    admin: await ref('admin', 'TOPOGIT_PASSWORD', admin.user, adminPw),
    replication: await ref('replication', 'TOPOGIT_REPL_PASSWORD', repl.user, replPw),
  };
  await mkdir(req.topologiesDir, { recursive: true });
  const [primary] = state.instances;
  const yaml = renderTopology({
    cluster: state.cluster,
    flavor: state.flavor,
    header: [`Written by \`topogit sandbox up\`: ${state.instances.length} ${state.flavor} ${state.version} servers on loopback.`],
    credentials,
    instances: state.instances.map((i) => ({ name: i.name, host: i.host, port: i.port, ...(i === primary ? {} : { source: primary?.name }) })),
    failoverAuto: false,
  });
  if (!routerAt) {
    await writeFile(topologyFile, yaml);
    return { state, topologyFile, ms: Date.now() - started };
  }
  // The router: a real HAProxy that outlives this process, db001 alone enabled for writes. When it
  // does not start, the whole sandbox is taken down again (servers stopped, files and topology file
  // removed): a sandbox is either complete or absent.
  const router: SandboxRouter = {
    kind: 'haproxy',
    dir: path.join(ctx.stateDir, req.cluster, 'haproxy'),
    runtime: `${routerAt.host}:${routerAt.runtime}`,
    writer: { host: routerAt.host, port: routerAt.writer, backend: 'mysql_rw' },
    reader: { host: routerAt.host, port: routerAt.reader, backend: 'mysql_ro' },
  };
  let pid: number;
  try {
    const h = await startHaproxy({
      dir: router.dir,
      detached: true,
      ...(haproxyBinary ? { binary: haproxyBinary } : {}),
      runtime: { host: routerAt.host, port: routerAt.runtime },
      writer: { bind: { host: router.writer.host, port: router.writer.port }, backend: router.writer.backend },
      reader: { bind: { host: router.reader.host, port: router.reader.port }, backend: router.reader.backend },
      servers: state.instances.map((i) => ({ name: i.name, host: i.host, port: i.port })),
      ...(primary ? { primary: primary.name } : {}),
    });
    pid = h.pid;
    const stateFile = path.join(ctx.stateDir, req.cluster, 'sandbox.json');
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as SandboxState;
    state = { ...saved, router };
    await writeFile(stateFile, JSON.stringify(state, null, 2));
    await writeFile(topologyFile, `${yaml}routing:\n  - haproxy: ${router.runtime}\n    writer: ${router.writer.backend}\n    reader: ${router.reader.backend}\n`);
  } catch (e) {
    await sandboxDown(ctx, req.cluster, req.topologiesDir).catch(() => undefined);
    throw new TopogitError('TOPOGIT_SANDBOX', `the router did not start, so the sandbox was taken down again (servers stopped, files removed): ${(e as Error).message}`, `see ${path.join(router.dir, 'haproxy.log')} while it exists, or run \`haproxy -c -f\` on a config like it`);
  }
  return { state, router: { spec: router, pid }, topologyFile, ms: Date.now() - started };
}

async function requireBinary(env: NodeJS.ProcessEnv): Promise<ServerBinary> {
  const bin = await findServerBinary(env);
  if (bin) return bin;
  throw new TopogitError('TOPOGIT_NO_SERVER_BINARY', INSTALL_HINT, DOCKER_HINT);
}

/** Which image the Docker fallback runs: TOPOGIT_SANDBOX_IMAGE_FLAVOR, mariadb unless set. */
export function imageFlavor(env: NodeJS.ProcessEnv): Flavor {
  const v = (env.TOPOGIT_SANDBOX_IMAGE_FLAVOR ?? '').trim().toLowerCase();
  if (v === '' || v === 'mariadb') return 'mariadb';
  if (v === 'mysql') return 'mysql';
  throw new TopogitError('TOPOGIT_USAGE', `TOPOGIT_SANDBOX_IMAGE_FLAVOR=${env.TOPOGIT_SANDBOX_IMAGE_FLAVOR} is neither mariadb nor mysql`);
}

const isDocker = (state: SandboxState | undefined) => state?.backend === 'docker';

export interface DownResult {
  /** Servers that were running and were stopped. */
  readonly servers: number;
  /** The pid of the router that was running and was stopped. */
  readonly router?: number;
}

export async function sandboxDown(ctx: SandboxContext, cluster: string, topologiesDir?: string): Promise<DownResult> {
  let state: SandboxState | undefined;
  try {
    state = await readState(ctx, cluster);
  } catch {
    state = undefined;
  }
  // The router first (applications lose their way in before the servers go), wherever the state
  // says it is, else where `up` starts it: an `up` that failed halfway may not have recorded it.
  const routerPid = await stopHaproxy(state?.router?.dir ?? path.join(ctx.stateDir, cluster, 'haproxy'));
  let stopped = 0;
  if (state && isDocker(state)) stopped = await (await containers()).removeContainers(state);
  for (const i of isDocker(state) ? [] : (state?.instances ?? [])) {
    const pid = await livePid(i);
    if (pid) {
      signal(pid, 'SIGCONT');
      signal(pid, 'SIGKILL');
      await waitGone(pid, 5000);
      stopped++;
    }
  }
  await rm(path.join(ctx.stateDir, cluster), { recursive: true, force: true });
  if (topologiesDir) await rm(path.join(topologiesDir, `${cluster}.yaml`), { force: true });
  return { servers: stopped, ...(routerPid !== undefined ? { router: routerPid } : {}) };
}

export type Fault = 'kill' | 'stop' | 'start' | 'freeze' | 'thaw';

export async function sandboxFault(ctx: SandboxContext, cluster: string, fault: Fault, name: string): Promise<string> {
  const state = await readState(ctx, cluster);
  const i = state.instances.find((x) => x.name === name);
  if (!i) throw new TopogitError('TOPOGIT_USAGE', `sandbox ${cluster} has no instance ${name}`, `instances: ${state.instances.map((x) => x.name).join(', ')}`);
  if (isDocker(state)) return (await containers()).containerFault(state, i, fault);
  const pid = await livePid(i);
  switch (fault) {
    case 'start': {
      if (pid) return `${name} is already running (pid ${pid})`;
      const bin = await requireBinary(ctx.env);
      const newPid = await startProcess(bin, i);
      return `${name} started (pid ${newPid})`;
    }
    case 'kill':
    case 'stop': {
      if (!pid) return `${name} is not running`;
      signal(pid, 'SIGCONT');
      signal(pid, fault === 'kill' ? 'SIGKILL' : 'SIGTERM');
      await waitGone(pid, fault === 'kill' ? 5000 : 60_000);
      return `${name} ${fault === 'kill' ? 'killed (SIGKILL)' : 'shut down cleanly'}`;
    }
    case 'freeze':
    case 'thaw': {
      if (!pid) throw new TopogitError('TOPOGIT_SANDBOX', `${name} is not running`);
      signal(pid, fault === 'freeze' ? 'SIGSTOP' : 'SIGCONT');
      return `${name} ${fault === 'freeze' ? 'frozen (SIGSTOP)' : 'thawed (SIGCONT)'}`;
    }
  }
}

/** The pid from the pid file, if that process is alive and really is this instance's server. */
export async function livePid(i: SandboxInstance): Promise<number | undefined> {
  const pid = Number((await readFile(paths(i).pid, 'utf8').catch(() => '')).trim());
  if (!pid) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  // A stale pid file may name a pid the OS has since given to something else: never signal that.
  if (!cmdline.includes(`--datadir=${paths(i).data}`)) return undefined;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/\) Z /.test(stat)) return undefined;
  return pid;
}

function signal(pid: number, sig: NodeJS.Signals) {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function waitGone(pid: number, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (!stat || /\) Z /.test(stat)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new TopogitError('TOPOGIT_SANDBOX', `process ${pid} did not exit within ${ms} ms`);
}

export interface InstanceRunState {
  readonly instance: SandboxInstance;
  readonly pid?: number;
  readonly frozen: boolean;
}

export async function sandboxList(ctx: SandboxContext, cluster: string): Promise<InstanceRunState[]> {
  const state = await readState(ctx, cluster);
  if (isDocker(state)) {
    const { containerState } = await containers();
    return Promise.all(
      state.instances.map(async (instance) => {
        const c = await containerState(state, instance);
        return { instance, ...(c.running && c.pid ? { pid: c.pid } : {}), frozen: c.paused };
      }),
    );
  }
  return Promise.all(
    state.instances.map(async (instance) => {
      const pid = await livePid(instance);
      const stat = pid ? await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '') : '';
      return { instance, ...(pid ? { pid } : {}), frozen: /\) T /.test(stat) };
    }),
  );
}

/** The sandbox's router (`up --router`), and its pid while it runs; undefined when it has none. */
export async function sandboxRouter(ctx: SandboxContext, cluster: string): Promise<{ readonly router: SandboxRouter; readonly pid?: number } | undefined> {
  const state = await readState(ctx, cluster);
  if (!state.router) return undefined;
  const pid = await haproxyPid(state.router.dir);
  return { router: state.router, ...(pid !== undefined ? { pid } : {}) };
}
