// The daemon's HTTP endpoint and metrics, over real HTTP on 127.0.0.1 (port 0): every route and
// status code, HEAD and 405, readiness flipping, the /api/clusters shape from a hand-built
// snapshot, the Prometheus text after the sink calls, and close() with connections still open.
import { Agent, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterView, InstanceView } from '../../src/core/classify.js';
import type { ClusterSnapshot, DaemonSnapshot } from '../../src/daemon/model.js';
import { Metrics } from '../../src/daemon/metrics.js';
import { startHttp, worstHealth } from '../../src/daemon/http.js';
import type { ClusterJson, ClustersJson, HttpServer } from '../../src/daemon/http.js';
import { within } from '../support/wait.js';
import { QUIET } from '../support/quiet-cluster.js';

// ---------------------------------------------------------------------------------------------
// A realistic cluster: db001 primary (OK), db002 replica lagging, db003 unreachable.

function instance(over: Partial<InstanceView> & Pick<InstanceView, 'name'>): InstanceView {
  return {
    host: '127.0.0.11',
    port: 3306,
    role: 'replica',
    source: 'db001',
    liveSource: 'db001',
    liveRole: 'replica',
    health: 'OK',
    problems: [],
    readOnly: true,
    lagSeconds: 0,
    gtid: '0-1-1042',
    error: null,
    promotion: 'neutral',
    serverId: 2,
    version: '11.4.5-MariaDB',
    ioThread: 'yes',
    sqlThread: 'yes',
    probeMs: 2,
    ...over,
  };
}

const SHOP_VIEW: ClusterView = {
  name: 'shop',
  file: 'clusters/shop.yaml',
  flavor: 'mariadb',
  version: '11.4.5-MariaDB',
  primary: 'db001',
  livePrimaries: ['db001'],
  instances: [
    instance({
      name: 'db001',
      host: '127.0.0.11',
      role: 'primary',
      source: null,
      liveSource: null,
      liveRole: 'primary',
      readOnly: false,
      lagSeconds: null,
      serverId: 1,
      promotion: 'prefer',
      ioThread: null,
      sqlThread: null,
    }),
    instance({
      name: 'db002',
      host: '127.0.0.12',
      health: 'Lagging',
      problems: [{ health: 'Lagging', detail: '42s behind its source' }],
      lagSeconds: 42,
      gtid: '0-1-1000',
    }),
    instance({
      name: 'db003',
      host: '127.0.0.13',
      liveSource: null,
      liveRole: 'unknown',
      health: 'Unreachable',
      problems: [{ health: 'Unreachable', detail: 'connect ECONNREFUSED 127.0.0.13:3306' }],
      readOnly: null,
      lagSeconds: null,
      gtid: null,
      error: 'connect ECONNREFUSED 127.0.0.13:3306',
      serverId: null,
      version: null,
      ioThread: null,
      sqlThread: null,
      probeMs: 0,
      maintenance: { since: '2025-01-01T00:00:00Z', until: '2025-01-01T00:30:00Z', reason: 'kernel upgrade' },
    }),
  ],
  unmanaged: [],
  healthy: false,
  inSync: true,
  notes: [],
};

const SHOP: ClusterSnapshot = {
  name: 'shop',
  file: 'clusters/shop.yaml',
  view: SHOP_VIEW,
  analysis: 'PrimaryReachable',
  conditions: [
    { type: 'Ready', status: true, reason: 'probed', since: '2025-01-01T00:00:01.000Z' },
    { type: 'Degraded', status: true, reason: 'db003 Unreachable', since: '2025-01-01T00:00:05.000Z' },
  ],
  lastPass: { id: 'p-7', startedAt: '2025-01-01T00:01:00.000Z', durationMs: 12, outcome: 'reported', detail: '1 unreachable' },
  lastFailover: { at: '2024-12-31T23:00:00.000Z', from: 'db004', to: 'db001', commit: 'abc1234', trigger: 'auto' },
  fileValid: true,
  fileIssues: [],
  driftCount: 0,
  shapes: [
    {
      code: 'UnreachableIntermediateSource',
      instance: 'db003',
      replicas: ['db004'],
      summary: 'db003 is unreachable from topogit, but db004 still replicates from it',
    },
  ],
  failover: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 42s behind)'] },
  drift: [],
  history: [],
  routers: [],
};

const BILLING: ClusterSnapshot = {
  name: 'billing eu',
  file: 'clusters/billing.yaml',
  view: null,
  analysis: null,
  ...QUIET,
  fileValid: false,
  fileIssues: ['instances[1].source: unknown instance db009'],
};

