// argv -> command -> data -> render. The only layer that knows about stdout and exit codes.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { int, loadValid, type Io } from './shared.js';
import { registerPlanCommands } from './plan-commands.js';
import { registerFailoverCommands } from './failover-commands.js';
import { registerMaintenanceCommand } from './maintenance-command.js';
import { registerRoutesCommand } from './routes-command.js';
import { registerWatchCommand } from './watch-command.js';
import { isTopogitError, TopogitError } from '../core/errors.js';
import { DEFAULT_ADMIN_USER } from '../config/defaults.js';
import { createInterface } from 'node:readline/promises';
import { endpointKey, type ClusterSpec } from '../core/model.js';
import type { Timeouts } from '../core/ports.js';
import type { Fault } from '../adapters/sandbox/sandbox.js';
import { EMPTY_STATE } from '../core/state.js';
import { DEFAULT_PREFIX, DEFAULT_TTL_SECONDS, lazyCoordinator, openCoordinator, parseCoordinatorUrl, type Coordinator } from '../coordination/coordinator.js';

// Commands load what they need when they run: `--help`, `validate` and `sandbox` start faster
// without mysql2, and `status` without the sandbox code.
const config = () => import('../config/load.js');
const sandboxMod = () => import('../adapters/sandbox/sandbox.js');
const probeMod = () => import('../adapters/mysql/probe.js');


const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
  cwd: process.cwd(),
  ...(process.stdin.isTTY
    ? {
        confirm: async (question: string) => {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          try {
            return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
          } finally {
            rl.close();
          }
        },
      }
    : {}),
};

/** Exit codes: 0 ok, 1 error (bad input, unreachable, invalid files), 2 unhealthy or drifted (status). */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  let code = 0;
  let coordinator: Coordinator | undefined;
  const program = buildProgram(
    io,
    (c) => {
      code = c;
    },
    (c) => (coordinator = c),
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; usage mistakes have already been printed by commander.
      return e.exitCode === 0 ? 0 : 1;
    }
    if (isTopogitError(e)) {
      // One line: the message, then what to do about it.
      io.err(`topogit: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
      return 1;
    }
    io.err(`topogit: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  } finally {
    // The etcd client holds sockets open: the process could not end while it is open.
    await coordinator?.close().catch(() => undefined);
  }
}


