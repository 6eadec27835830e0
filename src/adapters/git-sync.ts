// Keeping a clone and its upstream together when either moved: the daemon's pull (a fast-forward,
// or a rebase of local commits onto the upstream), one more attempt at a pending write-back, and
// the reads `apply` and the daemon use to tell whether a failover's commit is in a history.
// Never a force push, never a merge commit, never a local commit lost: a rebase that conflicts is
// aborted and the branch left as it was. Adapters translate; the engine decides.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { CommitText } from '../core/history.js';
import type { WriteBackRetryRequest, WriteBackRetryResult } from '../core/ports.js';
import { editAndCommit } from './git.js';
import { aheadBehind, COMMIT_LOG_FORMAT, commitWithFailoverId, parseCommitLog, currentBranch, gitAt, isNonFastForward, message, must, NETWORK_TIMEOUT_MS, oneLine, revParse, run, unpushedNotBy, upstreamOf } from './git-run.js';

export type PullResult = { readonly pulled: false } | { readonly pulled: true; readonly from: string; readonly to: string; readonly rebased: number };

/** A rebase onto the upstream stopped on a conflict and was aborted; the local commits are as they were. */
export class RebaseConflict extends Error {
  constructor(
    readonly files: readonly string[],
    text: string,
  ) {
    super(text);
  }
}

/** Who rewrites the local commits in a rebase when the clone has no identity of its own. */
const FALLBACK_COMMITTER = { name: 'topogit', email: 'topogit@localhost' };

/**
 * Brings the checked-out branch up to its upstream: a fast-forward when it has no local commits,
 * else a rebase of them onto the upstream (`git rebase @{upstream}`), so a failover commit that
 * could not be pushed and a colleague's push both survive. A branch without an upstream is left
 * alone; `pulled` only when HEAD moved. Throws when the fetch fails, and RebaseConflict (the
 * rebase aborted, nothing lost) when the local commits conflict with the upstream's.
 */
export async function pullUpstream(repoDir: string): Promise<PullResult> {
  const git = await withCommitter(repoDir);
  const branch = await currentBranch(git);
  if (branch === undefined) return { pulled: false };
  const upstream = await upstreamOf(git, branch);
  if ('why' in upstream) return { pulled: false };
  const fetched = await run(gitAt(repoDir, {}, { timeoutMs: NETWORK_TIMEOUT_MS }), ['fetch', '--quiet', '--', upstream.remote]);
  if (fetched.ok === undefined) throw new Error(`git fetch from ${upstream.display} failed: ${oneLine(fetched.error)}`);
  const from = await revParse(git, 'HEAD');
  const { ahead, behind } = await aheadBehind(git);
  if (behind === 0) return { pulled: false };
  if (ahead === 0) await must(git, ['merge', '--ff-only', '--quiet', '@{u}']);
  else await rebaseOntoUpstream(git, upstream.display);
  return { pulled: true, from, to: await revParse(git, 'HEAD'), rebased: ahead };
}

/**
 * One more attempt at a pending write-back: fetch; when the upstream's file already says what the
 * edit says (someone pushed the same change), report `already`; else rebase the local commits
 * onto the upstream, commit the edit when HEAD does not have it yet, and push, never forcing.
 * Never throws: every outcome is a WriteBackRetryResult.
 */
export async function retryWriteBack(req: WriteBackRetryRequest): Promise<WriteBackRetryResult> {
  let made: string | undefined;
  const failed = (error: string): WriteBackRetryResult => ({ kind: 'failed', error, ...(made !== undefined ? { commit: made } : {}) });
  try {
    const abs = path.resolve(req.repoDir, req.file);
    const rel = path.relative(path.resolve(req.repoDir), abs);
    if (path.isAbsolute(req.file) || rel === '' || rel.startsWith('..')) return failed(`${req.file} must be a path inside ${req.repoDir}, relative to it`);
    const identity = { GIT_AUTHOR_NAME: req.author.name, GIT_AUTHOR_EMAIL: req.author.email, GIT_COMMITTER_NAME: req.author.name, GIT_COMMITTER_EMAIL: req.author.email };
    const git = gitAt(req.repoDir, identity);
    const net = gitAt(req.repoDir, {}, { timeoutMs: NETWORK_TIMEOUT_MS });
    const branch = await currentBranch(git);
    if (branch === undefined) return failed(`HEAD is detached in ${req.repoDir}; topogit commits only onto a branch (check one out)`);
    const upstream = await upstreamOf(git, branch);
    if ('why' in upstream) return failed(upstream.why);
    const fetched = await run(net, ['fetch', '--quiet', '--', upstream.remote]);
    if (fetched.ok === undefined) return failed(`git fetch from ${upstream.display} failed: ${oneLine(fetched.error)}`);

    const atUpstream = (await run(git, ['show', `@{u}:${req.file}`])).ok;
    if (atUpstream !== undefined && req.applied(atUpstream)) {
      // Someone pushed the same change. Local commits are brought on top (a commit of ours that
      // says the same becomes empty and is dropped); a conflict is left for the pull to report.
      const { ahead, behind } = await aheadBehind(git);
      if (behind > 0) await (ahead === 0 ? must(git, ['merge', '--ff-only', '--quiet', '@{u}']) : rebaseOntoUpstream(git, upstream.display)).catch(() => undefined);
      return { kind: 'already', upstream: await revParse(git, '@{u}') };
    }

    const foreign = await unpushedNotBy(git, req.author);
    if (foreign > 0) return failed(`${branch} has ${foreign} local commit${foreign === 1 ? '' : 's'} not on ${upstream.display} that topogit did not make; not publishing them (push by hand)`);
    const { ahead, behind } = await aheadBehind(git);
    if (behind > 0) {
      if (ahead === 0) await must(git, ['merge', '--ff-only', '--quiet', '@{u}']);
      else await rebaseOntoUpstream(git, upstream.display);
    }
    const dirty = (await must(git, ['status', '--porcelain', '--', req.file])).trim();
    if (dirty !== '') return failed(`${req.file} has uncommitted changes in ${req.repoDir} (${dirty}); topogit never overwrites a human's edit: commit or stash them`);
    if (!req.applied(await readFile(abs, 'utf8'))) made = (await editAndCommit(git, abs, req)) ?? undefined;

    const pushed = await run(net, ['push', '--quiet', '--', upstream.remote, `HEAD:${upstream.merge}`]);
    if (pushed.ok === undefined) {
      return failed(isNonFastForward(pushed.error) ? `git push to ${upstream.display} was rejected (the remote moved); the next attempt rebases onto it` : `git push to ${upstream.display} failed: ${oneLine(pushed.error)}`);
    }
    const commits: Record<string, string> = {};
    for (const id of req.failoverIds) {
      const c = await commitWithFailoverId(git, 'HEAD', req.file, id);
      if (c !== undefined) commits[id] = c;
    }
    return { kind: 'pushed', head: await revParse(git, 'HEAD'), commits };
  } catch (e) {
    return failed(message(e));
  }
}

