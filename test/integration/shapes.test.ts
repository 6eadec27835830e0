// Failure shapes on real MariaDB servers: a chain db001 -> db002 -> db003 (db004 under db001),
// and the faults that make each shape; `status --json` shows it in clusters[].shapes and the text
// a `! <Code>:` line. Each fault is undone and the cluster awaited back to no shape.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { startFleet, TEST_REPL_PASSWORD, type Fleet } from './fleet.js';

interface Shape {
  code: string;
  instance: string;
  replicas: string[];
  summary: string;
}
interface StatusOut {
  clusters: { name: string; shapes: Shape[]; failover: { ready: boolean; candidate: string | null; reasons: string[] }; instances: { name: string; health: string }[] }[];
}

let fleet: Fleet;
const status = async (): Promise<StatusOut['clusters'][number]> => {
  const r = await fleet.run('status', '--json');
  const c = (JSON.parse(r.out) as StatusOut).clusters[0];
  if (!c) throw new Error(`no cluster in status --json: ${r.out}${r.err}`);
  return c;
};
const codes = (c: StatusOut['clusters'][number]) => c.shapes.map((s) => `${s.code} ${s.instance}`);
const healthy = (c: StatusOut['clusters'][number]) => c.shapes.length === 0 && c.instances.every((i) => i.health === 'OK');
const ioError = async (name: string) => {
  const [row] = (await fleet.sql(fleet.host(name), 'SHOW SLAVE STATUS')) as { Slave_IO_Running: string; Last_IO_Errno: number }[];
  return row;
};

