// `status` reports each cluster's failure shapes and failover readiness under its tree, and in
// `--json` (clusters[].shapes, clusters[].failover): gather over a probe that answers with the
// fixture rows, then the same renderers `topogit status` uses.
import { describe, expect, it } from 'vitest';
import { DEFAULT_FAILOVER } from '../../src/config/defaults.js';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import type { ProbeFn } from '../../src/core/ports.js';
import { statusJson } from '../../src/core/status-document.js';
import type { ClusterState } from '../../src/core/state.js';
import { gather } from '../../src/engine/gather.js';
import { renderStatusText } from '../../src/cli/render-status.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { sandboxSpec, SERVER_ID, type SandboxName } from '../support/spec.js';

const ENV = { TOPOGIT_PASSWORD: 'pw', TOPOGIT_REPL_PASSWORD: 'rpw' };
const AUTO = { failover: { ...DEFAULT_FAILOVER, auto: true } };
/** db001 -> db002 -> db003, db004 under db001; failover.auto on. */
const CHAIN = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db002', db004: 'db001' }, { db002: 'neutral', db003: 'neutral', db004: 'neutral' }, AUTO);

const PRIMARY = () => FixtureRows.of('mariadb-10.11-primary');
const OK = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-ok').as(SERVER_ID[n]);
const LOST = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-source-dead').as(SERVER_ID[n]);
const STOPPED = (n: SandboxName) => FixtureRows.of('mariadb-10.11-replica-stopped').as(SERVER_ID[n]);

/** A probe that answers each member of `spec` from `rows` ('down': refused). */
function fakeProbe(spec: ClusterSpec, rows: Partial<Record<SandboxName, FixtureRows | 'down'>>): ProbeFn {
  const results = new Map<string, ProbeResult>(Object.entries(rows).map(([n, r]) => (r === 'down' ? probeDown(spec, n) : probeUp(spec, n, r))));
  return async (e) => {
    const name = spec.instances.find((i) => i.host === e.host && i.port === e.port)?.name ?? '';
    return results.get(name) ?? probeDown(spec, name)[1];
  };
}

async function observe(spec: ClusterSpec, rows: Partial<Record<SandboxName, FixtureRows | 'down'>>, state?: ClusterState) {
  return gather([spec], { env: ENV, probe: fakeProbe(spec, rows), now: Date.parse('2026-01-01T12:00:00.000Z'), ...(state ? { states: new Map([[spec.cluster, state]]) } : {}) });
}

describe('status: failure shapes and failover readiness', () => {
  it('a healthy chain: ready, one line under the tree, nothing in shapes', async () => {
    const obs = await observe(CHAIN, { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003').from(2), db004: OK('db004') });
    const text = renderStatusText(obs);
    const lines = text.trimEnd().split('\n');
    expect(lines[5]).toBe('  failover: ready, would promote db002 (promotion: neutral, 0s behind)');
    expect(lines).toHaveLength(6);
    const json = statusJson(obs, new Date(0)).clusters[0];
    expect(json?.shapes).toEqual([]);
    expect(json?.failover).toEqual({ ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: neutral, 0s behind)'] });
  });

  it('a dead intermediate source: a `!` line with its code, and the shape in --json', async () => {
    const obs = await observe(CHAIN, { db001: PRIMARY(), db002: 'down', db003: LOST('db003').from(2), db004: OK('db004') });
    const text = renderStatusText(obs);
    expect(text).toContain('\n  ! DeadIntermediateSource: db002 is dead (unreachable, and db003 lost it); its replicas db003 are orphaned\n');
    // db002 is unreachable: only db004 of db001's two replicas could confirm its death.
    expect(text).toContain('\n  ! failover: not ready: only 1 of 2 replicas could confirm a death (quorum majority)\n');
    const json = statusJson(obs, new Date(0)).clusters[0];
    expect(json?.shapes).toEqual([
      { code: 'DeadIntermediateSource', instance: 'db002', replicas: ['db003'], summary: 'db002 is dead (unreachable, and db003 lost it); its replicas db003 are orphaned' },
    ]);
    expect(json?.failover).toEqual({ ready: false, candidate: 'db004', reasons: ['only 1 of 2 replicas could confirm a death (quorum majority)'] });
  });

  it('the failover line comes right under the tree, then the shapes, then each instance problem', async () => {
    const obs = await observe(CHAIN, { db001: PRIMARY(), db002: STOPPED('db002'), db003: OK('db003').from(2), db004: STOPPED('db004') });
    const bangs = renderStatusText(obs)
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.replace(/:.*/, ''));
    expect(bangs).toEqual(['  ! failover', '  ! AllReplicasNotReplicating', '  ! db002', '  ! db004']);
  });

  it('the state records count: a fenced former primary is not the candidate', async () => {
    const state: ClusterState = { formerPrimaries: [{ name: 'db002', failoverId: 'f', newPrimary: 'db001', errant: '0-2-7' }] };
    const obs = await observe(CHAIN, { db001: PRIMARY(), db002: OK('db002'), db003: OK('db003').from(2), db004: OK('db004') }, state);
    expect(obs[0]?.report.failover).toEqual({ ready: true, candidate: 'db004', reasons: ['would promote db004 (promotion: neutral, 0s behind)'] });
    // ...and it shows as Fenced, from the same records.
    expect(obs[0]?.view.instances.find((i) => i.name === 'db002')?.health).toBe('Fenced');
  });
});
