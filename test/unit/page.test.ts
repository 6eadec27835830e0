// The status page: rendering (escaping, the live tree, history from topogit's own commit messages),
// and the HTTP side over real sockets on 127.0.0.1 (the token, the sign-in cookie, the security
// headers, the event stream sending only what changed).
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterHistory, historyFromCommit, type CommitText, type HistoryEntry } from '../../src/core/history.js';
import { failoverCommitMessage } from '../../src/core/failover-record.js';
import type { ClusterJson, ClustersJson, HttpServer, InstanceJson } from '../../src/daemon/http.js';
import { startHttp } from '../../src/daemon/http.js';
import { Metrics } from '../../src/daemon/metrics.js';
import type { ClusterSnapshot, DaemonSnapshot } from '../../src/daemon/model.js';
import { clusterId, esc, renderCluster, renderPage } from '../../src/daemon/page/render.js';
import { QUIET } from '../support/quiet-cluster.js';
import { eventHub } from '../../src/daemon/page/events.js';
import { clustersJson } from '../../src/daemon/http.js';
import type { ServerResponse } from 'node:http';
import { clusterSpec, instance } from '../support/spec.js';
import { waitFor } from '../support/wait.js';

const HOSTILE = `<img src=x onerror="alert(1)">'&"`;

function inst(over: Partial<InstanceJson> & Pick<InstanceJson, 'name'>): InstanceJson {
  return {
    host: '127.0.0.1',
    port: 3306,
    role: 'replica',
    liveRole: 'replica',
    source: 'db001',
    liveSource: 'db001',
    health: 'OK',
    problems: [],
    readOnly: true,
    lagSeconds: 0,
    gtid: '0-1-10',
    error: null,
    maintenance: null,
    promotion: 'neutral',
    ...over,
  };
}


function cluster(over: Partial<ClusterJson> = {}): ClusterJson {
  return {
    name: 'shop',
    file: 'topologies/shop.yaml',
    analysis: 'PrimaryReachable',
    health: 'OK',
    primary: 'db001',
    livePrimaries: ['db001'],
    tree: [
      inst({ name: 'db001', role: 'primary', liveRole: 'primary', source: null, liveSource: null, readOnly: false, lagSeconds: null, promotion: 'prefer' }),
      inst({ name: 'db002' }),
      inst({ name: 'db003', liveRole: 'unknown', liveSource: null, health: 'Unreachable', readOnly: null, gtid: null, error: 'connect ECONNREFUSED 127.0.0.1:3306' }),
    ],
    ...QUIET,
    ...over,
  };
}