// ---------------------------------------------------------------------------------------------
// Real HTTP plumbing.

interface Res {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function call(port: number, path: string, method = 'GET', headers: Record<string, string> = {}, agent?: Agent): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(snapshot: () => DaemonSnapshot, metrics = new Metrics()): Promise<{ port: number; server: HttpServer; metrics: Metrics }> {
  const server = await startHttp({ host: '127.0.0.1', port: 0, snapshot, metrics });
  servers.push(server);
  return { port: server.address.port, server, metrics };
}

const snap = (over: Partial<DaemonSnapshot> = {}): DaemonSnapshot => ({
  startedAt: '2025-01-01T00:00:00.000Z',
  ready: true,
  role: 'active',
  clusters: [SHOP, BILLING],
  ...over,
});

function expectJsonHeaders(r: Res): void {
  expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(r.headers['cache-control']).toBe('no-store');
}

// ---------------------------------------------------------------------------------------------

describe('startHttp', () => {
  it('binds to the given host and reports the real port for port 0', async () => {
    const { server } = await serve(() => snap());
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
  });

  it('rejects when the port is taken', async () => {
    const { port } = await serve(() => snap());
    await expect(startHttp({ host: '127.0.0.1', port, snapshot: () => snap(), metrics: new Metrics() })).rejects.toThrow(/EADDRINUSE/);
  });

  it('/healthz answers 200 ok whatever the snapshot', async () => {
    const { port } = await serve(() => {
      throw new Error('snapshot unavailable');
    });
    const r = await call(port, '/healthz');
    expect(r.status).toBe(200);
    expectJsonHeaders(r);
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
  });

  it('/readyz is 503 with a reason until the snapshot is ready, then 200', async () => {
    let ready = false;
    let clusters: readonly ClusterSnapshot[] = [];
    const { port } = await serve(() => snap({ ready, clusters }));

    let r = await call(port, '/readyz');
    expect(r.status).toBe(503);
    expectJsonHeaders(r);
    expect(JSON.parse(r.body)).toEqual({ ready: false, reason: 'no cluster loaded yet' });

    clusters = [SHOP, BILLING];
    r = await call(port, '/readyz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ ready: false, reason: 'waiting for the first probe of billing eu' });

    ready = true;
    r = await call(port, '/readyz');
    expect(r.status).toBe(200);
    expectJsonHeaders(r);
    expect(JSON.parse(r.body)).toMatchObject({ ready: true, role: 'active', clusters: 2 });
  });

  it('/api/clusters returns every cluster with its derived health and live tree', async () => {
    const { port } = await serve(() => snap({ role: 'standby' }));
    const r = await call(port, '/api/clusters');
    expect(r.status).toBe(200);
    expectJsonHeaders(r);
    const body = JSON.parse(r.body) as ClustersJson;
    expect(body.role).toBe('standby');
    expect(body.startedAt).toBe('2025-01-01T00:00:00.000Z');
    expect(body.clusters.map((c) => c.name)).toEqual(['shop', 'billing eu']);

    const shop = body.clusters[0] as ClusterJson;
    expect(Object.keys(shop).sort()).toEqual(
      ['name', 'file', 'analysis', 'health', 'primary', 'livePrimaries', 'tree', 'conditions', 'lastPass', 'lastFailover', 'fileValid', 'fileIssues', 'driftCount', 'shapes', 'failover', 'drift', 'history', 'routers'].sort(),
    );
    expect(shop).toMatchObject({
      name: 'shop',
      file: 'clusters/shop.yaml',
      analysis: 'PrimaryReachable',
      health: 'Unreachable',
      primary: 'db001',
      livePrimaries: ['db001'],
      conditions: SHOP.conditions,
      lastPass: SHOP.lastPass,
      lastFailover: SHOP.lastFailover,
      fileValid: true,
      fileIssues: [],
      driftCount: 0,
      shapes: SHOP.shapes,
      failover: { ready: true, candidate: 'db002', reasons: ['would promote db002 (promotion: prefer, 42s behind)'] },
    });
    expect(shop.tree).toHaveLength(3);
    expect(shop.tree[0]).toEqual({
      name: 'db001',
      host: '127.0.0.11',
      port: 3306,
      role: 'primary',
      liveRole: 'primary',
      source: null,
      liveSource: null,
      health: 'OK',
      problems: [],
      readOnly: false,
      lagSeconds: null,
      gtid: '0-1-1042',
      error: null,
      maintenance: null,
      promotion: 'prefer',
    });
    expect(shop.tree[1]).toMatchObject({ name: 'db002', role: 'replica', source: 'db001', liveSource: 'db001', health: 'Lagging', lagSeconds: 42, readOnly: true });
    expect(shop.tree[2]).toMatchObject({ name: 'db003', liveRole: 'unknown', health: 'Unreachable', readOnly: null, error: 'connect ECONNREFUSED 127.0.0.13:3306' });
    expect(shop.tree[2]?.maintenance).toEqual({ since: '2025-01-01T00:00:00Z', until: '2025-01-01T00:30:00Z', reason: 'kernel upgrade' });

    expect(body.clusters[1]).toMatchObject({ name: 'billing eu', health: null, primary: null, livePrimaries: [], tree: [], analysis: null, fileValid: false, fileIssues: BILLING.fileIssues, shapes: [], failover: null });
  });

  it('/api/clusters/<name> returns one cluster (URL-decoded) or 404', async () => {
    const { port } = await serve(() => snap());
    let r = await call(port, '/api/clusters/shop');
    expect(r.status).toBe(200);
    expectJsonHeaders(r);
    expect((JSON.parse(r.body) as ClusterJson).name).toBe('shop');

    r = await call(port, '/api/clusters/billing%20eu?x=1');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as ClusterJson).fileIssues).toEqual(BILLING.fileIssues);

    r = await call(port, '/api/clusters/nope');
    expect(r.status).toBe(404);
    expectJsonHeaders(r);
    expect(JSON.parse(r.body)).toEqual({ error: 'cluster not found' });

    r = await call(port, '/api/clusters/%E0%A4%A');
    expect(r.status).toBe(404);
  });

  it('health is OK only when every instance is OK, else the worst', () => {
    expect(worstHealth([])).toBe('OK');
    expect(worstHealth(['OK', 'OK'])).toBe('OK');
    expect(worstHealth(['OK', 'Lagging', 'Drift'])).toBe('Drift');
    expect(worstHealth(['Lagging', 'Unreachable', 'SQL error'])).toBe('Unreachable');
  });

  it('unknown paths are 404 JSON and never echo the request', async () => {
    const { port } = await serve(() => snap());
    const r = await call(port, '/secret-path?token=hunter2', 'GET', { authorization: 'Bearer hunter2', cookie: 's=hunter2' });
    expect(r.status).toBe(404);
    expectJsonHeaders(r);
    expect(JSON.parse(r.body)).toEqual({ error: 'not found' });
    expect(r.body + JSON.stringify(r.headers)).not.toMatch(/hunter2|secret-path/);
    expect((await call(port, '/')).status).toBe(404);
  });

  it('other methods are 405 with Allow: GET, HEAD', async () => {
    const { port } = await serve(() => snap());
    for (const [method, path] of [
      ['POST', '/healthz'],
      ['PUT', '/api/clusters'],
      ['DELETE', '/api/clusters/shop'],
      ['PATCH', '/metrics'],
    ] as const) {
      const r = await call(port, path, method);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
      expectJsonHeaders(r);
      expect(JSON.parse(r.body)).toEqual({ error: 'method not allowed' });
    }
  });

  it('HEAD answers like GET without a body', async () => {
    let ready = true;
    const { port } = await serve(() => snap({ ready }));
    for (const path of ['/healthz', '/readyz', '/api/clusters', '/api/clusters/shop', '/metrics']) {
      const get = await call(port, path);
      const head = await call(port, path, 'HEAD');
      expect(head.status, path).toBe(get.status);
      expect(head.body, path).toBe('');
      expect(head.headers['content-type'], path).toBe(get.headers['content-type']);
      expect(Number(head.headers['content-length']), path).toBeGreaterThan(0);
    }
    ready = false;
    expect((await call(port, '/readyz', 'HEAD')).status).toBe(503);
    expect((await call(port, '/nope', 'HEAD')).status).toBe(404);
  });

  it('a handler exception is a 500 without the message or a stack', async () => {
    const { port } = await serve(() => {
      throw new Error('boom at /very/secret/place.ts:12');
    });
    for (const path of ['/readyz', '/api/clusters', '/api/clusters/shop']) {
      const r = await call(port, path);
      expect(r.status, path).toBe(500);
      expectJsonHeaders(r);
      expect(JSON.parse(r.body)).toEqual({ error: 'internal error' });
    }
    // The server survives it.
    expect((await call(port, '/healthz')).status).toBe(200);
  });

  it('close() resolves promptly with a keep-alive client and a half-sent request connected', async () => {
    const { port, server } = await serve(() => snap());
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      const r = await call(port, '/healthz', 'GET', {}, agent);
      expect(r.status).toBe(200);
      expect(r.headers.connection).toBe('keep-alive');

      // A connection in the middle of a request: not idle, so server.close() alone would wait for it.
      const raw = connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
      const rawClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
      raw.on('error', () => undefined);
      raw.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      // The server has taken that connection in: it has answered a request on a connection opened
      // after it (accepted in order).
      expect((await call(port, '/healthz')).status).toBe(200);

      // Without dropping the half-sent request, close() would wait for it until Node's headers
      // timeout (a minute): the deadline turns that hang into a failure, it measures nothing.
      await within('close() with a keep-alive client and a half-sent request connected', server.close(), 5000);
      await within('the half-sent request to be dropped', rawClosed, 5000);
      await expect(call(port, '/healthz')).rejects.toThrow(/ECONNREFUSED/);
      // close() is idempotent.
      await server.close();
    } finally {
      agent.destroy();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('Metrics', () => {
  it('/metrics serves the Prometheus text of every metric after the sink calls', async () => {
    const metrics = new Metrics();
    metrics.observeProbe('shop', 'db001', 0.003, true);
    metrics.setInstance('shop', 'db001', { up: true, lagSeconds: null, readOnly: false, maintenance: false });
    metrics.observeProbe('shop', 'db002', 0.004, true);
    metrics.setInstance('shop', 'db002', { up: true, lagSeconds: 42, readOnly: true });
    metrics.observeProbe('shop', 'db003', 3, false);
    metrics.setInstance('shop', 'db003', { up: false, lagSeconds: null, readOnly: null, maintenance: true });
    metrics.failover('shop', 1735686000);
    metrics.reconcileError('shop');
    metrics.setDrift('shop', 2);
    metrics.setFileValid('shop', true);
    metrics.setFileValid('billing', false);

    const { port } = await serve(() => snap(), metrics);
    const r = await call(port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(metrics.contentType);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.headers['cache-control']).toBe('no-store');
    const t = r.body;

    expect(t).toContain('# TYPE topogit_probe_duration_seconds histogram');
    expect(t).toMatch(/topogit_probe_duration_seconds_bucket\{[^}]*le="0\.001"[^}]*\} 0/);
    expect(t).toContain('topogit_probe_duration_seconds_bucket{cluster="shop",instance="db001",le="0.005"} 1');
    expect(t).toContain('topogit_probe_duration_seconds_count{cluster="shop",instance="db003"} 1');
    expect(t).toContain('topogit_probe_duration_seconds_sum{cluster="shop",instance="db003"} 3');
    expect(t).toContain('topogit_instance_up{cluster="shop",instance="db001"} 1');
    expect(t).toContain('topogit_instance_up{cluster="shop",instance="db003"} 0');
    expect(t).toContain('topogit_replication_lag_seconds{cluster="shop",instance="db002"} 42');
    expect(t).not.toContain('topogit_replication_lag_seconds{cluster="shop",instance="db001"}');
    expect(t).not.toContain('topogit_replication_lag_seconds{cluster="shop",instance="db003"}');
    expect(t).toContain('topogit_read_only{cluster="shop",instance="db001"} 0');
    expect(t).toContain('topogit_read_only{cluster="shop",instance="db002"} 1');
    expect(t).not.toContain('topogit_read_only{cluster="shop",instance="db003"}');
    expect(t).toContain('topogit_maintenance{cluster="shop",instance="db001"} 0');
    expect(t).toContain('topogit_maintenance{cluster="shop",instance="db003"} 1');
    expect(t).not.toContain('topogit_maintenance{cluster="shop",instance="db002"}');
    expect(t).toContain('topogit_failovers_total{cluster="shop"} 1');
    expect(t).toContain('topogit_last_failover_timestamp_seconds{cluster="shop"} 1735686000');
    expect(t).toContain('topogit_reconcile_errors_total{cluster="shop"} 1');
    expect(t).toContain('topogit_drift_count{cluster="shop"} 2');
    expect(t).toContain('topogit_file_valid{cluster="shop"} 1');
    expect(t).toContain('topogit_file_valid{cluster="billing"} 0');
    // Counters of a known cluster start at 0.
    expect(t).toContain('topogit_failovers_total{cluster="billing"} 0');
    expect(t).toContain('topogit_reconcile_errors_total{cluster="billing"} 0');
    // Default process metrics, prefixed.
    expect(t).toContain('topogit_process_cpu_user_seconds_total');
    expect(t).toContain('topogit_nodejs_heap_size_total_bytes');
  });

  it('counters increment and lag or read_only disappear when they become unknown', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.failover('shop', 100);
    m.failover('shop', 200);
    m.reconcileError('shop');
    m.reconcileError('shop');
    m.reconcileError('shop');
    m.setInstance('shop', 'db002', { up: true, lagSeconds: 7, readOnly: true });
    let t = await m.render();
    expect(t).toContain('topogit_failovers_total{cluster="shop"} 2');
    expect(t).toContain('topogit_last_failover_timestamp_seconds{cluster="shop"} 200');
    expect(t).toContain('topogit_reconcile_errors_total{cluster="shop"} 3');
    expect(t).toContain('topogit_replication_lag_seconds{cluster="shop",instance="db002"} 7');

    m.setInstance('shop', 'db002', { up: false, lagSeconds: null, readOnly: null });
    t = await m.render();
    expect(t).not.toContain('topogit_replication_lag_seconds{');
    expect(t).not.toContain('topogit_read_only{');
    expect(t).toContain('topogit_instance_up{cluster="shop",instance="db002"} 0');
    expect(t).not.toContain('topogit_process_cpu_user_seconds_total');
  });

  it('failover readiness is 1/0 per cluster; a failure shape is 1 while present and 0 once gone', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setFailoverReady('shop', true);
    m.setFailoverReady('blog', false);
    m.setShapes('shop', ['DeadIntermediateSource', 'SemiSyncPrimaryWithoutAcks']);
    m.setShapes('blog', []);
    let t = await m.render();
    expect(t).toContain('topogit_failover_ready{cluster="shop"} 1');
    expect(t).toContain('topogit_failover_ready{cluster="blog"} 0');
    expect(t).toContain('topogit_failure_shape{cluster="shop",shape="DeadIntermediateSource"} 1');
    expect(t).toContain('topogit_failure_shape{cluster="shop",shape="SemiSyncPrimaryWithoutAcks"} 1');
    expect(t).not.toContain('topogit_failure_shape{cluster="blog"');

    m.setShapes('shop', ['SemiSyncPrimaryWithoutAcks']);
    m.setFailoverReady('shop', false);
    t = await m.render();
    expect(t).toContain('topogit_failure_shape{cluster="shop",shape="DeadIntermediateSource"} 0');
    expect(t).toContain('topogit_failure_shape{cluster="shop",shape="SemiSyncPrimaryWithoutAcks"} 1');
    expect(t).toContain('topogit_failover_ready{cluster="shop"} 0');

    m.forgetCluster('shop');
    t = await m.render();
    expect(t).not.toContain('cluster="shop"');
    expect(t).toContain('topogit_failover_ready{cluster="blog"} 0');
  });

  it('forgetCluster removes every series of that cluster and only that cluster', async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (const c of ['shop', 'blog']) {
      m.observeProbe(c, 'db001', 0.002, true);
      m.setInstance(c, 'db001', { up: true, lagSeconds: null, readOnly: false, maintenance: true });
      m.setInstance(c, 'db002', { up: true, lagSeconds: 1, readOnly: true });
      m.failover(c, 100);
      m.reconcileError(c);
      m.setDrift(c, 1);
      m.setFileValid(c, true);
      m.setFailoverReady(c, true);
      m.setShapes(c, ['AllReplicasNotReplicating']);
    }
    m.forgetCluster('shop');
    const t = await m.render();
    expect(t).not.toContain('cluster="shop"');
    for (const name of [
      'topogit_probe_duration_seconds_count',
      'topogit_instance_up',
      'topogit_replication_lag_seconds',
      'topogit_read_only',
      'topogit_maintenance',
      'topogit_failovers_total',
      'topogit_last_failover_timestamp_seconds',
      'topogit_reconcile_errors_total',
      'topogit_drift_count',
      'topogit_file_valid',
      'topogit_failover_ready',
      'topogit_failure_shape',
    ]) {
      expect(t, name).toContain(`${name}{cluster="blog"`);
    }
    // A forgotten cluster that comes back starts from scratch.
    m.failover('shop', 300);
    expect(await m.render()).toContain('topogit_failovers_total{cluster="shop"} 1');
  });

  it('two Metrics instances share no series', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.setDrift('shop', 5);
    a.failover('shop', 1);
    b.setDrift('blog', 1);
    const ta = await a.render();
    const tb = await b.render();
    expect(ta).toContain('topogit_drift_count{cluster="shop"} 5');
    expect(ta).not.toContain('cluster="blog"');
    expect(tb).toContain('topogit_drift_count{cluster="blog"} 1');
    expect(tb).not.toContain('cluster="shop"');
    expect(tb).toContain('topogit_process_cpu_user_seconds_total');
  });
});
