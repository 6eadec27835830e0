// Real MariaDB servers: each drift kind is made by hand with SQL, `plan` shows it, `apply` fixes
// it, and `plan` is then empty. Also: SQL errors and errant GTIDs are refused, saved plans go
// stale, applies are serialised, and the three output formats hold their shape.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { main } from '../../src/cli/main.js';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/adapters/lock.js';
import { waitFor } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, TEST_REPL_PASSWORD, type Fleet } from './fleet.js';

let fleet: Fleet;
const [H1, H2, H3] = ['127.0.0.31', '127.0.0.32', '127.0.0.33'];

const plan = (...args: string[]) => fleet.run('plan', '--detailed-exitcode', ...args);
async function applyAndConverge() {
  const a = await fleet.run('apply', '--yes');
  expect(a.code, a.err + a.out).toBe(0);
  expect(a.out).toMatch(/applied and verified/);
  const after = await plan();
  expect(after.out).toContain('No changes. Live topology matches the files.');
  expect(after.code).toBe(0);
  // Applying again changes nothing.
  const again = await fleet.run('apply', '--yes');
  expect(again.code).toBe(0);
  expect(again.out).not.toMatch(/applying/);
  return a;
}

describe('plan and apply on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 31 });
    await fleet.sql(H1, 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)', 'INSERT INTO topogit_demo.t (v) VALUES (1)');
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('plans nothing for a fresh sandbox', async () => {
    const r = await plan();
    expect(r.out).toBe('No changes. Live topology matches the files.\n');
    expect(r.code).toBe(0);
  });

  it('repoints a replica with the wrong source', async () => {
    await fleet.sql(H3, 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${H2}'`, 'START SLAVE');
    const p = await plan();
    expect(p.code).toBe(2);
    expect(p.out).toContain('~ db003 source db002 -> db001');
    expect(p.out).toContain(`MASTER_HOST='${H1}'`);
    expect(p.out).toContain("MASTER_PASSWORD='****'");
    expect(p.out).not.toContain(TEST_REPL_PASSWORD);
    expect(p.out).toMatch(/Plan: 1 change in 1 cluster\.\n$/);
    await applyAndConverge();
    const [row] = (await fleet.sql(H3, 'SHOW SLAVE STATUS')) as { Master_Host: string }[];
    expect(row?.Master_Host).toBe(H1);
  });

  it('starts stopped replication (no error)', async () => {
    await fleet.sql(H2, 'STOP SLAVE');
    const p = await plan();
    expect(p.out).toContain('+ db002 start replication');
    await applyAndConverge();
  });

  it('sets a writable replica read-only', async () => {
    await fleet.sql(H2, 'SET GLOBAL read_only = 0');
    const p = await plan();
    expect(p.out).toContain('~ db002 read_only OFF -> ON');
    await applyAndConverge();
    const [row] = (await fleet.sql(H2, 'SELECT @@read_only AS ro')) as { ro: number }[];
    expect(row?.ro).toBe(1);
  });

  it('makes a read-only primary writable again', async () => {
    await fleet.sql(H1, 'SET GLOBAL read_only = 1');
    const p = await plan();
    expect(p.out).toContain('~ db001 read_only ON -> OFF');
    await applyAndConverge();
  });

  it('restores the replication settings topogit needs', async () => {
    await fleet.sql(H3, 'STOP SLAVE', 'CHANGE MASTER TO MASTER_CONNECT_RETRY = 60, MASTER_HEARTBEAT_PERIOD = 30', 'START SLAVE');
    const p = await plan();
    expect(p.out).toContain('~ db003 replication settings');
    expect(p.out).toContain('connect_retry=60');
    await applyAndConverge();
  });

  it('reports an SQL error for a human and never skips it', async () => {
    await fleet.sql(H2, 'SET SESSION sql_log_bin = 0', 'SET GLOBAL read_only = 0', 'INSERT INTO topogit_demo.t (id, v) VALUES (100, 0)', 'SET GLOBAL read_only = 1');
    await fleet.sql(H1, 'INSERT INTO topogit_demo.t (id, v) VALUES (100, 1)');
    await waitFor('status to show db002 stopped on an SQL error', () => fleet.run('status', '--json'), (r) => r.out.includes('"health": "SQL error"'));
    const p = await plan();
    expect(p.out).toContain('! db002 stopped on an SQL error; left for a human (never skipped): 1062');
    expect(p.out).toContain('No changes.');
    const a = await fleet.run('apply', '--yes');
    expect(a.out).not.toMatch(/SQL_SLAVE_SKIP_COUNTER|START/);
    // Clean up by hand, as an operator would: remove the conflicting row and restart.
    await fleet.sql(H2, 'SET SESSION sql_log_bin = 0', 'SET GLOBAL read_only = 0', 'DELETE FROM topogit_demo.t WHERE id = 100', 'SET GLOBAL read_only = 1', 'START SLAVE');
    await waitFor('plan to show no changes once db002 replicates again', () => plan(), (r) => r.code === 0);
  });

  it('refuses a stale saved plan, saying what changed', async () => {
    await fleet.sql(H2, 'STOP SLAVE');
    const p = await fleet.run('plan', '--out', 'p1.json');
    expect(p.code).toBe(0);
    const saved = JSON.parse(await readFile(path.join(fleet.dir, 'p1.json'), 'utf8')) as { basis: { files: Record<string, string> } };
    expect(Object.keys(saved.basis.files)).toEqual(['topologies/shop.yaml']);
    // Live state moves on: someone starts replication by hand.
    await fleet.sql(H2, 'START SLAVE');
    const stale = await fleet.run('apply', 'p1.json');
    expect(stale.code).toBe(1);
    expect(stale.err).toContain('stale plan: live state of shop/db002 changed since the plan was made');
    expect(stale.err).toContain('p1.json is stale; nothing was applied');
    // The file changes: refused too.
    await fleet.sql(H2, 'STOP SLAVE');
    await fleet.run('plan', '--out', 'p2.json');
    const file = path.join(fleet.dir, 'topologies', 'shop.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text + '# edited\n');
    const staleFile = await fleet.run('apply', 'p2.json');
    expect(staleFile.err).toContain('stale plan: topologies/shop.yaml changed since the plan was made');
    await writeFile(file, text);
    // An up-to-date saved plan applies without a prompt.
    await fleet.run('plan', '--out', 'p3.json');
    const ok = await fleet.run('apply', 'p3.json');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/\+ \d\. db002 start replication/);
  });

  it('serialises two applies on the same cluster', async () => {
    const lock = await acquireLock('shop', { dir: path.join(fleet.dir, '.topogit', 'locks'), timeoutMs: 1000, command: 'test holder' });
    const refused = await fleet.run('apply', '--yes', '--lock-timeout', '1');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/cluster shop is locked by pid \d+ on .+ \(test holder, since .+\); gave up after 1 s/);
    await fleet.sql(H3, 'STOP SLAVE');
    // The second apply runs in-process, so what it prints can be watched while it waits.
    let out = '';
    let err = '';
    const waiting = main(['apply', '--yes', '--lock-timeout', '20'], { out: (x) => (out += x), err: (x) => (err += x), env: fleet.env, cwd: fleet.dir });
    await waitFor('the second apply to say it waits for the lock', () => err, (e) => /waiting for the lock on shop, held by pid \d+ \(test holder\)/.test(e));
    // Nothing ran while the lock was held: no plan printed, db003 still stopped.
    expect(out).toBe('');
    expect(((await fleet.sql(H3, 'SHOW SLAVE STATUS')) as { Slave_IO_Running: string }[])[0]?.Slave_IO_Running).toBe('No');
    await lock.release();
    const code = await waiting;
    expect(code, err).toBe(0);
    expect(out).toContain('+ 1. db003 start replication');
    // Two real applies at once: both succeed, and the changes run exactly once.
    await fleet.sql(H3, 'STOP SLAVE');
    const [a, b] = await Promise.all([fleet.run('apply', '--yes'), fleet.run('apply', '--yes')]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([a.out, b.out].filter((o) => o.includes('db003 start replication') && o.includes('applied and verified'))).toHaveLength(1);
  });

  it('asks before it locks: an unanswered prompt never holds the cluster lock', async () => {
    await fleet.sql(H2, 'STOP SLAVE');
    const lockFile = path.join(fleet.dir, '.topogit', 'locks', 'shop.lock');
    const ask = async (answer: boolean) => {
      let lockedWhileAsking: boolean | undefined;
      let out = '';
      const code = await main(['apply'], {
        out: (x) => (out += x),
        err: (x) => (out += x),
        env: fleet.env,
        cwd: fleet.dir,
        confirm: async () => {
          lockedWhileAsking = existsSync(lockFile);
          return answer;
        },
      });
      return { code, out, lockedWhileAsking };
    };
    const no = await ask(false);
    expect(no.lockedWhileAsking).toBe(false);
    expect(no.code).toBe(1);
    expect(no.out).toContain('nothing applied');
    const yes = await ask(true);
    expect(yes.lockedWhileAsking).toBe(false);
    expect(yes.code, yes.out).toBe(0);
    expect(yes.out).toContain('db002 start replication');
    expect(yes.out).toContain('applied and verified');
  });

  it('needs --yes or a terminal, and plans against a recorded observation', async () => {
    await fleet.sql(H2, 'STOP SLAVE');
    const noYes = await fleet.run('apply');
    expect(noYes.code).toBe(1);
    expect(noYes.err).toContain('apply needs confirmation and this is not a terminal; nothing was applied');
    const status = await fleet.run('status', '--json');
    await writeFile(path.join(fleet.dir, 'observed.json'), status.out);
    const offline = await fleet.run('plan', '--against', 'observed.json', '--format', 'json');
    const doc = JSON.parse(offline.out) as { formatVersion: number; against: { observation: string }; summary: { changes: number } };
    expect(doc.formatVersion).toBe(1);
    expect(doc.against.observation).toBe('observed.json');
    expect(doc.summary.changes).toBe(1);
    const md = await fleet.run('plan', '--format', 'markdown');
    expect(md.out.split('\n')[0]).toContain('Plan: 1 change in 1 cluster.');
    expect(md.out).toContain('<details>');
    await fleet.run('apply', '--yes');
  });

  it('keeps passwords out of every output', async () => {
    for (const args of [['plan'], ['plan', '--format', 'json'], ['plan', '--format', 'markdown'], ['status', '--json'], ['apply', '--yes']]) {
      const r = await fleet.run(...args);
      expect(r.out + r.err).not.toContain(TEST_PASSWORD);
      expect(r.out + r.err).not.toContain(TEST_REPL_PASSWORD);
    }
  });
  it('refuses to repoint a replica with errant GTIDs and names them', async () => {
    // A transaction written on db003 alone, binlogged with its own server id: errant.
    await fleet.sql(H3, 'SET GLOBAL read_only = 0', 'INSERT INTO topogit_demo.t (id, v) VALUES (5000, 3)', 'SET GLOBAL read_only = 1');
    await fleet.sql(H3, 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${H2}'`, 'START SLAVE');
    const p = await plan();
    expect(p.out).toMatch(/! db003 has errant GTIDs 0-3-\d+ that db001 does not have; refusing to start or repoint it/);
    expect(p.out).not.toContain('~ db003 source');
    // Even pointed back at the right source and stopped, it is left alone: never rejoined silently.
    await fleet.sql(H3, 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${H1}'`);
    const again = await plan();
    expect(again.out).toMatch(/! db003 has errant GTIDs 0-3-\d+/);
    expect(again.out).not.toContain('db003 start replication');
  });

});
