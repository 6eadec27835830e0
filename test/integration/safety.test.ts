// Failover that is never wrong, on real MariaDB servers with a real git remote: no promotion
// without a majority of confirming replicas (and the --force and fence-command ways past it), a
// forced failover fences the old primary (read-only, its client sessions killed), a returning
// primary rejoins after the new primary purged its old binlogs, and a dead intermediate source's
// replicas move under its source with a relocate commit.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { primaryOfText, withFailover } from '../support/spec.js';
import { waitFor } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, type Fleet } from './fleet.js';

let fleet: Fleet;
const git = (cwd: string, ...args: string[]) => fleet.git(args, cwd);
const file = () => path.join(fleet.dir, 'topologies', 'shop.yaml');

async function commitFile(text: string, message: string) {
  await writeFile(file(), text);
  await git(fleet.dir, 'commit', '-qam', message);
  await git(fleet.dir, 'push', '-q');
}

/** SIGKILL members and wait until every surviving replica lost them on a connection error. */
async function kill(...names: string[]) {
  for (const n of names) await fleet.run('sandbox', 'kill', n);
  const survivors = fleet.names.filter((n) => !names.includes(n));
  await waitFor(
    `${survivors.join(', ')} to lose ${names.join(', ')} on a connection error`,
    () => Promise.all(survivors.map(async (s) => ((await fleet.sql(fleet.host(s), 'SHOW SLAVE STATUS')) as { Slave_IO_Running: string; Last_IO_Errno: number }[])[0])),
    (rows) => rows.every((r) => r === undefined || (r.Slave_IO_Running !== 'Yes' && [2003, 2013].includes(r.Last_IO_Errno))),
    10_000,
  );
}

async function rows(name: string): Promise<number[]> {
  return ((await fleet.sql(fleet.host(name), 'SELECT id FROM topogit_demo.t ORDER BY id')) as { id: number }[]).map((r) => r.id);
}

