// Routing (issue 13): the file's `routing:` section, and the pure decisions: which servers of a
// writer and a reader backend should be ready for a live tree, in which order, and what is wrong
// with a router's backends.
import { describe, expect, it } from 'vitest';
import { formatIssue, parseTopologyText } from '../../src/config/load.js';
import type { ClusterPlan } from '../../src/core/plan.js';
import { withRouterSteps } from '../../src/core/route-plan.js';
import { syncRouters } from '../../src/engine/route.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { haproxyBackends, routedInstances, routerChanges, routerProblems, type RoutedInstance, type RouterServer, type RouterSpec } from '../../src/core/routing.js';

const FILE = (routing: string) => `cluster: shop
instances:
  db001: { host: 127.0.0.11 }
  db002: { host: 127.0.0.12, source: db001 }
  db003: { host: 127.0.0.13, source: db001 }
${routing}`;

describe('the routing section', () => {
  it('loads routers with their backends', () => {
    const { spec, issues } = parseTopologyText(FILE('routing:\n  - haproxy: 127.0.0.1:9999\n    writer: mysql_rw\n    reader: mysql_ro\n  - { haproxy: /run/haproxy/admin.sock, writer: rw }\n'), 'topologies/shop.yaml');
    expect(issues).toEqual([]);
    expect(spec?.routing).toEqual([
      { kind: 'haproxy', address: '127.0.0.1:9999', writer: 'mysql_rw', reader: 'mysql_ro' },
      { kind: 'haproxy', address: '/run/haproxy/admin.sock', writer: 'rw' },
    ]);
    expect(parseTopologyText(FILE(''), 'topologies/shop.yaml').spec?.routing).toBeUndefined();
  });

  it.each([
    ['a runtime API address that is neither HOST:PORT nor a socket path', '  - { haproxy: "localhost", writer: rw }', /routing\.0\.haproxy|routing\[0\]\.haproxy/],
    ['a backend name HAProxy cannot have', '  - { haproxy: 127.0.0.1:9999, writer: "rw ro" }', /writer/],
    ['no writer backend', '  - { haproxy: 127.0.0.1:9999 }', /writer/],
    ['the reader backend is the writer', '  - { haproxy: 127.0.0.1:9999, writer: rw, reader: rw }', /the reader backend rw is the writer backend/],
    ['the same router twice', '  - { haproxy: 127.0.0.1:9999, writer: rw }\n  - { haproxy: 127.0.0.1:9999, writer: other }', /listed twice/],
  ])('refuses %s', (_what, items, message) => {
    const { spec, issues } = parseTopologyText(FILE(`routing:\n${items}\n`), 'topologies/shop.yaml');
    expect(spec).toBeUndefined();
    expect(issues.map(formatIssue).join('\n')).toMatch(message);
  });
});

