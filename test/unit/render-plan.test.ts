// renderPlanText, renderPlanMarkdown and renderPlanJson over plans the planner really makes (see below),
// and the JSON schema they are checked against.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { ClusterSpec, ProbeResult } from '../../src/core/model.js';
import { classifyCluster } from '../../src/core/classify.js';
import { DEFAULT_PLAN, planCluster, type Notice } from '../../src/core/plan.js';
import { countChanges, viewPlan, type ClusterPlanView, type PlanDocument, type PlanStepView } from '../../src/core/plan-document.js';
import { displayAction } from '../../src/adapters/mysql/actions.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../src/cli/render-plan.js';
import { fingerprintProbe } from '../../src/engine/plan-run.js';
import { FixtureRows, probeDown, probeUp } from '../support/rows.js';
import { sandboxSpec } from '../support/spec.js';

// ------------------------------------------------------------------------------------------------
// Plans as `topogit plan` makes them: probe results built from rows captured on MariaDB 10.11
// (test/fixtures/rows), planned by planCluster with the default options, viewed with the version
// and replication user the CLI uses, then rendered. Nothing below is a hand-made plan view except
// where a test says so (inputs the planner cannot produce, to check the renderer's defences).

class Rows extends FixtureRows {
  /** MariaDB GTID state: gtid_current_pos = gtid_binlog_pos = pos, gtid_binlog_state = state (default pos). */
  at(pos: string, state: string = pos): this {
    return this.vars({ gtid_current_pos: pos, gtid_binlog_pos: pos, gtid_binlog_state: state });
  }
}

/** The captured primary (server 1, rw, at 0-1-4; SHOW REPLICA HOSTS lists servers 3 and 2). */
const PRIMARY = () => Rows.of('mariadb-10.11-primary');
/** A SHOW REPLICA HOSTS row of the primary: a connected replica with server id `id`. */
const hostRow = (id: number, host = `127.0.0.1${id}`) => ({ Server_id: id, Host: host, Port: 3306, Master_id: 1 });
/**
 * The captured replica (server 2, ro, replicating from server 1 with lag 0), with the connect retry
 * topogit sets (2 s; the sandbox the rows come from ran with 1 s), so it needs no settings step.
 */
const REPLICA = () => Rows.of('mariadb-10.11-replica-ok').status({ Connect_Retry: 2 });
/** Replication stopped by hand, no error (IO No, SQL No). */
const STOPPED = () => Rows.of('mariadb-10.11-replica-stopped').status({ Connect_Retry: 2 });
/** Stopped on duplicate key 1062 (IO Yes, SQL No). */
const SQL_ERROR = () => Rows.of('mariadb-10.11-replica-sql-error').status({ Connect_Retry: 2 });

const CREATED_AT = '2025-03-14T09:26:53.589Z';

/** What `topogit plan` shows for one cluster: planCluster, then the view with the primary's version. */
function planView(spec: ClusterSpec, probes: readonly [string, ProbeResult][]): ClusterPlanView {
  const map = new Map(probes);
  const version = classifyCluster(spec, map).version;
  return viewPlan(planCluster(spec, map, DEFAULT_PLAN), version, spec.credentials.replication.user, displayAction);
}

function doc(clusters: ClusterPlanView[], extra: Partial<PlanDocument> = {}): PlanDocument {
  return { formatVersion: 1, createdAt: CREATED_AT, against: 'live', summary: countChanges(clusters), clusters, ...extra };
}

/** A saved plan's basis: the real live fingerprints of the probes, a file hash, a commit. */
function basis(spec: ClusterSpec, probes: readonly [string, ProbeResult][]): NonNullable<PlanDocument['basis']> {
  return {
    gitCommit: '3f786850e387550fdab836ed7e6dc881de23001b',
    files: { [spec.file]: createHash('sha256').update(`cluster: ${spec.cluster}\n`).digest('hex') },
    live: { [spec.cluster]: Object.fromEntries(probes.map(([name, p]) => [name, fingerprintProbe(p)])) },
  };
}

// --- shop: the file makes db002 the primary; db004 is a writable replica; an unmanaged replica.

const SHOP_SPEC = sandboxSpec('shop', { db001: 'db002', db002: null, db003: 'db002', db004: 'db002' });
const shopProbes = (spec: ClusterSpec = SHOP_SPEC): [string, ProbeResult][] => [
  probeUp(spec, 'db001', PRIMARY().seen(hostRow(4), hostRow(19, '127.0.0.19'))),
  probeUp(spec, 'db002', REPLICA()),
  probeUp(spec, 'db003', REPLICA().as(3)),
  probeUp(spec, 'db004', REPLICA().as(4).vars({ read_only: 'OFF' })),
];
const shop = (spec: ClusterSpec = SHOP_SPEC) => planView(spec, shopProbes(spec));

