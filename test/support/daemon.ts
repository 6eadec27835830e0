// A `topogit watch` process for integration tests: spawned from bin/topogit.js with JSON logs,
// its HTTP port read from its own log line, its whole log kept for assertions and for the
// test-results/ files a failure is read from.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from './wait.js';

const root = path.resolve(import.meta.dirname, '../..');

export interface SpawnedDaemon {
  readonly name: string;
  readonly child: ChildProcess;
  /** Its HTTP port on 127.0.0.1 (`--http 127.0.0.1:0` is in its arguments). */
  readonly port: number;
  readonly log: () => string;
  readonly exited: Promise<unknown>;
}

/** Starts `topogit [global...] watch --name NAME --http 127.0.0.1:0 [watchArgs...]` in `cwd`; resolves once it serves HTTP. */
export async function spawnDaemon(o: { name: string; cwd: string; env: NodeJS.ProcessEnv; global?: readonly string[]; watchArgs?: readonly string[] }): Promise<SpawnedDaemon> {
  let out = '';
  const args = [...(o.global ?? []), 'watch', '--name', o.name, '--http', '127.0.0.1:0', ...(o.watchArgs ?? [])];
  const child = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), ...args], { cwd: o.cwd, env: { ...o.env, TOPOGIT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const HTTP_LINE = /http on http:\/\/127\.0\.0\.1:(\d+)/;
  const log = await waitFor(`daemon ${o.name} to log its HTTP address`, () => out, (l) => HTTP_LINE.test(l), 15_000);
  return { name: o.name, child, port: Number(HTTP_LINE.exec(log)?.[1]), log: () => out, exited };
}

/** Writes each daemon's log to test-results/<dir>/<prefix><name>-<pid>.log (gitignored). */
export async function keepLogs(dir: string, daemons: readonly SpawnedDaemon[], prefix = ''): Promise<void> {
  const logs = path.join(root, 'test-results', dir);
  await mkdir(logs, { recursive: true });
  for (const d of daemons) await writeFile(path.join(logs, `${prefix}${d.name}-${d.child.pid}.log`), d.log());
}