describe('rendering', () => {
  it('escapes every value from a server or a file: nothing becomes markup', () => {
    expect(esc(HOSTILE)).toBe('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;&amp;&quot;');
    const c = cluster({
      name: `shop${HOSTILE}`,
      file: `x${HOSTILE}.yaml`,
      tree: [inst({ name: 'db001', role: 'primary', liveRole: 'primary', source: null, liveSource: null, error: HOSTILE, problems: [{ health: 'SQL error', detail: HOSTILE }], gtid: HOSTILE })],
      drift: [HOSTILE],
      fileValid: false,
      fileIssues: [HOSTILE],
      conditions: [{ type: 'FailoverBlocked', status: true, reason: HOSTILE, since: '2026-01-01T00:00:00Z' }],
      history: [{ kind: 'failover', cluster: 'shop', at: '2026-01-01T00:00:00Z', summary: HOSTILE, analysis: HOSTILE, writableMs: 1, repointedMs: 2, commit: 'abc"def' }],
    });
    const html = renderCluster(c, 'active', { commitUrl: `https://git.example/c/{sha}?a=1&b="x"` });
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/onerror="/);
    // Eight places carry the hostile text, each escaped.
    expect(html.split('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;').length - 1).toBeGreaterThanOrEqual(8);
    expect(html).toContain('href="https://git.example/c/abc%22def?a=1&amp;b=&quot;x&quot;"');
  });

  it('draws the live tree: replicas under their source, an unreachable one under its file source', () => {
    const html = renderCluster(
      cluster({
        tree: [
          inst({ name: 'db001', role: 'primary', liveRole: 'primary', source: null, liveSource: null }),
          inst({ name: 'db002' }),
          inst({ name: 'db004', source: 'db002', liveSource: 'db002' }),
          inst({ name: 'db003', liveRole: 'unknown', liveSource: null, health: 'Unreachable' }),
        ],
      }),
      'active',
    );
    const at = (n: string) => html.indexOf(`data-instance="${n}"`);
    // db001 is the only root; db004 nests inside db002's list item.
    expect(html.match(/<div class="tree"><ul><li>/g)).toHaveLength(1);
    expect(at('db001')).toBeLessThan(at('db002'));
    expect(html.slice(at('db002'), at('db003'))).toContain('data-instance="db004"');
    expect(html).toMatch(/data-instance="db003" data-health="Unreachable"/);
    expect(html).toContain('<span class="health bad">Unreachable</span>');
  });

  it('shows the routers: in step, or not with why (escaped)', () => {
    const html = renderCluster(cluster({ routers: [{ router: 'haproxy 127.0.0.1:9999', inStep: true, detail: '' }, { router: 'haproxy /run/h.sock', inStep: false, detail: `backend ${HOSTILE} does not exist` }] }), 'active');
    expect(html).toContain('<li data-router="haproxy 127.0.0.1:9999">haproxy 127.0.0.1:9999: <span class="health ok">in step</span></li>');
    expect(html).toContain('<span class="health bad">not in step</span> backend &lt;img');
    expect(renderCluster(cluster(), 'active')).not.toContain('Routers');
  });

  it('says who leads: the lease in file mode, the cluster\'s leader with etcd (escaped)', () => {
    expect(renderCluster(cluster(), 'active')).toContain('led by this daemon (it holds the lease)');
    expect(renderCluster(cluster(), 'standby')).toContain('led by another daemon (this one stands by)');
    expect(renderCluster(cluster({ leader: { name: 'ops-a', mine: true } }), 'active')).toContain('led by this daemon (ops-a, etcd)');
    const other = renderCluster(cluster({ leader: { name: HOSTILE, mine: false } }), 'standby');
    expect(other).toContain(`led by ${esc(HOSTILE)} (etcd; this daemon stands by)`);
    expect(other).not.toContain(HOSTILE);
    expect(renderCluster(cluster({ leader: { name: null, mine: false } }), 'standby')).toContain('led by no daemon yet (etcd)');
  });

  it('says "Recovery needed" with the analysis when the primary is not reachable', () => {
    const html = renderCluster(cluster({ analysis: 'DeadPrimary', health: 'Unreachable' }), 'active');
    expect(html).toContain('Recovery needed: DeadPrimary');
    expect(renderCluster(cluster(), 'active')).not.toContain('Recovery needed');
  });

  it('the whole page stays small: 30 instances with history under 50 KB', () => {
    const tree = Array.from({ length: 30 }, (_, i) => inst({ name: `db${String(i + 1).padStart(3, '0')}`, ...(i === 0 ? { role: 'primary' as const, liveRole: 'primary' as const, source: null, liveSource: null } : {}) }));
    const history: HistoryEntry[] = Array.from({ length: 10 }, (_, i) => ({ kind: 'failover', cluster: 'shop', at: `2026-01-0${i % 9 + 1}T00:00:00Z`, summary: 'db001 -> db002', analysis: 'DeadPrimary - db001 is dead', writableMs: 48, repointedMs: 90, commit: 'a'.repeat(40) }));
    const s: ClustersJson = { role: 'active', startedAt: '2026-01-01T00:00:00Z', clusters: [cluster({ tree, history })] };
    expect(Buffer.byteLength(renderPage(s))).toBeLessThan(50_000);
  });
});

