// A real sandbox fleet in a scratch directory, for integration tests. Nothing here is mocked:
// the servers are mariadbd/mysqld processes, commands run through the real CLI entry point.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { main } from '../../src/cli/main.js';
import { findServerBinary } from '../../src/adapters/sandbox/binaries.js';

const exec = promisify(execFile);

export const TEST_PASSWORD = 'T0pogit-test-Secret-9f3';
export const TEST_REPL_PASSWORD = 'R3pl-test-Secret-4c1';

export interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export interface Fleet {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cluster: string;
  readonly hosts: readonly string[];
  /** The members' names, as `sandbox up` gives them: db001 on hosts[0], db002 on hosts[1], ... */
  readonly names: readonly string[];
  run(...argv: string[]): Promise<Run>;
  /** Runs the statements in order on one connection as the admin user. */
  sql(host: string, ...statements: string[]): Promise<unknown[]>;
  /** The address of member `name`. */
  host(name: string): string;
  /** Whom `name` replicates from: a member's name (an address outside the fleet), null for nobody. */
  sourceOf(name: string): Promise<string | null>;
  /** `name`'s replication at a glance: `db002 IO Yes SQL Yes`, or `none`. */
  replication(name: string): Promise<string>;
  /** `name`'s @@read_only (1 or 0). */
  readOnly(name: string): Promise<number>;
  /** Runs git in `cwd` (default the fleet's directory) as an operator; returns its stdout. */
  git(args: readonly string[], cwd?: string): Promise<string>;
  /**
   * Makes the fleet's directory a git repository whose `main` tracks a bare remote
   * (`remote.git`), ignoring the sandbox, `.topogit/` and `ignore`, and commits and pushes
   * everything (after `prepare`, e.g. a policy edit).
   */
  commitToRemote(o: { message: string; ignore?: readonly string[]; prepare?: () => Promise<void> }): Promise<void>;
  down(): Promise<void>;
}

export async function serverAvailable(): Promise<boolean> {
  return (await findServerBinary()) !== undefined;
}

export async function runIn(dir: string, env: NodeJS.ProcessEnv, argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s), env, cwd: dir });
  return { code, out, err };
}

/** Starts `instances` servers on 127.0.0.<baseOctet>.. in a fresh directory. */
export async function startFleet(o: { cluster: string; instances: number; baseOctet: number }): Promise<Fleet> {
  const dir = await mkdtemp(path.join(tmpdir(), `topogit-${o.cluster}-`));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    TOPOGIT_PASSWORD: TEST_PASSWORD,
    TOPOGIT_REPL_PASSWORD: TEST_REPL_PASSWORD,
    TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'),
  };
  const run = (...argv: string[]) => runIn(dir, env, argv);
  const up = await run('sandbox', 'up', '--cluster', o.cluster, '--instances', String(o.instances), '--base-ip', String(o.baseOctet));
  if (up.code !== 0) throw new Error(`sandbox up failed: ${up.err}`);
  const hosts = Array.from({ length: o.instances }, (_, n) => `127.0.0.${o.baseOctet + n}`);
  const names = hosts.map((_, n) => `db${String(n + 1).padStart(3, '0')}`);
  const host = (name: string): string => {
    const h = hosts[names.indexOf(name)];
    if (!h) throw new Error(`no member ${name} in fleet ${o.cluster} (${names.join(', ')})`);
    return h;
  };
  const nameOf = (address: string): string => names[hosts.indexOf(address)] ?? address;
  async function sql(address: string, ...statements: string[]): Promise<unknown[]> {
    const c = await mysql.createConnection({ host: address, port: 3306, user: 'topogit', password: TEST_PASSWORD, connectTimeout: 2000 });
    try {
      let last: unknown[] = [];
      for (const text of statements) [last] = (await c.query(text)) as unknown as [unknown[]];
      return last;
    } finally {
      await c.end();
    }
  }
  const git = async (args: readonly string[], cwd = dir) => {
    const gitEnv = { ...process.env, ...env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' };
    return (await exec('git', [...args], { cwd, env: gitEnv, maxBuffer: 64 * 1024 * 1024 })).stdout;
  };
  const replicaRow = async (name: string) =>
    ((await sql(host(name), 'SHOW SLAVE STATUS')) as { Master_Host: string; Slave_IO_Running: string; Slave_SQL_Running: string }[])[0];
  return {
    dir,
    env,
    cluster: o.cluster,
    hosts,
    names,
    run,
    sql,
    host,
    async sourceOf(name) {
      const r = await replicaRow(name);
      return r?.Master_Host ? nameOf(r.Master_Host) : null;
    },
    async replication(name) {
      const r = await replicaRow(name);
      return r ? `${nameOf(r.Master_Host)} IO ${r.Slave_IO_Running} SQL ${r.Slave_SQL_Running}` : 'none';
    },
    async readOnly(name) {
      const [row] = (await sql(host(name), 'SELECT @@read_only AS ro')) as { ro: number }[];
      return Number(row?.ro ?? -1);
    },
    git,
    async commitToRemote(o) {
      await writeFile(path.join(dir, '.gitignore'), ['.sandbox/', '.topogit/', ...(o.ignore ?? [])].join('\n') + '\n');
      await exec('git', ['init', '-q', '--bare', '-b', 'main', path.join(dir, 'remote.git')]);
      await git(['init', '-q', '-b', 'main']);
      await o.prepare?.();
      await git(['add', '.']);
      await git(['commit', '-qm', o.message]);
      await git(['remote', 'add', 'origin', path.join(dir, 'remote.git')]);
      await git(['push', '-qu', 'origin', 'main']);
    },
    async down() {
      await run('sandbox', 'down', '--cluster', o.cluster);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