// --- billing: a read-only primary, stopped replication, an SQL error, errant GTIDs, one member down.

const BILLING_SPEC = sandboxSpec('billing', { db001: null, db002: 'db001', db003: 'db001', db004: 'db001', db005: 'db001' });
const BILLING_PROBES: [string, ProbeResult][] = [
  probeUp(BILLING_SPEC, 'db001', PRIMARY().vars({ read_only: 'ON' }).at('0-1-6').unseen().seen(hostRow(3), hostRow(4))),
  probeUp(BILLING_SPEC, 'db002', STOPPED().as(2)),
  probeUp(BILLING_SPEC, 'db003', SQL_ERROR()),
  probeUp(BILLING_SPEC, 'db004', REPLICA().as(4).at('0-4-7', '0-1-6,0-4-7')),
  probeDown(BILLING_SPEC, 'db005'),
];
const billing = () => planView(BILLING_SPEC, BILLING_PROBES);

// --- orders: a switchover refused (the candidate lags), and replication settings to restore.

const ORDERS_SPEC = sandboxSpec('orders', { db001: 'db002', db002: null, db003: 'db001' });
const orders = () =>
  planView(ORDERS_SPEC, [
    probeUp(ORDERS_SPEC, 'db001', PRIMARY()),
    probeUp(ORDERS_SPEC, 'db002', REPLICA().status({ Seconds_Behind_Master: '42' })),
    probeUp(ORDERS_SPEC, 'db003', REPLICA().as(3).status({ Connect_Retry: 60, Slave_heartbeat_period: 30 })),
  ]);

// --- ledger: a switchover stopped half-way: two read-only members replicate from nobody.

const LEDGER_SPEC = sandboxSpec('ledger', { db001: null, db002: 'db001' });
const ledger = () =>
  planView(LEDGER_SPEC, [probeUp(LEDGER_SPEC, 'db001', PRIMARY().vars({ read_only: 'ON' }).unseen()), probeUp(LEDGER_SPEC, 'db002', REPLICA().statusRows([]))]);

/** A cluster whose only step is starting db002's replication. */
const oneStart = (name: string) => {
  const spec = sandboxSpec(name, { db001: null, db002: 'db001' });
  return planView(spec, [probeUp(spec, 'db001', PRIMARY().unseen()), probeUp(spec, 'db002', STOPPED().as(2))]);
};
/** A healthy cluster: nothing to do. */
const healthy = (name: string) => {
  const spec = sandboxSpec(name, { db001: null, db002: 'db001', db003: 'db001' });
  return planView(spec, [probeUp(spec, 'db001', PRIMARY()), probeUp(spec, 'db002', REPLICA()), probeUp(spec, 'db003', REPLICA().as(3))]);
};
/** Healthy but db003 down and an unmanaged replica on db001: notices, no steps. */
const noticesOnly = () => {
  const spec = sandboxSpec('shop', { db001: null, db002: 'db001', db003: 'db001' });
  return planView(spec, [probeUp(spec, 'db001', PRIMARY().unseen().seen(hostRow(2), hostRow(19, '127.0.0.19'))), probeUp(spec, 'db002', REPLICA()), probeDown(spec, 'db003')]);
};
/** db002 stopped on an SQL error whose text is `message` (servers print what they like there). */
const sqlErrorSaying = (name: string, message: string) => {
  const spec = sandboxSpec(name, { db001: null, db002: 'db001' });
  return planView(spec, [probeUp(spec, 'db001', PRIMARY().unseen().seen(hostRow(2))), probeUp(spec, 'db002', SQL_ERROR().as(2).status({ Last_SQL_Error: message }))]);
};

const ALL = doc([shop(), billing(), orders(), ledger()], { basis: basis(SHOP_SPEC, shopProbes()) });
const BILLING = doc([billing()], { basis: basis(BILLING_SPEC, BILLING_PROBES) });
const EMPTY = doc([healthy('shop'), healthy('billing')]);
const NOTICES_ONLY = doc([noticesOnly(), healthy('billing')], { against: { observation: 'observations/2025-03-14.json', observedAt: '2025-03-14T09:00:00Z' } });
const TWO = doc([oneStart('billing'), shop()]);
const ONE = doc([oneStart('shop')]);

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1);
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const notices = (d: PlanDocument): Notice[] => d.clusters.flatMap((c) => [...c.notices]);

