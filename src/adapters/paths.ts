// Where topogit keeps its own files under the directory it runs in (the repository root):
// `.topogit/locks` (per-cluster apply locks), `.topogit/state` (journals, failover records),
// `.topogit/lease.json` (which daemon acts) and `.topogit/sandbox` (local test servers).
// Every command and the daemon build these paths here and nowhere else.
import path from 'node:path';

export interface TopogitPaths {
  /** `<root>/.topogit` */
  readonly dir: string;
  readonly locks: string;
  readonly state: string;
  /** The directory the daemons' lease record and its mutex live in. */
  readonly lease: string;
  readonly sandbox: string;
}

export function topogitPaths(root: string, env: NodeJS.ProcessEnv = {}): TopogitPaths {
  const dir = path.join(root, '.topogit');
  return {
    dir,
    locks: path.join(dir, 'locks'),
    state: path.join(dir, 'state'),
    lease: dir,
    sandbox: env.TOPOGIT_SANDBOX_DIR ? path.resolve(root, env.TOPOGIT_SANDBOX_DIR) : path.join(dir, 'sandbox'),
  };
}
