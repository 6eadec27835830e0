// The daemon's two reads of Git through the adapter: the committed text of a file, and the
// fast-forward pull of the upstream. Real repositories in a temp dir (a bare origin and clones).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { committedText, pullFastForward } from '../../src/adapters/git.js';

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

describe('pullFastForward', () => {
  async function setup(): Promise<{ origin: string; daemon: string; human: string }> {
    const origin = join(root, 'origin.git');
    const human = join(root, 'human');
    const daemon = join(root, 'daemon');
    await git(root, 'init', '-q', '--bare', origin);
    await git(root, 'clone', '-q', origin, human);
    await commitFile(human, 'a.yaml', 'one\n');
    await git(human, 'push', '-q', '-u', 'origin', 'main');
    await git(root, 'clone', '-q', origin, daemon);
    return { origin, daemon, human };
  }

  it('pulls new upstream commits and says from which commit to which', async () => {
    const { daemon, human } = await setup();
    const from = (await git(daemon, 'rev-parse', 'HEAD')).trim();
    expect(await pullFastForward(daemon)).toEqual({ pulled: false }); // up to date
    const to = await commitFile(human, 'a.yaml', 'two\n');
    await git(human, 'push', '-q');
    expect(await pullFastForward(daemon)).toEqual({ pulled: true, from, to });
    expect(await committedText(daemon, 'a.yaml')).toBe('two\n');
  });

  it('does nothing on a branch without an upstream', async () => {
    const repo = join(root, 'solo');
    await git(root, 'init', '-q', repo);
    await commitFile(repo, 'a.yaml', 'one\n');
    expect(await pullFastForward(repo)).toEqual({ pulled: false });
  });

  it('throws when the histories diverged (never merges)', async () => {
    const { daemon, human } = await setup();
    const local = await commitFile(daemon, 'b.yaml', 'local\n');
    await commitFile(human, 'a.yaml', 'remote\n');
    await git(human, 'push', '-q');
    await expect(pullFastForward(daemon)).rejects.toThrow();
    expect((await git(daemon, 'rev-parse', 'HEAD')).trim()).toBe(local);
  });
});