// ------------------------------------------------------------------------------------------------

describe('the plans rendered below are what the planner makes', () => {
  it('covers every step kind and every notice kind the renderer shows', () => {
    const [s, b, o, l] = ALL.clusters;
    expect(s?.steps.map((x) => x.summary)).toEqual(['db004 read_only OFF -> ON', 'switchover db001 -> db002', 'db003 source db001 -> db002', 'db004 source db001 -> db002']);
    expect(s?.steps[1]?.substeps?.map((x) => x.summary)).toEqual([
      'db001 read_only OFF -> ON',
      'db002 wait until it executed everything db001 has',
      'db002 promote: stop and reset replication, read_only OFF',
      'db001 source none -> db002',
    ]);
    expect(b?.steps.map((x) => x.summary)).toEqual(['db002 start replication', 'db001 read_only ON -> OFF']);
    expect(o?.steps.map((x) => x.summary)).toEqual(['db003 replication settings']);
    expect(l?.steps.map((x) => x.summary)).toEqual(['db002 source none -> db001']);
    expect(notices(ALL).map((n) => `${n.kind} ${n.instance ?? '-'}`)).toEqual([
      'unmanaged db001',
      'unreachable db005',
      'sql-error db003',
      'errant db004',
      'refused db002',
      'unknown-primary -',
    ]);
    // An unreachable member gets a notice and never a step.
    expect(ALL.clusters.flatMap((c) => c.steps).some((x) => x.instance === 'db005')).toBe(false);
  });
});

