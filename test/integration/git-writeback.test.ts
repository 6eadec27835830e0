// Real git, real bare remotes, no mocks: writeBack edits the cluster's file, commits only it as the
// configured author, pushes without ever forcing, and after a rejected push re-applies the edit on
// the new upstream head.
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitsSince, lastCommitTouching, writeBack } from '../../src/adapters/git.js';
import type { WriteBackRequest, WriteBackResult } from '../../src/core/ports.js';
import { editSources, promotionEdits } from '../../src/config/edit.js';
import { parseTopologyText } from '../../src/config/load.js';

const exec = promisify(execFile);
const FILE = 'topologies/shop.yaml';
const AUTHOR = { name: 'topogit failover', email: 'topogit@ops.example' };
const MESSAGE = 'shop: db002 is the primary after failover of db001\n\ntopogit promoted db002 at 2025-01-01T00:00:00Z.\ndb001 and db003 now replicate from db002.\n';

const SHOP = `# yaml-language-server: $schema=../../schemas/topology.schema.json
# The shop cluster. Owned by the platform team; topogit edits this file after a failover.
cluster: shop
flavor: auto                  # auto | mysql | mariadb
credentials:                  # names where secrets come from, never the secrets
  admin:       { user: topogit, passwordEnv: TOPOGIT_PASSWORD }
  replication: { user: repl,    passwordEnv: TOPOGIT_REPL_PASSWORD }
instances:
  db001: { host: 127.0.0.11, port: 3306 }                 # no source: the primary

  # replicas
  db002: { host: 127.0.0.12, port: 3306, source: db001 }  # same rack as db001
  db003: { host: 127.0.0.13, port: 3306, source: db001, promotion: never }   # backups run here
failover:
  auto: true
`;

const OTHER = `# another cluster, untouched by writeBack
cluster: other
instances:
  o1: { host: 127.0.0.21 }
`;

/** The edit topogit makes after a failover to db002: pure, text in, text out. */
function promoteDb002(text: string): string {
  const { spec, issues } = parseTopologyText(text, FILE);
  if (!spec) throw new Error(`the file does not parse: ${issues.map((i) => i.message).join('; ')}`);
  return editSources(text, promotionEdits(spec.instances, 'db002'));
}

// The test's own git commands: a fixed identity and no host configuration.
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Human Operator',
  GIT_AUTHOR_EMAIL: 'human@ops.example',
  GIT_COMMITTER_NAME: 'Human Operator',
  GIT_COMMITTER_EMAIL: 'human@ops.example',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};
