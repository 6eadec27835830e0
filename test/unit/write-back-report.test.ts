// WriteBackPending where an operator looks: `topogit status` (text and JSON), the status page's
// conditions, the metric; and the refusal of a stale file in `plan` and from the engine's check
// (state and upstream facts faked at the ports). Nothing shown carries a secret.
import { describe, expect, it } from 'vitest';
import { reportLines } from '../../src/cli/render-status.js';
import { withRefusals, type ClusterPlanView } from '../../src/core/plan-document.js';
import { reportCluster } from '../../src/core/report.js';
import { EMPTY_STATE, type ClusterState, type PendingWriteBack } from '../../src/core/state.js';
import { Metrics } from '../../src/daemon/metrics.js';
import type { ClusterJson } from '../../src/daemon/http.js';
import { renderCluster } from '../../src/daemon/page/render.js';
import type { ClusterView } from '../../src/core/classify.js';
import type { ProbeResult } from '../../src/core/model.js';
import { staleFiles, type StaleFilePorts } from '../../src/engine/stale-file.js';
import { clusterSpec, instance } from '../support/spec.js';
import { QUIET } from '../support/quiet-cluster.js';

const SPEC = clusterSpec('shop', [instance('db001', '10.0.0.1'), instance('db002', '10.0.0.2', { source: 'db001' })]);
const RECORD: PendingWriteBack = {
  file: SPEC.file,
  kind: 'failover',
  sources: { db002: null, db001: 'db002' },
  message: 'failover(shop): db001 -> db002\n\nFailover-Id: shop-1\n',
  author: SPEC.writeBack.author,
  failoverIds: ['shop-1'],
  since: '2026-01-01T00:00:02.000Z',
  attempts: 4,
  lastAttemptAt: '2026-01-01T00:00:06.000Z',
  lastError: 'git push to origin/main failed: fatal: unable to access https://***@git.example/ops.git/',
  commit: 'b'.repeat(40),
};
const PENDING: ClusterState = { ...EMPTY_STATE, pendingWriteBacks: { [SPEC.file]: RECORD } };
const REASON = 'failover(shop): db001 -> db002 (topologies/shop.yaml) not pushed since 2026-01-01T00:00:02.000Z: 4 attempts; local commit bbbbbbbbbbbb; last error: git push to origin/main failed: fatal: unable to access https://***@git.example/ops.git/';

describe('WriteBackPending in status', () => {
  it('is a line under the tree and an entry in the JSON; nothing when all is pushed', () => {
    const r = reportCluster(SPEC, new Map(), PENDING, Date.parse('2026-01-01T00:00:10.000Z'));
    expect(reportLines(r)).toContain(`  ! WriteBackPending: ${REASON}`);
    expect(r.writeBackPending).toMatchObject([{ subject: 'failover(shop): db001 -> db002', attempts: 4, since: RECORD.since, commit: RECORD.commit, reason: REASON }]);
    const none = reportCluster(SPEC, new Map(), EMPTY_STATE, 0);
    expect(none.writeBackPending).toEqual([]);
    expect(reportLines(none).join('\n')).not.toContain('WriteBackPending');
  });
});

describe('WriteBackPending on the page and in the metrics', () => {
  it('the page lists the condition with its reason, escaped', () => {
    const c = {
      name: 'shop',
      file: SPEC.file,
      analysis: 'PrimaryReachable',
      health: 'OK',
      primary: 'db002',
      livePrimaries: ['db002'],
      tree: [],
      ...QUIET,
      conditions: [{ type: 'WriteBackPending', status: true, reason: `${REASON} <b>`, since: RECORD.since }],
    } as unknown as ClusterJson;
    const html = renderCluster(c, 'active');
    expect(html).toContain(`<li><strong>WriteBackPending</strong>: ${REASON.replace('->', '-&gt;')} &lt;b&gt;</li>`);
    const cleared = { ...c, conditions: [{ type: 'WriteBackPending', status: false, reason: 'every write-back is on the upstream', since: RECORD.since }] } as unknown as ClusterJson;
    expect(renderCluster(cleared, 'active')).not.toContain('WriteBackPending');
  });

  it('topogit_write_back_pending{cluster} counts the records, and goes with the cluster', () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setWriteBackPending('shop', 1);
    expect(m.render()).toContain('topogit_write_back_pending{cluster="shop"} 1');
    m.setWriteBackPending('shop', 0);
    expect(m.render()).toContain('topogit_write_back_pending{cluster="shop"} 0');
    m.forgetCluster('shop');
    expect(m.render()).not.toContain('topogit_write_back_pending{cluster="shop"}');
  });
});