/** Is the failover's commit in HEAD's history of `file`: its hash an ancestor of HEAD, or a commit with its `Failover-Id:` line (a rebased copy, or one made in another clone)? */
export async function failoverInHistory(repoDir: string, failover: { readonly id: string; readonly commit: string | null }, file: string): Promise<boolean> {
  const git = gitAt(repoDir);
  if (failover.commit !== null && (await run(git, ['merge-base', '--is-ancestor', '--end-of-options', failover.commit, 'HEAD'])).ok !== undefined) return true;
  return (await commitWithFailoverId(git, 'HEAD', file, failover.id)) !== undefined;
}

/**
 * topogit's own commits (failovers, relocations) touching `file` that the upstream has and HEAD
 * lacks, newest first, after a fetch (unless `fetch: false`; when the fetch fails, what the clone
 * last fetched is used, and `fetchError` says why). `upstream: false`: the branch has none.
 */
export async function upstreamTopogitCommits(repoDir: string, file: string, o: { readonly fetch?: boolean } = {}): Promise<{ upstream: boolean; fetchError?: string; commits: CommitText[] }> {
  const git = gitAt(repoDir);
  const branch = await currentBranch(git);
  const upstream = branch === undefined ? { why: 'detached' } : await upstreamOf(git, branch);
  if ('why' in upstream) return { upstream: false, commits: [] };
  const fetched = o.fetch === false ? { ok: '' } : await run(gitAt(repoDir, {}, { timeoutMs: NETWORK_TIMEOUT_MS }), ['fetch', '--quiet', '--', upstream.remote]);
  const commits = parseCommitLog(await must(git, ['log', COMMIT_LOG_FORMAT, 'HEAD..@{u}', '--', file])).filter((c) => /^(failover|relocate)\(/.test(c.subject));
  return { upstream: true, commits, ...(fetched.ok === undefined ? { fetchError: oneLine(fetched.error) } : {}) };
}

/** Rebases the local commits onto the upstream; on any failure aborts it and throws (RebaseConflict with the files). */
async function rebaseOntoUpstream(git: SimpleGit, display: string): Promise<void> {
  const r = await run(git, ['-c', 'commit.gpgsign=false', 'rebase', '--quiet', '@{u}']);
  if (r.ok !== undefined) return;
  const files = ((await run(git, ['diff', '--name-only', '--diff-filter=U'])).ok ?? '').split('\n').filter((f) => f.trim() !== '');
  await run(git, ['rebase', '--abort']);
  if (files.length > 0) {
    throw new RebaseConflict(files, `rebasing the local commits onto ${display} conflicts in ${files.join(', ')}; the rebase was aborted and the local commits are kept (resolve by hand: git pull --rebase)`);
  }
  throw new RebaseConflict([], `git rebase onto ${display} failed: ${oneLine(r.error)}; the local commits are kept`);
}

/** A git for the pull: the clone's own identity when it has one, else topogit's (a rebase rewrites the committer). */
async function withCommitter(repoDir: string): Promise<SimpleGit> {
  const plain = gitAt(repoDir);
  if ((await run(plain, ['var', 'GIT_COMMITTER_IDENT'])).ok !== undefined) return plain;
  return gitAt(repoDir, { GIT_COMMITTER_NAME: FALLBACK_COMMITTER.name, GIT_COMMITTER_EMAIL: FALLBACK_COMMITTER.email });
}
