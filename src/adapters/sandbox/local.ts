// A local fleet of real server processes, one loopback address each, for the demo and the tests.
// Everything lives under one state directory; `down` removes it.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { cp, mkdir, readFile, rm, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TopogitError } from '../../core/errors.js';
import type { Flavor } from '../../core/model.js';
import { DEFAULT_REPLICATION } from '../../core/plan.js';
import { openSession } from '../mysql/session.js';
import type { Session } from '../../core/ports.js';
import { changeSource, parseVersion, startReplica, stmt, type Statement } from '../mysql/dialect.js';
import type { ServerBinary } from './binaries.js';

const run = promisify(execFile);

export interface SandboxInstance {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly serverId: number;
  readonly dir: string;
}

export interface SandboxState {
  readonly cluster: string;
  readonly flavor: Flavor;
  readonly version: string;
  readonly server: string;
  readonly dir: string;
  readonly instances: readonly SandboxInstance[];
  readonly adminUser: string;
  readonly replUser: string;
  /** Where the servers run; absent in state files written before containers existed: local. */
  readonly backend?: 'local' | 'docker';
  /** Docker backend only: instance name -> container id. */
  readonly containers?: Record<string, string>;
  /** `sandbox up --router haproxy`: the HAProxy in front of the servers (its pid is in `<dir>/haproxy.pid`). */
  readonly router?: SandboxRouter;
}

export interface SandboxRouter {
  readonly kind: 'haproxy';
  /** Its config, pid file and log. */
  readonly dir: string;
  /** The runtime API, `host:port`. */
  readonly runtime: string;
  readonly writer: { readonly host: string; readonly port: number; readonly backend: string };
  readonly reader: { readonly host: string; readonly port: number; readonly backend: string };
}

export const paths = (i: SandboxInstance) => ({
  data: path.join(i.dir, 'data'),
  socket: path.join(i.dir, 'mysqld.sock'),
  pid: path.join(i.dir, 'mysqld.pid'),
  log: path.join(i.dir, 'error.log'),
});

const isRoot = () => process.getuid?.() === 0;

/** Can this process bind host:port? Tells whether 127.0.0.x exists here and the port is free. */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** 127.0.0.(base+i):3306 each, or 127.0.0.1 with consecutive ports where only 127.0.0.1 exists. */
export async function allocateAddresses(count: number, baseOctet: number, basePort = 3306): Promise<{ host: string; port: number }[]> {
  const probe = `127.0.0.${baseOctet}`;
  const loopbackRange = await canBind(probe, 0);
  const out: { host: string; port: number }[] = [];
  for (let i = 0; i < count; i++) {
    const a = loopbackRange ? { host: `127.0.0.${baseOctet + i}`, port: basePort } : { host: '127.0.0.1', port: basePort + 1 + (baseOctet - 11) + i };
    if (baseOctet + i > 254) throw new TopogitError('TOPOGIT_SANDBOX', `too many instances for 127.0.0.${baseOctet}..`, 'use a lower --base-ip');
    if (!(await canBind(a.host, a.port))) {
      throw new TopogitError('TOPOGIT_SANDBOX', `${a.host}:${a.port} is already in use`, 'run `topogit sandbox down` for an old sandbox, or pick another --base-ip');
    }
    out.push(a);
  }
  return out;
}

export function serverArgs(bin: ServerBinary, i: SandboxInstance): string[] {
  const p = paths(i);
  const common = [
    '--no-defaults',
    `--datadir=${p.data}`,
    `--socket=${p.socket}`,
    `--pid-file=${p.pid}`,
    `--log-error=${p.log}`,
    `--bind-address=${i.host}`,
    `--port=${i.port}`,
    `--server-id=${i.serverId}`,
    // report_host is the address other members can reach this one at: discovery walks down with it.
    `--report-host=${i.host}`,
    `--report-port=${i.port}`,
    '--log-bin=binlog',
    '--log-slave-updates',
    '--binlog-format=ROW',
    '--skip-name-resolve',
    // Every server starts read-only, the primary too: a server that restarts (a crashed old
    // primary above all) must never come back writable on its own. topogit makes the primary
    // writable once it knows it is the only one. Put the same in a production my.cnf.
    '--read-only',
    '--innodb-buffer-pool-size=32M',
    '--max-connections=300',
    ...(isRoot() ? ['--user=root'] : []),
  ];
  if (bin.flavor === 'mariadb') return [...common, '--gtid-strict-mode=1', '--performance-schema=OFF'];
  return [...common, '--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--mysqlx=OFF', '--performance-schema=OFF'];
}