describe('failover safety on real MariaDB servers', () => {
  beforeEach(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 171 });
    await fleet.commitToRemote({ message: 'shop topology', prepare: async () => writeFile(file(), withFailover(await readFile(file(), 'utf8'), '  auto: true\n  blockSeconds: 0\n')) });
    await fleet.sql(fleet.host('db001'), 'CREATE DATABASE topogit_demo', 'CREATE TABLE topogit_demo.t (id INT PRIMARY KEY)', 'INSERT INTO topogit_demo.t VALUES (1), (2)');
    await waitFor('db003 to have both rows', () => rows('db003'), (r) => r.length === 2);
  });
  afterEach(async () => {
    await fleet?.down();
  });

  it('does not fail over when only one of two replicas can confirm; --force or a fence command can', async () => {
    await kill('db001', 'db002');
    const pass = await fleet.run('reconcile');
    expect(pass.out).toContain('failover blocked: quorum: db003 confirms db001 is dead, but not a majority of its replicas (silent: db002)');
    expect(await fleet.readOnly('db003')).toBe(1);

    const manual = await fleet.run('failover', 'shop', '--yes');
    expect(manual.code).toBe(1);
    expect(manual.err).toMatch(/no majority of db001's replicas confirms it is dead.*`--force` fails over anyway/);
    expect(await fleet.readOnly('db003')).toBe(1);

    // A fence command lets the daemon's policy go ahead: it runs first, then db003 is promoted.
    await commitFile(
      withFailover(await readFile(file(), 'utf8'), '  auto: true\n  blockSeconds: 0\n  fence:\n    command: ["echo fenced $TOPOGIT_FAILED_PRIMARY_HOST > .topogit/fenced.txt"]\n'),
      'a fence command',
    );
    const fenced = await fleet.run('reconcile');
    expect(fenced.code, fenced.err + fenced.out).toBe(0);
    expect(fenced.out).toContain('fence hook echo fenced');
    expect(fenced.out).toContain('failover db001 -> db003 done');
    expect(await readFile(path.join(fleet.dir, '.topogit', 'fenced.txt'), 'utf8')).toBe('fenced 127.0.0.171\n');
    expect(await fleet.readOnly('db003')).toBe(0);
    expect(primaryOfText(await readFile(file(), 'utf8'))).toBe('db003');
  });

  it('a forced failover fences the old primary first: read-only, its client sessions killed', async () => {
    // The sandbox's application login (not topogit's) with a transaction open on the primary.
    const session = await mysql.createConnection({ host: fleet.host('db001'), user: 'app', password: TEST_PASSWORD });
    await session.query('BEGIN');
    await session.query('INSERT INTO topogit_demo.t VALUES (3)');
    const r = await fleet.run('failover', 'shop', '--yes', '--force');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain('db001> SET GLOBAL read_only = 1');
    expect(r.out).toMatch(/db001> KILL CONNECTION \d+/);
    expect(await fleet.readOnly('db001')).toBe(1);
    // The open transaction never commits: its connection is gone.
    await expect(session.query('COMMIT')).rejects.toThrow();
    session.destroy();
    const np = primaryOfText(await readFile(file(), 'utf8'));
    expect(np).not.toBe('db001');
    expect(await rows(np)).toEqual([1, 2]);
  });

  it('a returning primary rejoins after the new primary purged the binlogs it no longer needs', async () => {
    await kill('db001');
    const f = await fleet.run('failover', 'shop', '--yes');
    expect(f.code, f.err + f.out).toBe(0);
    const np = primaryOfText(await readFile(file(), 'utf8'));
    // The new primary starts a binlog and purges the old ones (db001 has everything they held).
    await fleet.sql(fleet.host(np), 'FLUSH BINARY LOGS');
    await waitFor(
      `${np} to purge its first binlog`,
      async () => {
        const logs = (await fleet.sql(fleet.host(np), 'SHOW BINARY LOGS')) as { Log_name: string }[];
        await fleet.sql(fleet.host(np), `PURGE BINARY LOGS TO '${logs[logs.length - 1]?.Log_name}'`);
        return ((await fleet.sql(fleet.host(np), 'SHOW BINARY LOGS')) as unknown[]).length;
      },
      (n) => n === 1,
    );
    await fleet.sql(fleet.host(np), 'INSERT INTO topogit_demo.t VALUES (3), (4)');
    await fleet.run('sandbox', 'start', 'db001');
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain('db001> SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos');
    expect(r.out).toContain(`db001 is back: no errant GTIDs, rejoined as a replica of ${np}`);
    await waitFor('db001 to have every row', () => rows('db001'), (x) => x.join() === '1,2,3,4');
    expect(await fleet.replication('db001')).toBe(`${np} IO Yes SQL Yes`);
  });

  it('status names the application accounts that could write through read_only', async () => {
    const before = await fleet.run('status');
    expect(before.out).not.toContain('accounts that can write through read_only');
    // As the server's own root (unix socket), not replicated: an account with ALL PRIVILEGES.
    const root = await mysql.createConnection({ socketPath: path.join(fleet.dir, '.sandbox', 'shop', 'db001', 'mysqld.sock'), user: 'root' });
    try {
      await root.query('SET SESSION sql_log_bin = 0');
      await root.query("CREATE USER 'etl'@'%' IDENTIFIED BY 'etl-pw'");
      await root.query("GRANT ALL PRIVILEGES ON *.* TO 'etl'@'%'");
    } finally {
      await root.end();
    }
    const after = await fleet.run('status', '--json');
    const doc = JSON.parse(after.out) as { clusters: { readOnlyBypass: string[] | null }[] };
    expect(doc.clusters[0]?.readOnlyBypass).toEqual(["'etl'@'%'"]);
    expect((await fleet.run('status')).out).toContain("! accounts that can write through read_only (READ ONLY ADMIN; SUPER before MariaDB 10.11): 'etl'@'%'");
  });

  it('moves the replicas of a dead intermediate source under its source and commits the new tree', async () => {
    // db001 -> db002 -> db003
    const text = (await readFile(file(), 'utf8')).replace(/^( {2}db003: \{[^}]*source: )db001/m, '$1db002');
    await commitFile(text, 'db003 under db002');
    await fleet.sql(fleet.host('db003'), 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${fleet.host('db002')}', MASTER_USE_GTID=slave_pos`, 'START SLAVE');
    await waitFor('db003 to replicate from db002', () => fleet.replication('db003'), (s) => s === 'db002 IO Yes SQL Yes');
    await kill('db002');
    const status = await fleet.run('status');
    expect(status.code).toBe(2);
    const r = await fleet.run('reconcile');
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/relocated: db002 is dead; db003 now replicates from db001; commit [0-9a-f]{12}/);
    await waitFor('db003 to replicate from db001', () => fleet.replication('db003'), (s) => s === 'db001 IO Yes SQL Yes');
    await fleet.sql(fleet.host('db001'), 'INSERT INTO topogit_demo.t VALUES (3)');
    await waitFor('db003 to receive a new row through db001', () => rows('db003'), (x) => x.join() === '1,2,3');
    expect(await git(fleet.dir, 'log', '-1', '--format=%s', 'origin/main')).toBe('relocate(shop): db003 db002 -> db001\n');
    expect(await readFile(file(), 'utf8')).toMatch(/^ {2}db003: \{[^}]*source: db001/m);
    expect(await fleet.readOnly('db001')).toBe(0);
  });
});