describe('history from topogit commits', () => {
  it('reads a failover commit written by failoverCommitMessage: analysis, timings, commit', () => {
    const spec = clusterSpec('shop', [instance('db001', '127.0.0.1'), instance('db002', '127.0.0.2', { source: 'db001' })]);
    const message = failoverCommitMessage(
      spec,
      { id: 'f-1', failedPrimary: 'db001', trigger: 'auto', startedAt: '2026-01-01T00:00:00Z', steps: [{ step: 'started', at: '2026-01-01T00:00:00Z', detail: 'DeadPrimary: db001 is dead (connection refused); confirmed by every replica: db002' }] } as never,
      { id: 'f-1', at: '2026-01-01T00:00:01Z', from: 'db001', to: 'db002', trigger: 'auto', commit: null, lostGtids: '', lostGtidsKnown: true },
      { detectedToWritableMs: 48, detectedToRepointedMs: 91 },
    );
    const [subject = '', ...rest] = message.split('\n');
    const e = historyFromCommit({ commit: 'c0ffee', date: '2026-01-01T00:00:02Z', subject, body: rest.join('\n') });
    expect(e).toEqual({ kind: 'failover', cluster: 'shop', at: '2026-01-01T00:00:02Z', summary: 'db001 -> db002', analysis: 'DeadPrimary - db001 is dead (connection refused); confirmed by every replica: db002', writableMs: 48, repointedMs: 91, commit: 'c0ffee' });
  });

  it('reads relocations, ignores other commits and other clusters, merges switchovers newest first', () => {
    const commits: CommitText[] = [
      { commit: 'r1', date: '2026-01-03T00:00:00Z', subject: 'relocate(shop): db003 db002 -> db001', body: 'Analysis: DeadIntermediateSource - db002 is unreachable\n' },
      { commit: 'h1', date: '2026-01-02T00:00:00Z', subject: 'shop: db002 is the primary now', body: '' },
      { commit: 'f2', date: '2026-01-01T00:00:00Z', subject: 'failover(billing): db101 -> db102', body: '' },
    ];
    const own: HistoryEntry[] = [{ kind: 'switchover', cluster: 'shop', at: '2026-01-02T12:00:00Z', summary: 'db001 -> db002', analysis: null, writableMs: null, repointedMs: null, commit: 'h1' }];
    const h = clusterHistory('shop', commits, own);
    expect(h.map((e) => `${e.kind} ${e.commit}`)).toEqual(['relocation r1', 'switchover h1']);
    expect(h[0]?.analysis).toBe('DeadIntermediateSource - db002 is unreachable');
  });
});

// ---------------------------------------------------------------------------------------------
// Over HTTP.