/** A bootstrapped, empty data directory, made once per server version and copied per instance. */
async function template(bin: ServerBinary, stateDir: string): Promise<string> {
  const dir = path.join(stateDir, `.template-${bin.flavor}-${bin.version}`);
  const ready = path.join(dir, '.ready');
  try {
    await access(ready);
    return dir;
  } catch {
    /* build it */
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const data = path.join(dir, 'data');
  const user = isRoot() ? ['--user=root'] : [];
  try {
    if (bin.flavor === 'mariadb' && bin.installDb) {
      await run(bin.installDb, ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...user], { timeout: 120_000 });
    } else {
      await run(bin.server, ['--no-defaults', '--initialize-insecure', `--datadir=${data}`, ...user], { timeout: 180_000 });
    }
  } catch (e) {
    // Its own words say why (a full disk, a bad option, a signal): the last lines of what it printed.
    const x = e as Error & { stderr?: string; stdout?: string; signal?: string; code?: number | string };
    const said = `${x.stderr ?? ''}\n${x.stdout ?? ''}`.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' | ');
    throw new TopogitError('TOPOGIT_SANDBOX', `bootstrapping a data directory with ${bin.installDb ?? bin.server} failed (${x.signal ? `signal ${x.signal}` : `exit ${x.code ?? '?'}`}): ${said || (x.message.split('\n')[0] ?? '')}`);
  }
  await writeFile(ready, new Date().toISOString());
  return dir;
}

