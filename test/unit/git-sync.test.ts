// The daemon's Git through the adapter: the committed text of a file, the pull of the upstream (a
// fast-forward, or a rebase of unpushed local commits that never loses one), one more attempt at a
// pending write-back, and whether a failover's commit is in a history. Real repositories in a temp
// dir (a bare origin and clones); a remote "down" is a bare repository moved away.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { committedText } from '../../src/adapters/git.js';
import { failoverInHistory, pullUpstream, RebaseConflict, retryWriteBack, upstreamTopogitCommits } from '../../src/adapters/git-sync.js';
import type { WriteBackRetryRequest } from '../../src/core/ports.js';

const run = promisify(execFile);
let root: string;

async function git(dir: string, ...args: string[]): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
  return (await run('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, env })).stdout;
}

async function commitFile(dir: string, file: string, text: string): Promise<string> {
  await writeFile(join(dir, file), text);
  await git(dir, 'add', file);
  await git(dir, 'commit', '-qm', `edit ${file}`);
  return (await git(dir, 'rev-parse', 'HEAD')).trim();
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'topogit-git-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('committedText', () => {
  it("is HEAD's text of the file, not the working tree's; undefined when HEAD does not have it", async () => {
    const repo = join(root, 'repo');
    await git(root, 'init', '-q', repo);
    expect(await committedText(repo, 'a.yaml')).toBeUndefined(); // no commits yet
    await commitFile(repo, 'a.yaml', 'one\n');
    await writeFile(join(repo, 'a.yaml'), 'two (not committed)\n');
    expect(await committedText(repo, 'a.yaml')).toBe('one\n');
    expect(await committedText(repo, 'missing.yaml')).toBeUndefined();
    expect(await committedText(root, 'a.yaml')).toBeUndefined(); // not a repository
  });
});

async function setup(): Promise<{ origin: string; daemon: string; human: string }> {
  const origin = join(root, 'origin.git');
  const human = join(root, 'human');
  const daemon = join(root, 'daemon');
  await git(root, 'init', '-q', '--bare', origin);
  await git(root, 'clone', '-q', origin, human);
  await commitFile(human, 'a.yaml', 'one\n');
  await commitFile(human, 'b.yaml', 'bee\n');
  await git(human, 'push', '-q', '-u', 'origin', 'main');
  await git(root, 'clone', '-q', origin, daemon);
  return { origin, daemon, human };
}
const head = async (dir: string, rev = 'HEAD') => (await git(dir, 'rev-parse', rev)).trim();
const subjects = async (dir: string, rev = 'HEAD') => (await git(dir, 'log', '--format=%s', rev)).trim().split('\n');

describe('pullUpstream', () => {
  it('fast-forwards to new upstream commits and says from which commit to which', async () => {
    const { daemon, human } = await setup();
    const from = await head(daemon);
    expect(await pullUpstream(daemon)).toEqual({ pulled: false }); // up to date
    const to = await commitFile(human, 'a.yaml', 'two\n');
    await git(human, 'push', '-q');
    expect(await pullUpstream(daemon)).toEqual({ pulled: true, from, to, rebased: 0 });
    expect(await committedText(daemon, 'a.yaml')).toBe('two\n');
  });

  it('does nothing on a branch without an upstream', async () => {
    const repo = join(root, 'solo');
    await git(root, 'init', '-q', repo);
    await commitFile(repo, 'a.yaml', 'one\n');
    expect(await pullUpstream(repo)).toEqual({ pulled: false });
  });

  it('rebases an unpushed local commit onto what someone else pushed: both kept, no merge commit', async () => {
    const { daemon, human } = await setup();
    await commitFile(daemon, 'a.yaml', 'failover\n');
    await commitFile(human, 'b.yaml', 'colleague\n');
    await git(human, 'push', '-q');
    const r = await pullUpstream(daemon);
    expect(r).toMatchObject({ pulled: true, rebased: 1 });
    expect(await subjects(daemon)).toEqual(['edit a.yaml', 'edit b.yaml', 'edit b.yaml', 'edit a.yaml']);
    expect(await committedText(daemon, 'a.yaml')).toBe('failover\n');
    expect(await committedText(daemon, 'b.yaml')).toBe('colleague\n');
    expect((await git(daemon, 'rev-list', '--count', '--merges', 'HEAD')).trim()).toBe('0');
    expect((await git(daemon, 'rev-list', '--count', '@{u}..HEAD')).trim()).toBe('1'); // still to push
  });

  it('aborts a conflicting rebase, names the files, and keeps the local commit as it was', async () => {
    const { daemon, human } = await setup();
    const local = await commitFile(daemon, 'a.yaml', 'ours\n');
    await commitFile(human, 'a.yaml', 'theirs\n');
    await git(human, 'push', '-q');
    const e = await pullUpstream(daemon).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(RebaseConflict);
    expect((e as RebaseConflict).files).toEqual(['a.yaml']);
    expect((e as Error).message).toMatch(/conflicts in a\.yaml; the rebase was aborted and the local commits are kept/);
    expect(await head(daemon)).toBe(local);
    expect(await git(daemon, 'status', '--porcelain')).toBe('');
    expect(await readFile(join(daemon, 'a.yaml'), 'utf8')).toBe('ours\n');
  });

  it('throws when the remote cannot be fetched, and changes nothing', async () => {
    const { origin, daemon } = await setup();
    const before = await head(daemon);
    await rename(origin, `${origin}.away`);
    await expect(pullUpstream(daemon)).rejects.toThrow(/^git fetch from origin\/main failed: /);
    expect(await head(daemon)).toBe(before);
  });
});

