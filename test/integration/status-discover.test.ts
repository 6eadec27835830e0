// Real MariaDB servers: sandbox up, discover, status and the health words after real faults.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, within } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, type Fleet } from './fleet.js';

interface StatusInstance {
  name: string;
  health: string;
  liveSource: string | null;
  readOnly: boolean | null;
  role: string;
  error: string | null;
}
interface StatusOut {
  clusters: { name: string; healthy: boolean; inSync: boolean; instances: StatusInstance[] }[];
}

let fleet: Fleet;
const statusJson = async () => {
  const r = await fleet.run('status', '--json');
  return { code: r.code, status: JSON.parse(r.out) as StatusOut };
};
const health = (s: StatusOut) => Object.fromEntries(s.clusters[0]!.instances.map((i) => [i.name, i.health]));

describe('sandbox, discover and status on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shop', instances: 3, baseOctet: 21 });
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('writes a topology file that validates and shows all OK', async () => {
    const yaml = await readFile(path.join(fleet.dir, 'topologies', 'shop.yaml'), 'utf8');
    expect(yaml).toContain('db002: { host: 127.0.0.22, port: 3306, source: db001 }');
    expect(yaml).not.toContain(TEST_PASSWORD);
    expect((await fleet.run('validate')).code).toBe(0);
    const { code, status } = await statusJson();
    expect(health(status)).toEqual({ db001: 'OK', db002: 'OK', db003: 'OK' });
    expect(status.clusters[0]!.instances.map((i) => i.readOnly)).toEqual([false, true, true]);
    expect(code).toBe(0);
    const text = await fleet.run('status');
    expect(text.out).toMatch(/^db001\s+127\.0\.0\.21:3306\s+primary\s+OK\s+rw/m);
    expect(text.out).toMatch(/├─ db002\s+127\.0\.0\.22:3306\s+replica\s+OK\s+lag 0s\s+ro/);
    expect(text.out).toMatch(/└─ db003\s+127\.0\.0\.23:3306\s+replica\s+OK\s+lag 0s\s+ro/);
  });

  it('discovers the same tree from any member, and the output validates unchanged', async () => {
    for (const member of fleet.hosts) {
      const r = await fleet.run('discover', member, '--cluster', 'shop');
      expect(r.code, r.err).toBe(0);
      // Fresh discovery names instances by address (report_host is the address in the sandbox).
      expect(r.out).toContain('127.0.0.21: { host: 127.0.0.21, port: 3306 }');
      expect(r.out).toContain('127.0.0.22: { host: 127.0.0.22, port: 3306, source: 127.0.0.21 }');
      expect(r.out).toContain('127.0.0.23: { host: 127.0.0.23, port: 3306, source: 127.0.0.21 }');
      const file = path.join(fleet.dir, 'discovered', `from-${member}.yaml`);
      await mkdir(path.dirname(file), { recursive: true });
      await fleet.run('discover', member, '--cluster', 'shop2', '-o', path.relative(fleet.dir, file));
      const v = await fleet.run('validate', path.relative(fleet.dir, file));
      expect(v.code, v.err).toBe(0);
    }
    // With the existing file, its names are reused: the output is the same tree as the file.
    const again = await fleet.run('discover', '127.0.0.23', '--cluster', 'shop', '-f', 'topologies');
    expect(again.out).toContain('db001: { host: 127.0.0.21, port: 3306 }');
    expect(again.out).toContain('db002: { host: 127.0.0.22, port: 3306, source: db001 }');
    expect(again.out).toContain('db003: { host: 127.0.0.23, port: 3306, source: db001 }');
  });

  it('shows a stopped replica as Disconnected, then OK again', async () => {
    await fleet.sql('127.0.0.23', 'STOP SLAVE');
    const { code, status } = await statusJson();
    expect(health(status).db003).toBe('Disconnected');
    expect(code).toBe(2);
    await fleet.sql('127.0.0.23', 'START SLAVE');
    await waitFor('status to show db003 OK again', statusJson, (s) => health(s.status).db003 === 'OK');
  });

  it('shows a replica pointed at the wrong source as Drift', async () => {
    await fleet.sql('127.0.0.23', 'STOP SLAVE');
    await fleet.sql('127.0.0.23', "CHANGE MASTER TO MASTER_HOST='127.0.0.22'");
    await fleet.sql('127.0.0.23', 'START SLAVE');
    const { code, status } = await waitFor('status to show db003 as Drift', statusJson, (s) => health(s.status).db003 === 'Drift');
    const db003 = status.clusters[0]!.instances.find((i) => i.name === 'db003')!;
    expect(db003.health).toBe('Drift');
    expect(db003.liveSource).toBe('db002');
    expect(status.clusters[0]!.inSync).toBe(false);
    expect(code).toBe(2);
    expect((await fleet.run('status')).out).toContain('db003: Drift: replicates from db002; the file says db001');
    await fleet.sql('127.0.0.23', 'STOP SLAVE');
    await fleet.sql('127.0.0.23', "CHANGE MASTER TO MASTER_HOST='127.0.0.21'");
    await fleet.sql('127.0.0.23', 'START SLAVE');
  });

  it('shows a writable replica and an SQL error with its text', async () => {
    await fleet.sql('127.0.0.21', 'CREATE DATABASE IF NOT EXISTS topogit_demo');
    await fleet.sql('127.0.0.21', 'CREATE TABLE topogit_demo.t (id INT PRIMARY KEY)');
    await waitFor('db002 to have the table', () => fleet.sql('127.0.0.22', "SHOW TABLES FROM topogit_demo LIKE 't'"), (rows) => rows.length === 1);
    await fleet.sql('127.0.0.22', 'SET GLOBAL read_only = 0');
    // A row written on the replica alone, then the same key from the primary: a duplicate-key stop.
    await fleet.sql('127.0.0.22', 'SET SESSION sql_log_bin = 0', 'INSERT INTO topogit_demo.t VALUES (1)');
    await fleet.sql('127.0.0.21', 'INSERT INTO topogit_demo.t VALUES (1)');
    const { status } = await waitFor('status to show db002 stopped on an SQL error', statusJson, (s) => health(s.status).db002 === 'SQL error');
    const db002 = status.clusters[0]!.instances.find((i) => i.name === 'db002')!;
    expect(db002.health).toBe('SQL error');
    expect(db002.error).toMatch(/Duplicate entry '1' for key 'PRIMARY'/);
    expect((await fleet.run('status')).out).toContain('db002: Writable replica');
  });

  it('shows a killed primary as Unreachable and its replicas as Disconnected in one probe', async () => {
    const kill = await fleet.run('sandbox', 'kill', 'db001');
    expect(kill.out, kill.err).toContain('db001 killed (SIGKILL)');
    // The replicas notice within moments (their IO thread loses the connection); one status call
    // then shows both sides of the death.
    const { code, status } = await waitFor('status to show db003 Disconnected', statusJson, (s) => health(s.status).db003 === 'Disconnected');
    const h = health(status);
    expect(h.db001).toBe('Unreachable');
    expect(status.clusters[0]!.instances[0]!.error).toMatch(/^connection (refused|lost)$/);
    expect(code).toBe(2);
    expect((await fleet.run('sandbox', 'start', 'db001')).code).toBe(0);
    await waitFor('db003 to replicate from db001 again', statusJson, (s) => health(s.status).db003 === 'OK');
  });

  it('shows a frozen server as Unreachable within the timeout instead of hanging', async () => {
    const freeze = await fleet.run('sandbox', 'freeze', 'db003');
    expect(freeze.out, freeze.err).toContain('frozen');
    try {
      // A hang would run into the deadline; how long the command takes is for scripts/bench-status.mjs.
      const r = await within('status --json with a frozen member', fleet.run('--connect-timeout', '300', 'status', '--json'), 30_000);
      const s = JSON.parse(r.out) as StatusOut;
      expect(health(s).db003).toBe('Unreachable');
      // The connect timeout ended the probe (the server never answered), not an error of its own.
      expect(s.clusters[0]!.instances.find((i) => i.name === 'db003')!.error).toMatch(/timed? ?out/i);
      // The other members were probed all the same.
      expect(health(s).db001).not.toBe('Unreachable');
    } finally {
      await fleet.run('sandbox', 'thaw', 'db003');
    }
  });
});
