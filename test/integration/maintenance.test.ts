// Maintenance on real MariaDB servers, through the real CLI: `topogit maintenance` on/off/--for,
// what `status` (text and --json) shows, a killed primary in maintenance that neither `reconcile`
// nor `failover` fails over (and that drift repair leaves read-only when it restarts, until off),
// and a --for that runs out: then the next pass fails over, never to a replica in maintenance.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusJson } from '../../src/core/status-document.js';
import { primaryOfText, withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { startFleet, type Fleet } from './fleet.js';

const exec = promisify(execFile);
let fleet: Fleet;
const git = async (...args: string[]) =>
  (await exec('git', args, { cwd: fleet.dir, env: { ...process.env, ...fleet.env, GIT_AUTHOR_NAME: 'op', GIT_AUTHOR_EMAIL: 'op@example', GIT_COMMITTER_NAME: 'op', GIT_COMMITTER_EMAIL: 'op@example' } })).stdout;
const file = () => path.join(fleet.dir, 'topologies', 'shop.yaml');

async function statusJson(): Promise<StatusJson> {
  const r = await fleet.run('status', '--json');
  return JSON.parse(r.out) as StatusJson;
}
const maintenanceOf = async (name: string) => (await statusJson()).clusters[0]?.instances.find((i) => i.name === name)?.maintenance;
const statusLine = (out: string, name: string) => out.split('\n').find((l) => new RegExp(`^(?:[├└│ ─]*)${name} `).test(l)) ?? '';

/** What keeps the cluster from agreeing with the file; empty when it agrees. */
async function divergence(): Promise<string[]> {
  const p = primaryOfText(await readFile(file(), 'utf8'));
  const out: string[] = [];
  if ((await fleet.readOnly(p)) !== 0) out.push(`${p} (primary) is read-only`);
  for (const o of fleet.names.filter((n) => n !== p)) {
    if ((await fleet.readOnly(o)) !== 1) out.push(`${o} is writable`);
    const r = await fleet.replication(o);
    if (r !== `${p} IO Yes SQL Yes`) out.push(`${o}: ${r}`);
  }
  return out;
}
const waitConverged = (why: string) => waitFor(`the cluster to agree with the file ${why}`, divergence, (d) => d.length === 0, 15_000);

/** SIGKILL a primary and wait until its replicas noticed (what a pass decides from). */
async function killPrimary(name: string) {
  await fleet.run('sandbox', 'kill', name);
  await waitFor(`the replicas to notice ${name} is gone`, () => Promise.all(fleet.names.filter((n) => n !== name).map((o) => fleet.replication(o))), (st) => st.every((s) => !s.startsWith(`${name} IO Yes `)), 10_000);
}

describe('maintenance on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 151 });
    await writeFile(file(), withFailover(await readFile(file(), 'utf8'), '  auto: true\n  blockSeconds: 0\n'));
    await writeFile(path.join(fleet.dir, '.gitignore'), '.sandbox/\n.topogit/\n');
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-qm', 'shop topology');
    await fleet.sql(fleet.host('db001'), 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)', 'INSERT INTO topogit_demo.t (v) VALUES (1)');
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    await waitConverged('at the start');
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('on and off: status shows it in the tree line and in --json; the instance must be in the file', async () => {
    const bad = await fleet.run('maintenance', 'shop', 'db009', 'on');
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('topogit: db009 is not an instance of shop (topologies/shop.yaml) (instances: db001, db002, db003)\n');

    const on = await fleet.run('maintenance', 'shop', 'db001', 'on', '--reason', 'kernel upgrade');
    expect(on.code, on.err).toBe(0);
    expect(on.out).toMatch(/^db001 is in maintenance until turned off \(kernel upgrade\): /);
    const st = await fleet.run('status');
    expect(st.code, st.out + st.err).toBe(0);
    expect(statusLine(st.out, 'db001')).toMatch(/primary\s+OK\s+rw\s+gtid \S+\s+maintenance$/);
    expect(statusLine(st.out, 'db002')).not.toContain('maintenance');
    expect(st.out).toMatch(/^ {2}~ db001: in maintenance since \S+Z, until turned off: kernel upgrade; /m);
    const json = await statusJson();
    expect(json.clusters[0]?.instances.map((i) => [i.name, i.maintenance === null ? null : { until: i.maintenance.until, reason: i.maintenance.reason }])).toEqual([
      ['db001', { until: null, reason: 'kernel upgrade' }],
      ['db002', null],
      ['db003', null],
    ]);
    expect((await fleet.run('maintenance', 'shop')).out).toMatch(/^shop: db001 is in maintenance until turned off \(kernel upgrade\), since \S+Z\n$/);

    expect((await fleet.run('maintenance', 'shop', 'db001', 'off')).out).toBe('db001 of shop is out of maintenance: topogit watches, fails over for and repairs it again\n');
    expect(statusLine((await fleet.run('status')).out, 'db001')).not.toContain('maintenance');
    expect(await maintenanceOf('db001')).toBeNull();
  });

  it('a primary killed in maintenance is not failed over; restarted, it stays read-only until off', async () => {
    expect((await fleet.run('maintenance', 'shop', 'db001', 'on', '--reason', 'kernel upgrade')).code).toBe(0);
    await killPrimary('db001');
    const blocked = 'db001 is in maintenance until turned off (kernel upgrade): no failover; `topogit maintenance shop db001 off` to end it';
    for (let n = 0; n < 2; n++) {
      const r = await fleet.run('reconcile');
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.out).toContain('DeadPrimary: db001 is dead');
      expect(r.out).toContain(`failover blocked: ${blocked}`);
    }
    const manual = await fleet.run('failover', 'shop', '--yes', '--force');
    expect(manual.code).toBe(1);
    expect(manual.err).toBe(`failover refused: ${blocked}\n`);
    for (const o of ['db002', 'db003']) {
      expect(await fleet.readOnly(o)).toBe(1);
      expect(await fleet.sourceOf(o)).toBe('db001');
    }
    expect(statusLine((await fleet.run('status')).out, 'db001')).toMatch(/primary\s+Unreachable\s+maintenance$/);

    // The operator's restart: it comes back read-only, and topogit leaves it so.
    await fleet.run('sandbox', 'start', 'db001');
    await waitFor('db002 and db003 to follow db001 again', () => Promise.all(['db002', 'db003'].map((o) => fleet.replication(o))), (st) => st.every((s) => s === 'db001 IO Yes SQL Yes'), 15_000);
    const left = await fleet.run('reconcile');
    expect(left.code, left.err + left.out).toBe(0);
    expect(await fleet.readOnly('db001')).toBe(1);
    const plan = await fleet.run('plan');
    expect(plan.out).toContain('db001 is in maintenance until turned off (kernel upgrade): left alone (not planned: db001 read_only ON -> OFF)');
    expect(plan.out).not.toMatch(/^ {2}~ db001 read_only ON -> OFF$/m);

    expect((await fleet.run('maintenance', 'shop', 'db001', 'off')).code).toBe(0);
    const after = await fleet.run('reconcile');
    expect(after.code, after.err + after.out).toBe(0);
    await waitConverged('once the maintenance ended');
    expect((await git('log', '--format=%s')).split('\n').filter((s) => s.startsWith('failover('))).toEqual([]);
  });

  it('--for runs out by itself; the next pass fails over, never to a replica in maintenance', async () => {
    const on = await fleet.run('maintenance', 'shop', 'db001', 'on', '--for', '8s');
    expect(on.out).toMatch(/^db001 is in maintenance until (\S+Z): /);
    const until = /until (\S+Z)/.exec(on.out)?.[1] as string;
    expect(statusLine((await fleet.run('status')).out, 'db001')).toContain(`maintenance until ${until}`);
    expect((await fleet.run('maintenance', 'shop', 'db002', 'on', '--reason', 'disk swap')).code).toBe(0);
    await killPrimary('db001');
    const blocked = await fleet.run('reconcile');
    expect(blocked.out).toContain(`failover blocked: db001 is in maintenance until ${until}: no failover`);
    expect(await fleet.readOnly('db002')).toBe(1);
    expect(await fleet.readOnly('db003')).toBe(1);

    await waitFor(`db001's maintenance to run out at ${until}`, () => maintenanceOf('db001'), (m) => m === null, 15_000);
    expect(statusLine((await fleet.run('status')).out, 'db001')).not.toContain('maintenance');
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/failover db001 -> db003 done/);
    expect(await git('show', '--format=%B', '-s', 'HEAD')).toMatch(/db002.*in maintenance/);
    expect(await fleet.readOnly('db003')).toBe(0);
    expect(await fleet.readOnly('db002')).toBe(1);

    expect((await fleet.run('maintenance', 'shop', 'db002', 'off')).code).toBe(0);
    await fleet.run('sandbox', 'start', 'db001');
    await waitFor('a reconcile pass to rejoin db001', async () => (await fleet.run('reconcile')).out, (out) => out.includes('db001 is back: no errant GTIDs, rejoined as a replica of db003'), 15_000);
    await waitConverged('after db001 rejoined under db003');
  });
});