describe('failure shapes on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'shapes', instances: 4, baseOctet: 161 });
    // db003 under db002 in the file and on the servers; automatic failover on (no daemon runs).
    const file = path.join(fleet.dir, 'topologies', 'shapes.yaml');
    const text = await readFile(file, 'utf8');
    const chain = text.replace(/^( {2}db003: \{ host: [\d.]+, port: 3306, source: )db001 \}/m, '$1db002 }').replace(/^ {2}auto: false$/m, '  auto: true');
    if (!chain.includes('source: db002') || !chain.includes('auto: true')) throw new Error(`could not rewrite ${file}:\n${text}`);
    await writeFile(file, chain);
    await fleet.sql(fleet.host('db003'), 'STOP SLAVE', `CHANGE MASTER TO MASTER_HOST='${fleet.host('db002')}'`, 'START SLAVE');
    await waitFor('the chain to be healthy', status, healthy, 20_000);
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('a healthy chain has no shape and is ready to fail over to db002', async () => {
    const c = await status();
    expect(c.shapes).toEqual([]);
    expect(c.failover).toEqual({ ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: neutral, 0s behind)'] });
    const text = await fleet.run('status');
    expect(text.code).toBe(0);
    expect(text.out).toContain('\n  failover: ready, would promote db002 (promotion: neutral, 0s behind)\n');
    expect(text.out).not.toContain('!');
  });

  it('SemiSyncPrimaryWithoutAcks: semi-sync on the primary, on no replica', async () => {
    await fleet.sql(fleet.host('db001'), 'SET GLOBAL rpl_semi_sync_master_enabled = 1');
    try {
      const c = await waitFor('the semi-sync shape', status, (s) => codes(s).includes('SemiSyncPrimaryWithoutAcks db001'));
      expect(codes(c)).toEqual(['SemiSyncPrimaryWithoutAcks db001']);
      const text = await fleet.run('status');
      expect(text.out).toMatch(/\n {2}! SemiSyncPrimaryWithoutAcks: db001 waits for semi-sync acknowledgements, but no reachable replica with semi-sync on is connected/);
      // Every instance is OK: the shape is shown, the exit code stays the instances' health.
      expect(text.code).toBe(0);
    } finally {
      await fleet.sql(fleet.host('db001'), 'SET GLOBAL rpl_semi_sync_master_enabled = 0');
    }
    await waitFor('no shape', status, healthy);
  });

  it('AllReplicasNotReplicating: STOP SLAVE on every replica', async () => {
    for (const n of ['db002', 'db003', 'db004']) await fleet.sql(fleet.host(n), 'STOP SLAVE');
    const c = await waitFor('AllReplicasNotReplicating', status, (s) => codes(s).includes('AllReplicasNotReplicating db001'));
    expect(codes(c)).toEqual(['AllReplicasNotReplicating db001']);
    expect(c.shapes[0]?.replicas).toEqual(['db002', 'db004']);
    // Stopped by hand, no replica could see the primary die.
    expect(c.failover).toMatchObject({ ready: false, reasons: ['only 0 of 2 replicas could confirm a death (quorum majority)'] });
    const text = await fleet.run('status');
    expect(text.out).toContain('\n  ! failover: not ready: only 0 of 2 replicas could confirm a death (quorum majority)\n');
    expect(text.out).toContain('\n  ! AllReplicasNotReplicating: no replica of db001 is replicating: db002 IO no SQL no, db004 IO no SQL no\n');
    for (const n of ['db002', 'db003', 'db004']) await fleet.sql(fleet.host(n), 'START SLAVE');
    await waitFor('no shape', status, healthy);
  });

  it('PrimaryLostByReplicas: the primary refuses its replicas (wrong replication password, 1045)', async () => {
    for (const n of ['db002', 'db004']) await fleet.sql(fleet.host(n), 'STOP SLAVE', "CHANGE MASTER TO MASTER_PASSWORD='wrong-password'", 'START SLAVE');
    try {
      // What the real servers say: the IO thread keeps trying, refused with 1045 (not a connection error).
      for (const n of ['db002', 'db004']) {
        const row = await waitFor(`${n}'s IO thread to be refused`, () => ioError(n), (r) => r?.Last_IO_Errno === 1045);
        expect(row?.Slave_IO_Running).toBe('Connecting');
      }
      const c = await waitFor('PrimaryLostByReplicas', status, (s) => codes(s).includes('PrimaryLostByReplicas db001'));
      expect(codes(c)).toEqual(['PrimaryLostByReplicas db001']);
      expect(c.shapes[0]?.summary).toMatch(/^db001 answers topogit, but every replica lost it: db002 \(1045: Access denied for user 'repl'@.*\); db004 \(1045: Access denied for user 'repl'@/);
    } finally {
      for (const n of ['db002', 'db004']) await fleet.sql(fleet.host(n), 'STOP SLAVE', `CHANGE MASTER TO MASTER_PASSWORD='${TEST_REPL_PASSWORD}'`, 'START SLAVE');
    }
    await waitFor('no shape', status, healthy);
  });

  it('UnreachableIntermediateSource: db002 frozen, db003 still connected to it', async () => {
    expect((await fleet.run('sandbox', 'freeze', 'db002')).code).toBe(0);
    try {
      const c = await waitFor('UnreachableIntermediateSource', status, (s) => codes(s).includes('UnreachableIntermediateSource db002'));
      expect(c.shapes.find((s) => s.code === 'UnreachableIntermediateSource')).toMatchObject({ instance: 'db002', replicas: ['db003'], summary: 'db002 is unreachable from topogit, but db003 still replicates from it' });
      expect((await fleet.run('status')).out).toContain('\n  ! UnreachableIntermediateSource: db002 is unreachable from topogit, but db003 still replicates from it\n');
    } finally {
      expect((await fleet.run('sandbox', 'thaw', 'db002')).code).toBe(0);
    }
    await waitFor('no shape', status, healthy, 20_000);
  });

  it('DeadIntermediateSource: db002 killed, db003 lost it and is orphaned', async () => {
    expect((await fleet.run('sandbox', 'kill', 'db002')).code).toBe(0);
    try {
      const c = await waitFor('DeadIntermediateSource', status, (s) => codes(s).includes('DeadIntermediateSource db002'));
      expect(codes(c)).toEqual(['DeadIntermediateSource db002']);
      expect(c.shapes[0]).toMatchObject({ replicas: ['db003'], summary: 'db002 is dead (unreachable, and db003 lost it); its replicas db003 are orphaned' });
      const text = await fleet.run('status');
      expect(text.code).toBe(2);
      expect(text.out).toContain('\n  ! DeadIntermediateSource: db002 is dead (unreachable, and db003 lost it); its replicas db003 are orphaned\n');
      // db002 is gone: only db004 of db001's two replicas could confirm db001's death.
      expect(c.failover).toEqual({ ready: false, candidate: 'db004', reasons: ['only 1 of 2 replicas could confirm a death (quorum majority)'] });
    } finally {
      expect((await fleet.run('sandbox', 'start', 'db002')).code).toBe(0);
    }
    await waitFor('db002 to answer', () => fleet.sql(fleet.host('db002'), 'SELECT 1'), () => true, 30_000);
    await fleet.sql(fleet.host('db002'), 'START SLAVE');
    await waitFor('no shape', status, healthy, 30_000);
  });
});
