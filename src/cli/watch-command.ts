// `topogit watch`: parse, build the logger, start the daemon, stop it cleanly on a signal.
import { hostname } from 'node:os';
import path from 'node:path';
import type { Coordinator } from '../coordination/coordinator.js';
import type { Command } from 'commander';
import { TopogitError } from '../core/errors.js';
import type { Timeouts } from '../core/ports.js';
import { int, type Io } from './shared.js';

export interface WatchCommandDeps {
  readonly io: Io;
  readonly setCode: (c: number) => void;
  readonly timeouts: () => Timeouts;
  readonly coordinator: () => Coordinator;
}

/** Keys whose values never reach a log line, whatever object they sit in. */
export const REDACT = ['password', '*.password', '*.*.password', 'MASTER_PASSWORD', 'SOURCE_PASSWORD', 'env.TOPOGIT_PASSWORD', 'env.TOPOGIT_REPL_PASSWORD'];

function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[^:]+):)?(\d{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new TopogitError('TOPOGIT_USAGE', `--http ${v}: expected HOST:PORT or PORT`, 'e.g. --http 127.0.0.1:9860');
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/** The token from its file: its first line, trimmed; an unreadable or empty file is an error (never an open page by accident). */
async function readToken(file: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TopogitError('TOPOGIT_USAGE', `--http-token-file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'create it, e.g. head -c 32 /dev/urandom | base64 > token && chmod 600 token');
  }
  const token = (text.split('\n')[0] ?? '').trim();
  if (token.length < 16) throw new TopogitError('TOPOGIT_USAGE', `--http-token-file ${file}: the token must be at least 16 characters on its first line`, 'e.g. head -c 32 /dev/urandom | base64 > token && chmod 600 token');
  return token;
}

export function registerWatchCommand(program: Command, d: WatchCommandDeps): void {
  const { io } = d;
  program
    .command('watch')
    .description('run continuously: reconcile, take changes from Git, fail over by policy, report health over HTTP')
    .option('--repo <dir>', 'the repository with the topology files', '.')
    .option('--topologies <dir>', 'topology directory inside the repository', 'topologies')
    .option('--http <[host:]port>', 'serve the status page at /, /api/clusters, /api/events, /metrics, /healthz and /readyz (loopback by default)')
    .option('--http-token-file <file>', 'a file holding a token that the page, the API and /metrics require (Bearer header, or the page\'s sign-in form)')
    .option('--commit-url <template>', "link commits on the page, e.g. 'https://git.example.com/ops/topologies/commit/{sha}'")
    .option('--pull-interval <ms>', 'how often to pull the upstream (a fast-forward, or a rebase of unpushed local commits)', int('--pull-interval', 200, 3_600_000), 3000)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option('--name <name>', "this daemon's name among the daemons sharing a coordinator (default host:pid)")
    .action(async (o: { repo: string; topologies: string; http?: string; httpTokenFile?: string; commitUrl?: string; pullInterval: number; logLevel: string; name?: string }) => {
      if (o.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,62}$/.test(o.name)) throw new TopogitError('TOPOGIT_USAGE', `--name ${o.name}: letters, digits and . _ : @ - (at most 63)`, 'e.g. --name topogit-a');
      if ((o.httpTokenFile || o.commitUrl) && !o.http) throw new TopogitError('TOPOGIT_USAGE', `${o.httpTokenFile ? '--http-token-file' : '--commit-url'} needs --http`, 'e.g. --http 127.0.0.1:9860');
      if (o.commitUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(o.commitUrl)) throw new TopogitError('TOPOGIT_USAGE', `--commit-url ${o.commitUrl}: expected an http(s) URL with {sha} where the commit goes`, "e.g. --commit-url 'https://git.example.com/ops/topologies/commit/{sha}'");
      if (o.commitUrl !== undefined && !o.commitUrl.includes('{sha}')) throw new TopogitError('TOPOGIT_USAGE', `--commit-url ${o.commitUrl}: it has no {sha} where the commit goes`, "e.g. --commit-url 'https://git.example.com/ops/topologies/commit/{sha}'");
      const token = o.httpTokenFile ? await readToken(path.resolve(io.cwd, o.httpTokenFile)) : undefined;
      const { pino } = await import('pino');
      const pretty = process.stdout.isTTY && !io.env.TOPOGIT_LOG_JSON;
      const log = pino(
        { level: o.logLevel, base: { pid: process.pid }, redact: { paths: REDACT, censor: '****' } },
        pretty ? pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }) : pino.destination({ dest: 1, sync: true }),
      );
      const repoDir = path.resolve(io.cwd, o.repo);
      const { startDaemon } = await import('../daemon/daemon.js');
      const daemon = await startDaemon({
        repoDir,
        topologies: o.topologies,
        env: io.env,
        timeouts: d.timeouts(),
        log,
        pullIntervalMs: o.pullInterval,
        coordinator: d.coordinator(),
        name: o.name ?? `${hostname()}:${process.pid}`,
        ...(o.http ? { http: { ...parseListen(o.http), ...(token ? { token } : {}), ...(o.commitUrl ? { commitUrl: o.commitUrl } : {}) } } : {}),
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          log.warn({ signal }, 'stopping: finishing the step in flight');
          // A stuck server must not hold the exit hostage: give up after 10 s.
          const hard = setTimeout(() => {
            log.error('did not stop within 10 s; exiting');
            // Something (a stuck server) holds the event loop: leave, so a standby can take over.
            process.exit(1);
          }, 10_000);
          hard.unref();
          void daemon.stop().then(() => {
            clearTimeout(hard);
            log.info('stopped');
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => {
          log.info('SIGHUP: reloading the topology files');
          void daemon.reload('SIGHUP');
        });
      });
      log.flush?.();
      d.setCode(0);
    });
}