const R: RouterSpec = { kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw', reader: 'ro' };
const srv = (backend: string, server: string, admin: RouterServer['admin']): RouterServer => ({ backend, server, admin, up: true });
const live = (primary: string | null, healthy: readonly string[]): RoutedInstance[] => ['db001', 'db002', 'db003'].map((name) => ({ name, primary: name === primary, healthyReplica: healthy.includes(name) }));

describe('routerChanges', () => {
  it('after a failover: writes leave the old primary (sessions cut) before the new one is ready', () => {
    const actual = [srv('rw', 'db001', 'ready'), srv('rw', 'db002', 'maint'), srv('rw', 'db003', 'maint'), srv('ro', 'db001', 'maint'), srv('ro', 'db002', 'ready'), srv('ro', 'db003', 'ready')];
    const changes = routerChanges(R, actual, live('db002', ['db003']));
    expect(changes.map((c) => `${c.backend}/${c.server} ${c.to}${c.shutdownSessions ? ' +shutdown' : ''}`)).toEqual(['rw/db001 maint +shutdown', 'rw/db002 ready', 'ro/db002 maint']);
  });

  it('nothing to do when the router agrees', () => {
    const actual = [srv('rw', 'db001', 'ready'), srv('rw', 'db002', 'maint'), srv('rw', 'db003', 'maint'), srv('ro', 'db001', 'maint'), srv('ro', 'db002', 'ready'), srv('ro', 'db003', 'ready')];
    expect(routerChanges(R, actual, live('db001', ['db002', 'db003']))).toEqual([]);
  });

  it('an HAProxy reload that enabled every server is corrected', () => {
    const actual = ['db001', 'db002', 'db003'].flatMap((n) => [srv('rw', n, 'ready'), srv('ro', n, 'ready')]);
    const changes = routerChanges(R, actual, live('db001', ['db002']));
    expect(changes.map((c) => `${c.backend}/${c.server} ${c.to}`)).toEqual(['rw/db002 maint', 'rw/db003 maint', 'ro/db001 maint', 'ro/db003 maint']);
  });

  it('no single writable primary: every writer server in maintenance, no write is better than a wrong one', () => {
    const actual = [srv('rw', 'db001', 'ready'), srv('rw', 'db002', 'maint')];
    expect(routerChanges(R, actual, live(null, [])).map((c) => `${c.server} ${c.to} ${c.why}`)).toEqual(['db001 maint no single writable primary: no writes at all']);
    const two = [{ name: 'db001', primary: true, healthyReplica: false }, { name: 'db002', primary: true, healthyReplica: false }];
    expect(routerChanges(R, [srv('rw', 'db001', 'ready'), srv('rw', 'db002', 'ready')], two).map((c) => `${c.server} ${c.to}`)).toEqual(['db001 maint', 'db002 maint']);
  });

  it('leaves alone servers that are not instances of the file (a problem when one takes writes), and a drained one counts as not ready', () => {
    const actual = [srv('rw', 'other', 'ready'), srv('rw', 'db001', 'drain')];
    expect(routerChanges(R, actual, live('db001', [])).map((c) => `${c.server} ${c.to}`)).toEqual(['db001 ready']);
    expect(routerProblems({ ...R, reader: undefined } as RouterSpec, actual, ['db001'])).toEqual([
      'haproxy 127.0.0.1:9999: server other in rw is not an instance of the file and takes connections: it could take writes (set it to maint, or remove it)',
    ]);
  });
});

describe('routerProblems', () => {
  it('names a backend with no servers and instances without a server', () => {
    const actual = [srv('rw', 'db001', 'ready'), srv('rw', 'db002', 'maint')];
    expect(routerProblems(R, actual, ['db001', 'db002', 'db003'])).toEqual([
      'haproxy 127.0.0.1:9999: backend rw has no server named db003 (servers are named after the instances)',
      'haproxy 127.0.0.1:9999: backend ro has no servers (is the name right?)',
    ]);
  });
});

describe('haproxyBackends (topogit routes)', () => {
  it('prints backends that agree with the file: the primary alone for writes, the replicas for reads', () => {
    const { spec } = parseTopologyText(FILE('routing:\n  - { haproxy: 127.0.0.1:9999, writer: mysql_rw, reader: mysql_ro }\n').replace('db001: { host: 127.0.0.11 }', 'db001: { host: 127.0.0.11, source: db002 }').replace('db002: { host: 127.0.0.12, source: db001 }', 'db002: { host: 127.0.0.12 }').replace('db003: { host: 127.0.0.13, source: db001 }', 'db003: { host: 127.0.0.13, source: db002 }'), 'topologies/shop.yaml');
    if (!spec?.routing?.[0]) throw new Error('the file with a routing section must load');
    expect(haproxyBackends(spec, spec.routing[0])).toBe(
      [
        '# topologies/shop.yaml: cluster shop, primary db002; generated by `topogit routes shop`, runtime API 127.0.0.1:9999',
        '',
        'backend mysql_rw',
        '    mode tcp',
        '    balance first',
        '    server db001 127.0.0.11:3306 disabled',
        '    server db002 127.0.0.12:3306',
        '    server db003 127.0.0.13:3306 disabled',
        '',
        'backend mysql_ro',
        '    mode tcp',
        '    balance roundrobin',
        '    server db001 127.0.0.11:3306',
        '    server db002 127.0.0.12:3306 disabled',
        '    server db003 127.0.0.13:3306',
        '',
      ].join('\n'),
    );
  });
});

describe('withRouterSteps (plan and apply correct router drift)', () => {
  const { spec } = parseTopologyText(FILE('routing:\n  - { haproxy: 127.0.0.1:9999, writer: rw, reader: ro }\n'), 'topologies/shop.yaml');
  if (!spec) throw new Error('the test file must validate');
  const primary = FixtureRows.of('mariadb-10.11-primary');
  const replica = FixtureRows.of('mariadb-10.11-replica-ok');
  const probes = new Map([probeUp(spec, 'db001', primary), probeUp(spec, 'db002', replica), probeUp(spec, 'db003', replica.as(3))]);
  const empty: ClusterPlan = { cluster: 'shop', file: spec.file, flavor: 'mariadb', steps: [], notices: [] };
  const R = spec.routing?.[0] as RouterSpec;
  const all = ['db001', 'db002', 'db003'];

  it('a reload that enabled every server: one step per correction, writes away from the replicas first', () => {
    const servers = all.flatMap((n) => [srv('rw', n, 'ready'), srv('ro', n, 'ready')]);
    const plan = withRouterSteps(empty, spec, probes, [{ router: R, servers }]);
    expect(plan.steps.map((s) => `${s.id}. ${s.summary}`)).toEqual([
      '1. haproxy 127.0.0.1:9999: rw/db002 -> maint, sessions shut down',
      '2. haproxy 127.0.0.1:9999: rw/db003 -> maint, sessions shut down',
      '3. haproxy 127.0.0.1:9999: ro/db001 -> maint',
    ]);
    expect(plan.steps[0]?.actions).toEqual([{ kind: 'route', instance: 'db002', router: R, backend: 'rw', to: 'maint', shutdownSessions: true }]);
  });

  it('a router that cannot be read, or that lacks a backend, is a notice, never a step', () => {
    const unread = withRouterSteps(empty, spec, probes, [{ router: R, error: 'haproxy 127.0.0.1:9999: cannot connect: ECONNREFUSED' }]);
    expect(unread.steps).toEqual([]);
    expect(unread.notices.map((n) => n.message)).toEqual(['router haproxy 127.0.0.1:9999 cannot be read (haproxy 127.0.0.1:9999: cannot connect: ECONNREFUSED); not changed']);
    const noReader = withRouterSteps(empty, spec, probes, [{ router: R, servers: all.map((n) => srv('rw', n, n === 'db001' ? 'ready' : 'maint')) }]);
    expect(noReader.steps).toEqual([]);
    expect(noReader.notices.map((n) => n.message)).toEqual(['haproxy 127.0.0.1:9999: backend ro has no servers (is the name right?)']);
  });

  it('no writable primary seen (the primary is down): the router is left as it is', () => {
    const down = new Map(probes);
    down.set('db001', { ok: false, endpoint: { host: '127.0.0.11', port: 3306 }, error: 'connection refused', code: 'ECONNREFUSED', ms: 1 });
    const plan = withRouterSteps(empty, spec, down, [{ router: R, servers: all.map((n) => srv('rw', n, 'maint')) }]);
    expect(plan.steps).toEqual([]);
    expect(plan.notices[0]?.message).toMatch(/no writable primary seen from here: routers left as they are/);
  });
});

describe('routedInstances: who the routers follow', () => {
  const { spec } = parseTopologyText(FILE('routing:\n  - { haproxy: 127.0.0.1:9999, writer: rw, reader: ro }\n'), 'topologies/shop.yaml');
  if (!spec) throw new Error('the test file must validate');
  const primary = FixtureRows.of('mariadb-10.11-primary');
  const replica = FixtureRows.of('mariadb-10.11-replica-ok');

  it('the file primary, writable and alone: writes to it, reads to its healthy replicas', () => {
    const probes = new Map([probeUp(spec, 'db001', primary), probeUp(spec, 'db002', replica), probeUp(spec, 'db003', replica.as(3))]);
    const r = routedInstances(spec, probes, 10);
    expect(r).toEqual({ ok: true, instances: [{ name: 'db001', primary: true, healthyReplica: false }, { name: 'db002', primary: false, healthyReplica: true }, { name: 'db003', primary: false, healthyReplica: true }] });
    // Fenced or in maintenance: never a reader.
    const excluded = routedInstances(spec, probes, 10, { exclude: new Set(['db003']) });
    expect(excluded.ok && excluded.instances.find((i) => i.name === 'db003')?.healthyReplica).toBe(false);
  });

  it('a writable instance that is not the expected primary (an old primary back writable, an unseeded one) never gets the writes', () => {
    // db002 is the only writable one (db001 down), but the file names db001: leave the routers alone.
    const probes = new Map([probeDown(spec, 'db001'), probeUp(spec, 'db002', primary.as(2)), probeUp(spec, 'db003', replica.as(3))]);
    expect(routedInstances(spec, probes, 10)).toEqual({ ok: false, why: 'db002 is the writable one, but the primary is db001: routers left as they are' });
    // Right after a failover that promoted db002, db002 is the one expected.
    expect(routedInstances(spec, probes, 10, { expectedPrimary: 'db002' }).ok).toBe(true);
  });

  it('a replica under a replica that is not healthy is not a reader (a stalled intermediate spoils its subtree)', () => {
    const chain = { ...spec, instances: spec.instances.map((i) => (i.name === 'db003' ? { ...i, source: 'db002' } : i)) };
    const probes = new Map([probeUp(chain, 'db001', primary), probeUp(chain, 'db002', replica.status({ Slave_SQL_Running: 'No' })), probeUp(chain, 'db003', replica.as(3).from(2))]);
    const r = routedInstances(chain, probes, 10);
    expect(r.ok && r.instances.map((i) => `${i.name} ${i.healthyReplica}`)).toEqual(['db001 false', 'db002 false', 'db003 false']);
  });
});

describe('syncRouters', () => {
  it('asks before every change whether this process may still act (the lease): once it may not, nothing more changes', async () => {
    const backends = new Map([['rw', new Map<string, RouterServer['admin']>([['db001', 'ready'], ['db002', 'ready'], ['db003', 'ready']])]]);
    const port = {
      read: async (_r: RouterSpec, names: readonly string[]) => names.flatMap((b) => [...(backends.get(b) ?? [])].map(([server, admin]) => ({ backend: b, server, admin, up: true }))),
      apply: async (_r: RouterSpec, c: { backend: string; server: string; to: 'ready' | 'maint' }) => void backends.get(c.backend)?.set(c.server, c.to),
    };
    let changes = 0;
    const [out] = await syncRouters([{ kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw' }], ['db001', 'db002', 'db003'], live('db001', []), port, { timeoutMs: 100, mayAct: () => changes++ < 1 });
    expect(out?.inStep).toBe(false);
    expect(out?.error).toMatch(/no longer holds the lease/);
    expect(Object.fromEntries(backends.get('rw') ?? [])).toEqual({ db001: 'ready', db002: 'maint', db003: 'ready' });
  });
});
