// canReplicateFrom / hasAll / parseMariadbEntries: may a replica be pointed at a source without
// losing or forking anything? Table cases for both flavors, then properties for MySQL sets.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canReplicateFrom, hasAll, parseMariadbEntries, type Reachability } from '../../src/core/errant.js';
import { GtidParseError, formatMysqlGtidSet, parseMysqlGtidSet, subtractMysql } from '../../src/core/gtid.js';
import type { Flavor, GtidState } from '../../src/core/model.js';

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = 'c5e1f0a2-cf0d-11ea-8b7a-0242ac110002';
const U3 = '73f86016-978b-11ee-ade5-8d2a2a562feb';

/** A MySQL state: gtid_executed only. */
const my = (executed: string): GtidState => ({ executed });
/** A MariaDB state: gtid_current_pos, and gtid_binlog_state when given. */
const ma = (executed: string, binlogState?: string): GtidState => ({ executed, ...(binlogState !== undefined ? { binlogState } : {}) });

interface Case {
  readonly title: string;
  readonly flavor: Flavor;
  readonly replica: GtidState;
  readonly source: GtidState;
  readonly primary: GtidState;
  readonly want: Reachability | { readonly kind: 'unknown'; readonly why: RegExp };
}

const CASES: readonly Case[] = [
  // MySQL ------------------------------------------------------------------------------------
  { title: 'mysql: equal sets', flavor: 'mysql', replica: my(`${U1}:1-5`), source: my(`${U1}:1-5`), primary: my(`${U1}:1-5`), want: { kind: 'ok' } },
  { title: 'mysql: replica behind its source', flavor: 'mysql', replica: my(`${U1}:1-3`), source: my(`${U1}:1-5,${U2}:1-2`), primary: my(`${U1}:1-5,${U2}:1-2`), want: { kind: 'ok' } },
  { title: 'mysql: empty replica', flavor: 'mysql', replica: my(''), source: my(`${U1}:1-5`), primary: my(`${U1}:1-5`), want: { kind: 'ok' } },
  { title: 'mysql: both empty', flavor: 'mysql', replica: my(''), source: my(''), primary: my(''), want: { kind: 'ok' } },
  {
    title: 'mysql: source lacks what the primary has: source-behind naming the missing part',
    flavor: 'mysql',
    replica: my(`${U1}:1-7`),
    source: my(`${U1}:1-5`),
    primary: my(`${U1}:1-9`),
    want: { kind: 'source-behind', missing: `${U1}:6-7` },
  },
  {
    title: 'mysql: a uuid neither the source nor the primary has: errant',
    flavor: 'mysql',
    replica: my(`${U1}:1-5,${U3}:1-3`),
    source: my(`${U1}:1-5,${U2}:1-42`),
    primary: my(`${U1}:1-5,${U2}:1-42`),
    want: { kind: 'errant', errant: `${U3}:1-3` },
  },
  {
    title: 'mysql: errant and behind at once: only the errant part is named',
    flavor: 'mysql',
    replica: my(`${U1}:1-6,${U3}:1-2`),
    source: my(`${U1}:1-5`),
    primary: my(`${U1}:1-6`),
    want: { kind: 'errant', errant: `${U3}:1-2` },
  },
  {
    title: 'mysql: a hole in the middle of an interval',
    flavor: 'mysql',
    replica: my(`${U1}:1-10`),
    source: my(`${U1}:1-4:6-10`),
    primary: my(`${U1}:1-4:6-12`),
    want: { kind: 'errant', errant: `${U1}:5` },
  },
  {
    title: 'mysql: tagged GTIDs (8.4) the source lacks but the primary has',
    flavor: 'mysql',
    replica: my(`${U1}:1-5:alpha:1-2`),
    source: my(`${U1}:1-5`),
    primary: my(`${U1}:1-5:alpha:1-3`),
    want: { kind: 'source-behind', missing: `${U1}:alpha:1-2` },
  },
  {
    title: 'mysql: the same uuid under another tag is a different transaction',
    flavor: 'mysql',
    replica: my(`${U1}:1-5:beta:1`),
    source: my(`${U1}:1-5:alpha:1`),
    primary: my(`${U1}:1-5:alpha:1`),
    want: { kind: 'errant', errant: `${U1}:beta:1` },
  },
  {
    title: 'mysql: sets as the server prints them (newline after a comma, upper-case uuid)',
    flavor: 'mysql',
    replica: my(`${U1.toUpperCase()}:1-5,\n${U2}:1-2`),
    source: my(`${U2}:1-3,\n${U1}:1-5`),
    primary: my(`${U2}:1-3,${U1}:1-5`),
    want: { kind: 'ok' },
  },
  { title: 'mysql: garbage replica text', flavor: 'mysql', replica: my('garbage'), source: my(`${U1}:1-5`), primary: my(`${U1}:1-5`), want: { kind: 'unknown', why: /^unreadable GTID state: .*garbage/ } },
  { title: 'mysql: garbage source text', flavor: 'mysql', replica: my(`${U1}:1-5`), source: my(`${U1}:1-x`), primary: my(`${U1}:1-5`), want: { kind: 'unknown', why: /^unreadable GTID state/ } },
  { title: 'mysql: garbage primary text when it is consulted', flavor: 'mysql', replica: my(`${U1}:1-7`), source: my(`${U1}:1-5`), primary: my('nope'), want: { kind: 'unknown', why: /^unreadable GTID state/ } },
  { title: 'mysql: a MariaDB position handed to the mysql flavor', flavor: 'mysql', replica: my('0-1-4'), source: my('0-1-4'), primary: my('0-1-4'), want: { kind: 'unknown', why: /^unreadable GTID state/ } },

  // MariaDB ----------------------------------------------------------------------------------
  { title: 'mariadb: equal positions', flavor: 'mariadb', replica: ma('0-1-4', '0-1-4'), source: ma('0-1-4', '0-1-4'), primary: ma('0-1-4', '0-1-4'), want: { kind: 'ok' } },
  { title: 'mariadb: empty replica', flavor: 'mariadb', replica: ma(''), source: ma('0-1-4', '0-1-4'), primary: ma('0-1-4', '0-1-4'), want: { kind: 'ok' } },
  {
    title: 'mariadb: replica behind a source whose binlog state carries the replica position',
    flavor: 'mariadb',
    replica: ma('0-1-4', '0-1-4'),
    source: ma('0-1-6', '0-1-6'),
    primary: ma('0-1-6', '0-1-6'),
    want: { kind: 'ok' },
  },
  {
    title: 'mariadb: replica ahead of an intermediate source, the primary has it: source-behind',
    flavor: 'mariadb',
    replica: ma('0-1-6', '0-1-6'),
    source: ma('0-1-5', '0-1-5'),
    primary: ma('0-1-6', '0-1-6'),
    want: { kind: 'source-behind', missing: '0-1-6' },
  },
  {
    title: 'mariadb: replica ahead of its source, primary further still (its binlog state proves it): source-behind',
    flavor: 'mariadb',
    replica: ma('0-1-6', '0-1-6'),
    source: ma('0-1-5', '0-1-5'),
    primary: ma('0-1-8', '0-1-8'),
    want: { kind: 'source-behind', missing: '0-1-6' },
  },
  {
    title: 'mariadb: replica at 0-3-7, primary at 0-1-6 (binlog state 0-1-6): errant',
    flavor: 'mariadb',
    replica: ma('0-3-7', '0-1-6,0-3-7'),
    source: ma('0-1-6', '0-1-6'),
    primary: ma('0-1-6', '0-1-6'),
    want: { kind: 'errant', errant: '0-3-7' },
  },
  {
    title: 'mariadb: same seq, different server id: errant',
    flavor: 'mariadb',
    replica: ma('0-3-6', '0-1-5,0-3-6'),
    source: ma('0-1-6', '0-1-6'),
    primary: ma('0-1-6', '0-1-6'),
    want: { kind: 'errant', errant: '0-3-6' },
  },
  {
    title: "mariadb: a later seq, the replica's GTID present through the source's binlog state: ok",
    flavor: 'mariadb',
    replica: ma('0-3-5', '0-1-4,0-3-5'),
    source: ma('0-1-8', '0-3-5,0-1-8'),
    primary: ma('0-1-8', '0-3-5,0-1-8'),
    want: { kind: 'ok' },
  },
  {
    title: "mariadb: a later seq, but the binlog state's last GTID of that server is older: errant",
    flavor: 'mariadb',
    replica: ma('0-3-5', '0-3-5'),
    source: ma('0-1-8', '0-3-4,0-1-8'),
    primary: ma('0-1-8', '0-3-4,0-1-8'),
    want: { kind: 'errant', errant: '0-3-5' },
  },
  {
    // Conservative: a later position alone proves nothing about which server wrote the earlier seq.
    title: 'mariadb: a later seq and no binlog state at all: treated as missing (errant)',
    flavor: 'mariadb',
    replica: ma('0-1-4'),
    source: ma('0-1-6'),
    primary: ma('0-1-6'),
    want: { kind: 'errant', errant: '0-1-4' },
  },
  {
    title: 'mariadb multi-domain: a domain the source lacks but the primary has: source-behind',
    flavor: 'mariadb',
    replica: ma('0-1-4,1-2-3', '0-1-4,1-2-3'),
    source: ma('0-1-4', '0-1-4'),
    primary: ma('0-1-4,1-2-3', '0-1-4,1-2-3'),
    want: { kind: 'source-behind', missing: '1-2-3' },
  },
  {
    title: 'mariadb multi-domain: a domain nobody else has: errant',
    flavor: 'mariadb',
    replica: ma('0-1-4,1-2-3', '0-1-4,1-2-3'),
    source: ma('0-1-4', '0-1-4'),
    primary: ma('0-1-4', '0-1-4'),
    want: { kind: 'errant', errant: '1-2-3' },
  },
  {
    title: 'mariadb multi-domain: the source has a domain the replica lacks: ok',
    flavor: 'mariadb',
    replica: ma('0-1-4', '0-1-4'),
    source: ma('0-1-4,1-2-9', '0-1-4,1-2-9'),
    primary: ma('0-1-4,1-2-9', '0-1-4,1-2-9'),
    want: { kind: 'ok' },
  },
  {
    title: 'mariadb multi-domain: behind in one domain, errant in another: only the errant one named',
    flavor: 'mariadb',
    replica: ma('0-1-6,1-3-2', '0-1-6,1-2-1,1-3-2'),
    source: ma('0-1-5,1-2-1', '0-1-5,1-2-1'),
    primary: ma('0-1-6,1-2-1', '0-1-6,1-2-1'),
    want: { kind: 'errant', errant: '1-3-2' },
  },
  {
    title: 'mariadb multi-domain: several errant entries are all named, in replica order',
    flavor: 'mariadb',
    replica: ma('0-3-9,2-3-1', '0-3-9,2-3-1'),
    source: ma('0-1-6', '0-1-6'),
    primary: ma('0-1-6', '0-1-6'),
    want: { kind: 'errant', errant: '0-3-9,2-3-1' },
  },
  { title: 'mariadb: garbage replica text', flavor: 'mariadb', replica: ma('garbage'), source: ma('0-1-4', '0-1-4'), primary: ma('0-1-4', '0-1-4'), want: { kind: 'unknown', why: /^unreadable GTID state: .*garbage/ } },
  { title: 'mariadb: garbage source text', flavor: 'mariadb', replica: ma('0-1-4'), source: ma('0-1'), primary: ma('0-1-4'), want: { kind: 'unknown', why: /^unreadable GTID state/ } },
  { title: 'mariadb: garbage binlog state when it is consulted', flavor: 'mariadb', replica: ma('0-1-4'), source: ma('0-1-6', 'x'), primary: ma('0-1-6', '0-1-6'), want: { kind: 'unknown', why: /^unreadable GTID state/ } },
  { title: 'mariadb: a MySQL set handed to the mariadb flavor', flavor: 'mariadb', replica: ma(`${U1}:1-5`), source: ma('0-1-4'), primary: ma('0-1-4'), want: { kind: 'unknown', why: /^unreadable GTID state/ } },
];