export async function startProcess(bin: ServerBinary, i: SandboxInstance): Promise<number> {
  const child = spawn(bin.server, serverArgs(bin, i), { detached: true, stdio: 'ignore' });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const s = await rootSession(i);
      await s.close();
      return child.pid ?? 0;
    } catch {
      if (exited !== null) {
        const log = await readFile(paths(i).log, 'utf8').catch(() => '');
        const last = log.trim().split('\n').filter((l) => /ERROR/.test(l)).slice(-1)[0] ?? `exit code ${exited}`;
        throw new TopogitError('TOPOGIT_SANDBOX', `${i.name}: server exited while starting: ${last}`, `see ${paths(i).log}`);
      }
      if (Date.now() > deadline) throw new TopogitError('TOPOGIT_SANDBOX', `${i.name}: server did not accept connections within 60 s`, `see ${paths(i).log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** root over the instance's own unix socket: the bootstrap left it without a password. */
export function rootSession(i: SandboxInstance): Promise<Session> {
  // Generous: many servers starting at once on a small machine answer slowly at first.
  return openSession({ host: 'localhost', port: 0 }, { user: 'root', password: '' }, { connectMs: 5000, queryMs: 10_000 }, { socketPath: paths(i).socket });
}

/**
 * What the sandbox's admin user may do. README lists the same set; the integration tests run
 * every command as this user, so the list is known to be enough on MariaDB 10.11.
 */
export function adminGrants(flavor: Flavor): string {
  return flavor === 'mariadb'
    ? 'SUPER, RELOAD, PROCESS, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, BINLOG MONITOR, BINLOG ADMIN, REPLICA MONITOR, READ_ONLY ADMIN, CONNECTION ADMIN'
    : 'RELOAD, PROCESS, REPLICATION CLIENT, REPLICATION SLAVE, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN, CONNECTION_ADMIN';
}

export function userStatements(flavor: Flavor, admin: { user: string; password: string }, repl: { user: string; password: string }): Statement[] {
  return [
    // Local to each instance: users must not become GTID events the replicas would have to agree on.
    stmt('SET SESSION sql_log_bin = 0'),
    stmt("CREATE USER ?@'%' IDENTIFIED BY ?", [admin.user, admin.password], [1]),
    stmt(`GRANT ${adminGrants(flavor)} ON *.* TO ?@'%'`, [admin.user]),
    stmt("GRANT ALL ON topogit_demo.* TO ?@'%'", [admin.user]),
    // Optional: lets `status` list the accounts that can write through read_only (MariaDB).
    ...(flavor === 'mariadb' ? [stmt("GRANT SELECT ON mysql.global_priv TO ?@'%'", [admin.user])] : []),
    // An application's user: it may write to topogit_demo and nothing else, and (unlike the admin,
    // which has READ_ONLY ADMIN / SUPER) it cannot write to a read-only server. Drills write as it.
    stmt("CREATE USER 'app'@'%' IDENTIFIED BY ?", [admin.password], [0]),
    stmt("GRANT ALL ON topogit_demo.* TO 'app'@'%'"),
    stmt("CREATE USER ?@'%' IDENTIFIED BY ?", [repl.user, repl.password], [1]),
    stmt("GRANT REPLICATION SLAVE ON *.* TO ?@'%'", [repl.user]),
    stmt('SET SESSION sql_log_bin = 1'),
  ];
}

export interface UpOptions {
  readonly cluster: string;
  readonly count: number;
  readonly baseOctet: number;
  readonly stateDir: string;
  readonly admin: { user: string; password: string };
  readonly repl: { user: string; password: string };
}

export async function upLocal(bin: ServerBinary, o: UpOptions): Promise<SandboxState> {
  const dir = path.join(o.stateDir, o.cluster);
  try {
    await access(path.join(dir, 'sandbox.json'));
    throw new TopogitError('TOPOGIT_SANDBOX', `sandbox ${o.cluster} already exists in ${dir}`, `run \`topogit sandbox down --cluster ${o.cluster}\` first`);
  } catch (e) {
    if (e instanceof TopogitError) throw e;
  }
  const addrs = await allocateAddresses(o.count, o.baseOctet);
  const tpl = await template(bin, o.stateDir);
  const instances: SandboxInstance[] = addrs.map((a, n) => ({
    name: `db${String(n + 1).padStart(3, '0')}`,
    host: a.host,
    port: a.port,
    serverId: n + 1,
    dir: path.join(dir, `db${String(n + 1).padStart(3, '0')}`),
  }));
  const state: SandboxState = {
    cluster: o.cluster,
    flavor: bin.flavor,
    version: bin.version,
    server: bin.server,
    dir,
    instances,
    adminUser: o.admin.user,
    replUser: o.repl.user,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'sandbox.json'), JSON.stringify(state, null, 2));
  // allSettled: when one server fails to start, wait for the others to finish starting too, so
  // that every process this call spawned has its pid file and the caller's cleanup stops it.
  const started = await Promise.allSettled(
    instances.map(async (i) => {
      await mkdir(i.dir, { recursive: true });
      await cp(path.join(tpl, 'data'), paths(i).data, { recursive: true });
      // MySQL keeps server_uuid in auto.cnf: a copied one would make every instance the same server.
      await rm(path.join(paths(i).data, 'auto.cnf'), { force: true });
      await startProcess(bin, i);
      const s = await rootSession(i);
      try {
        for (const st of userStatements(bin.flavor, o.admin, o.repl)) await s.query(st.sql, st.values);
      } finally {
        await s.close();
      }
    }),
  );
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
  const [primary, ...replicas] = instances;
  if (!primary) throw new TopogitError('TOPOGIT_USAGE', 'a sandbox needs at least one instance');
  await Promise.all(replicas.map((r) => wireReplica(bin, r, primary, o.repl)));
  await makeWritable(primary);
  return state;
}

/** The primary accepts writes once its replicas are wired (servers start read-only). */
export async function makeWritable(i: SandboxInstance, open: (i: SandboxInstance) => Promise<Session> = rootSession): Promise<void> {
  const s = await open(i);
  try {
    await s.query('SET GLOBAL read_only = 0');
  } finally {
    await s.close();
  }
}

export async function wireReplica(
  bin: ServerBinary,
  r: SandboxInstance,
  source: SandboxInstance,
  repl: { user: string; password: string },
  open: (i: SandboxInstance) => Promise<Session> = rootSession,
) {
  const s = await open(r);
  try {
    const v = parseVersion(bin.version, bin.flavor === 'mariadb' ? 'mariadb' : '');
    const change = changeSource(v, { host: source.host, port: source.port, user: repl.user, password: repl.password, ...DEFAULT_REPLICATION });
    await s.query(change.sql, change.values);
    await s.query(startReplica(v).sql);
    await s.query('SET GLOBAL read_only = 1');
    if (bin.flavor === 'mysql') await s.query('SET GLOBAL super_read_only = 1');
  } finally {
    await s.close();
  }
}

export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}
