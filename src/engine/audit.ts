// Audits `status` runs beyond the probe (never the daemon's hot path): on MariaDB, which accounts
// can write through read_only — a fence sets read_only and kills sessions, but a new session of
// such an account could still write.
import type { Login, OpenSession, Timeouts } from '../core/ports.js';
import { parseVersion, readOnlyBypassSql } from '../adapters/mysql/dialect.js';
import { readOnlyWriters } from '../adapters/mysql/rows.js';
import type { Observation } from './gather.js';

/** The accounts of each MariaDB cluster (asked of its live primary, or any reachable member) other than `admin`; a cluster that cannot be asked is left out. */
export async function readOnlyBypass(
  observations: readonly Observation[],
  login: (o: Observation) => Login,
  open: OpenSession,
  timeouts: Timeouts,
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await Promise.all(
    observations.map(async (o) => {
      if (o.view.flavor !== 'mariadb') return;
      const order = [o.view.livePrimaries[0], ...o.spec.instances.map((i) => i.name)];
      const name = order.find((n) => n !== undefined && o.probes.get(n)?.ok);
      const inst = o.spec.instances.find((i) => i.name === name);
      if (!inst) return;
      const admin = login(o);
      const session = await open({ host: inst.host, port: inst.port }, admin, timeouts).catch(() => undefined);
      if (!session) return;
      try {
        // Without SELECT on mysql.global_priv the query fails: then nothing can be said (absent, not "none").
        const p = o.probes.get(inst.name);
        const rows = await session.query(readOnlyBypassSql(parseVersion(p?.ok ? p.state.version : '', 'mariadb')));
        out.set(o.spec.cluster, readOnlyWriters(rows, admin.user, p?.ok ? p.state.hostname : ''));
      } catch {
        // Not allowed to read the grants: nothing to say.
      } finally {
        await session.close();
      }
    }),
  );
  return out;
}