describe('renderPlanText', () => {
  it('renders read-only, switchover, repoint, start and settings steps and every kind of notice', () => {
    const out = renderPlanText(ALL);
    expect(out).toMatchSnapshot();
    expect(out.split('\n')[0]).toBe('topogit will perform these actions (symbols: ~ change, + start, - remove, ! needs a human):');
    expect(out).toContain('cluster shop (topologies/shop.yaml)\n');
    // Substeps: one level deeper, each with its own symbol, reason and SQL.
    expect(out).toContain('  ~ switchover db001 -> db002\n      # the file names db002 as the primary; db001 is the live primary\n      ~ db001 read_only OFF -> ON\n          # stop writes on the old primary\n');
    expect(out).toContain("MASTER_PASSWORD='****'");
    expect(out).toContain('  Noticed outside the plan (no action):\n  ! 127.0.0.19:3306 (server_id 19) replicates from db001 but is in no file; left alone\n');
    for (const n of notices(ALL)) expect(out).toContain(`  ! ${n.message}\n`);
    expect(lastLine(out)).toBe('Plan: 8 changes in 4 clusters.');
  });

  it('says there is nothing to do for an empty plan, without the legend', () => {
    expect(renderPlanText(EMPTY)).toMatchInlineSnapshot(`
      "No changes. Live topology matches the files.
      "
    `);
  });

  it('still prints notices when there are no steps', () => {
    const out = renderPlanText(NOTICES_ONLY);
    expect(out).toMatchInlineSnapshot(`
      "cluster shop (topologies/shop.yaml)
        Noticed outside the plan (no action):
        ! db003 is unreachable (connection refused); nothing that depends on it is planned
        ! 127.0.0.19:3306 (server_id 19) replicates from db001 but is in no file; left alone

      No changes. Live topology matches the files.
      "
    `);
    expect(out).not.toContain('billing');
  });

  it('renders clusters in the order given and counts them in the closing line', () => {
    const out = renderPlanText(TWO);
    expect(out.indexOf('cluster billing')).toBeLessThan(out.indexOf('cluster shop'));
    expect(lastLine(out)).toBe('Plan: 5 changes in 2 clusters.');
  });

  it('uses singular forms for one change in one cluster', () => {
    expect(lastLine(renderPlanText(ONE))).toBe('Plan: 1 change in 1 cluster.');
    expect(lastLine(renderPlanText(doc([billing()])))).toBe('Plan: 2 changes in 1 cluster.');
    expect(lastLine(renderPlanText(doc([oneStart('a'), oneStart('b')])))).toBe('Plan: 2 changes in 2 clusters.');
  });

  it('colors the symbols only when asked', () => {
    expect(renderPlanText(ALL)).not.toContain('\u001b[');
    expect(renderPlanText(ALL, { color: false })).not.toContain('\u001b[');
    const colored = renderPlanText(ALL, { color: true });
    expect(colored).toContain('  \u001b[33m~\u001b[0m db003 source db001 -> db002');
    expect(colored).toContain('  \u001b[32m+\u001b[0m db002 start replication');
    expect(colored).toContain('  \u001b[35m!\u001b[0m db005 is unreachable');
    // Without the escapes it is the plain rendering.
    expect(colored.replace(/\u001b\[[0-9;]*m/g, '')).toBe(renderPlanText(ALL));
    // The planner makes no `-` step today; the renderer's color for the symbol is checked on a made-up one.
    const remove: PlanStepView = { id: '1', instance: 'db009', symbol: '-', summary: 'db009 remove', reason: 'not in the file', sql: [], actions: [] };
    expect(renderPlanText(doc([{ ...oneStart('shop'), steps: [remove] }]), { color: true })).toContain('  \u001b[31m-\u001b[0m db009 remove');
  });

  it('does not let server error text drive the terminal or break lines', () => {
    const out = renderPlanText(doc([sqlErrorSaying('shop', 'boom\u001b[2J\u001b]0;pwned\u0007\nPlan: 0 changes\u202e')]));
    expect(out).not.toContain('\u001b');
    expect(out).not.toContain('\u0007');
    expect(out).not.toContain('\u202e');
    expect(out).toContain('  ! db002 stopped on an SQL error; left for a human (never skipped): 1062: boom\\x1b[2J\\x1b]0;pwned\\x07\\x0aPlan: 0 changes\\u202e\n');
    expect(lastLine(out)).toBe('No changes. Live topology matches the files.');
  });
});

describe('renderPlanMarkdown', () => {
  it('renders the plans for a pull-request comment', () => {
    const out = renderPlanMarkdown(ALL);
    expect(out).toMatchSnapshot();
    expect(out).toContain('<details><summary>cluster shop: 4 changes, 1 notice</summary>');
    expect(out).toContain('<details><summary>cluster billing: 2 changes, 3 notices</summary>');
    expect(out).toContain('```diff\n! ~ db004 read_only OFF -> ON\n      # a replica must not accept writes\n! ~ switchover db001 -> db002\n');
    expect(out).toContain('!     ~ db001 read_only OFF -> ON\n          # stop writes on the old primary\n');
    expect(out).toContain('+ + db002 start replication\n');
    expect(out).toContain('```sql\n-- step 1: db004 read_only OFF -> ON\nSET GLOBAL read_only = 1;\n');
    expect(out).toContain('-- step 2.2: db002 wait until it executed everything db001 has\n-- wait up to 30s until db002 has executed every GTID db001 has\n');
    expect(out).toContain('- **unknown-primary**: several members replicate from nobody (db001, db002); cannot tell the primary');
    expect(out.trimEnd().endsWith('</details>')).toBe(true);
  });

  it('puts the summary on the first line', () => {
    expect(renderPlanMarkdown(ALL).split('\n')[0]).toBe('**Plan: 8 changes in 4 clusters.**');
    expect(renderPlanMarkdown(TWO).split('\n')[0]).toBe('**Plan: 5 changes in 2 clusters.**');
    expect(renderPlanMarkdown(ONE).split('\n')[0]).toBe('**Plan: 1 change in 1 cluster.**');
    expect(renderPlanMarkdown(EMPTY).split('\n')[0]).toBe('**No changes.** Live topology matches the files.');
  });

  it('renders an empty plan as one line', () => {
    expect(renderPlanMarkdown(EMPTY)).toMatchInlineSnapshot(`
      "**No changes.** Live topology matches the files.
      "
    `);
  });

  it('renders notices without steps', () => {
    expect(renderPlanMarkdown(NOTICES_ONLY)).toMatchInlineSnapshot(`
      "**No changes.** Live topology matches the files.

      <details><summary>cluster shop: 0 changes, 2 notices</summary>

      File: topologies/shop.yaml

      **Noticed outside the plan (no action):**

      - **unreachable**: db003 is unreachable (connection refused); nothing that depends on it is planned
      - **unmanaged**: 127.0.0.19:3306 (server\\_id 19) replicates from db001 but is in no file; left alone

      </details>
      "
    `);
  });

  it('renders one block per cluster with changes or notices', () => {
    const out = renderPlanMarkdown(TWO);
    expect(out.match(/<details>/g)).toHaveLength(2);
    expect(out).toContain('<details><summary>cluster billing: 1 change</summary>');
    expect(out).toContain('<details><summary>cluster shop: 4 changes, 1 notice</summary>');
    expect(renderPlanMarkdown(EMPTY)).not.toContain('<details>');
  });

  it('neutralises hostile server text in notices', () => {
    const message = 'x```\n</details><script>alert(1)</script> & `rm -rf` [click](https://evil.example) **bold**';
    const out = renderPlanMarkdown(doc([sqlErrorSaying('shop', message)]));
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('</details><script');
    expect(out.match(/<\/details>/g)).toHaveLength(1);
    expect(out).not.toContain('x```');
    expect(out).toContain(
      '- **sql-error**: db002 stopped on an SQL error; left for a human (never skipped): 1062: x&#96;&#96;&#96;\\\\x0a&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#96;rm -rf&#96; \\[click\\](https://evil.example) \\*\\*bold\\*\\*',
    );
    // Still exactly one bullet line for the notice: the newline did not start a new block.
    expect(out.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(1);
  });

  it('escapes the cluster name in the summary element', () => {
    // File validation refuses such a name; the renderer must not rely on it.
    const spec = sandboxSpec('a<b>&`c`', { db001: null, db002: 'db001' });
    const out = renderPlanMarkdown(doc([planView(spec, [probeUp(spec, 'db001', PRIMARY().unseen()), probeUp(spec, 'db002', STOPPED().as(2))])]));
    expect(out).toContain('<summary>cluster a&lt;b&gt;&amp;&#96;c&#96;: 1 change</summary>');
  });

  it('uses a longer fence when content holds backtick runs', () => {
    // Made up: no planner reason or statement holds backticks today; the fences must not depend on it.
    const sneaky: PlanStepView = { id: '1', instance: 'db004', symbol: '~', summary: 'db004 read_only OFF -> ON', reason: 'reason with ```` four', sql: ['SELECT 1 /* ``` */'], actions: [{ kind: 'set-read-only', instance: 'db004', readOnly: true }] };
    const out = renderPlanMarkdown(doc([{ ...oneStart('shop'), steps: [sneaky] }]));
    expect(out).toContain('`````diff\n! ~ db004 read_only OFF -> ON\n      # reason with ```` four\n`````\n');
    expect(out).toContain('````sql\n-- step 1: db004 read_only OFF -> ON\nSELECT 1 /* ``` */;\n````\n');
    // Every fence that opens is closed by the same run, and nothing in between reaches that length.
    const fences = out.split('\n').filter((l) => /^`{3,}/.test(l));
    expect(fences).toEqual(['`````diff', '`````', '````sql', '````']);
  });

  it('stays under 60 000 bytes for 400 clusters and says it was truncated', () => {
    const big = doc(Array.from({ length: 400 }, (_, c) => shop({ ...SHOP_SPEC, cluster: `cluster${String(c).padStart(3, '0')}`, file: `topologies/cluster${String(c).padStart(3, '0')}.yaml` })));
    const full = renderPlanMarkdown(big, { maxBytes: Number.MAX_SAFE_INTEGER });
    const out = renderPlanMarkdown(big);
    expect(bytes(full)).toBeGreaterThan(60_000);
    expect(bytes(out)).toBeLessThanOrEqual(60_000);
    expect(out.split('\n')[0]).toBe('**Plan: 1600 changes in 400 clusters.**');
    const shown = out.match(/<details>/g)?.length ?? 0;
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThan(400);
    expect(lastLine(out)).toBe(
      `_Plan truncated: ${shown} of 400 clusters shown (the full plan is ${bytes(full)} bytes); run \`topogit plan\` locally or download the JSON artifact._`,
    );
    // Whole blocks only, and the first ones: the shown part is a prefix of the full rendering.
    const shownPart = out.slice(0, out.lastIndexOf('</details>') + '</details>'.length);
    expect(full.startsWith(shownPart)).toBe(true);
    // As many as fit: one more block would not.
    const nextBlock = full.slice(shownPart.length).split('</details>')[0] + '</details>';
    expect(bytes(out) + bytes(nextBlock)).toBeGreaterThan(60_000);
  });

  it('honours a smaller maxBytes', () => {
    const full = renderPlanMarkdown(TWO);
    const maxBytes = full.indexOf('<details><summary>cluster shop') + 300;
    const out = renderPlanMarkdown(TWO, { maxBytes });
    expect(bytes(out)).toBeLessThanOrEqual(maxBytes);
    expect(out).toContain('<summary>cluster billing');
    expect(out).not.toContain('<summary>cluster shop');
    expect(lastLine(out)).toBe(`_Plan truncated: 1 of 2 clusters shown (the full plan is ${bytes(full)} bytes); run \`topogit plan\` locally or download the JSON artifact._`);

    const tiny = renderPlanMarkdown(TWO, { maxBytes: 400 });
    expect(bytes(tiny)).toBeLessThanOrEqual(400);
    expect(tiny.split('\n')[0]).toBe('**Plan: 5 changes in 2 clusters.**');
    expect(tiny).toContain('_Plan truncated: 0 of 2 clusters shown');

    // Even a limit below the note itself is respected.
    expect(bytes(renderPlanMarkdown(TWO, { maxBytes: 50 }))).toBeLessThanOrEqual(50);
    // A plan that fits is not touched.
    expect(renderPlanMarkdown(TWO, { maxBytes: bytes(full) })).toBe(full);
  });

  it('measures the limit in UTF-8 bytes, not characters', () => {
    // A server with lc_messages=ru_RU reports its SQL errors in Russian.
    const wide = doc([oneStart('billing'), sqlErrorSaying('shop', 'Ошибка: таблица не найдена '.repeat(40))]);
    const full = renderPlanMarkdown(wide);
    expect(bytes(full)).toBeGreaterThan(full.length);
    const maxBytes = full.length; // characters would fit, bytes do not
    const out = renderPlanMarkdown(wide, { maxBytes });
    expect(bytes(out)).toBeLessThanOrEqual(maxBytes);
    expect(out).toContain('<summary>cluster billing');
    expect(out).toContain('_Plan truncated: 1 of 2 clusters shown');
  });
});

describe('renderPlanJson and schemas/plan.schema.json', () => {
  const schema = JSON.parse(readFileSync(new URL('../../schemas/plan.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const check = (value: unknown) => (validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

  it('is the document, pretty-printed, with a final newline', () => {
    const out = renderPlanJson(ALL);
    expect(out).toBe(JSON.stringify(ALL, null, 2) + '\n');
    expect(JSON.parse(out)).toEqual(ALL);
    expect(renderPlanJson(BILLING)).toMatchSnapshot();
  });

  it('has the documented identity', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.$id).toBe('https://topogit.dev/schemas/plan.schema.json');
  });

  it('validates every rendered plan', () => {
    for (const d of [ALL, BILLING, EMPTY, NOTICES_ONLY, TWO, ONE]) expect(check(JSON.parse(renderPlanJson(d)))).toEqual([]);
  });

  it('rejects an unknown action kind', () => {
    const bad = JSON.parse(renderPlanJson(ONE)) as { clusters: { steps: { actions: unknown[] }[] }[] };
    (bad.clusters[0]?.steps[0] as { actions: unknown[] }).actions = [{ kind: 'drop-database', instance: 'db004' }];
    expect(validate(bad)).toBe(false);
  });

  it('rejects unknown substep actions, extra fields and wrong constants', () => {
    const mutate = (f: (d: Record<string, any>) => void) => {
      const d = JSON.parse(renderPlanJson(ALL)) as Record<string, any>;
      f(d);
      return validate(d);
    };
    expect(mutate(() => {})).toBe(true);
    // shop: step 2 is the switchover (its third substep promotes), step 3 repoints db003.
    expect(mutate((d) => (d.clusters[0].steps[1].substeps[2].actions[0] = { kind: 'promote', instance: 'db002', force: true }))).toBe(false);
    expect(mutate((d) => (d.clusters[0].steps[2].actions[0].port = '3306'))).toBe(false);
    expect(mutate((d) => delete d.clusters[0].steps[2].actions[0].settings)).toBe(false);
    expect(mutate((d) => (d.clusters[0].steps[0].symbol = '*'))).toBe(false);
    expect(mutate((d) => (d.clusters[0].notices[0].kind = 'warning'))).toBe(false);
    expect(mutate((d) => (d.clusters[0].extra = 1))).toBe(false);
    expect(mutate((d) => (d.formatVersion = 2))).toBe(false);
    expect(mutate((d) => (d.createdAt = 'yesterday'))).toBe(false);
    expect(mutate((d) => (d.against = 'recorded'))).toBe(false);
    expect(mutate((d) => (d.basis.files['topologies/shop.yaml'] = 'not-a-hash'))).toBe(false);
    expect(mutate((d) => (d.basis.live.shop.db001 = 5))).toBe(false);
    expect(mutate((d) => (d.basis.gitCommit = null))).toBe(true);
    expect(mutate((d) => delete d.basis)).toBe(true);
  });
});