async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], { cwd, env: gitEnv });
  return stdout;
}
async function gitOk(cwd: string, ...args: string[]): Promise<boolean> {
  return git(cwd, ...args).then(
    () => true,
    () => false,
  );
}

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'topogit-writeback-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A fresh directory under the suite's temporary root. */
async function fresh(name: string): Promise<string> {
  const dir = path.join(root, `${++n}-${name}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A working tree with the two topology files committed by a human; no remote. */
async function repo(): Promise<string> {
  const dir = await fresh('work');
  await git(dir, 'init', '-q');
  await mkdir(path.join(dir, 'topologies'));
  await writeFile(path.join(dir, FILE), SHOP);
  await writeFile(path.join(dir, 'topologies/other.yaml'), OTHER);
  await git(dir, 'add', '.');
  await git(dir, 'commit', '-qm', 'shop and other topologies');
  return dir;
}

/** A bare remote, topogit's clone (`work`, tracking origin/main) and a second clone (`other`). */
async function withRemote(): Promise<{ bare: string; work: string; other: string }> {
  const seed = await repo();
  const bare = path.join(await fresh('remote'), 'ops.git');
  await git(root, 'init', '-q', '--bare', bare);
  await git(seed, 'remote', 'add', 'origin', bare);
  await git(seed, 'push', '-q', '-u', 'origin', 'main');
  const work = path.join(await fresh('topogit'), 'ops');
  const other = path.join(await fresh('colleague'), 'ops');
  await git(root, 'clone', '-q', bare, work);
  await git(root, 'clone', '-q', bare, other);
  return { bare, work, other };
}

const sleeps: number[] = [];
function request(repoDir: string, over: Partial<WriteBackRequest> = {}): WriteBackRequest {
  return {
    repoDir,
    file: FILE,
    edit: promoteDb002,
    message: MESSAGE,
    author: AUTHOR,
    push: true,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...over,
  };
}

function committed(r: WriteBackResult): Extract<WriteBackResult, { kind: 'committed' }> {
  if (r.kind !== 'committed') throw new Error(`expected a commit, got ${JSON.stringify(r)}`);
  return r;
}
const head = async (dir: string, rev = 'HEAD') => (await git(dir, 'rev-parse', rev)).trim();
const count = async (dir: string, rev = 'HEAD') => Number((await git(dir, 'rev-list', '--count', rev)).trim());

describe('writeBack without a remote', () => {
  it('commits only the file as the configured author and committer, and says why it did not push', async () => {
    const dir = await repo();
    const r = committed(await writeBack(request(dir)));
    expect(r.pushed).toBe(false);
    if (r.pushed) return;
    expect(r.why).toMatch(/no upstream/);
    expect(r.commit).toBe(await head(dir));
    expect((await git(dir, 'log', '-1', '--format=%an <%ae>|%cn <%ce>|%s')).trim()).toBe(
      'topogit failover <topogit@ops.example>|topogit failover <topogit@ops.example>|shop: db002 is the primary after failover of db001',
    );
    // The whole message, body included, as given.
    expect(await git(dir, 'log', '-1', '--format=%B')).toBe(`${MESSAGE}\n`);
    expect((await git(dir, 'show', '--name-only', '--format=', 'HEAD')).trim()).toBe(FILE);
    expect(await git(dir, 'status', '--porcelain')).toBe('');
    expect(await readFile(path.join(dir, FILE), 'utf8')).toBe(promoteDb002(SHOP));
  });

  it('does not push when push is disabled, even with an upstream', async () => {
    const { work, bare } = await withRemote();
    const before = await head(bare, 'main');
    const r = committed(await writeBack(request(work, { push: false })));
    expect(r).toMatchObject({ pushed: false, why: 'push is disabled' });
    expect(await head(bare, 'main')).toBe(before);
  });

  it('returns unchanged and commits nothing when the edit changes nothing', async () => {
    const dir = await repo();
    const before = await head(dir);
    expect(await writeBack(request(dir, { edit: (t) => t }))).toEqual({ kind: 'unchanged' });
    expect(await head(dir)).toBe(before);
    // Applying the same promotion twice: the second is a no-op.
    committed(await writeBack(request(dir)));
    const after = await head(dir);
    expect(await writeBack(request(dir))).toEqual({ kind: 'unchanged' });
    expect(await head(dir)).toBe(after);
  });

  it("refuses a file with uncommitted changes and never overwrites a human's edit", async () => {
    const dir = await repo();
    const before = await head(dir);
    const human = SHOP.replace('auto: true', 'auto: false   # paused by Alice during maintenance');
    await writeFile(path.join(dir, FILE), human);
    const r = await writeBack(request(dir));
    expect(r.kind).toBe('failed');
    if (r.kind !== 'failed') return;
    expect(r.error).toMatch(/uncommitted changes/);
    expect(r.commit).toBeUndefined();
    expect(await head(dir)).toBe(before);
    expect(await readFile(path.join(dir, FILE), 'utf8')).toBe(human);

    // Staged counts as uncommitted too.
    await git(dir, 'add', FILE);
    expect((await writeBack(request(dir))).kind).toBe('failed');
    expect(await head(dir)).toBe(before);
  });

  it('refuses a detached HEAD', async () => {
    const dir = await repo();
    await git(dir, 'checkout', '-q', '--detach');
    const r = await writeBack(request(dir));
    expect(r).toMatchObject({ kind: 'failed', attempts: 0 });
    if (r.kind === 'failed') expect(r.error).toMatch(/detached/);
    expect(await count(dir)).toBe(1);
  });

  it('leaves whatever else is staged out of its commit, and staged', async () => {
    const dir = await repo();
    await writeFile(path.join(dir, 'topologies/other.yaml'), `${OTHER}# staged by a human\n`);
    await git(dir, 'add', 'topologies/other.yaml');
    committed(await writeBack(request(dir)));
    expect((await git(dir, 'show', '--name-only', '--format=', 'HEAD')).trim()).toBe(FILE);
    expect(await git(dir, 'status', '--porcelain')).toBe('M  topologies/other.yaml\n');
  });

  it('restores the file when the commit fails, so the next run is not refused', async () => {
    const dir = await repo();
    const hook = path.join(dir, '.git/hooks/pre-commit');
    await writeFile(hook, '#!/bin/sh\necho "pre-commit: no" >&2\nexit 1\n', { mode: 0o755 });
    const r = await writeBack(request(dir));
    expect(r.kind).toBe('failed');
    if (r.kind === 'failed') expect(r.error).toMatch(/commit.*failed/);
    expect(await git(dir, 'status', '--porcelain')).toBe('');
    await rm(hook);
    committed(await writeBack(request(dir)));
  });
});