interface Res {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function call(port: number, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** An open event stream: every event received so far, as `event` and parsed data. */
function stream(port: number, headers: Record<string, string>): Promise<{ events: { event: string; data: { id?: string; name?: string; html: string } }[]; status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: { html: string } }[] = [];
    const req = request({ host: '127.0.0.1', port, path: '/api/events', headers, agent: false }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as { html: string } });
        }
      });
      resolve({ events, status: res.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

const TOKEN = 'a-token-of-some-length-1234567890';
const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function snapshotOf(clusters: ClusterSnapshot[]): DaemonSnapshot {
  return { startedAt: '2026-01-01T00:00:00Z', ready: true, role: 'active', clusters };
}

function shop(health: 'OK' | 'Unreachable'): ClusterSnapshot {
  const base = (n: string, over: object) => ({ name: n, host: '127.0.0.1', port: 3306, role: 'replica', source: 'db001', liveSource: 'db001', liveRole: 'replica', health: 'OK', problems: [], readOnly: true, lagSeconds: 0, gtid: '0-1-5', error: null, promotion: 'neutral', serverId: 1, version: '10.11', ioThread: 'yes', sqlThread: 'yes', probeMs: 1, ...over });
  return {
    name: 'shop',
    file: 'topologies/shop.yaml',
    view: {
      name: 'shop',
      file: 'topologies/shop.yaml',
      flavor: 'mariadb',
      version: '10.11',
      primary: 'db001',
      livePrimaries: health === 'OK' ? ['db001'] : [],
      instances: [base('db001', { role: 'primary', source: null, liveSource: null, liveRole: health === 'OK' ? 'primary' : 'unknown', health, readOnly: health === 'OK' ? false : null }), base('db002', {})],
      unmanaged: [],
      healthy: health === 'OK',
      inSync: true,
      notes: [],
    } as never,
    analysis: health === 'OK' ? 'PrimaryReachable' : 'DeadPrimary',
    ...QUIET,
  };
}

async function serve(current: () => DaemonSnapshot, token?: string): Promise<{ port: number; server: HttpServer }> {
  const server = await startHttp({ host: '127.0.0.1', port: 0, snapshot: current, metrics: new Metrics(), page: {}, ...(token ? { token } : {}) });
  servers.push(server);
  return { port: server.address.port, server };
}

describe('the page over HTTP', () => {
  it('serves the page, its script and its style with a Content-Security-Policy that allows nothing inline', async () => {
    const { port } = await serve(() => snapshotOf([shop('OK')]));
    const page = await call(port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.body).toContain(`id="${clusterId('shop')}"`);
    expect(page.body).not.toMatch(/<script>|<style>| on\w+=/);
    const js = await call(port, '/assets/page.js');
    const css = await call(port, '/assets/page.css');
    expect([js.status, css.status]).toEqual([200, 200]);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(Buffer.byteLength(page.body) + Buffer.byteLength(js.body) + Buffer.byteLength(css.body)).toBeLessThan(50_000);
  });

  it('with a token: the page asks for it, the API, metrics and events refuse without it, health stays open', async () => {
    const { port } = await serve(() => snapshotOf([shop('OK')]), TOKEN);
    const page = await call(port, '/');
    expect(page.status).toBe(401);
    expect(page.body).toContain('<form method="post" action="/login">');
    expect(page.body).not.toContain('data-cluster');
    for (const p of ['/api/clusters', '/api/clusters/shop', '/metrics', '/api/events']) {
      const r = await call(port, p);
      expect(r.status, p).toBe(401);
      expect(r.body, p).not.toContain('shop');
    }
    expect((await call(port, '/healthz')).status).toBe(200);
    expect((await call(port, '/api/clusters', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await call(port, '/api/clusters', { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
  });

  it('signs a browser in with a posted token: a cookie that is not the token, then the page and its stream', async () => {
    const { port } = await serve(() => snapshotOf([shop('OK')]), TOKEN);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const huge = await call(port, '/login', { method: 'POST', headers: form, body: `token=${'x'.repeat(10_000)}` });
    expect(huge.status).toBe(413);
    const wrong = await call(port, '/login', { method: 'POST', headers: form, body: 'token=nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const ok = await call(port, '/login', { method: 'POST', headers: form, body: `token=${encodeURIComponent(TOKEN)}` });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/');
    const cookie = (ok.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';
    expect(cookie).toMatch(new RegExp(`^topogit_session_${port}=\\d+\\.`));
    expect(ok.headers['set-cookie']?.[0]).toMatch(/; Max-Age=43200; HttpOnly; SameSite=Strict; Path=\//);
    expect(JSON.stringify(ok.headers)).not.toContain(TOKEN);
    expect(ok.headers['set-cookie']?.[0]).toContain('HttpOnly');
    const page = await call(port, '/', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-cluster="shop"');
    const s = await stream(port, { cookie });
    expect(s.status).toBe(200);
    s.close();
    expect((await call(port, '/', { headers: { cookie: `topogit_session_${port}=forged` } })).status).toBe(401);
    // An expired session, correctly signed for its time, is refused: sign one with a clock in the past.
    const { tokenCheck } = await import('../../src/daemon/page/auth.js');
    const old = tokenCheck(TOKEN, () => `topogit_session_${port}`, () => Date.now() - 13 * 3600 * 1000).sessionCookie().split(';')[0] ?? '';
    expect((await call(port, '/', { headers: { cookie: old } })).status).toBe(401);
    for (const p of ['/api/events', '/api/events/', '//api/clusters', '/api/clusters/']) expect((await call(port, p, { headers: { cookie: `topogit_session_${port}=forged` } })).status, p).toBe(401);
  });

  it('the event stream sends the state at once, then only the clusters that changed', async () => {
    const billing = (h: 'OK' | 'Unreachable') => ({ ...shop(h), name: 'billing' });
    let current = snapshotOf([shop('OK'), billing('OK')]);
    const { port, server } = await serve(() => current);
    const s = await stream(port, {});
    await waitFor('the first event', () => s.events.length, (n) => n >= 1, 2000);
    expect(s.events[0]?.event).toBe('main');
    expect(s.events[0]?.data.html).toContain('data-instance="db001" data-health="OK"');
    server.publish(); // nothing changed: nothing is sent
    server.publish('shop');
    current = snapshotOf([shop('Unreachable'), billing('Unreachable')]);
    server.publish('shop'); // only shop was observed: billing waits for its own observation
    await waitFor('a cluster event for the change', () => s.events.filter((e) => e.event === 'cluster').length, (n) => n >= 1, 2000);
    server.publish();
    await waitFor('billing', () => s.events.filter((e) => e.event === 'cluster').length, (n) => n >= 2, 2000);
    // The stream is ordered: anything the unchanged publishes sent arrived before the changes.
    expect(s.events.map((e) => `${e.event} ${e.data.name ?? ''}`)).toEqual(['main ', 'cluster shop', 'cluster billing']);
    expect(s.events[1]?.data.id).toBe(clusterId('shop'));
    expect(s.events[1]?.data.html).toContain('Recovery needed: DeadPrimary');
    // A page that connects late gets the state now; the open one is not sent anything twice.
    const late = await stream(port, {});
    await waitFor('the late page', () => late.events.length, (n) => n >= 1, 2000);
    expect(late.events[0]?.data.html).toContain('data-cluster="billing"');
    expect(late.events[0]?.data.html).toContain('data-health="Unreachable"');
    server.publish();
    current = snapshotOf([shop('OK'), billing('Unreachable')]);
    server.publish();
    await waitFor('both pages to get shop back', () => [s, late].map((x) => x.events.filter((e) => e.data.html.includes('data-instance="db001" data-health="OK"')).length), (n) => n.every((k) => k >= 1), 2000);
    expect(s.events.map((e) => `${e.event} ${e.data.name ?? ''}`)).toEqual(['main ', 'cluster shop', 'cluster billing', 'cluster shop']);
    s.close();
    late.close();
  });

  it('drops a page that stopped reading instead of buffering for it without end', () => {
    let current = snapshotOf([shop('OK')]);
    const hub = eventHub(() => clustersJson(current), {}, {});
    const fake = (queued: number) => {
      const r = { written: 0, destroyed: false, writableLength: queued, writeHead: () => r, write: () => ((r.written += 1), true), on: () => r, end: () => undefined, destroy: () => void (r.destroyed = true) };
      return r;
    };
    const reading = fake(0);
    const stuck = fake(0);
    expect(hub.attach(reading as unknown as ServerResponse)).toBe(true);
    expect(hub.attach(stuck as unknown as ServerResponse)).toBe(true);
    hub.publish();
    stuck.writableLength = 2 << 20; // 2 MiB queued: it no longer reads
    current = snapshotOf([shop('Unreachable')]);
    hub.publish();
    expect(stuck.destroyed).toBe(true);
    expect(reading.destroyed).toBe(false);
    expect(hub.clients).toBe(1);
    expect(reading.written).toBeGreaterThan(stuck.written);
    hub.close();
  });
});
