// The daemon's HTTP endpoint: liveness, readiness, Prometheus metrics and a read-only JSON view of
// every cluster. node:http only. Nothing here acts on a server; nothing here ever echoes a request
// back (headers, body or path), so a probe's or a proxy's credentials never end up in a response.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HEALTH_ORDER } from '../core/classify.js';
import type { Health } from '../core/classify.js';
import type { AnalysisCode } from '../core/analysis.js';
import { readinessJson, type ReadinessJson } from '../core/report.js';
import type { Shape } from '../core/shapes.js';
import type { Maintenance } from '../core/state.js';
import type { HistoryEntry } from '../core/history.js';
import type { RouterStatus } from '../core/report.js';
import type { Metrics } from './metrics.js';
import { PAGE_CSS, PAGE_JS } from './page/assets.js';
import { sessionCookieName, tokenCheck, type TokenCheck } from './page/auth.js';
import { eventHub, type EventHub } from './page/events.js';
import { renderLogin, renderPage, type PageOptions } from './page/render.js';
import type { ClusterSnapshot, Condition, DaemonSnapshot, FailoverSummary, PassSummary } from './model.js';

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  readonly snapshot: () => DaemonSnapshot;
  readonly metrics: Metrics;
  /** The status page at / and its event stream; without it only the JSON and metrics are served. */
  readonly page?: PageOptions;
  /** When set, everything but /healthz, /readyz and the page's assets needs it (see page/auth.ts). */
  readonly token?: string;
}

export interface HttpServer {
  /** Where it listens: the real port when 0 was asked for. */
  readonly address: { host: string; port: number };
  /** After an observation of `cluster` (every cluster when absent): open pages get what changed. */
  publish(cluster?: string): void;
  /** Open event streams (pages). */
  readonly clients: number;
  /** Stop listening and drop every connection, keep-alive ones included. */
  close(): Promise<void>;
}

export interface InstanceJson {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly role: 'primary' | 'replica';
  readonly liveRole: 'primary' | 'replica' | 'unknown';
  readonly source: string | null;
  readonly liveSource: string | null;
  readonly health: Health;
  readonly problems: readonly { readonly health: string; readonly detail: string }[];
  readonly readOnly: boolean | null;
  readonly lagSeconds: number | null;
  readonly gtid: string | null;
  readonly error: string | null;
  /** Set while an operator has it in maintenance (`topogit maintenance`). */
  readonly maintenance: Maintenance | null;
  readonly promotion: 'prefer' | 'neutral' | 'never';
}

export interface ClusterJson {
  readonly name: string;
  readonly file: string;
  readonly analysis: AnalysisCode | null;
  /** "OK" when every instance is OK, else the most severe instance health; null before the first probe. */
  readonly health: Health | null;
  /** The file's primary; null before the first probe. */
  readonly primary: string | null;
  readonly livePrimaries: readonly string[];
  readonly tree: readonly InstanceJson[];
  readonly conditions: readonly Condition[];
  readonly lastPass: PassSummary | null;
  readonly lastFailover: FailoverSummary | null;
  readonly fileValid: boolean;
  readonly fileIssues: readonly string[];
  readonly driftCount: number;
  /** What is wrong with the cluster as a whole (src/core/shapes.ts); empty when nothing is. */
  readonly shapes: readonly Shape[];
  /** Could it fail over now if the primary died, to which replica, or why not; null before the first probe. */
  readonly failover: ReadinessJson | null;
  /** What `plan` would propose now, one line per step. */
  readonly drift: readonly string[];
  /** Recent failovers, relocations and switchovers, newest first (from Git, and this daemon's switchovers). */
  readonly history: readonly HistoryEntry[];
  /** The routers after the last pass (in step, or why not); empty without a routing section. */
  readonly routers: readonly RouterStatus[];
  /** Which daemon leads this cluster (the coordinator), and whether it is this one. */
  readonly leader?: { readonly name: string | null; readonly mine: boolean };
}

export interface ClustersJson {
  readonly role: 'active' | 'standby';
  readonly startedAt: string;
  readonly clusters: readonly ClusterJson[];
}

/** The most severe of some health words ("OK" when there are none). */
export function worstHealth(healths: readonly Health[]): Health {
  let worst = HEALTH_ORDER.length - 1;
  for (const h of healths) worst = Math.min(worst, HEALTH_ORDER.indexOf(h));
  return HEALTH_ORDER[worst] ?? 'OK';
}

