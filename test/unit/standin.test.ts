// The benchmark's protocol-level stand-in (scripts/lib/standin.mjs) must look like a MariaDB 10.11
// server to topogit's real probe: same handshake, same three statements, rows parsed into the
// same InstanceState a real server gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../../src/adapters/mysql/probe.js';
import type { ProbeResult } from '../../src/core/model.js';

interface Fleet {
  readonly parents: readonly number[];
  readonly stats: { connections: number; queries: number; statements: number };
  stop(): Promise<void>;
}
interface StandinModule {
  startStandins(o: { count: number; basePort: number; host?: string; password?: string }): Promise<Fleet>;
}

const BASE_PORT = 26100; // the scale benchmark uses 23000..25999
const login = { user: 'topogit', password: 'standin-pw' };
let fleet: Fleet;

beforeAll(async () => {
  // A plain .mjs script without type declarations: imported through a non-literal specifier.
  const url = new URL('../../scripts/lib/standin.mjs', import.meta.url).href;
  const mod = (await import(url)) as StandinModule;
  fleet = await mod.startStandins({ count: 5, basePort: BASE_PORT, password: login.password });
});

afterAll(async () => {
  await fleet?.stop();
});

function state(r: ProbeResult) {
  if (!r.ok) throw new Error(`probe failed: ${r.code} ${r.error}`);
  return r.state;
}

describe('stand-in', () => {
  it('answers the probe like a MariaDB 10.11 primary and four replicas', async () => {
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => probe({ host: '127.0.0.1', port: BASE_PORT + i }, login)));
    const states = results.map(state);
    expect(fleet.parents).toEqual([-1, 0, 0, 0, 0]);

    states.forEach((s, i) => {
      expect(s.flavor).toBe('mariadb');
      expect(s.version).toMatch(/^10\.11\.\d+-MariaDB/);
      expect(s.serverId).toBe(i + 1);
      expect(s.port).toBe(BASE_PORT + i);
      expect(s.gtid.strictMode).toBe(true);
    });

    const [primary, ...replicas] = states;
    expect(primary?.readOnly).toBe(false);
    expect(primary?.replication).toEqual([]);
    expect(primary?.seenReplicas.map((r) => [r.serverId, r.host, r.port]).sort()).toEqual(
      [1, 2, 3, 4].map((i) => [i + 1, '127.0.0.1', BASE_PORT + i]).sort(),
    );

    for (const s of replicas) {
      expect(s.readOnly).toBe(true);
      expect(s.seenReplicas).toEqual([]);
      expect(s.replication).toHaveLength(1);
      expect(s.replication[0]).toMatchObject({
        sourceHost: '127.0.0.1',
        sourcePort: BASE_PORT,
        sourceServerId: 1,
        ioThread: 'yes',
        sqlThread: 'yes',
        gtidAutoPosition: true,
        secondsBehindSource: 0,
        connectRetry: 2,
        heartbeatPeriod: 1,
      });
    }
    // Three statements per probe, in one query once the version is known (from the handshake).
    expect(fleet.stats.statements).toBeGreaterThanOrEqual(15);
    expect(fleet.stats.queries).toBeGreaterThanOrEqual(5);
  });

  it('refuses a wrong password when one is set', async () => {
    const r = await probe({ host: '127.0.0.1', port: BASE_PORT }, { user: 'topogit', password: 'wrong' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('ER_ACCESS_DENIED_ERROR');
  });
});
