// Real MariaDB servers, a real git repository with a bare remote: manual and automatic failover,
// promotion: never with catch-up, UnreachablePrimary, fencing and rejoin of the old primary,
// hooks, a push rejected once, and a kill at each step followed by a run that converges.
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editSources } from '../../src/config/edit.js';
import { primaryOfText, withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { startFleet, type Fleet } from './fleet.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let fleet: Fleet;
const gitEnv = () => ({ ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' });
const git = async (cwd: string, ...args: string[]) => (await exec('git', args, { cwd, env: gitEnv() })).stdout;
const file = () => path.join(fleet.dir, 'topologies', 'shop.yaml');

const primaryInFile = async () => primaryOfText(await readFile(file(), 'utf8'));
const readOnly = (name: string) => fleet.readOnly(name);
const sourceOf = (name: string) => fleet.sourceOf(name);
const ioRunning = async (name: string) => / IO Yes /.test(await fleet.replication(name));
async function rows(name: string): Promise<number> {
  const [r] = (await fleet.sql(fleet.host(name), 'SELECT COUNT(*) AS n FROM topogit_demo.t')) as { n: number }[];
  return Number(r?.n ?? -1);
}
/**
 * What keeps the cluster from agreeing with the file (one writable primary, every other member a
 * read-only replica of it with its IO thread running); empty when it agrees.
 */
async function divergence(): Promise<string[]> {
  const p = await primaryInFile();
  const out: string[] = [];
  if ((await readOnly(p)) !== 0) out.push(`${p} (primary) is read-only`);
  if ((await sourceOf(p)) !== null) out.push(`${p} (primary) replicates from ${await sourceOf(p)}`);
  for (const o of fleet.names.filter((n) => n !== p)) {
    if ((await readOnly(o)) !== 1) out.push(`${o} is writable`);
    if ((await sourceOf(o)) !== p) out.push(`${o} replicates from ${await sourceOf(o)}, not ${p}`);
    if (!(await ioRunning(o))) out.push(`${o}: IO thread not running`);
  }
  return out;
}
/** Waits until the cluster agrees with the file; throws with what still differs. */
const waitConverged = (why: string) => waitFor(`the cluster to agree with the file ${why}`, divergence, (d) => d.length === 0, 15_000);
async function setPolicy(yamlFailover: string) {
  await writeFile(file(), withFailover(await readFile(file(), 'utf8'), yamlFailover));
  await git(fleet.dir, 'commit', '-qam', 'policy');
  await git(fleet.dir, 'push', '-q');
}
/**
 * SIGKILL the primary, then wait until its replicas noticed (IO thread no longer connected): on
 * a loaded machine that can take a moment, and a one-shot pass decides from what it sees.
 */
async function killPrimary(name: string) {
  await fleet.run('sandbox', 'kill', name);
  await waitFor(
    `the replicas to notice ${name} is gone (IO thread not running)`,
    () => Promise.all(fleet.names.filter((n) => n !== name).map((o) => fleet.replication(o))),
    (states) => states.every((st) => !st.startsWith(`${name} IO Yes `)),
    10_000,
  );
}

/** Brings a killed former primary back and lets one reconcile pass rejoin it. */
async function bringBack(name: string) {
  await fleet.run('sandbox', 'start', name);
  const r = await fleet.run('reconcile');
  expect(r.code, r.err + r.out).toBe(0);
  await waitConverged(`after ${name} came back`);
}

describe('failover on real MariaDB servers with a real git remote', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 51 });
    await fleet.commitToRemote({ message: 'shop topology', ignore: ['hook-*.env'] });
    await fleet.sql(fleet.host('db001'), 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)', 'INSERT INTO topogit_demo.t (v) VALUES (1)');
    // One pass while the primary is alive records its GTIDs, so a failover can say what it lost.
    await fleet.run('reconcile');
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('refuses a manual failover while the primary is alive', async () => {
    const r = await fleet.run('failover', 'shop', '--yes');
    expect(r.code).toBe(1);
    expect(r.err).toContain('failover refused: PrimaryReachable');
    expect(r.err).toContain('use `topogit switchover`');
    expect(await divergence()).toEqual([]);
  });

  it('fails over by hand after the primary is killed, commits the new tree and pushes it', async () => {
    await fleet.run('sandbox', 'kill', 'db001');
    const r = await fleet.run('failover', 'shop', '--yes');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/failover db001 -> db002 done: writable after \d+ ms, replicas repointed after \d+ ms, commit [0-9a-f]{12} pushed after \d+ ms; no transaction lost/);
    expect(await readOnly('db002')).toBe(0);
    expect(await sourceOf('db003')).toBe('db002');
    // The commit: in place edit of the three instance lines, evidence in the message, our author.
    const show = await git(fleet.dir, 'show', '--format=%an <%ae>%n%B', 'HEAD');
    expect(show).toContain('topogit <topogit@localhost>');
    expect(show).toContain('failover(shop): db001 -> db002');
    expect(show).toContain('Analysis: DeadPrimary - db001 is dead');
    expect(show).toMatch(/db003: executed 0-1-\d+; retrieved 0-1-\d+/);
    expect(show).toContain('Lost: nothing; db002 has every transaction db001 was last seen with.');
    expect(show).toContain('-  db001: { host: 127.0.0.51, port: 3306 }');
    expect(show).toContain('+  db001: { host: 127.0.0.51, port: 3306, source: db002 }');
    expect(show).toContain('+  db002: { host: 127.0.0.52, port: 3306 }');
    expect(show).toContain('+  db003: { host: 127.0.0.53, port: 3306, source: db002 }');
    expect((await git(fleet.dir, 'rev-parse', 'HEAD')).trim()).toBe((await git(fleet.dir, 'rev-parse', 'origin/main')).trim());
    const remoteHead = (await exec('git', ['--git-dir', path.join(fleet.dir, 'remote.git'), 'rev-parse', 'main'])).stdout.trim();
    expect(remoteHead).toBe((await git(fleet.dir, 'rev-parse', 'HEAD')).trim());
    // The old primary: status says unreachable, then it returns, is fenced read-only and rejoins.
    await fleet.sql(fleet.host('db002'), 'INSERT INTO topogit_demo.t (v) VALUES (2)');
    await bringBack('db001');
    expect(await sourceOf('db001')).toBe('db002');
    await waitFor('db001 to have the row written on db002 while it was down', () => rows('db001'), (n) => n === 2);
  });

  it('fails over by itself in one reconcile pass, retrying a push the remote rejected once', async () => {
    await setPolicy('  auto: true\n  blockSeconds: 0\n  hooks:\n    preFailover: ["env | grep ^TOPOGIT_ | sort > hook-pre.env"]\n    postFailover: ["env | grep ^TOPOGIT_ | sort > hook-post.env"]\n');
    // Someone else pushes first: topogit's push is rejected once, then retried on the new head.
    const other = path.join(fleet.dir, 'other');
    await exec('git', ['clone', '-q', path.join(fleet.dir, 'remote.git'), other]);
    await writeFile(path.join(other, 'NOTES.md'), 'ops notes\n');
    await git(other, 'add', 'NOTES.md');
    await git(other, 'commit', '-qm', 'notes');
    await git(other, 'push', '-q');
    await killPrimary('db002');
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain('DeadPrimary: db002 is dead');
    expect(r.out).toMatch(/failover db002 -> db00[13] done/);
    const log = await git(fleet.dir, 'log', '--format=%s', '-3');
    expect(log.split('\n').slice(0, 2)).toEqual([expect.stringMatching(/^failover\(shop\): db002 -> db00[13]$/), 'notes']);
    expect(await git(fleet.dir, 'status', '--porcelain', '--branch')).not.toMatch(/ahead|behind/);
    const pre = await readFile(path.join(fleet.dir, 'hook-pre.env'), 'utf8');
    const post = await readFile(path.join(fleet.dir, 'hook-post.env'), 'utf8');
    expect(pre).toContain('TOPOGIT_CLUSTER=shop');
    expect(pre).toContain('TOPOGIT_FAILED_PRIMARY=db002');
    expect(pre).toContain('TOPOGIT_FAILED_PRIMARY_HOST=127.0.0.52');
    expect(pre).toContain('TOPOGIT_FAILED_PRIMARY_PORT=3306');
    const np = await primaryInFile();
    expect(post).toContain(`TOPOGIT_NEW_PRIMARY=${np}`);
    expect(post).toContain(`TOPOGIT_NEW_PRIMARY_HOST=${fleet.host(np)}`);
    expect(post).toContain('TOPOGIT_NEW_PRIMARY_PORT=3306');
    await bringBack('db002');
  });

  it('lets a preFailover hook veto the failover', async () => {
    await setPolicy('  auto: true\n  blockSeconds: 0\n  hooks:\n    preFailover: ["echo not now; exit 3"]\n');
    const p = await primaryInFile();
    await killPrimary(p);
    const r = await fleet.run('reconcile');
    expect(r.code).toBe(1);
    expect(r.err).toContain('failover vetoed by the preFailover hook echo not now; exit 3: not now');
    expect(await primaryInFile()).toBe(p);
    for (const o of fleet.names.filter((n) => n !== p)) expect(await readOnly(o)).toBe(1);
    await fleet.run('sandbox', 'start', p);
    await fleet.run('reconcile');
    // The replicas reconnect on their own (connect retry 2 s).
    await waitConverged(`after ${p} came back from the vetoed failover`);
  });

  it('does not fail over when only topogit lost the primary (UnreachablePrimary)', async () => {
    await setPolicy('  auto: true\n  blockSeconds: 0\n');
    const p = await primaryInFile();
    // SIGSTOP: the replicas keep their connections, topogit's probes time out.
    await fleet.run('sandbox', 'freeze', p);
    try {
      const r = await fleet.run('--connect-timeout', '300', 'reconcile');
      expect(r.out).toContain(`UnreachablePrimary: ${p} unreachable from topogit`);
      expect(r.out).not.toContain('failover');
    } finally {
      await fleet.run('sandbox', 'thaw', p);
    }
    expect(await primaryInFile()).toBe(p);
    expect(await divergence()).toEqual([]);
  });

  it('never promotes a promotion: never replica; the candidate catches up from it first', async () => {
    const p = await primaryInFile();
    const [cand, never] = fleet.names.filter((n) => n !== p) as [string, string];
    await writeFile(file(), editSources(await readFile(file(), 'utf8'), new Map()).replace(new RegExp(`(  ${never}: \\{[^}]*)( \\})`), '$1, promotion: never$2'));
    await git(fleet.dir, 'commit', '-qam', `${never} never promoted`);
    // The candidate lags: its SQL thread is stopped while the primary takes writes.
    await fleet.sql(fleet.host(cand), 'STOP SLAVE SQL_THREAD');
    await fleet.sql(fleet.host(p), 'INSERT INTO topogit_demo.t (v) VALUES (10), (11), (12)');
    const total = await rows(p);
    await waitFor(`${never} to have all ${total} rows`, () => rows(never), (n) => n === total);
    await killPrimary(p);
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain(`failover ${p} -> ${cand} done`);
    expect(await primaryInFile()).toBe(cand);
    expect(await readOnly(never)).toBe(1);
    // Nothing acknowledged was lost: the candidate has every row the primary had.
    expect(await rows(cand)).toBe(total);
    expect(await sourceOf(never)).toBe(cand);
    await bringBack(p);
  });

  it('catches the candidate up from a more advanced never-promote replica it lacks transactions from', async () => {
    const p = await primaryInFile();
    const text = await readFile(file(), 'utf8');
    const never = /^ {2}(db00\d): \{[^}]*promotion: never/m.exec(text)?.[1] as string;
    const cand = fleet.names.find((n) => n !== p && n !== never) as string;
    // The candidate stops receiving altogether: only the never-promote replica gets these rows.
    await fleet.sql(fleet.host(cand), 'STOP SLAVE');
    await fleet.sql(fleet.host(p), 'INSERT INTO topogit_demo.t (v) VALUES (20), (21)');
    const total = await rows(p);
    await waitFor(`${never} to have all ${total} rows`, () => rows(never), (n) => n === total);
    expect(await rows(cand)).toBeLessThan(total);
    await killPrimary(p);
    // Its IO thread starts again and finds the primary gone: now both replicas confirm the death
    // (a replica that is not even trying says nothing, and one of two is no majority).
    await fleet.sql(fleet.host(cand), 'START SLAVE IO_THREAD');
    await waitFor(`${cand} to lose ${p} on a connection error`, () => fleet.sql(fleet.host(cand), 'SHOW SLAVE STATUS'), (rows) => {
      const r = (rows as { Slave_IO_Running: string; Last_IO_Errno: number }[])[0];
      return r !== undefined && r.Slave_IO_Running !== 'Yes' && r.Last_IO_Errno === 2003;
    });
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain(`caught-up: ${cand} caught up from ${never}`);
    expect(r.out).toContain(`failover ${p} -> ${cand} done`);
    expect(await rows(cand)).toBe(total);
    expect(await sourceOf(never)).toBe(cand);
    expect((await git(fleet.dir, 'show', '-s', '--format=%B', 'HEAD'))).toContain(`Note: ${cand} caught up from ${never}, which was ahead of it`);
    await bringBack(p);
  });

  it('keeps a returning old primary fenced when it has an errant transaction', async () => {
    const p = await primaryInFile();
    await fleet.run('sandbox', 'kill', p);
    expect((await fleet.run('failover', 'shop', '--yes')).code).toBe(0);
    // It comes back writable and takes a write nobody else has (isolated).
    await fleet.run('sandbox', 'start', p);
    await fleet.sql(fleet.host(p), 'INSERT INTO topogit_demo.t (v) VALUES (99)');
    const r = await fleet.run('reconcile');
    expect(r.out).toMatch(new RegExp(`${p} is back and fenced \\(read-only\\): errant GTIDs 0-\\d+-\\d+; it will not be rejoined automatically`));
    expect(await readOnly(p)).toBe(1);
    expect(await sourceOf(p)).toBe(null);
    const status = await fleet.run('status');
    expect(status.out).toMatch(new RegExp(`! ${p}: Fenced: former primary with errant GTIDs 0-\\d+-\\d+`));
    // Neither a plan nor another pass rejoins it.
    expect((await fleet.run('plan')).out).toContain(`${p} is fenced`);
    await fleet.run('reconcile');
    expect(await sourceOf(p)).toBe(null);
  });

  it('converges after being killed at each failover step', async () => {
    // The fenced member stays fenced (only a human clears an errant transaction); the two healthy
    // members take turns as primary. No member is `promotion: never` any more.
    await writeFile(file(), (await readFile(file(), 'utf8')).replace(', promotion: never', ''));
    await git(fleet.dir, 'commit', '-qam', 'every member may be promoted');
    for (const step of ['started', 'drained', 'chosen', 'promoted', 'repointed', 'written-back', 'fence-attempted']) {
      const healthy = await healthyPrimary();
      await fleet.run('sandbox', 'kill', healthy);
      const code = await runKilledAt(step);
      expect(code, `killed after ${step}`).toBe('SIGKILL');
      // Never two writable primaries in the half-state.
      const writable = [];
      for (const n of fleet.names) if (n !== healthy && (await readOnly(n).catch(() => 1)) === 0) writable.push(n);
      expect(writable.length, `after ${step}: ${writable.join(',')}`).toBeLessThanOrEqual(1);
      const r = await fleet.run('reconcile');
      expect(r.code, `${step}: ${r.err}${r.out}`).toBe(0);
      const state = JSON.parse(await readFile(path.join(fleet.dir, '.topogit', 'state', 'shop.json'), 'utf8')) as { journal?: unknown };
      expect(state.journal, step).toBeUndefined();
      const np = await primaryInFile();
      expect(np, step).not.toBe(healthy);
      expect(await readOnly(np), step).toBe(0);
      await fleet.run('sandbox', 'start', healthy);
      await fleet.run('reconcile');
    }
  });
});

/** The file's primary, if it is writable (a fenced former primary is never chosen). */
async function healthyPrimary(): Promise<string> {
  return primaryInFile();
}

function runKilledAt(step: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'topogit.js'), 'failover', 'shop', '--yes'], {
      cwd: fleet.dir,
      env: { ...gitEnv(), TOPOGIT_FAULT_AFTER: step },
      stdio: 'ignore',
    });
    child.on('exit', (_code, signal) => resolve(signal));
  });
}
