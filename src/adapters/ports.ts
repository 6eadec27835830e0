// The real adapters assembled into the engine's ports. Wired at the edges (CLI, daemon).
import { spawn } from 'node:child_process';
import { topogitPaths } from './paths.js';
import type { HookResult, ReconcilePorts } from '../core/ports.js';

export type RealPorts = ReconcilePorts;

export async function failoverPorts(cwd: string, env: NodeJS.ProcessEnv): Promise<RealPorts> {
  const [{ openSession }, { probe }, { StateStore }, git, { haproxyRouter }, sync] = await Promise.all([
    import('./mysql/session.js'),
    import('./mysql/probe.js'),
    import('./state.js'),
    import('./git.js'),
    import('./haproxy.js'),
    import('./git-sync.js'),
  ]);
  const inHistory = new Set<string>();
  return {
    open: openSession,
    probe,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
    state: new StateStore(topogitPaths(cwd).state),
    writeBack: git.writeBack,
    router: haproxyRouter,
    committedSince: async (commit, file) => (await git.commitsSince(cwd, commit, file).catch(() => 0)) > 0,
    // Asked every pass while the file names a failed primary the primary; once a failover's commit
    // is in the history it stays there, so a yes is remembered (a no is asked again: a pull may come).
    failoverInHistory: async (failover, file) => {
      const key = `${failover.id}\n${failover.commit ?? ''}\n${file}`;
      if (inHistory.has(key)) return true;
      const yes = await sync.failoverInHistory(cwd, failover, file).catch(() => false);
      if (yes) inHistory.add(key);
      return yes;
    },
    runHook: (command, hookEnv, timeoutMs) => runHook(command, hookEnv, cwd, env, timeoutMs),
    faultPoint: (step) => {
      // Fault injection for crash-safety tests: die, without cleanup, right after a named step.
      if (env.TOPOGIT_FAULT_AFTER === step) process.kill(process.pid, 'SIGKILL');
      // … or stop (SIGSTOP: paused, as by a long GC or a frozen VM) until someone sends SIGCONT.
      if (env.TOPOGIT_FAULT_PAUSE_AFTER === step) process.kill(process.pid, 'SIGSTOP');
    },
  };
}

/** Hooks run from `cwd` with the minimal environment (a switchover's hooks, outside a failover). */
export function hookRunner(cwd: string, env: NodeJS.ProcessEnv): (command: string, hookEnv: Record<string, string>, timeoutMs?: number) => Promise<HookResult> {
  return (command, hookEnv, timeoutMs) => runHook(command, hookEnv, cwd, env, timeoutMs);
}

const HOOK_PASSTHROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/** Runs a hook with `sh -c` in the repository with a minimal environment plus its TOPOGIT_* variables, bounded to 30 s. */
function runHook(command: string, hookEnv: Record<string, string>, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<HookResult> {
  return new Promise((resolve) => {
    // Hooks get what a script needs and the TOPOGIT_* facts, never the secrets topogit holds.
    const base = Object.fromEntries(HOOK_PASSTHROUGH.flatMap((k) => (env[k] !== undefined ? [[k, env[k] as string]] : [])));
    const child = spawn('sh', ['-c', command], { cwd, env: { ...base, ...hookEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, output: e.message });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), output: output.trim() });
    });
  });
}
