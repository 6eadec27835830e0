// Held connections (the daemon's probes) on real MariaDB servers: one connection per instance
// for every probe, the probe's two statements in one round trip, a killed server reported the
// moment its connection closes, a frozen one not taken for alive, and connections closed when no
// file names their server any more.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeldConnections } from '../../src/adapters/mysql/held.js';
import type { Endpoint } from '../../src/core/model.js';
import { waitFor } from '../support/wait.js';
import { startFleet, TEST_PASSWORD, type Fleet } from './fleet.js';

let fleet: Fleet;
const login = { user: 'topogit', password: TEST_PASSWORD };
const timeouts = { connectMs: 1000, queryMs: 1000 };
const at = (name: string): Endpoint => ({ host: fleet.host(name), port: 3306 });

/** topogit's sessions on a server, other than the one asking. */
async function sessions(name: string): Promise<number> {
  const rows = (await fleet.sql(fleet.host(name), "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'topogit' AND ID <> CONNECTION_ID()")) as { n: number }[];
  return Number(rows[0]?.n);
}

describe('held connections on real MariaDB servers', () => {
  beforeAll(async () => {
    fleet = await startFleet({ cluster: 'held', instances: 3, baseOctet: 181 });
  });
  afterAll(async () => {
    await fleet?.down();
  });

  it('probes over one connection per server, two statements per probe once the version is known', async () => {
    const counted: string[] = [];
    const held = new HeldConnections({ onStatements: (e, kind, n) => counted.push(`${e.host} ${kind} ${n}`), replicasEveryMs: 60_000 });
    try {
      const before = await sessions('db002');
      for (let k = 0; k < 5; k++) {
        const r = await held.probe(at('db002'), login, timeouts);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.state.replication[0]?.ioThread).toBe('yes');
      }
      expect(held.size).toBe(1);
      expect(await sessions('db002')).toBe(before + 1);
      // First probe: variables, replica status, replicas; then two statements each.
      const host = fleet.host('db002');
      expect(counted.filter((c) => c === `${host} replicas 1`)).toHaveLength(1);
      expect(counted.filter((c) => c === `${host} variables 1`)).toHaveLength(5);
      expect(counted.filter((c) => c === `${host} replica-status 1`)).toHaveLength(5);
    } finally {
      await held.close();
    }
    await waitFor('the held session on db002 to close', () => sessions('db002'), (n) => n === 0);
  });

  it('reports a killed server the moment its connection closes, and probes it as refused after', async () => {
    const lost: string[] = [];
    const held = new HeldConnections({ onLost: (e, why) => lost.push(`${e.host}: ${why}`) });
    try {
      for (const n of fleet.names) expect((await held.probe(at(n), login, timeouts)).ok).toBe(true);
      await fleet.run('sandbox', 'kill', 'db003');
      await waitFor('the loss of db003 to be reported', async () => lost, (l) => l.length > 0, 5000);
      expect(lost).toEqual([`${fleet.host('db003')}: connection lost`]);
      expect(held.size).toBe(2);
      const r = await held.probe(at('db003'), login, timeouts);
      expect(r).toMatchObject({ ok: false, error: 'connection refused' });
      expect(r.ok === false && r.answered).toBeFalsy();
    } finally {
      await held.close();
      await fleet.run('sandbox', 'start', 'db003');
    }
  });

  it('does not take a frozen server for alive: a timeout on a connection held since before proves nothing', async () => {
    const held = new HeldConnections();
    try {
      expect((await held.probe(at('db002'), login, timeouts)).ok).toBe(true);
      await fleet.run('sandbox', 'freeze', 'db002');
      const r = await held.probe(at('db002'), login, { connectMs: 300, queryMs: 300 });
      expect(r.ok).toBe(false);
      expect(r.ok === false && r.answered).toBeFalsy();
      expect(held.size).toBe(0);
    } finally {
      await fleet.run('sandbox', 'thaw', 'db002');
      await held.close();
    }
  });

  it('closes the connections no file names any more', async () => {
    const held = new HeldConnections();
    try {
      for (const n of fleet.names) expect((await held.probe(at(n), login, timeouts)).ok).toBe(true);
      expect(held.size).toBe(3);
      held.retain([{ endpoint: at('db001'), login }]);
      expect(held.size).toBe(1);
      await waitFor('the dropped session on db003 to close', () => sessions('db003'), (n) => n === 0);
      // Another login is another connection.
      held.retain([{ endpoint: at('db001'), login: { ...login, user: 'someone-else' } }]);
      expect(held.size).toBe(0);
    } finally {
      await held.close();
    }
  });
});
