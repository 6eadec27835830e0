import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { Action, Notice } from '../../src/core/plan.js';
import { countChanges, type ClusterPlanView, type PlanDocument, type PlanStepView } from '../../src/core/plan-document.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../src/cli/render-plan.js';

// ------------------------------------------------------------------------------------------------
// Hand-built plans, shaped like what `topogit plan` produces for MariaDB 10.4 (old words).

const SETTINGS = { connectRetry: 2, heartbeatPeriod: 1 } as const;
const CHANGE_MASTER = (host: string) =>
  `CHANGE MASTER TO MASTER_HOST='${host}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=2, MASTER_HEARTBEAT_PERIOD=1`;

function step(id: string, instance: string, symbol: PlanStepView['symbol'], summary: string, reason: string, sql: string[], actions: Action[], substeps?: PlanStepView[]): PlanStepView {
  return { id, instance, symbol, summary, reason, sql, actions, ...(substeps ? { substeps } : {}) };
}

const repoint = (id: string, instance: string, from: string, to: string, host: string): PlanStepView =>
  step(id, instance, '~', `${instance} source ${from} -> ${to}`, `replicates from ${from}; the file says ${to}`, ['STOP SLAVE', CHANGE_MASTER(host), 'START SLAVE'], [
    { kind: 'change-source', instance, source: to, host, port: 3306, settings: SETTINGS, waitForSource: false },
  ]);

const readOnlyStep = (id: string, instance: string): PlanStepView =>
  step(id, instance, '~', `${instance} read_only OFF -> ON`, 'a replica must not accept writes', ['SET GLOBAL read_only = 1'], [{ kind: 'set-read-only', instance, readOnly: true }]);

function switchover(id: string): PlanStepView {
  const subs = [
    step(`${id}.1`, 'db001', '~', 'db001 read_only OFF -> ON', 'stop writes on the old primary', ['SET GLOBAL read_only = 1'], [{ kind: 'set-read-only', instance: 'db001', readOnly: true }]),
    step(`${id}.2`, 'db002', '~', 'db002 wait until it executed everything db001 has', 'bounded by 30s', ['-- wait up to 30s until db002 has executed every GTID db001 has'], [
      { kind: 'wait-caught-up', instance: 'db002', target: 'db001', timeoutSeconds: 30 },
    ]),
    step(`${id}.3`, 'db002', '~', 'db002 promote: stop and reset replication, read_only OFF', 'the file makes it the primary', ['STOP SLAVE', 'RESET SLAVE ALL', 'SET GLOBAL read_only = 0'], [
      { kind: 'promote', instance: 'db002' },
    ]),
    step(`${id}.4`, 'db001', '~', 'db001 source none -> db002', 'the old primary becomes a replica', ['STOP SLAVE', CHANGE_MASTER('127.0.0.12'), 'START SLAVE'], [
      { kind: 'change-source', instance: 'db001', source: 'db002', host: '127.0.0.12', port: 3306, settings: SETTINGS, waitForSource: true },
    ]),
  ];
  return step(id, 'db002', '~', 'switchover db001 -> db002', 'the file names db002 as the primary; db001 is the live primary', [], subs.flatMap((s) => s.actions), subs);
}

const startStep = (id: string, instance: string): PlanStepView =>
  step(id, instance, '+', `${instance} start replication`, 'replication is stopped without an error (IO No, SQL No)', ['START SLAVE'], [{ kind: 'start-replication', instance }]);

const NOTICES: Notice[] = [
  { kind: 'unmanaged', instance: 'db002', message: '127.0.0.19:3306 (server_id 19) replicates from db002 but is in no file; left alone' },
  { kind: 'unreachable', instance: 'db005', message: 'db005 is unreachable (connect ECONNREFUSED 127.0.0.15:3306); nothing that depends on it is planned' },
  { kind: 'sql-error', instance: 'db006', message: "db006 stopped on an SQL error; left for a human (never skipped): 1146: Error executing row event: 'Table 'shop.orders' doesn't exist'" },
  { kind: 'errant', instance: 'db007', message: 'db007 has errant GTIDs 0-7-12 that db002 does not have; refusing to repoint it under db002' },
  { kind: 'refused', instance: 'db008', message: 'switchover db001 -> db008 refused: db008 is 42s behind (limit 10s)' },
  { kind: 'unknown-primary', message: 'several members replicate from nobody (db009, db010); cannot tell the primary' },
];

