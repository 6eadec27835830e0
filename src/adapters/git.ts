// Git, through simple-git. Adapters translate; they never decide.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import type { CommitText } from '../core/history.js';
import type { WriteBackRequest, WriteBackResult } from '../core/ports.js';
import { COMMIT_LOG_FORMAT, gitAt, isNonFastForward, parseCommitLog, message, must, NETWORK_TIMEOUT_MS, oneLine, Refusal, run, unpushedNotBy, upstreamOf } from './git-run.js';

/** The commit checked out in the repository that holds `dir`, or null outside a repository. */
export async function headCommit(dir: string): Promise<string | null> {
  try {
    const git = simpleGit({ baseDir: dir });
    if (!(await git.checkIsRepo())) return null;
    return (await git.revparse(['HEAD'])).trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Write-back: after a failover, edit the cluster's file, commit it, push it.

const defaultBackoff = (attempt: number): number => Math.min(5000, 200 * 2 ** attempt);
const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Edits `file`, commits only that file as `author`, and pushes it to the branch's upstream without
 * ever forcing. A non-fast-forward rejection fetches, moves the branch to the upstream, applies
 * `edit` again to the new text and retries; any other push error leaves the commit local.
 * Never throws: every outcome is a WriteBackResult.
 */
export async function writeBack(req: WriteBackRequest): Promise<WriteBackResult> {
  const maxAttempts = Math.max(1, Math.floor(req.maxAttempts ?? 5));
  const backoff = req.backoffMs ?? defaultBackoff;
  const sleep = req.sleep ?? defaultSleep;
  let commit: string | undefined;
  let attempts = 0;
  const failed = (error: string): WriteBackResult => (commit === undefined ? { kind: 'failed', error, attempts } : { kind: 'failed', commit, error, attempts });
  const staysLocal = (): string => (commit === undefined ? '' : `; commit ${commit.slice(0, 12)} stays local and is not pushed`);

  try {
    const abs = path.resolve(req.repoDir, req.file);
    const rel = path.relative(path.resolve(req.repoDir), abs);
    if (path.isAbsolute(req.file) || rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      return failed(`${req.file} must be a path inside ${req.repoDir}, relative to it`);
    }
    if (req.author.name.trim() === '' || req.author.email.trim() === '') return failed('the commit author needs a name and an email');

    const git = gitAt(req.repoDir);
    const remote = gitAt(req.repoDir, {}, { timeoutMs: NETWORK_TIMEOUT_MS });
    const branch = (await run(git, ['symbolic-ref', '--quiet', '--short', 'HEAD'])).ok;
    if (branch === undefined || branch.trim() === '') {
      return failed(`HEAD is detached in ${req.repoDir}; topogit commits only onto a branch (check one out)`);
    }
    const branchName = branch.trim();
    const tracked = await run(git, ['ls-files', '--error-unmatch', '--', req.file]);
    if (tracked.ok === undefined) return failed(`${req.file} is not tracked by Git in ${req.repoDir}; commit it once by hand first`);
    const dirty = await must(git, ['status', '--porcelain', '--', req.file]);
    if (dirty.trim() !== '') {
      return failed(`${req.file} has uncommitted changes in ${req.repoDir} (${dirty.trim()}); topogit never overwrites a human's edit: commit or stash them, then run again`);
    }

    const first = await editAndCommit(git, abs, req);
    if (first === null) return { kind: 'unchanged' };
    commit = first;

    if (!req.push) return { kind: 'committed', commit, pushed: false, why: 'push is disabled', retriable: false };
    const upstream = await upstreamOf(git, branchName);
    if ('why' in upstream) return { kind: 'committed', commit, pushed: false, why: upstream.why, retriable: false };
    // topogit's own earlier commits that are not pushed yet (a write-back still pending) go with it.
    const foreign = await unpushedNotBy(git, req.author);
    if (foreign > 0) {
      return {
        kind: 'committed',
        commit,
        pushed: false,
        why: `${branchName} has ${foreign} local commit${foreign === 1 ? '' : 's'} not on ${upstream.display} that topogit did not make; not publishing them (push by hand)`,
        retriable: true,
      };
    }

    for (;;) {
      attempts += 1;
      const pushed = await run(remote, ['push', '--', upstream.remote, `HEAD:${upstream.merge}`]);
      if (pushed.ok !== undefined) return { kind: 'committed', commit, pushed: true, attempts };
      if (!isNonFastForward(pushed.error)) return failed(`git push to ${upstream.display} failed: ${oneLine(pushed.error)}${staysLocal()}`);
      if (attempts >= maxAttempts) {
        return failed(`git push to ${upstream.display} was rejected ${attempts} time${attempts === 1 ? '' : 's'} (the remote kept moving)${staysLocal()}`);
      }
      await sleep(backoff(attempts));
      await must(remote, ['fetch', '--', upstream.remote]);
      // Only this commit may be dropped and made again on the new head: any other local commit
      // (a human's, or topogit's own still-pending one) is kept, and the retry rebases it later.
      const others = Number.parseInt((await must(git, ['rev-list', '--count', '@{u}..HEAD~1'])).trim(), 10);
      if (others > 0) {
        throw new Refusal(`${branchName} has ${others} local commit${others === 1 ? '' : 's'} besides this write-back's that ${upstream.display} does not have; not resetting the branch`);
      }
      const otherChanges = await must(git, ['status', '--porcelain', '--untracked-files=no']);
      if (otherChanges.trim() !== '') {
        throw new Refusal(`the working tree in ${req.repoDir} has uncommitted changes (${oneLine(otherChanges.trim())}); not resetting ${branchName} to ${upstream.display}`);
      }
      // --keep rather than --hard: it also refuses to overwrite untracked files in the way.
      await must(git, ['reset', '--quiet', '--keep', '@{u}']);
      const dropped = commit;
      commit = undefined;
      let next: string | null;
      try {
        next = await editAndCommit(git, abs, req);
      } catch (e) {
        throw new Refusal(`after moving ${branchName} to ${upstream.display} (the earlier local commit ${dropped.slice(0, 12)} was dropped): ${message(e)}`);
      }
      if (next === null) return { kind: 'unchanged' };
      commit = next;
    }
  } catch (e) {
    return failed(`${message(e)}${staysLocal()}`);
  }
}

/** The commit that last touched `file` on the current branch, or null (no such commit, no commits, not a repository). */
export async function lastCommitTouching(repoDir: string, file: string): Promise<{ commit: string; subject: string; date: string } | null> {
  const git = gitAt(repoDir);
  const inRepo = await run(git, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
  if (inRepo.ok === undefined) return null;
  const out = await must(git, ['log', '-1', '--format=%H%x1f%cI%x1f%s', 'HEAD', '--', file]);
  const line = out.trim();
  if (line === '') return null;
  const [commit = '', date = '', subject = ''] = line.split('\x1f');
  return { commit, subject, date };
}

/** The newest `limit` commits on the current branch that touched `dir`, newest first ([] outside a repository or without commits). */
export async function recentCommits(repoDir: string, dir: string, limit: number): Promise<CommitText[]> {
  const git = gitAt(repoDir);
  const out = (await run(git, ['log', `-${Math.max(1, Math.floor(limit))}`, COMMIT_LOG_FORMAT, 'HEAD', '--', dir])).ok;
  return out === undefined ? [] : parseCommitLog(out);
}

/** How many commits on the current branch touched `file` after `commit` (those reachable from HEAD but not from `commit`). */
export async function commitsSince(repoDir: string, commit: string, file: string): Promise<number> {
  const git = gitAt(repoDir);
  const known = await run(git, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${commit}^{commit}`]);
  if (known.ok === undefined) throw new Error(`commit ${commit} is not in the repository at ${repoDir} (was history rewritten?)`);
  const out = await must(git, ['rev-list', '--count', `${known.ok.trim()}..HEAD`, '--', file]);
  return Number.parseInt(out.trim(), 10);
}

/** The text of `file` (relative to repoDir) as HEAD has it, or undefined (not in HEAD, no commits, not a repository). */
export async function committedText(repoDir: string, file: string): Promise<string | undefined> {
  return (await run(gitAt(repoDir), ['show', `HEAD:${file}`])).ok;
}

// ---------------------------------------------------------------------------------------------

/** Reads, edits, writes, stages and commits only `req.file`; null when the edit changes nothing. */
export async function editAndCommit(git: SimpleGit, abs: string, req: Pick<WriteBackRequest, 'repoDir' | 'file' | 'edit' | 'message' | 'author'>): Promise<string | null> {
  const before = await readFile(abs, 'utf8');
  const after = req.edit(before);
  if (after === before) return null;
  await writeFile(abs, after, 'utf8');
  try {
    await must(git, ['add', '--', req.file]);
    const committer = gitAt(req.repoDir, {
      GIT_AUTHOR_NAME: req.author.name,
      GIT_AUTHOR_EMAIL: req.author.email,
      GIT_COMMITTER_NAME: req.author.name,
      GIT_COMMITTER_EMAIL: req.author.email,
    });
    // A pathspec makes this an --only commit: whatever else is staged stays staged and out of it.
    await must(committer, ['-c', 'commit.gpgsign=false', 'commit', '--quiet', '--no-edit', '--cleanup=whitespace', '-m', req.message, '--', req.file]);
  } catch (e) {
    // Leave the tree as it was, or every later run would refuse the file as a human's edit.
    await run(git, ['reset', '--quiet', '--', req.file]);
    await writeFile(abs, before, 'utf8').catch(() => undefined);
    throw new Refusal(`git commit of ${req.file} failed: ${oneLine(message(e))}`);
  }
  return (await must(git, ['rev-parse', 'HEAD'])).trim();
}

