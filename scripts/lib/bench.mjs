// Helpers the benchmark scripts share: awaiting a condition (it throws, naming what it awaited and
// the last value, when the condition never holds), medians and percentiles, a free loopback port.
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy (returned), or throws after `ms`. */
export async function until(what, fn, ms = 30_000, everyMs = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}; last: ${JSON.stringify(last)?.slice(0, 400)}`);
    await sleep(everyMs);
  }
}

/** The median (null for none). */
export function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The 95th percentile, nearest rank. */
export function p95(xs) {
  return [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
}

/** A TCP port free on `host` right now (listen on 0, read it, close). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The environment a benchmark's topogit, servers and git run with: a sandbox in `dir`, fixed test passwords, JSON logs, a committer. */
export function benchEnv(dir) {
  return {
    ...process.env,
    TOPOGIT_SANDBOX_DIR: `${dir}/.sandbox`,
    TOPOGIT_PASSWORD: 'bench-pw',
    TOPOGIT_REPL_PASSWORD: 'bench-repl',
    TOPOGIT_LOG_JSON: '1',
    GIT_AUTHOR_NAME: 'bench',
    GIT_AUTHOR_EMAIL: 'bench@localhost',
    GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@localhost',
  };
}

/**
 * A sandbox cluster `bench` whose topology lives in Git as an operator would keep it: a bare remote,
 * the operator's clone `work` (sandbox up there, the failover block replaced by `failover`, committed
 * and pushed) and the daemon's clone `ops`. `sh(cmd, args, cwd)` runs a command synchronously.
 */
export function gitSandbox({ dir, sh, topogit, base, failover, upArgs = [] }) {
  const work = `${dir}/work`;
  const ops = `${dir}/ops`;
  const bare = `${dir}/remote.git`;
  sh('git', ['init', '-q', '--bare', '-b', 'main', bare], dir);
  sh('git', ['clone', '-q', bare, work], dir);
  if (topogit(work, 'sandbox', 'up', '--cluster', 'bench', '--base-ip', String(base), ...upArgs).status !== 0) throw new Error('sandbox up failed');
  const file = `${work}/topologies/bench.yaml`;
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^failover:\n(?: {2}.*\n)+/m, failover));
  writeFileSync(`${work}/.gitignore`, '.topogit/\n');
  sh('git', ['add', '.'], work);
  sh('git', ['commit', '-qm', 'bench'], work);
  sh('git', ['push', '-q', 'origin', 'main'], work);
  sh('git', ['clone', '-q', bare, ops], dir);
  return { work, ops, bare };
}