function cluster(name: string, steps: PlanStepView[], notices: Notice[] = []): ClusterPlanView {
  return { cluster: name, file: `topologies/${name}.yaml`, flavor: 'mariadb', version: '10.4.34-MariaDB-1:10.4.34+maria~ubu2004-log', steps, notices };
}

function doc(clusters: ClusterPlanView[], extra: Partial<PlanDocument> = {}): PlanDocument {
  return { formatVersion: 1, createdAt: '2025-03-14T09:26:53.589Z', against: 'live', summary: countChanges(clusters), clusters, ...extra };
}

const shop = cluster('shop', [readOnlyStep('1', 'db004'), switchover('2'), repoint('3', 'db003', 'db001', 'db002', '127.0.0.12'), startStep('4', 'db005')], NOTICES);
const SHOP = doc([shop], {
  basis: {
    gitCommit: '3f786850e387550fdab836ed7e6dc881de23001b',
    files: { 'topologies/shop.yaml': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    live: { shop: { db001: 'ro=0;src=;gtid=0-1-120', db002: 'ro=1;src=db001;gtid=0-1-120' } },
  },
});
const EMPTY = doc([cluster('shop', []), cluster('billing', [])]);
const NOTICES_ONLY = doc([cluster('shop', [], NOTICES.slice(0, 2)), cluster('billing', [])], {
  against: { observation: 'observations/2025-03-14.json', observedAt: '2025-03-14T09:00:00Z' },
});
const TWO = doc([cluster('billing', [repoint('1', 'db103', 'db101', 'db102', '127.0.0.102')]), cluster('shop', [readOnlyStep('1', 'db004'), startStep('2', 'db005')], NOTICES.slice(0, 1))]);
const ONE = doc([cluster('shop', [readOnlyStep('1', 'db004')])]);

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1);
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

// ------------------------------------------------------------------------------------------------