export function clusterJson(c: ClusterSnapshot): ClusterJson {
  const v = c.view;
  return {
    name: c.name,
    file: c.file,
    analysis: c.analysis,
    health: v ? worstHealth(v.instances.map((i) => i.health)) : null,
    primary: v ? v.primary : null,
    livePrimaries: v ? [...v.livePrimaries] : [],
    tree: (v?.instances ?? []).map((i) => ({
      name: i.name,
      host: i.host,
      port: i.port,
      role: i.role,
      liveRole: i.liveRole,
      source: i.source,
      liveSource: i.liveSource,
      health: i.health,
      problems: i.problems.map((p) => ({ health: p.health, detail: p.detail })),
      readOnly: i.readOnly,
      lagSeconds: i.lagSeconds,
      gtid: i.gtid,
      error: i.error,
      maintenance: i.maintenance ?? null,
      promotion: i.promotion,
    })),
    conditions: c.conditions,
    lastPass: c.lastPass,
    lastFailover: c.lastFailover,
    fileValid: c.fileValid,
    fileIssues: c.fileIssues,
    driftCount: c.driftCount,
    shapes: c.shapes,
    failover: c.failover ? readinessJson(c.failover) : null,
    drift: c.drift,
    history: c.history,
    routers: c.routers,
  };
}

export function clustersJson(s: DaemonSnapshot): ClustersJson {
  const leaders = new Map((s.coordination?.clusters ?? []).map((c) => [c.cluster, { name: c.leader, mine: c.mine }]));
  return {
    role: s.role,
    startedAt: s.startedAt,
    clusters: s.clusters.map((c) => {
      const leader = leaders.get(c.name);
      return leader ? { ...clusterJson(c), leader } : clusterJson(c);
    }),
  };
}

/** Why the daemon is not ready yet, in one line. */
export function notReadyReason(s: DaemonSnapshot): string {
  if (s.clusters.length === 0) return 'no cluster loaded yet';
  const waiting = s.clusters.filter((c) => c.view === null).map((c) => c.name);
  if (waiting.length > 0) return `waiting for the first probe of ${waiting.join(', ')}`;
  return 'starting';
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const json = (status: number, value: unknown, headers?: Record<string, string>): Reply => ({
  status,
  body: `${JSON.stringify(value)}\n`,
  contentType: JSON_TYPE,
  ...(headers ? { headers } : {}),
});
const NOT_FOUND = (): Reply => json(404, { error: 'not found' });
const html = (status: number, body: string, headers?: Record<string, string>): Reply => ({ status, body, contentType: 'text/html; charset=utf-8', ...(headers ? { headers } : {}) });

/** Sent with every response: the page runs only its own script and style, talks only to this daemon. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Reachable without the token: liveness, readiness, the login form and what it needs. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/login', '/assets/page.css', '/assets/page.js']);

type Handler = () => Reply | Promise<Reply>;

function route(path: string, o: HttpOptions): Handler | null {
  switch (path) {
    case '/healthz':
      return () => json(200, { status: 'ok' });
    case '/readyz':
      return () => {
        const s = o.snapshot();
        return s.ready
          ? json(200, { ready: true, role: s.role, startedAt: s.startedAt, clusters: s.clusters.length })
          : json(503, { ready: false, reason: notReadyReason(s) });
      };
    case '/metrics':
      return async () => ({ status: 200, body: await o.metrics.render(), contentType: o.metrics.contentType });
    case '/api/clusters':
      return () => json(200, clustersJson(o.snapshot()));
    case '/api/coordination':
      return () => {
        const c = o.snapshot().coordination;
        return c ? json(200, c) : json(404, { error: 'no coordinator in this process' });
      };
    case '/':
      return o.page ? () => html(200, renderPage(clustersJson(o.snapshot()), o.page)) : null;
    case '/assets/page.css':
      return o.page ? () => ({ status: 200, body: PAGE_CSS, contentType: 'text/css; charset=utf-8' }) : null;
    case '/assets/page.js':
      return o.page ? () => ({ status: 200, body: PAGE_JS, contentType: 'text/javascript; charset=utf-8' }) : null;
  }
  const prefix = '/api/clusters/';
  if (path.startsWith(prefix)) {
    let name: string;
    try {
      name = decodeURIComponent(path.slice(prefix.length));
    } catch {
      return NOT_FOUND;
    }
    return () => {
      const c = o.snapshot().clusters.find((x) => x.name === name);
      return c ? json(200, clusterJson(c)) : json(404, { error: 'cluster not found' });
    };
  }
  return null;
}

/** The path of a request target, without query or fragment, and without a trailing slash. */
function pathOf(url: string | undefined): string {
  let p = url ?? '/';
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

async function handle(req: IncomingMessage, o: HttpOptions, auth: TokenCheck | undefined): Promise<Reply> {
  const path = pathOf(req.url);
  if (auth && !OPEN_PATHS.has(path) && !auth.allows(req)) {
    return path === '/' && o.page ? html(401, renderLogin(false)) : json(401, { error: 'token required' }, { 'www-authenticate': 'Bearer' });
  }
  if (path === '/login' && o.page) return login(req, auth);
  const handler = route(path, o);
  if (!handler) return NOT_FOUND();
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
  return handler();
}

/** POST /login with the token in a form: the session cookie, then the page. Nothing else is read. */
async function login(req: IncomingMessage, auth: TokenCheck | undefined): Promise<Reply> {
  const home = { status: 303, body: '', contentType: 'text/plain; charset=utf-8' };
  if (!auth) return { ...home, headers: { location: '/' } };
  if (req.method === 'GET' || req.method === 'HEAD') return auth.allows(req) ? { ...home, headers: { location: '/' } } : html(200, renderLogin(false));
  if (req.method !== 'POST') return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD, POST' });
  // A sign-in form is a few bytes: anything announced larger is refused without reading it.
  if (Number(req.headers['content-length'] ?? 0) > 4096) return json(413, { error: 'too large' }, { connection: 'close' });
  const body = await readSmallBody(req, 4096);
  const token = body === undefined ? undefined : new URLSearchParams(body).get('token');
  if (token === undefined || token === null || !auth.matches(token)) return html(401, renderLogin(true));
  return { ...home, headers: { location: '/', 'set-cookie': auth.sessionCookie() } };
}

function readSmallBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size <= limit ? Buffer.concat(chunks).toString('utf8') : undefined));
    req.on('error', () => resolve(undefined));
  });
}

