// A real HAProxy for the sandbox and the tests: TCP frontends for writes (and, optionally, reads)
// in front of the sandbox's servers, and the runtime API that topogit drives them through. No
// health checks: which server takes connections is topogit's decision, made through the runtime API.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { haproxyVersion } from '../haproxy.js';
import { which } from './binaries.js';

export interface HaproxyEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface HaproxyFrontend {
  readonly bind: HaproxyEndpoint;
  readonly backend: string;
}

export interface HaproxyOptions {
  /** Where the config, the pid file and a unix runtime socket (if asked for) go. */
  readonly dir: string;
  /** The runtime API (`stats socket ... level admin`): TCP, or a unix socket at `path`. */
  readonly runtime: HaproxyEndpoint | { readonly path: string };
  readonly writer: HaproxyFrontend;
  readonly reader?: HaproxyFrontend;
  /** One server per instance, named after it. */
  readonly servers: readonly { readonly name: string; readonly host: string; readonly port: number }[];
  /** The server enabled in the writer backend (and left out of the reader backend); without it every writer server starts in maint. */
  readonly primary?: string;
  /** The haproxy binary; default: TOPOGIT_HAPROXY, then `haproxy` on PATH or in /usr/sbin. */
  readonly binary?: string;
  /** How long the runtime API may take to answer after the start; default 10 s. */
  readonly startTimeoutMs?: number;
  /**
   * Outlive this process (the sandbox's router): spawned in its own process group, its output
   * appended to `<dir>/haproxy.log`, not waited for. Stop it with stopHaproxy(dir) from any process.
   */
  readonly detached?: boolean;
}

export interface RunningHaproxy {
  readonly pid: number;
  /** The runtime API's address as RouterSpec.address wants it. */
  readonly address: string;
  readonly configFile: string;
  stop(): Promise<void>;
}

export const HAPROXY_INSTALL_HINT = 'no haproxy binary found (looked at TOPOGIT_HAPROXY, on PATH and in /usr/sbin); on Debian/Ubuntu run `bash scripts/ensure-haproxy.sh` or `sudo apt-get install -y haproxy`';

export function findHaproxy(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TOPOGIT_HAPROXY) return existsSync(env.TOPOGIT_HAPROXY) ? env.TOPOGIT_HAPROXY : undefined;
  return which('haproxy', env);
}

export function runtimeAddress(runtime: HaproxyOptions['runtime']): string {
  return 'path' in runtime ? runtime.path : `${runtime.host}:${runtime.port}`;
}

const at = (e: HaproxyEndpoint) => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);

/** The configuration text (pure). */
export function haproxyConfig(o: HaproxyOptions): string {
  const stats = 'path' in o.runtime ? o.runtime.path : `ipv4@${o.runtime.host}:${o.runtime.port}`;
  if (o.primary !== undefined && !o.servers.some((s) => s.name === o.primary)) throw new Error(`haproxy config: the primary ${o.primary} is not one of the servers (${o.servers.map((s) => s.name).join(', ')})`);
  if (o.reader && o.reader.backend === o.writer.backend) throw new Error(`haproxy config: the reader and writer backends are both ${o.writer.backend}`);
  const backend = (f: HaproxyFrontend, enabled: (name: string) => boolean) => [
    `backend ${f.backend}`,
    // The first server that is not in maintenance takes every connection: in the writer backend
    // there is only ever one.
    '    balance first',
    ...o.servers.map((s) => `    server ${s.name} ${at(s)}${enabled(s.name) ? '' : ' disabled'}`),
    '',
  ];
  const frontend = (name: string, f: HaproxyFrontend) => [`frontend ${name}`, `    bind ${at(f.bind)}`, `    default_backend ${f.backend}`, ''];
  return [
    '# Written by topogit (sandbox). Server states are driven through the runtime API; no health checks.',
    'global',
    `    stats socket ${stats} level admin`,
    '    stats timeout 10s',
    '    maxconn 2000',
    '    nbthread 1',
    '',
    'defaults',
    '    mode tcp',
    '    timeout connect 1s',
    // MySQL sessions sit idle for long (connection pools): the servers' wait_timeout decides, not HAProxy.
    '    timeout client 1h',
    '    timeout server 1h',
    '',
    ...frontend('writer', o.writer),
    ...backend(o.writer, (n) => n === o.primary),
    ...(o.reader ? [...frontend('reader', o.reader), ...backend(o.reader, (n) => n !== o.primary)] : []),
  ].join('\n');
}

/**
 * Starts HAProxy in the foreground (`-db`) as a child of this process, or detached from it
 * (`detached`), and returns once its runtime API answers; throws (having stopped it) when it exits
 * first or does not answer in time.
 */
