// Real MariaDB servers and real git repositories: a switchover by editing the file, the
// `switchover` command, its refusals, and the post-receive hook path from `git push` to servers.
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editSources } from '../../src/config/edit.js';
import { waitFor } from '../support/wait.js';
import { startFleet, type Fleet } from './fleet.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let fleet: Fleet;
const [H1, H2, H3] = ['127.0.0.41', '127.0.0.42', '127.0.0.43'];
const fileOf = () => path.join(fleet.dir, 'topologies', 'shop.yaml');

const sourceOf = (name: string) => fleet.sourceOf(name);
const readOnly = (name: string) => fleet.readOnly(name);
/** Every member's `f`, in file order (db001, db002, db003). */
const each = <T>(f: (name: string) => Promise<T>) => Promise.all(fleet.names.map(f));

describe('switchover on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 41 });
    await fleet.sql(H1, 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT AUTO_INCREMENT PRIMARY KEY)', 'INSERT INTO topogit_demo.t VALUES (NULL)');
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('moves the primary when the file names another one', async () => {
    const original = await readFile(fileOf(), 'utf8');
    await writeFile(fileOf(), editSources(original, new Map([['db002', null], ['db001', 'db002'], ['db003', 'db002']])));
    const p = await fleet.run('plan');
    expect(p.out).toContain('~ switchover db001 -> db002');
    expect(p.out).toMatch(/~ db002 wait until it executed everything db001 has/);
    expect(p.out).toContain('~ db003 source db001 -> db002');
    const a = await fleet.run('apply', '--yes');
    expect(a.code, a.err).toBe(0);
    expect(await each(readOnly)).toEqual([1, 0, 1]);
    expect(await each(sourceOf)).toEqual(['db002', null, 'db002']);
    // Writes on the new primary reach everyone: nothing was lost or skipped.
    await fleet.sql(H2, 'INSERT INTO topogit_demo.t VALUES (NULL)');
    for (const h of [H1, H3]) {
      await waitFor(`${h} to have both rows`, async () => Number(((await fleet.sql(h, 'SELECT COUNT(*) AS n FROM topogit_demo.t')) as { n: number }[])[0]?.n), (n) => n === 2);
    }
    expect((await fleet.run('plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('switches back with the switchover command, which edits the file and keeps its layout', async () => {
    const before = await readFile(fileOf(), 'utf8');
    const r = await fleet.run('switchover', 'shop', '--to', 'db001', '--yes');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('edited topologies/shop.yaml: db001 is the primary');
    const after = await readFile(fileOf(), 'utf8');
    expect(after).toContain('  db001: { host: 127.0.0.41, port: 3306 }');
    expect(after).toContain('  db002: { host: 127.0.0.42, port: 3306, source: db001 }');
    // Only the instance lines changed; the header comments and credentials lines are untouched.
    const changed = before.split('\n').filter((l, n) => l !== after.split('\n')[n]);
    expect(changed.every((l) => /^ {2}db00\d:/.test(l))).toBe(true);
    expect(await each(sourceOf)).toEqual([null, 'db001', 'db001']);
    expect(await readOnly('db001')).toBe(0);
  });

  it('refuses, changing nothing, when the candidate may not be promoted, lags or is unreachable', async () => {
    const text = await readFile(fileOf(), 'utf8');
    await writeFile(fileOf(), text.replace('db003: { host: 127.0.0.43, port: 3306, source: db001 }', 'db003: { host: 127.0.0.43, port: 3306, source: db001, promotion: never }'));
    const never = await fleet.run('switchover', 'shop', '--to', 'db003', '--yes');
    expect(never.code).toBe(1);
    expect(never.err).toContain('db003 has promotion: never');

    await fleet.sql(H2, 'STOP SLAVE SQL_THREAD');
    const before = await readFile(fileOf(), 'utf8');
    const lagging = await fleet.run('switchover', 'shop', '--to', 'db002', '--yes');
    expect(lagging.code).toBe(1);
    expect(lagging.err).toContain('switchover db001 -> db002 refused: db002 is not replicating (lag unknown)');
    expect(await readFile(fileOf(), 'utf8')).toBe(before);
    expect(await readOnly('db001')).toBe(0);
    await fleet.sql(H2, 'START SLAVE SQL_THREAD');

    await fleet.run('sandbox', 'kill', 'db002');
    const dead = await fleet.run('switchover', 'shop', '--to', 'db002', '--yes');
    expect(dead.code).toBe(1);
    expect(dead.err).toContain('db002 is unreachable');
    expect(await readFile(fileOf(), 'utf8')).toBe(before);
    expect(await readOnly('db001')).toBe(0);
    await fleet.run('sandbox', 'start', 'db002');
    await writeFile(fileOf(), text);
    // db002 is back: apply makes it a read-only replica of db001 again, and then nothing is left to do.
    const repaired = await fleet.run('apply', '--yes');
    expect(repaired.code, repaired.err + repaired.out).toBe(0);
    await waitFor('plan to show no changes after db002 came back', () => fleet.run('plan', '--detailed-exitcode'), (r) => r.code === 0);
    expect(await readOnly('db002')).toBe(1);
    expect(await sourceOf('db002')).toBe('db001');
  });

  it('applies a pushed change through the post-receive hook', async () => {
    const git = (cwd: string, ...args: string[]) =>
      exec('git', args, { cwd, env: { ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
    const bare = path.join(fleet.dir, 'ops.git');
    const work = path.join(fleet.dir, 'work');
    await exec('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    await cp(path.join(root, 'examples/hooks/post-receive'), path.join(bare, 'hooks', 'post-receive'));
    await exec('chmod', ['+x', path.join(bare, 'hooks', 'post-receive')]);
    await mkdir(path.join(work, 'topologies'), { recursive: true });
    await git(work, 'init', '-q', '-b', 'main');
    await cp(fileOf(), path.join(work, 'topologies', 'shop.yaml'));
    await git(work, 'add', '.');
    await git(work, 'commit', '-qm', 'shop topology');
    await git(work, 'remote', 'add', 'origin', bare);
    const pushEnv = { TOPOGIT_BIN: path.join(root, 'bin', 'topogit.js'), TOPOGIT_DEPLOY_DIR: path.join(fleet.dir, 'deploy') };
    const push = async () => {
      const r = await exec('git', ['push', '-q', 'origin', 'main'], { cwd: work, env: { ...process.env, ...fleet.env, ...pushEnv } });
      return r.stdout + r.stderr;
    };
    const first = await push();
    expect(first).toContain('No changes. Live topology matches the files.');

    // Move db003 under db002 in a commit and push it: the hook applies it to the servers.
    const f = path.join(work, 'topologies', 'shop.yaml');
    await writeFile(f, editSources(await readFile(f, 'utf8'), new Map([['db003', 'db002']])));
    await git(work, 'commit', '-qam', 'db003 under db002');
    const second = await push();
    expect(second).toContain('topogit: applying');
    expect(second).toContain('db003 source db001 -> db002');
    expect(second).toContain('applied and verified');
    expect(await sourceOf('db003')).toBe('db002');

    // A broken file is refused by the hook before any server is touched.
    await writeFile(f, (await readFile(f, 'utf8')).replace('source: db002', 'source: db009'));
    await git(work, 'commit', '-qam', 'broken');
    const third = await push().catch((e: { stdout: string; stderr: string }) => e.stdout + e.stderr);
    expect(third).toContain('"db009" is not an instance of cluster shop');
    expect(third).toContain('the pushed files do not validate; nothing applied');
    expect(await sourceOf('db003')).toBe('db002');
  });
});