describe('canReplicateFrom', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const got = canReplicateFrom(c.flavor, c.replica, c.source, c.primary);
    if (c.want.kind === 'unknown' && 'why' in c.want && c.want.why instanceof RegExp) {
      expect(got.kind).toBe('unknown');
      expect(got.kind === 'unknown' ? got.why : '').toMatch(c.want.why);
    } else {
      expect(got).toEqual(c.want);
    }
  });

  it('is the same verdict from the same input (no hidden state)', () => {
    for (const c of CASES) expect(canReplicateFrom(c.flavor, c.replica, c.source, c.primary)).toEqual(canReplicateFrom(c.flavor, c.replica, c.source, c.primary));
  });
});

describe('hasAll', () => {
  const cases: readonly [string, Flavor, GtidState, GtidState, boolean][] = [
    ['mysql: superset', 'mysql', my(`${U1}:1-9,${U2}:1-3`), my(`${U1}:1-5`), true],
    ['mysql: equal', 'mysql', my(`${U1}:1-5`), my(`${U1}:1-5`), true],
    ['mysql: b empty', 'mysql', my(`${U1}:1-5`), my(''), true],
    ['mysql: strict subset', 'mysql', my(`${U1}:1-4`), my(`${U1}:1-5`), false],
    ['mysql: disjoint uuids', 'mysql', my(`${U1}:1-5`), my(`${U2}:1`), false],
    ['mysql: garbage', 'mysql', my('garbage'), my(`${U1}:1-5`), false],
    ['mariadb: equal', 'mariadb', ma('0-1-4', '0-1-4'), ma('0-1-4', '0-1-4'), true],
    ['mariadb: a further along, binlog state covers b', 'mariadb', ma('0-1-6', '0-1-6'), ma('0-1-4', '0-1-4'), true],
    ['mariadb: a further along without a binlog state', 'mariadb', ma('0-1-6'), ma('0-1-4'), false],
    ['mariadb: a behind', 'mariadb', ma('0-1-4', '0-1-4'), ma('0-1-6', '0-1-6'), false],
    ['mariadb: same seq, other server', 'mariadb', ma('0-1-5', '0-1-5'), ma('0-2-5', '0-1-4,0-2-5'), false],
    ['mariadb: b has a domain a lacks', 'mariadb', ma('0-1-6', '0-1-6'), ma('0-1-6,1-2-1', '0-1-6,1-2-1'), false],
    ['mariadb: a has an extra domain', 'mariadb', ma('0-1-6,1-2-1', '0-1-6,1-2-1'), ma('0-1-6', '0-1-6'), true],
    ['mariadb: b empty', 'mariadb', ma('0-1-6', '0-1-6'), ma(''), true],
    ['mariadb: garbage', 'mariadb', ma('0-1-6', '0-1-6'), ma('garbage'), false],
  ];
  it.each(cases)('%s', (_t, flavor, a, b, want) => {
    expect(hasAll(flavor, a, b)).toBe(want);
  });
});

