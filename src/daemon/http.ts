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
import type { Metrics } from './metrics.js';
import type { ClusterSnapshot, Condition, DaemonSnapshot, FailoverSummary, PassSummary } from './model.js';

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  readonly snapshot: () => DaemonSnapshot;
  readonly metrics: Metrics;
}

export interface HttpServer {
  /** Where it listens: the real port when 0 was asked for. */
  readonly address: { host: string; port: number };
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
    })),
    conditions: c.conditions,
    lastPass: c.lastPass,
    lastFailover: c.lastFailover,
    fileValid: c.fileValid,
    fileIssues: c.fileIssues,
    driftCount: c.driftCount,
    shapes: c.shapes,
    failover: c.failover ? readinessJson(c.failover) : null,
  };
}

export function clustersJson(s: DaemonSnapshot): ClustersJson {
  return { role: s.role, startedAt: s.startedAt, clusters: s.clusters.map(clusterJson) };
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

async function handle(req: IncomingMessage, o: HttpOptions): Promise<Reply> {
  const handler = route(pathOf(req.url), o);
  if (!handler) return NOT_FOUND();
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
  return handler();
}

function send(req: IncomingMessage, res: ServerResponse, r: Reply): void {
  const body = Buffer.from(r.body, 'utf8');
  res.writeHead(r.status, {
    'content-type': r.contentType,
    'content-length': String(body.length),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...r.headers,
  });
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

export function startHttp(o: HttpOptions): Promise<HttpServer> {
  const server = createServer((req, res) => {
    // The request body is never read; drain it so keep-alive connections stay usable.
    req.resume();
    handle(req, o)
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
      let closing: Promise<void> | null = null;
      resolve({
        address: { host: a.address, port: a.port },
        close: () =>
          (closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          })),
      });
    });
  });
}