describe('writeBack with a bare remote', () => {
  it('pushes a commit that changes only the edited lines of that file, comments intact', async () => {
    const { bare, work } = await withRemote();
    const r = committed(await writeBack(request(work)));
    expect(r).toMatchObject({ pushed: true, attempts: 1 });
    expect(await head(bare, 'main')).toBe(r.commit);
    expect(await head(work, 'origin/main')).toBe(r.commit);

    expect((await git(work, 'show', '--stat', '--format=', 'HEAD')).trim()).toMatch(/^topologies\/shop\.yaml \| 6 \+\+\+---\n 1 file changed, 3 insertions\(\+\), 3 deletions\(-\)$/);
    const diff = await git(work, 'diff', '--unified=0', 'HEAD~1', 'HEAD');
    const changed = diff.split('\n').filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual([
      '-  db001: { host: 127.0.0.11, port: 3306 }                 # no source: the primary',
      '+  db001: { host: 127.0.0.11, port: 3306, source: db002 }                 # no source: the primary',
      '-  db002: { host: 127.0.0.12, port: 3306, source: db001 }  # same rack as db001',
      '-  db003: { host: 127.0.0.13, port: 3306, source: db001, promotion: never }   # backups run here',
      '+  db002: { host: 127.0.0.12, port: 3306 }  # same rack as db001',
      '+  db003: { host: 127.0.0.13, port: 3306, source: db002, promotion: never }   # backups run here',
    ]);
    const onRemote = await git(bare, 'show', `main:${FILE}`);
    for (const comment of ['# The shop cluster. Owned by the platform team', '# auto | mysql | mariadb', '# names where secrets come from', '  # replicas', '# backups run here']) {
      expect(onRemote).toContain(comment);
    }
    expect(parseTopologyText(onRemote, FILE).spec?.instances.map((i) => [i.name, i.source ?? null])).toEqual([
      ['db001', 'db002'],
      ['db002', null],
      ['db003', 'db002'],
    ]);
  });

  it('after a rejected push, fetches, re-applies the edit on the new head and pushes on attempt 2 without forcing', async () => {
    const { bare, work, other } = await withRemote();
    // A colleague pushes first: a comment edit elsewhere in the same file.
    const theirs = SHOP.replace('failover:\n', '# failover reviewed by Bob\nfailover:\n');
    await writeFile(path.join(other, FILE), theirs);
    await git(other, 'commit', '-qam', 'shop: note the failover review');
    await git(other, 'push', '-q');
    const colleague = await head(other);

    sleeps.length = 0;
    const edited: string[] = [];
    const r = committed(
      await writeBack(
        request(work, {
          edit: (t) => {
            edited.push(t);
            return promoteDb002(t);
          },
          backoffMs: (a) => a * 7,
        }),
      ),
    );
    expect(r).toMatchObject({ pushed: true, attempts: 2 });
    expect(sleeps).toEqual([7]);
    // The edit ran on the old head, then on the colleague's.
    expect(edited).toEqual([SHOP, theirs]);

    expect(await head(bare, 'main')).toBe(r.commit);
    expect(await head(work)).toBe(r.commit);
    expect(await gitOk(bare, 'merge-base', '--is-ancestor', colleague, 'main')).toBe(true);
    expect((await git(bare, 'log', '--format=%s|%an', 'main')).trim().split('\n')).toEqual([
      'shop: db002 is the primary after failover of db001|topogit failover',
      'shop: note the failover review|Human Operator',
      'shop and other topologies|Human Operator',
    ]);
    expect(await git(bare, 'show', `main:${FILE}`)).toBe(promoteDb002(theirs));
    expect(await git(bare, 'show', `main:${FILE}`)).toContain('# failover reviewed by Bob');
    expect(await git(work, 'status', '--porcelain')).toBe('');
    // Nothing in the remote's reflog-free history was rewritten: every update was a fast-forward.
    expect(await count(bare, 'main')).toBe(3);
  });

  it('also rebuilds on a colleague commit to another file', async () => {
    const { bare, work, other } = await withRemote();
    await writeFile(path.join(other, 'topologies/other.yaml'), OTHER.replace('127.0.0.21', '127.0.0.22'));
    await git(other, 'commit', '-qam', 'other: new host');
    await git(other, 'push', '-q');
    const r = committed(await writeBack(request(work)));
    expect(r).toMatchObject({ pushed: true, attempts: 2 });
    expect(await gitOk(bare, 'merge-base', '--is-ancestor', await head(other), 'main')).toBe(true);
    expect((await git(work, 'show', '--name-only', '--format=', 'HEAD')).trim()).toBe(FILE);
    expect(await git(bare, 'show', 'main:topologies/other.yaml')).toContain('127.0.0.22');
  });

  it('returns unchanged when the fetched upstream already says it', async () => {
    const { bare, work, other } = await withRemote();
    await writeFile(path.join(other, FILE), promoteDb002(SHOP));
    await git(other, 'commit', '-qam', 'shop: db002 is the primary (done by hand)');
    await git(other, 'push', '-q');
    const colleague = await head(other);

    expect(await writeBack(request(work))).toEqual({ kind: 'unchanged' });
    expect(await head(bare, 'main')).toBe(colleague);
    // topogit's clone now sits on the upstream head; its own commit is gone.
    expect(await head(work)).toBe(colleague);
    expect(await git(work, 'status', '--porcelain')).toBe('');
  });

  it('gives up after maxAttempts when the remote keeps moving, and keeps the commit local', async () => {
    const { bare, work, other } = await withRemote();
    let k = 0;
    // A colleague pushes again whenever topogit has just fetched (while it re-applies its edit),
    // so every push of topogit's is rejected.
    const race = () => {
      writeFileSync(path.join(other, 'topologies/other.yaml'), `${OTHER}# edit ${++k}\n`);
      execFileSync('git', ['commit', '-qam', `other: edit ${k}`], { cwd: other, env: gitEnv });
      execFileSync('git', ['push', '-q'], { cwd: other, env: gitEnv });
    };
    race();
    let edits = 0;
    const waits: number[] = [];
    const r = await writeBack(
      request(work, {
        maxAttempts: 3,
        edit: (t) => {
          if (++edits > 1) race();
          return promoteDb002(t);
        },
        sleep: async (ms) => {
          waits.push(ms);
        },
      }),
    );
    expect(r.kind).toBe('failed');
    if (r.kind !== 'failed') return;
    expect(r.attempts).toBe(3);
    expect(waits).toEqual([400, 800]); // the default backoff: 200 * 2^attempt
    expect(r.error).toMatch(/rejected 3 times/);
    expect(r.error).toMatch(/stays local/);
    expect(edits).toBe(3);
    expect(r.commit).toBe(await head(work));
    expect(await head(bare, 'main')).toBe(await head(other));
    expect(await gitOk(bare, 'cat-file', '-e', `${r.commit ?? ''}^{commit}`)).toBe(false);
  });

  it('does not retry when the remote refuses for another reason, and keeps the commit local', async () => {
    const { bare, work } = await withRemote();
    await writeFile(path.join(bare, 'hooks/pre-receive'), '#!/bin/sh\necho "frozen: change freeze until Monday" >&2\nexit 1\n', { mode: 0o755 });
    const before = await head(bare, 'main');
    const r = await writeBack(request(work));
    expect(r.kind).toBe('failed');
    if (r.kind !== 'failed') return;
    expect(r.attempts).toBe(1);
    expect(r.error).toMatch(/change freeze/);
    expect(r.error).toMatch(/stays local/);
    expect(r.commit).toBe(await head(work));
    expect(await head(bare, 'main')).toBe(before);
  });

  it('fails with the local commit id when the remote is unreachable', async () => {
    const { bare, work } = await withRemote();
    await rm(bare, { recursive: true, force: true });
    const r = await writeBack(request(work));
    expect(r.kind).toBe('failed');
    if (r.kind !== 'failed') return;
    expect(r.attempts).toBe(1);
    expect(r.commit).toBe(await head(work));
    expect(r.error).toMatch(/git push to origin\/main failed: .*stays local/);
  });

  it("does not publish a human's unpushed commits", async () => {
    const { bare, work } = await withRemote();
    await writeFile(path.join(work, 'topologies/other.yaml'), `${OTHER}# not ready\n`);
    await git(work, 'commit', '-qam', 'other: work in progress');
    const before = await head(bare, 'main');
    const r = committed(await writeBack(request(work)));
    expect(r.pushed).toBe(false);
    if (!r.pushed) expect(r.why).toMatch(/1 local commit .*not publishing/);
    expect(await head(bare, 'main')).toBe(before);
  });

  it('fails rather than reset a working tree with other uncommitted changes after a rejection', async () => {
    const { work, other } = await withRemote();
    await writeFile(path.join(other, 'topologies/other.yaml'), `${OTHER}# theirs\n`);
    await git(other, 'commit', '-qam', 'other: theirs');
    await git(other, 'push', '-q');
    const mine = `${OTHER}# an operator's unsaved thought\n`;
    await writeFile(path.join(work, 'topologies/other.yaml'), mine);
    const r = await writeBack(request(work));
    expect(r.kind).toBe('failed');
    if (r.kind !== 'failed') return;
    expect(r.error).toMatch(/uncommitted changes.*not resetting/);
    expect(r.commit).toBe(await head(work));
    expect(await readFile(path.join(work, 'topologies/other.yaml'), 'utf8')).toBe(mine);
  });
  it("works from inside a Git hook's environment and with the operator's own ssh and editor settings", async () => {
    const { bare, work } = await withRemote();
    const elsewhere = await repo();
    const saved = { ...process.env };
    // What a post-receive hook (GIT_DIR) and a typical shell (EDITOR, GIT_SSH_COMMAND) set.
    Object.assign(process.env, { GIT_DIR: path.join(elsewhere, '.git'), GIT_INDEX_FILE: path.join(elsewhere, '.git/index'), EDITOR: 'vi', GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' });
    try {
      const r = committed(await writeBack(request(work)));
      expect(r.pushed).toBe(true);
      expect(await head(bare, 'main')).toBe(r.commit);
    } finally {
      for (const k of ['GIT_DIR', 'GIT_INDEX_FILE', 'EDITOR', 'GIT_SSH_COMMAND']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    expect(await count(elsewhere)).toBe(1);
  });
});

describe('lastCommitTouching and commitsSince', () => {
  it('find the last commit of the file and count the commits after one', async () => {
    const dir = await repo();
    const r = committed(await writeBack(request(dir)));
    const last = await lastCommitTouching(dir, FILE);
    expect(last).toMatchObject({ commit: r.commit, subject: 'shop: db002 is the primary after failover of db001' });
    expect(Number.isNaN(Date.parse(last?.date ?? ''))).toBe(false);
    expect(await commitsSince(dir, r.commit, FILE)).toBe(0);

    // Another file's commit does not count; the human acknowledging in the file does.
    await writeFile(path.join(dir, 'topologies/other.yaml'), `${OTHER}# x\n`);
    await git(dir, 'commit', '-qam', 'other: x');
    expect(await commitsSince(dir, r.commit, FILE)).toBe(0);
    expect((await lastCommitTouching(dir, FILE))?.commit).toBe(r.commit);
    await writeFile(path.join(dir, FILE), promoteDb002(SHOP).replace('auto: true', 'auto: true   # ack: failover to db002 reviewed'));
    await git(dir, 'commit', '-qam', 'shop: acknowledge the failover');
    expect(await commitsSince(dir, r.commit, FILE)).toBe(1);
    expect(await lastCommitTouching(dir, FILE)).toMatchObject({ subject: 'shop: acknowledge the failover', commit: await head(dir) });
  });

  it('return null for a file no commit touched, and reject an unknown commit', async () => {
    const dir = await repo();
    expect(await lastCommitTouching(dir, 'topologies/none.yaml')).toBeNull();
    expect(await lastCommitTouching(await fresh('not-a-repo'), FILE)).toBeNull();
    await expect(commitsSince(dir, '0123456789abcdef0123456789abcdef01234567', FILE)).rejects.toThrow(/not in the repository/);
  });
});