function send(req: IncomingMessage, res: ServerResponse, r: Reply): void {
  const body = Buffer.from(r.body, 'utf8');
  res.writeHead(r.status, {
    'content-type': r.contentType,
    'content-length': String(body.length),
    'cache-control': 'no-store',
    ...SECURITY_HEADERS,
    ...r.headers,
  });
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

export function startHttp(o: HttpOptions): Promise<HttpServer> {
  let port = o.port;
  const auth = o.token ? tokenCheck(o.token, () => sessionCookieName(port)) : undefined;
  const page = o.page;
  const hub: EventHub | undefined = page ? eventHub(() => clustersJson(o.snapshot()), page, SECURITY_HEADERS) : undefined;
  const server = createServer((req, res) => {
    // Only /login reads a body (a few bytes); drain any other so keep-alive connections stay usable.
    if (pathOf(req.url) !== '/login') req.resume();
    if (hub && pathOf(req.url) === '/api/events' && req.method === 'GET' && (!auth || auth.allows(req))) {
      if (!hub.attach(res)) send(req, res, json(503, { error: 'too many open event streams' }));
      return;
    }
    handle(req, o, auth)
      .catch((): Reply => json(500, { error: 'internal error' }))
      .then((r) => {
        if (res.headersSent) res.destroy();
        else send(req, res, r);
      })
      .catch(() => res.destroy());
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      // A server error after listening (rare: e.g. EMFILE on accept) must not crash the daemon.
      server.on('error', () => undefined);
      const a = server.address() as AddressInfo;
      port = a.port;
      let closing: Promise<void> | null = null;
      resolve({
        address: { host: a.address, port: a.port },
        publish: (cluster) => hub?.publish(cluster),
        get clients() {
          return hub?.clients ?? 0;
        },
        close: () =>
          (closing ??= new Promise<void>((done) => {
            hub?.close();
            server.close(() => done());
            server.closeAllConnections();
          })),
      });
    });
  });
}
