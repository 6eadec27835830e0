// A dead intermediate source (Orchestrator's DeadIntermediateMaster): its orphaned replicas move
// under the nearest ancestor that answers, the file is written back, nothing is promoted. The
// decision over fixture-built clusters in memory (test/support/fake-cluster.ts); real servers:
// test/integration/relocate.test.ts.
import { describe, expect, it } from 'vitest';
import type { ClusterSpec, InstanceSpec } from '../../src/core/model.js';
import { DEFAULT_FAILOVER, DEFAULT_WRITE_BACK } from '../../src/config/defaults.js';
import type { EngineEvent } from '../../src/engine/reconcile.js';
import { fakeCluster, reconcilePass, type FakeCluster } from '../support/fake-cluster.js';

/** db001 -> db002 -> db003 (and db004 under db002), db005 under db001. */
function chain(auto = true): ClusterSpec {
  const inst = (name: string, host: string, source?: string): InstanceSpec => ({ name, host, port: 3306, ...(source ? { source } : {}), promotion: 'neutral' });
  return {
    cluster: 'shop',
    flavor: 'auto',
    credentials: { admin: { user: 'topogit', passwordEnv: 'X' }, replication: { user: 'repl', passwordEnv: 'Y' } },
    instances: [inst('db001', '10.0.0.1'), inst('db002', '10.0.0.2', 'db001'), inst('db003', '10.0.0.3', 'db002'), inst('db004', '10.0.0.4', 'db002'), inst('db005', '10.0.0.5', 'db001')],
    failover: { ...DEFAULT_FAILOVER, auto },
    writeBack: DEFAULT_WRITE_BACK,
    file: 'topologies/shop.yaml',
  };
}

const FILE = [
  'cluster: shop',
  'instances:',
  '  db001: { host: 10.0.0.1 }',
  '  db002: { host: 10.0.0.2, source: db001 }',
  '  db003: { host: 10.0.0.3, source: db002 }',
  '  db004: { host: 10.0.0.4, source: db002 }',
  '  db005: { host: 10.0.0.5, source: db001 }',
  '',
].join('\n');

async function pass(c: FakeCluster, s: ClusterSpec, events: EngineEvent[] = []) {
  return reconcilePass(c, s, (e) => events.push(e));
}

const sourceOf = (c: FakeCluster, name: string) => {
  const ch = c.byName(name).channel;
  return ch ? [...c.servers.values()].find((x) => x.host === ch.sourceHost)?.name : null;
};

describe('dead intermediate source', () => {
  it('moves the orphans under the nearest ancestor that answers and writes the new tree back', async () => {
    const s = chain();
    const c = fakeCluster(s);
    c.kill('db002');
    const events: EngineEvent[] = [];
    const r = await pass(c, s, events);
    expect(r.failover).toBeUndefined();
    expect(r.relocation?.step).toMatchObject({ source: 'db002', target: 'db001', moves: [{ name: 'db003' }, { name: 'db004' }], already: [], skipped: [] });
    for (const n of ['db003', 'db004']) {
      expect(sourceOf(c, n)).toBe('db001');
      expect(c.byName(n).channel).toMatchObject({ io: true, sql: true });
    }
    expect(c.writableCount()).toBe(1);
    expect(c.byName('db001').readOnly).toBe(false);
    expect(c.writeBacks).toHaveLength(1);
    expect(c.writeBacks[0]?.message).toMatch(/^relocate\(shop\): db003 db004 db002 -> db001\n/);
    expect(c.writeBacks[0]?.edit(FILE)).toBe(FILE.replace('db003: { host: 10.0.0.3, source: db002 }', 'db003: { host: 10.0.0.3, source: db001 }').replace('db004: { host: 10.0.0.4, source: db002 }', 'db004: { host: 10.0.0.4, source: db001 }'));
    expect(events.find((e) => e.type === 'relocated')).toMatchObject({ source: 'db002', target: 'db001', moved: ['db003', 'db004'] });
    // Writes on the primary reach the relocated replicas.
    c.write('db001', 3);
    expect(c.byName('db003').history).toEqual(c.byName('db001').history);
  });

  it('a second pass with the file not yet reloaded moves nothing again and only writes back', async () => {
    const s = chain();
    const c = fakeCluster(s);
    c.kill('db002');
    await pass(c, s);
    const before = c.statements.length;
    const r = await pass(c, s);
    expect(r.relocation?.step).toMatchObject({ moves: [], already: ['db003', 'db004'] });
    expect(c.statements.length).toBe(before);
  });

  it('relocates nothing while an orphan still replicates from the source (topogit alone lost it)', async () => {
    const s = chain();
    const c = fakeCluster(s);
    // Only topogit's probes of db002 fail; its replicas still replicate from it.
    const probe = c.ports.probe;
    (c.ports as { probe: typeof probe }).probe = async (e, l, t) => (e.host === '10.0.0.2' ? { ok: false, endpoint: e, error: 'timed out', code: 'ETIMEDOUT', ms: 1000 } : probe(e, l, t));
    const r = await pass(c, s);
    expect(r.relocation).toBeUndefined();
    expect(sourceOf(c, 'db003')).toBe('db002');
    expect(c.writeBacks).toHaveLength(0);
  });

  it('with failover.auto false, only reports', async () => {
    const s = chain(false);
    const c = fakeCluster(s);
    c.kill('db002');
    const r = await pass(c, s);
    expect(r.relocation).toBeUndefined();
    expect(sourceOf(c, 'db003')).toBe('db002');
  });

  it('an orphan with transactions the ancestor lacks stays where it is, named', async () => {
    const s = chain();
    const c = fakeCluster(s);
    // db004 took a write of its own (errant), then db002 died.
    c.byName('db004').history.push({ serverId: 4, seq: 99 });
    c.kill('db002');
    const r = await pass(c, s);
    expect(r.relocation?.step.moves.map((m) => m.name)).toEqual(['db003']);
    expect(r.relocation?.step.skipped).toEqual([{ name: 'db004', why: expect.stringMatching(/^it has errant GTIDs 0-4-99/) as unknown as string }]);
    expect(sourceOf(c, 'db004')).toBe('db002');
    expect(c.writeBacks[0]?.message).toContain('Not moved: db004: it has errant GTIDs 0-4-99.');
  });
});