function buildProgram(io: Io, setCode: (c: number) => void, made: (c: Coordinator) => void): Command {
  const program = new Command('topogit')
    .description('MySQL/MariaDB replication topologies as code: YAML in Git, reconciled against live servers')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .addOption(new Option('--connect-timeout <ms>', 'connect timeout per server').default(1000).argParser(int('--connect-timeout', 50, 600_000)))
    .addOption(new Option('--query-timeout <ms>', 'query timeout per statement').default(1000).argParser(int('--query-timeout', 50, 600_000)))
    .addOption(new Option('--concurrency <n>', 'servers probed at the same time').default(32).argParser(int('--concurrency', 1, 4096)))
    .addOption(new Option('--local-address <ip>', 'connect to servers from this local address'))
    .addOption(new Option('--coordinator <url>', 'who may act on which cluster and where its state lives: file (this clone), or etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)').env('TOPOGIT_COORDINATOR').default('file'))
    .addOption(new Option('--coordinator-prefix <prefix>', 'etcd keys live under this prefix').default(DEFAULT_PREFIX))
    .addOption(new Option('--coordinator-ttl <s>', "etcd lease TTL: a daemon or command that stops renewing loses its role after this long").default(DEFAULT_TTL_SECONDS).argParser(int('--coordinator-ttl', 2, 600)))
    .addOption(new Option('--etcd-ca <file>', 'etcds://: the CA certificate'))
    .addOption(new Option('--etcd-cert <file>', 'etcds://: this client\'s certificate'))
    .addOption(new Option('--etcd-key <file>', 'etcds://: this client\'s key'));
  let opened: Coordinator | undefined;
  /** The coordinator the global options name, opened on first use and closed when main returns. */
  const coordinator = (): Coordinator => {
    if (opened) return opened;
    const g = program.opts<{ coordinator: string; coordinatorPrefix: string; coordinatorTtl: number; etcdCa?: string; etcdCert?: string; etcdKey?: string }>();
    const tls = g.etcdCa || g.etcdCert || g.etcdKey ? { ...(g.etcdCa ? { ca: g.etcdCa } : {}), ...(g.etcdCert ? { cert: g.etcdCert } : {}), ...(g.etcdKey ? { key: g.etcdKey } : {}) } : undefined;
    const config = { url: g.coordinator || 'file', prefix: g.coordinatorPrefix, ttlSeconds: g.coordinatorTtl, ...(tls ? { tls } : {}) };
    const kind = parseCoordinatorUrl(config.url).kind;
    opened = lazyCoordinator(kind, () => openCoordinator(config, io.cwd, io.env));
    made(opened);
    return opened;
  };
  const timeouts = (): Timeouts => {
    const o = program.opts<{ connectTimeout: number; queryTimeout: number; localAddress?: string }>();
    return { connectMs: o.connectTimeout, queryMs: o.queryTimeout, ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
  };
  const concurrency = () => program.opts<{ concurrency: number }>().concurrency;

  program
    .command('validate')
    .description('check topology files (default: topologies/) against the schema and the tree rules')
    .argument('[paths...]', 'files or directories', ['topologies'])
    .action(async (paths: string[]) => {
      const { loadTopologies, formatIssue } = await config();
      const { specs, issues } = await loadTopologies(paths, { env: io.env, cwd: io.cwd });
      for (const i of issues) io.err(formatIssue(i) + '\n');
      if (issues.length === 0) io.out(`${specs.length} topology file${specs.length === 1 ? '' : 's'} valid: ${specs.map((s) => s.cluster).join(', ')}\n`);
      setCode(issues.length === 0 ? 0 : 1);
    });

  program
    .command('status')
    .description('probe every instance and show each cluster as a tree with health words')
    .option('-c, --cluster <name>', 'only this cluster')
    .option('--json', 'machine-readable output (the input of `plan --against`)')
    .option('-f, --files <path...>', 'topology files or directories', ['topologies'])
    .action(async (o: { cluster?: string; json?: boolean; files: string[] }) => {
      const specs = await loadValid(o.files, io, o.cluster);
      const [{ gather }, { probe }, { renderStatusText }, { statusJson }] = await Promise.all([import('../engine/gather.js'), probeMod(), import('./render-status.js'), import('../core/status-document.js')]);
      const c = coordinator();
      // The state only adds to what the servers show: a coordinator out of reach is said, not fatal.
      let stateError: string | undefined;
      const states = new Map(
        await Promise.all(
          specs.map(async (s) => [s.cluster, await c.state.read(s.cluster).catch((e: Error) => ((stateError = e.message), EMPTY_STATE))] as const),
        ),
      );
      if (stateError) io.err(`topogit: cannot read the clusters' state (failover records, fenced former primaries, maintenance): ${stateError}\n`);
      const gathered = await gather(specs, { env: io.env, timeouts: timeouts(), concurrency: concurrency(), probe, states });
      const [{ readOnlyBypass }, { openSession }, { resolveCredentials }] = await Promise.all([import('../engine/audit.js'), import('../adapters/mysql/session.js'), config()]);
      const bypass = await readOnlyBypass(gathered, (x) => resolveCredentials(x.spec, io.env).admin, openSession, timeouts());
      const audited = gathered.map((x) => (bypass.has(x.spec.cluster) ? { ...x, report: { ...x.report, readOnlyBypass: bypass.get(x.spec.cluster) ?? [] } } : x));
      const { routerStatus } = await import('../engine/route.js');
      const routed = await Promise.all(audited.map(async (x) => (x.spec.routing?.length ? { ...x, report: { ...x.report, routers: await routerStatus(x.spec, x.probes) } } : x)));
      // Who leads each cluster (the daemons' coordinator); a coordinator out of reach is said, not fatal.
      // (File mode: one lease for the whole clone, nothing per cluster to say.)
      const leaders = c.kind === 'file' ? undefined : await c.leaders(specs.map((s) => s.cluster)).catch((e: Error) => {
        io.err(`topogit: cannot ask the coordinator who leads: ${e.message}\n`);
        return undefined;
      });
      const observations = routed.map((x) => {
        if (!leaders) return x;
        const l = leaders.get(x.spec.cluster) ?? null;
        return { ...x, report: { ...x.report, leader: { coordinator: c.kind, name: l?.name ?? null, since: l?.since ?? null } } };
      });
      io.out(o.json ? JSON.stringify(statusJson(observations, new Date()), null, 2) + '\n' : renderStatusText(observations));
      // Failure shapes and a cluster not ready to fail over are shown, not counted: the exit code is the instances' health.
      setCode(observations.every((x) => x.view.healthy && x.view.inSync) ? 0 : 2);
    });

  program
    .command('discover')
    .description('crawl a live topology from any member and print it as a topology file')
    .argument('<host[:port]>', 'any member of the cluster')
    .option('-c, --cluster <name>', 'cluster name (default: the primary\'s name)')
    .option('-o, --output <file>', 'write the file here instead of stdout')
    .option('-f, --files <path...>', 'reuse instance names (and credentials) from these topology files')
    .option('--password-file <file>', 'read the admin password from this file (default: $TOPOGIT_PASSWORD)')
    .action(async (target: string, o: { cluster?: string; output?: string; files?: string[]; passwordFile?: string }) => {
      const start = parseEndpoint(target);
      const known = await knownFromFiles(o.files, io);
      const knownNames = new Map([...known].map(([k, v]) => [k, v.name]));
      const knownSpec = known.get(endpointKey(start))?.spec;
      const login = await discoverLogin(io, o.passwordFile, knownSpec);
      const cluster = o.cluster ?? knownSpec?.cluster;
      const [{ discover }, { probe }, { renderTopology }] = await Promise.all([import('../engine/discover.js'), probeMod(), import('../config/render.js')]);
      const d = await discover(start, { login, timeouts: timeouts(), probe, knownNames, ...(cluster ? { cluster } : {}) });
      for (const w of d.warnings) io.err(`warning: ${w}\n`);
      const yaml = renderTopology({
        cluster: d.cluster,
        flavor: d.flavor,
        header: [`Discovered by \`topogit discover ${target}\` on ${new Date().toISOString()}${d.version ? ` (${d.version})` : ''}.`],
        instances: d.instances.map((i) => ({ name: i.name, host: i.endpoint.host, port: i.endpoint.port, ...(i.source ? { source: i.source } : {}) })),
        failoverAuto: false,
      });
      if (o.output) {
        const out = path.resolve(io.cwd, o.output);
        await mkdir(path.dirname(out), { recursive: true });
        await writeFile(out, yaml);
        io.err(`wrote ${o.output}: ${d.instances.length} instances, primary ${d.instances[0]?.name}\n`);
      } else io.out(yaml);
    });

  const sandbox = program.command('sandbox').description('a local fleet of real MariaDB/MySQL servers on loopback addresses');
  const ctx = async () => ({ stateDir: (await sandboxMod()).defaultStateDir(io.cwd, io.env), env: io.env });
  sandbox
    .command('up')
    .description('start N servers with GTID replication (first primary) and write topologies/<cluster>.yaml')
    .option('-n, --instances <n>', 'how many servers', int('--instances', 1, 200), 3)
    .option('-c, --cluster <name>', 'cluster name', 'sandbox')
    .option('--base-ip <octet>', 'first address is 127.0.0.<octet>', int('--base-ip', 2, 254), 11)
    .option('--topologies <dir>', 'where the topology file is written', 'topologies')
    .addOption(new Option('--router <kind>', 'also start a router on the next loopback address (writes :3306, reads :3307, runtime API :9999) and declare it in the file').choices(['haproxy']))
    .action(async (o: { instances: number; cluster: string; baseIp: number; topologies: string; router?: 'haproxy' }) => {
      const { sandboxUp, describeRouter } = await sandboxMod();
      const r = await sandboxUp(await ctx(), { cluster: o.cluster, instances: o.instances, baseOctet: o.baseIp, topologiesDir: path.resolve(io.cwd, o.topologies), ...(o.router ? { router: o.router } : {}) });
      for (const i of r.state.instances) io.out(`${i.name}  ${i.host}:${i.port}  ${i === r.state.instances[0] ? 'primary' : 'replica'}\n`);
      if (r.router) io.out(`${describeRouter(r.router.spec)}, pid ${r.router.pid}\n`);
      io.out(`sandbox ${o.cluster}: ${r.state.instances.length} ${r.state.flavor} ${r.state.version} servers up in ${(r.ms / 1000).toFixed(1)} s; wrote ${path.relative(io.cwd, r.topologyFile)}\n`);
      if (r.router) io.out(`applications write through ${r.router.spec.writer.host}:${r.router.spec.writer.port}\n`);
    });
  sandbox
    .command('down')
    .description('stop every server of the sandbox (and its router) and remove its files and topology file')
    .option('-c, --cluster <name>', 'cluster name (default: the only sandbox)')
    .option('--topologies <dir>', 'where the topology file was written', 'topologies')
    .action(async (o: { cluster?: string; topologies: string }) => {
      const { pickCluster, sandboxDown } = await sandboxMod();
      const cluster = await pickCluster(await ctx(), o.cluster);
      const r = await sandboxDown(await ctx(), cluster, path.resolve(io.cwd, o.topologies));
      io.out(`sandbox ${cluster}: stopped ${r.servers} servers${r.router !== undefined ? ` and haproxy (pid ${r.router})` : ''}, removed its files\n`);
    });
  sandbox
    .command('ls')
    .description('list the sandbox instances (and its router) and whether they run')
    .option('-c, --cluster <name>', 'cluster name (default: the only sandbox)')
    .action(async (o: { cluster?: string }) => {
      const { pickCluster, sandboxList, sandboxRouter, describeRouter } = await sandboxMod();
      const cluster = await pickCluster(await ctx(), o.cluster);
      for (const r of await sandboxList(await ctx(), cluster)) {
        io.out(`${r.instance.name}  ${r.instance.host}:${r.instance.port}  ${r.pid ? `running pid ${r.pid}${r.frozen ? ' (frozen)' : ''}` : 'not running'}\n`);
      }
      const router = await sandboxRouter(await ctx(), cluster);
      if (router) io.out(`${describeRouter(router.router)}, ${router.pid ? `running pid ${router.pid}` : 'not running'}\n`);
    });
  const faults: [Fault, string][] = [
    ['kill', 'SIGKILL the server (a crash)'],
    ['stop', 'shut the server down cleanly'],
    ['start', 'start a stopped or killed server again'],
    ['freeze', 'SIGSTOP the server (a hang: connections stay open)'],
    ['thaw', 'SIGCONT a frozen server'],
  ];
  for (const [fault, description] of faults) {
    sandbox
      .command(fault)
      .description(description)
      .argument('<instance>', 'instance name, e.g. db001')
      .option('-c, --cluster <name>', 'cluster name (default: the only sandbox)')
      .action(async (name: string, o: { cluster?: string }) => {
        const { pickCluster, sandboxFault } = await sandboxMod();
        io.out((await sandboxFault(await ctx(), await pickCluster(await ctx(), o.cluster), fault, name)) + '\n');
      });
  }
  registerPlanCommands(program, { io, setCode, timeouts, concurrency, coordinator });
  registerFailoverCommands(program, { io, setCode, timeouts, coordinator });
  registerMaintenanceCommand(program, { io, coordinator });
  registerRoutesCommand(program, { io });
  registerWatchCommand(program, { io, setCode, timeouts, coordinator });
  return program;
}


async function knownFromFiles(files: string[] | undefined, io: Io): Promise<Map<string, { name: string; spec: ClusterSpec }>> {
  const out = new Map<string, { name: string; spec: ClusterSpec }>();
  if (!files) return out;
  const { loadTopologies } = await config();
  const { specs } = await loadTopologies(files, { env: io.env, cwd: io.cwd, checkCredentials: false });
  for (const spec of specs) for (const i of spec.instances) out.set(endpointKey(i), { name: i.name, spec });
  return out;
}

/** --password-file, else the file's credentials for a known member, else TOPOGIT_USER/PASSWORD. */
async function discoverLogin(io: Io, passwordFile: string | undefined, spec: ClusterSpec | undefined): Promise<{ user: string; password: string }> {
  const user = io.env.TOPOGIT_USER ?? DEFAULT_ADMIN_USER;
  if (passwordFile) {
    const text = await readFile(path.resolve(io.cwd, passwordFile), 'utf8').catch(() => {
      throw new TopogitError('TOPOGIT_SECRET_MISSING', `cannot read password file ${passwordFile}`);
    });
    return { user, password: text.replace(/\r?\n$/, '') };
  }
  if (spec) return (await config()).resolveCredentials(spec, io.env).admin;
  if (io.env.TOPOGIT_PASSWORD === undefined && io.env.TOPOGIT_PASSWORD_FILE === undefined) {
    throw new TopogitError('TOPOGIT_SECRET_MISSING', 'no password for discovery: TOPOGIT_PASSWORD is not set', 'set TOPOGIT_PASSWORD, pass --password-file, or pass -f with a topology file that lists the member');
  }
  if (io.env.TOPOGIT_PASSWORD !== undefined) return { user, password: io.env.TOPOGIT_PASSWORD };
  return discoverLogin(io, io.env.TOPOGIT_PASSWORD_FILE, undefined);
}

export function parseEndpoint(s: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(s);
  const port = m?.[2] ? Number(m[2]) : 3306;
  if (!m?.[1] || port < 1 || port > 65535) throw new TopogitError('TOPOGIT_USAGE', `"${s}" is not host[:port]`, 'e.g. 127.0.0.11:3306');
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}
export type { Io } from './shared.js';