describe('retryWriteBack', () => {
  const AUTHOR = { name: 'topogit', email: 'topogit@localhost' };
  const request = (repoDir: string, over: Partial<WriteBackRetryRequest> = {}): WriteBackRetryRequest => ({
    repoDir,
    file: 'a.yaml',
    applied: (t) => t === 'failover\n',
    edit: () => 'failover\n',
    message: 'failover(shop): db001 -> db002\n\nFailover-Id: shop-1\n',
    author: AUTHOR,
    failoverIds: ['shop-1'],
    ...over,
  });
  /** The commit a failover made while the remote was away (as writeBack makes it). */
  async function localFailoverCommit(daemon: string): Promise<string> {
    await writeFile(join(daemon, 'a.yaml'), 'failover\n');
    await git(daemon, 'commit', '-q', '--author=topogit <topogit@localhost>', '-am', 'failover(shop): db001 -> db002\n\nFailover-Id: shop-1');
    return head(daemon);
  }

  it('fails while the remote is away, then pushes the local commit once it is back', async () => {
    const { origin, daemon } = await setup();
    const local = await localFailoverCommit(daemon);
    await rename(origin, `${origin}.away`);
    const down = await retryWriteBack(request(daemon));
    expect(down).toMatchObject({ kind: 'failed' });
    if (down.kind === 'failed') expect(down.error).toMatch(/^git fetch from origin\/main failed: /);
    await rename(`${origin}.away`, origin);
    expect(await retryWriteBack(request(daemon))).toEqual({ kind: 'pushed', head: local, commits: { 'shop-1': local } });
    expect(await head(origin, 'main')).toBe(local);
  });

  it('rebases onto a colleague push and pushes both, never forcing; reports the rebased commit', async () => {
    const { origin, daemon, human } = await setup();
    const local = await localFailoverCommit(daemon);
    const theirs = await commitFile(human, 'b.yaml', 'colleague\n');
    await git(human, 'push', '-q');
    const r = await retryWriteBack(request(daemon));
    expect(r.kind).toBe('pushed');
    if (r.kind !== 'pushed') return;
    expect(r.commits['shop-1']).not.toBe(local); // rebased: a new hash with the same Failover-Id
    expect(await head(origin, 'main')).toBe(r.head);
    expect(await subjects(origin, 'main')).toEqual(['failover(shop): db001 -> db002', 'edit b.yaml', 'edit b.yaml', 'edit a.yaml']);
    expect((await git(origin, 'rev-parse', 'main~1')).trim()).toBe(theirs);
  });

  it('commits the edit when no commit could be made before, then pushes it', async () => {
    const { origin, daemon } = await setup();
    const r = await retryWriteBack(request(daemon));
    expect(r.kind).toBe('pushed');
    expect(await git(origin, 'show', 'main:a.yaml')).toBe('failover\n');
    expect((await git(origin, 'log', '-1', '--format=%an <%ae>|%s', 'main')).trim()).toBe('topogit <topogit@localhost>|failover(shop): db001 -> db002');
  });

  it('reports `already` when someone pushed the same change, and drops the now-empty local commit', async () => {
    const { origin, daemon, human } = await setup();
    await localFailoverCommit(daemon);
    await commitFile(human, 'a.yaml', 'failover\n');
    await git(human, 'push', '-q');
    const upstream = await head(origin, 'main');
    expect(await retryWriteBack(request(daemon))).toEqual({ kind: 'already', upstream });
    expect(await head(daemon)).toBe(upstream);
  });

  it("does not publish a human's local commit", async () => {
    const { daemon } = await setup();
    await commitFile(daemon, 'b.yaml', 'work in progress\n');
    const r = await retryWriteBack(request(daemon));
    expect(r).toMatchObject({ kind: 'failed' });
    if (r.kind === 'failed') expect(r.error).toMatch(/1 local commit not on origin\/main that topogit did not make/);
  });

  it('keeps the local commit when the rebase conflicts, and says so', async () => {
    const { daemon, human } = await setup();
    const local = await localFailoverCommit(daemon);
    await commitFile(human, 'a.yaml', 'someone else\n');
    await git(human, 'push', '-q');
    const r = await retryWriteBack(request(daemon));
    expect(r).toMatchObject({ kind: 'failed' });
    if (r.kind === 'failed') expect(r.error).toMatch(/conflicts in a\.yaml; the rebase was aborted/);
    expect(await head(daemon)).toBe(local);
  });
});

describe("a failover's commit in a history", () => {
  it('is found by its hash, or by its Failover-Id line after a rebase; an upstream commit HEAD lacks is listed', async () => {
    const { daemon, human } = await setup();
    await writeFile(join(human, 'a.yaml'), 'failover\n');
    await git(human, 'commit', '-qam', 'failover(shop): db001 -> db002\n\nFailover-Id: shop-1');
    const c = await head(human);
    await git(human, 'push', '-q');
    expect(await failoverInHistory(daemon, { id: 'shop-1', commit: c }, 'a.yaml')).toBe(false);
    const up = await upstreamTopogitCommits(daemon, 'a.yaml');
    expect(up.upstream).toBe(true);
    expect(up.commits.map((x) => [x.commit, x.subject])).toEqual([[c, 'failover(shop): db001 -> db002']]);
    expect(up.commits[0]?.body).toContain('Failover-Id: shop-1');
    await git(daemon, 'pull', '-q');
    expect(await failoverInHistory(daemon, { id: 'shop-1', commit: c }, 'a.yaml')).toBe(true);
    expect(await failoverInHistory(daemon, { id: 'shop-1', commit: 'f'.repeat(40) }, 'a.yaml')).toBe(true);
    expect(await failoverInHistory(daemon, { id: 'shop-2', commit: null }, 'a.yaml')).toBe(false);
    expect((await upstreamTopogitCommits(daemon, 'a.yaml')).commits).toEqual([]);
  });
});