describe('parseMariadbEntries', () => {
  it('reads positions and binlog states (a state repeats a domain)', () => {
    expect(parseMariadbEntries('')).toEqual([]);
    expect(parseMariadbEntries('  ')).toEqual([]);
    expect(parseMariadbEntries('0-1-4')).toEqual([{ domain: 0, serverId: 1, seq: 4n }]);
    expect(parseMariadbEntries(' 0-3-5 , 0-1-8,1-2-18446744073709551615')).toEqual([
      { domain: 0, serverId: 3, seq: 5n },
      { domain: 0, serverId: 1, seq: 8n },
      { domain: 1, serverId: 2, seq: 18446744073709551615n },
    ]);
  });
  it.each(['garbage', '0-1', '0-1-4,', '0-1-x', '-1-1-1', `${U1}:1-5`])('rejects %j', (text) => {
    expect(() => parseMariadbEntries(text)).toThrow(GtidParseError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over MySQL sets: transactions drawn from a small universe so sets overlap often.

const UUIDS = [U1, U2, U3] as const;
type Txn = readonly [number, number]; // [uuid index, gno]

const txn = fc.tuple(fc.integer({ min: 0, max: UUIDS.length - 1 }), fc.integer({ min: 1, max: 30 }));
const key = ([u, n]: Txn): string => `${u}:${n}`;

/** GTID text of a list of transactions, one group per transaction, in the order given. */
function text(ts: readonly Txn[]): string {
  return ts.map(([u, n]) => `${UUIDS[u]}:${n}`).join(',');
}

/** b, and a subset a of b (chosen by a mask). */
const subsetPair = fc
  .array(txn, { maxLength: 40 })
  .chain((b) => fc.tuple(fc.constant(b), fc.array(fc.boolean(), { minLength: b.length, maxLength: b.length })))
  .map(([b, mask]) => ({ b, a: b.filter((_, k) => mask[k]) }));

describe('canReplicateFrom (mysql) properties', () => {
  it('a ⊆ b: canReplicateFrom(mysql, a, b, b) is ok', () => {
    fc.assert(
      fc.property(subsetPair, ({ a, b }) => {
        expect(canReplicateFrom('mysql', my(text(a)), my(text(b)), my(text(b)))).toEqual({ kind: 'ok' });
      }),
    );
  });

  it('a has a transaction b and the primary lack: errant, naming exactly what a has beyond the primary', () => {
    fc.assert(
      fc.property(subsetPair, txn, fc.array(txn, { maxLength: 10 }), ({ a, b }, extra, more) => {
        const bKeys = new Set(b.map(key));
        fc.pre(!bKeys.has(key(extra)));
        const replica = [...a, extra, ...more];
        const v = canReplicateFrom('mysql', my(text(replica)), my(text(b)), my(text(b)));
        expect(v.kind).toBe('errant');
        if (v.kind !== 'errant') return;
        const errant = parseMysqlGtidSet(v.errant);
        const want = subtractMysql(parseMysqlGtidSet(text(replica)), parseMysqlGtidSet(text(b)));
        expect(v.errant).toBe(formatMysqlGtidSet(want));
        expect(formatMysqlGtidSet(subtractMysql(parseMysqlGtidSet(text([extra])), errant))).toBe('');
      }),
    );
  });

  it('a ⊆ primary but not ⊆ source: source-behind, missing = a minus source', () => {
    fc.assert(
      fc.property(subsetPair, fc.array(txn, { minLength: 1, maxLength: 10 }), ({ a: source, b: rest }, ahead) => {
        // replica = source-part ∪ ahead; primary = everything.
        const sourceKeys = new Set(source.map(key));
        fc.pre(ahead.some((t) => !sourceKeys.has(key(t))));
        const replica = [...source, ...ahead];
        const primary = [...rest, ...replica];
        const v = canReplicateFrom('mysql', my(text(replica)), my(text(source)), my(text(primary)));
        const missing = formatMysqlGtidSet(subtractMysql(parseMysqlGtidSet(text(replica)), parseMysqlGtidSet(text(source))));
        expect(v).toEqual({ kind: 'source-behind', missing });
      }),
    );
  });

  it('hasAll(mysql, b, a) holds exactly when a ⊆ b', () => {
    fc.assert(
      fc.property(fc.array(txn, { maxLength: 30 }), fc.array(txn, { maxLength: 30 }), (x, y) => {
        const yKeys = new Set(y.map(key));
        expect(hasAll('mysql', my(text(y)), my(text(x)))).toBe(x.every((t) => yKeys.has(key(t))));
      }),
    );
  });
});
