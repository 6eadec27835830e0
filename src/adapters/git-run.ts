// The Git adapter's plumbing: one way to run git in a repository (a clean environment, every
// non-zero exit an error, a bound on commands that reach the remote) and the small reads that
// writeBack, the daemon's pull and the pending write-backs' retry share.
import { simpleGit, type SimpleGit, type SimpleGitOptions } from 'simple-git';
import type { CommitText } from '../core/history.js';

/** A step that cannot go on; its message is the whole explanation. */
export class Refusal extends Error {}

export type Upstream = { readonly remote: string; readonly merge: string; readonly display: string } | { readonly why: string };

export async function upstreamOf(git: SimpleGit, branch: string): Promise<Upstream> {
  const display = await run(git, ['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{u}']);
  if (display.ok === undefined) return { why: `branch ${branch} has no upstream (${oneLine(display.error)})` };
  const remote = (await run(git, ['config', '--get', `branch.${branch}.remote`])).ok?.trim();
  const merge = (await run(git, ['config', '--get', `branch.${branch}.merge`])).ok?.trim();
  if (!remote || !merge) return { why: `branch ${branch} has no upstream configured` };
  return { remote, merge, display: display.ok.trim() };
}

export function isNonFastForward(error: string): boolean {
  // "! [rejected] main -> main (fetch first)" or "(non-fast-forward)"; not "[remote rejected]" (a hook said no).
  return /!\s+\[rejected\][^\n]*\((?:fetch first|non-fast-forward)\)/.test(error);
}

// Repository-location variables that a Git hook sets for its own repository; they would redirect
// every command away from repoDir.
const REPO_LOCATION = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_PREFIX', 'GIT_QUARANTINE_PATH'];
// Interactive helpers topogit never wants (it passes -m and reads no paged output).
const INTERACTIVE = ['EDITOR', 'GIT_EDITOR', 'GIT_SEQUENCE_EDITOR', 'PAGER', 'GIT_PAGER', 'GIT_EXTERNAL_DIFF', 'GIT_AUTHOR_DATE', 'GIT_COMMITTER_DATE'];

type UnsafeFlag = keyof NonNullable<SimpleGitOptions['unsafe']>;
// simple-git refuses these variables in an explicit environment unless allowed. They are the
// operator's own (how to reach the remote), so pass them through when the process has them.
const INHERITED_UNSAFE: Readonly<Record<string, UnsafeFlag>> = {
  git_askpass: 'allowUnsafeAskPass',
  ssh_askpass: 'allowUnsafeAskPass',
  git_ssh: 'allowUnsafeSshCommand',
  git_ssh_command: 'allowUnsafeSshCommand',
  git_proxy_command: 'allowUnsafeGitProxy',
  git_config_global: 'allowUnsafeConfigPaths',
  git_config_system: 'allowUnsafeConfigPaths',
  git_config: 'allowUnsafeConfigPaths',
  git_exec_path: 'allowUnsafeConfigPaths',
  prefix: 'allowUnsafeConfigPaths',
  git_config_count: 'allowUnsafeConfigEnvCount',
  git_template_dir: 'allowUnsafeTemplateDir',
};

/** A command that reaches the remote (fetch, push) is killed after this long without output: a
 *  remote that does not answer (a dead host behind ssh) must not hold a failover or a pass. */
export const NETWORK_TIMEOUT_MS = 15_000;

export function gitAt(dir: string, extra: Record<string, string> = {}, o: { timeoutMs?: number } = {}): SimpleGit {
  const env: Record<string, string> = {};
  const unsafe: Partial<Record<UnsafeFlag, boolean>> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Git (and the clone's hooks) never see topogit's secrets: the database and etcd passwords.
    if (v === undefined || REPO_LOCATION.includes(k) || INTERACTIVE.includes(k) || /^TOPOGIT_\w*PASSWORD/.test(k)) continue;
    env[k] = v;
    const flag = INHERITED_UNSAFE[k.toLowerCase()];
    if (flag) unsafe[flag] = true;
  }
  Object.assign(env, { GIT_TERMINAL_PROMPT: '0', GIT_LITERAL_PATHSPECS: '1', LC_ALL: 'C', LANGUAGE: 'C' }, extra);
  return simpleGit({
    baseDir: dir,
    unsafe,
    ...(o.timeoutMs !== undefined ? { timeout: { block: o.timeoutMs } } : {}),
    // Any non-zero exit is an error (simple-git otherwise treats a silent failure as success).
    errors: (error, result) => (result.exitCode === 0 ? error : (error ?? Buffer.concat([...result.stdOut, ...result.stdErr]))),
  }).env(env);
}

export async function run(git: SimpleGit, args: string[]): Promise<{ ok: string; error?: undefined } | { ok?: undefined; error: string }> {
  try {
    return { ok: await git.raw(args) };
  } catch (e) {
    return { error: message(e) || `git ${args[0] ?? ''} failed` };
  }
}

export async function must(git: SimpleGit, args: string[]): Promise<string> {
  const r = await run(git, args);
  if (r.ok === undefined) throw new Refusal(`git ${args.filter((a) => a !== '--').slice(0, 2).join(' ')} failed: ${oneLine(r.error)}`);
  return r.ok;
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function oneLine(s: string): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('hint:'))
    .join(' | ');
}

/** The branch checked out, or undefined when HEAD is detached. */
export async function currentBranch(git: SimpleGit): Promise<string | undefined> {
  const b = (await run(git, ['symbolic-ref', '--quiet', '--short', 'HEAD'])).ok?.trim();
  return b === undefined || b === '' ? undefined : b;
}

/** How many commits the upstream has that HEAD lacks (behind), and HEAD has that it lacks (ahead). */
export async function aheadBehind(git: SimpleGit): Promise<{ ahead: number; behind: number }> {
  const out = (await must(git, ['rev-list', '--left-right', '--count', 'HEAD...@{u}'])).trim();
  const [ahead = '0', behind = '0'] = out.split(/\s+/);
  return { ahead: Number.parseInt(ahead, 10), behind: Number.parseInt(behind, 10) };
}

/** Local commits the upstream lacks that `author` did not make (a human's, in topogit's clone). */
export async function unpushedNotBy(git: SimpleGit, author: { readonly email: string }): Promise<number> {
  const out = await must(git, ['log', '--format=%ae', '@{u}..HEAD']);
  return out.split('\n').filter((l) => l.trim() !== '' && l.trim() !== author.email).length;
}

export async function revParse(git: SimpleGit, rev: string): Promise<string> {
  return (await must(git, ['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`])).trim();
}

/** The newest commit in `rev`'s history of `file` whose message has the line `Failover-Id: <id>`, or undefined. */
export async function commitWithFailoverId(git: SimpleGit, rev: string, file: string, id: string): Promise<string | undefined> {
  const out = (await run(git, ['log', '-1', '--format=%H', '--fixed-strings', `--grep=Failover-Id: ${id}`, rev, '--', file])).ok?.trim();
  return out === undefined || out === '' ? undefined : out;
}

/** `git log --format=` this, read back by parseCommitLog. */
export const COMMIT_LOG_FORMAT = '--format=%H%x1f%cI%x1f%s%x1f%b%x1e';

/** Commits from `git log COMMIT_LOG_FORMAT`, newest first. */
export function parseCommitLog(out: string): CommitText[] {
  return out
    .split('\x1e')
    .map((r) => r.replace(/^\n/, ''))
    .filter((r) => r.trim() !== '')
    .map((r) => {
      const [commit = '', date = '', subject = '', body = ''] = r.split('\x1f');
      return { commit, date, subject, body };
    });
}