describe('renderPlanText', () => {
  it('renders a cluster with read-only, switchover, repoint and start steps and every kind of notice', () => {
    const out = renderPlanText(SHOP);
    expect(out).toMatchSnapshot();
    expect(out.split('\n')[0]).toBe('topogit will perform these actions (symbols: ~ change, + start, - remove, ! needs a human):');
    expect(out).toContain('cluster shop (topologies/shop.yaml)\n');
    expect(out).toContain(
      '  ~ db003 source db001 -> db002\n      # replicates from db001; the file says db002\n      STOP SLAVE\n      ' + CHANGE_MASTER('127.0.0.12') + '\n      START SLAVE\n',
    );
    // Substeps: one level deeper, each with its own symbol, reason and SQL.
    expect(out).toContain('  ~ switchover db001 -> db002\n      # the file names db002 as the primary; db001 is the live primary\n      ~ db001 read_only OFF -> ON\n          # stop writes on the old primary\n          SET GLOBAL read_only = 1\n');
    expect(out).toContain('  Noticed outside the plan (no action):\n  ! 127.0.0.19:3306 (server_id 19)');
    for (const n of NOTICES) expect(out).toContain(`  ! ${n.message}\n`);
    expect(lastLine(out)).toBe('Plan: 4 changes in 1 cluster.');
    expect(out.endsWith('.\n')).toBe(true);
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
        ! 127.0.0.19:3306 (server_id 19) replicates from db002 but is in no file; left alone
        ! db005 is unreachable (connect ECONNREFUSED 127.0.0.15:3306); nothing that depends on it is planned

      No changes. Live topology matches the files.
      "
    `);
    expect(out).not.toContain('billing');
  });

  it('renders two clusters and counts them in the closing line', () => {
    const out = renderPlanText(TWO);
    expect(out).toMatchSnapshot();
    expect(out.indexOf('cluster billing')).toBeLessThan(out.indexOf('cluster shop'));
    expect(lastLine(out)).toBe('Plan: 3 changes in 2 clusters.');
  });

  it('uses singular forms for one change in one cluster', () => {
    expect(lastLine(renderPlanText(ONE))).toBe('Plan: 1 change in 1 cluster.');
    const twoInOne = doc([cluster('shop', [readOnlyStep('1', 'db004'), startStep('2', 'db005')])]);
    expect(lastLine(renderPlanText(twoInOne))).toBe('Plan: 2 changes in 1 cluster.');
    const oneEach = doc([cluster('a', [readOnlyStep('1', 'db004')]), cluster('b', [readOnlyStep('1', 'db104')])]);
    expect(lastLine(renderPlanText(oneEach))).toBe('Plan: 2 changes in 2 clusters.');
  });

  it('colors the symbols only when asked', () => {
    expect(renderPlanText(SHOP)).not.toContain('\u001b[');
    expect(renderPlanText(SHOP, { color: false })).not.toContain('\u001b[');
    const colored = renderPlanText(SHOP, { color: true });
    expect(colored).toContain('  \u001b[33m~\u001b[0m db003 source db001 -> db002');
    expect(colored).toContain('  \u001b[32m+\u001b[0m db005 start replication');
    expect(colored).toContain('  \u001b[35m!\u001b[0m db005 is unreachable');
    const remove = doc([cluster('shop', [step('1', 'db009', '-', 'db009 remove', 'not in the file', [], [])])]);
    expect(renderPlanText(remove, { color: true })).toContain('  \u001b[31m-\u001b[0m db009 remove');
    // Without the escapes it is the plain rendering.
    expect(colored.replace(/\u001b\[[0-9;]*m/g, '')).toBe(renderPlanText(SHOP));
  });

  it('does not let server error text drive the terminal or break lines', () => {
    const hostile = doc([cluster('shop', [], [{ kind: 'sql-error', instance: 'db006', message: 'boom\u001b[2J\u001b]0;pwned\u0007\nPlan: 0 changes\u202e' }])]);
    const out = renderPlanText(hostile);
    expect(out).not.toContain('\u001b');
    expect(out).not.toContain('\u0007');
    expect(out).not.toContain('\u202e');
    expect(out).toContain('  ! boom\\x1b[2J\\x1b]0;pwned\\x07\\x0aPlan: 0 changes\\u202e\n');
    expect(lastLine(out)).toBe('No changes. Live topology matches the files.');
  });
});

describe('renderPlanMarkdown', () => {
  it('renders the shop plan for a pull-request comment', () => {
    const out = renderPlanMarkdown(SHOP);
    expect(out).toMatchSnapshot();
    expect(out).toContain('<details><summary>cluster shop: 4 changes, 6 notices</summary>');
    expect(out).toContain('```diff\n! ~ db004 read_only OFF -> ON\n      # a replica must not accept writes\n! ~ switchover db001 -> db002\n');
    expect(out).toContain('!     ~ db001 read_only OFF -> ON\n          # stop writes on the old primary\n');
    expect(out).toContain('+ + db005 start replication\n');
    expect(out).toContain('```sql\n-- step 1: db004 read_only OFF -> ON\nSET GLOBAL read_only = 1;\n');
    expect(out).toContain('-- step 2.2: db002 wait until it executed everything db001 has\n-- wait up to 30s until db002 has executed every GTID db001 has\n');
    expect(out).toContain(`-- step 3: db003 source db001 -> db002\nSTOP SLAVE;\n${CHANGE_MASTER('127.0.0.12')};\nSTART SLAVE;\n`);
    expect(out).toContain('- **unknown-primary**: several members replicate from nobody (db009, db010); cannot tell the primary');
    expect(out.trimEnd().endsWith('</details>')).toBe(true);
  });

  it('puts the summary on the first line', () => {
    expect(renderPlanMarkdown(SHOP).split('\n')[0]).toBe('**Plan: 4 changes in 1 cluster.**');
    expect(renderPlanMarkdown(TWO).split('\n')[0]).toBe('**Plan: 3 changes in 2 clusters.**');
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

      - **unmanaged**: 127.0.0.19:3306 (server\\_id 19) replicates from db002 but is in no file; left alone
      - **unreachable**: db005 is unreachable (connect ECONNREFUSED 127.0.0.15:3306); nothing that depends on it is planned

      </details>
      "
    `);
  });

  it('renders one block per cluster', () => {
    const out = renderPlanMarkdown(TWO);
    expect(out).toMatchSnapshot();
    expect(out.match(/<details>/g)).toHaveLength(2);
    expect(out).toContain('<details><summary>cluster billing: 1 change</summary>');
    expect(out).toContain('<details><summary>cluster shop: 2 changes, 1 notice</summary>');
  });

  it('neutralises hostile notice text', () => {
    const message = 'x```\n</details><script>alert(1)</script> & `rm -rf` [click](https://evil.example) **bold**';
    const hostile = doc([cluster('shop', [readOnlyStep('1', 'db004')], [{ kind: 'sql-error', instance: 'db006', message }])]);
    const out = renderPlanMarkdown(hostile);
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('</details><script');
    expect(out.match(/<\/details>/g)).toHaveLength(1);
    expect(out).not.toContain('x```');
    expect(out).toContain(
      '- **sql-error**: x&#96;&#96;&#96;\\\\x0a&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#96;rm -rf&#96; \\[click\\](https://evil.example) \\*\\*bold\\*\\*',
    );
    // Still exactly one bullet line for the notice: the newline did not start a new block.
    expect(out.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(1);
  });

  it('escapes the cluster name in the summary element', () => {
    const out = renderPlanMarkdown(doc([cluster('a<b>&`c`', [readOnlyStep('1', 'db004')])]));
    expect(out).toContain('<summary>cluster a&lt;b&gt;&amp;&#96;c&#96;: 1 change</summary>');
  });

  it('uses a longer fence when content holds backtick runs', () => {
    const sneaky = step('1', 'db004', '~', 'db004 read_only OFF -> ON', 'reason with ```` four', ['SELECT 1 /* ``` */'], [{ kind: 'set-read-only', instance: 'db004', readOnly: true }]);
    const out = renderPlanMarkdown(doc([cluster('shop', [sneaky])]));
    expect(out).toContain('`````diff\n! ~ db004 read_only OFF -> ON\n      # reason with ```` four\n`````\n');
    expect(out).toContain('````sql\n-- step 1: db004 read_only OFF -> ON\nSELECT 1 /* ``` */;\n````\n');
    // Every fence that opens is closed by the same run, and nothing in between reaches that length.
    const fences = out.split('\n').filter((l) => /^`{3,}/.test(l));
    expect(fences).toEqual(['`````diff', '`````', '````sql', '````']);
  });

  it('stays under 60 000 bytes for 400 clusters x 10 steps and says it was truncated', () => {
    const clusters = Array.from({ length: 400 }, (_, c) =>
      cluster(
        `cluster${String(c).padStart(3, '0')}`,
        Array.from({ length: 10 }, (_, s) => repoint(String(s + 1), `db${s + 10}`, `db${s}`, `db${s + 1}`, `10.0.${c % 250}.${s + 1}`)),
      ),
    );
    const big = doc(clusters);
    const full = renderPlanMarkdown(big, { maxBytes: Number.MAX_SAFE_INTEGER });
    const out = renderPlanMarkdown(big);
    expect(bytes(full)).toBeGreaterThan(60_000);
    expect(bytes(out)).toBeLessThanOrEqual(60_000);
    expect(out.split('\n')[0]).toBe('**Plan: 4000 changes in 400 clusters.**');
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
    expect(tiny.split('\n')[0]).toBe('**Plan: 3 changes in 2 clusters.**');
    expect(tiny).toContain('_Plan truncated: 0 of 2 clusters shown');

    // Even a limit below the note itself is respected.
    expect(bytes(renderPlanMarkdown(TWO, { maxBytes: 50 }))).toBeLessThanOrEqual(50);
    // A plan that fits is not touched.
    expect(renderPlanMarkdown(TWO, { maxBytes: bytes(full) })).toBe(full);
  });

  it('measures the limit in UTF-8 bytes, not characters', () => {
    const wide = doc([cluster('billing', [readOnlyStep('1', 'db104')]), cluster('shop', [readOnlyStep('1', 'db004')], [{ kind: 'sql-error', message: 'Ошибка: таблица не найдена '.repeat(40) }])]);
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
    const out = renderPlanJson(SHOP);
    expect(out).toBe(JSON.stringify(SHOP, null, 2) + '\n');
    expect(JSON.parse(out)).toEqual(SHOP);
    expect(renderPlanJson(NOTICES_ONLY)).toMatchSnapshot();
  });

  it('has the documented identity', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.$id).toBe('https://topogit.dev/schemas/plan.schema.json');
  });

  it('validates every rendered plan', () => {
    for (const d of [SHOP, EMPTY, NOTICES_ONLY, TWO, ONE]) expect(check(JSON.parse(renderPlanJson(d)))).toEqual([]);
  });

  it('rejects an unknown action kind', () => {
    const bad = JSON.parse(renderPlanJson(ONE)) as { clusters: { steps: { actions: unknown[] }[] }[] };
    (bad.clusters[0]?.steps[0] as { actions: unknown[] }).actions = [{ kind: 'drop-database', instance: 'db004' }];
    expect(validate(bad)).toBe(false);
  });

  it('rejects unknown substep actions, extra fields and wrong constants', () => {
    const mutate = (f: (d: Record<string, any>) => void) => {
      const d = JSON.parse(renderPlanJson(SHOP)) as Record<string, any>;
      f(d);
      return validate(d);
    };
    expect(mutate(() => {})).toBe(true);
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