describe('a file that predates a failover', () => {
  // db001 failed; db002 is the live writable primary (the classification's livePrimaries).
  const observation = { spec: SPEC, probes: new Map<string, ProbeResult>(), view: { livePrimaries: ['db002'] } as unknown as ClusterView };
  const failover = { id: 'shop-1', at: '2026-01-01T00:00:02.000Z', from: 'db001', to: 'db002', trigger: 'auto' as const, commit: 'b'.repeat(40), lostGtids: '', lostGtidsKnown: true };
  const ports = (state: ClusterState, o: { inHistory?: boolean; upstream?: { commit: string; date: string; subject: string; body: string }[]; fetchError?: string } = {}): StaleFilePorts & { fetches: boolean[] } => {
    const fetches: boolean[] = [];
    return {
      fetches,
      state: { read: async () => state, update: async () => state },
      failoverInHistory: async () => o.inHistory ?? false,
      upstreamCommits: async (_f, fetch) => (fetches.push(fetch), { upstream: true, commits: o.upstream ?? [], ...(o.fetchError ? { fetchError: o.fetchError } : {}) }),
    };
  };

  it('is refused from the state: the last failover is not in its history', async () => {
    const r = await staleFiles([observation], ports({ ...EMPTY_STATE, lastFailover: failover }));
    expect(r.stale).toEqual([{ cluster: 'shop', file: SPEC.file, reason: 'the file predates failover shop-1 (db001 -> db002 at 2026-01-01T00:00:02.000Z); pull first' }]);
  });

  it('is refused from the upstream when there is no state (a CI runner), fetching once', async () => {
    const p = ports(EMPTY_STATE, { upstream: [{ commit: 'c'.repeat(40), date: '2026-01-01T00:00:03+00:00', subject: 'failover(shop): db001 -> db002', body: 'Failover-Id: shop-1\n' }] });
    const r = await staleFiles([observation, observation], p);
    expect(r.stale.map((x) => x.reason)).toEqual(['the file predates failover shop-1 (db001 -> db002 at 2026-01-01T00:00:03+00:00); pull first', 'the file predates failover shop-1 (db001 -> db002 at 2026-01-01T00:00:03+00:00); pull first']);
    expect(p.fetches).toEqual([true, false]);
  });

  it('is not refused when the failover is in its history and the upstream has nothing it lacks; a failed fetch is a warning', async () => {
    const r = await staleFiles([observation], ports({ ...EMPTY_STATE, lastFailover: failover }, { inHistory: true, fetchError: 'Could not resolve host' }));
    expect(r).toEqual({ stale: [], warnings: ['could not fetch the upstream to look for failover commits (Could not resolve host); checked against what was fetched before'] });
  });

  it('plan shows the refusal as a notice and plans nothing for that cluster', () => {
    const view: ClusterPlanView = { cluster: 'shop', file: SPEC.file, flavor: 'mariadb', version: null, steps: [{ id: '1', instance: 'db001', symbol: '~', summary: 'switchover db002 -> db001', reason: 'the file names db001', sql: [], actions: [] }], notices: [] };
    const doc = withRefusals({ summary: { changes: 1, clusters: 1 }, clusters: [view] }, [{ cluster: 'shop', reason: 'the file predates failover shop-1 (db001 -> db002 at T); pull first' }]);
    expect(doc.summary).toEqual({ changes: 0, clusters: 0 });
    expect(doc.clusters[0]).toMatchObject({ steps: [], notices: [{ kind: 'refused', message: 'the file predates failover shop-1 (db001 -> db002 at T); pull first' }] });
  });
});