export async function startHaproxy(o: HaproxyOptions): Promise<RunningHaproxy> {
  const binary = o.binary ?? findHaproxy();
  if (!binary) throw new Error(HAPROXY_INSTALL_HINT);
  await mkdir(o.dir, { recursive: true });
  const configFile = path.join(o.dir, 'haproxy.cfg');
  const pidFile = path.join(o.dir, 'haproxy.pid');
  const logFile = path.join(o.dir, 'haproxy.log');
  await writeFile(configFile, haproxyConfig(o));
  if ('path' in o.runtime) await rm(o.runtime.path, { force: true });

  // -db: foreground, no daemon, no master; HAProxy writes no pid file then, so it is written here.
  let stderr = '';
  let child;
  if (o.detached) {
    // Its own process group (a Ctrl-C of the CLI does not reach it) and a log file rather than
    // pipes to a process that is about to exit.
    const fd = openSync(logFile, 'a');
    try {
      child = spawn(binary, ['-db', '-f', configFile], { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child.unref();
  } else {
    child = spawn(binary, ['-db', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-8000);
    });
  }
  const output = async () => (o.detached ? (await readFile(logFile, 'utf8').catch(() => '')).slice(-8000) : stderr);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const stop = async (): Promise<void> => {
    if (exit) return;
    child.kill('SIGTERM'); // hard stop: sessions are cut, nothing lingers
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000); // a deadline for a stuck process
    await exited;
    clearTimeout(timer);
    await rm(pidFile, { force: true });
  };

  const address = runtimeAddress(o.runtime);
  const deadline = Date.now() + (o.startTimeoutMs ?? 10_000);
  const lastLines = async () => {
    const text = (await output()).trim();
    return text.split('\n').filter((l) => /ALERT|WARNING|error/i.test(l)).slice(-3).join(' | ') || text.split('\n').slice(-1)[0] || 'no output';
  };
  let lastError = '';
  for (;;) {
    const outcome = await Promise.race([
      spawnError.then((e) => ({ kind: 'spawn' as const, e })),
      exited.then(() => ({ kind: 'exit' as const })),
      haproxyVersion(address, 500).then(
        (v) => ({ kind: 'up' as const, v }),
        (e: Error) => ({ kind: 'no' as const, e }),
      ),
    ]);
    if (outcome.kind === 'spawn') throw new Error(`haproxy: cannot run ${binary}: ${outcome.e.message}`);
    if (outcome.kind === 'exit') {
      const how = exit?.signal ? `signal ${exit.signal}` : `code ${exit?.code}`;
      throw new Error(`haproxy exited while starting (${how}): ${await lastLines()} (config ${configFile})`);
    }
    if (outcome.kind === 'up') break;
    lastError = outcome.e.message;
    if (Date.now() >= deadline) {
      await stop();
      throw new Error(`haproxy did not answer on its runtime API within ${o.startTimeoutMs ?? 10_000} ms: ${lastError}; ${await lastLines()}`);
    }
    await new Promise((r) => setTimeout(r, 50)); // poll interval while it starts
  }
  const pid = child.pid!;
  await writeFile(pidFile, `${pid}\n`);
  return { pid, address, configFile, stop };
}

/**
 * The pid of the HAProxy startHaproxy started in `dir`, if it still runs: read from the pid file
 * and checked against the process's command line (its config file), so that a stale pid file
 * naming a pid the OS has since given to another process is never taken for it.
 */
export async function haproxyPid(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(path.join(dir, 'haproxy.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!cmdline.includes(path.join(dir, 'haproxy.cfg'))) return undefined;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/\) Z /.test(stat)) return undefined; // exited, not yet reaped by its parent
  return pid;
}

/**
 * Stops the HAProxy startHaproxy started in `dir`, from any process: SIGTERM (a hard stop:
 * sessions are cut), SIGKILL when it has not exited within `deadlineMs`. Returns its pid, or
 * undefined when none was running; throws when it survives SIGKILL too.
 */
export async function stopHaproxy(dir: string, deadlineMs = 5000): Promise<number | undefined> {
  const pid = await haproxyPid(dir);
  if (pid === undefined) return undefined;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  // Gone: no such process, or a zombie. (Not the command line: an exiting process's reads empty
  // while it still holds its ports.)
  const gone = async (ms: number): Promise<boolean> => {
    const until = Date.now() + ms;
    for (;;) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      if (stat === '' || /\) Z /.test(stat)) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 20)); // poll interval while it exits
    }
  };
  signal('SIGTERM');
  if (!(await gone(deadlineMs))) {
    signal('SIGKILL');
    if (!(await gone(5000))) throw new Error(`haproxy pid ${pid} (${dir}) did not exit after SIGTERM and SIGKILL`);
  }
  await rm(path.join(dir, 'haproxy.pid'), { force: true });
  return pid;
}
