import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  GtidParseError,
  MAX_GNO,
  compareGtid,
  countMysql,
  equalMysql,
  formatGtid,
  formatMariadbGtidPos,
  formatMysqlGtidSet,
  gtidIsEmpty,
  gtidIsSubset,
  gtidSubtract,
  gtidSummary,
  gtidUnion,
  intersectMysql,
  isEmptyMysql,
  isSubsetMariadb,
  isSubsetMysql,
  parseGtid,
  parseMariadbGtidPos,
  parseMysqlGtidSet,
  subtractMariadb,
  subtractMysql,
  unionMariadb,
  unionMysql,
  type GtidSet,
  type MariadbGtidPos,
  type MysqlGtidSet,
} from '../../src/core/gtid.js';

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = '2174b383-5441-11e8-b90a-c80aa9429562';
const U3 = 'ed102faf-eb6c-11ee-8f29-0242ac110002';

const my = (t: string): MysqlGtidSet => parseMysqlGtidSet(t);
const fmy = (t: string): string => formatMysqlGtidSet(my(t));
const ma = (t: string): MariadbGtidPos => parseMariadbGtidPos(t);
const fma = (t: string): string => formatMariadbGtidPos(ma(t));

describe('parseMysqlGtidSet / formatMysqlGtidSet', () => {
  it.each([
    ['', ''],
    ['   \n ', ''],
    [`${U1}:1-5`, `${U1}:1-5`],
    [`${U1}:23`, `${U1}:23`],
    [`${U1}:1-5:11-18`, `${U1}:1-5:11-18`],
    // real server output: newline and spaces after commas; sorted by uuid on output
    [`${U1}:1-5:11-18,\n${U2}:1-3`, `${U2}:1-3,${U1}:1-5:11-18`],
    [`${U2}:1-3,\n  ${U1}:1-5`, `${U2}:1-3,${U1}:1-5`],
    // upper case uuid, as in the manual
    ['3E11FA47-71CA-11E1-9E33-C80AA9429562:23', `${U1}:23`],
    // MySQL 8.4 tagged GTIDs
    [`${U3}:alpha:1-3`, `${U3}:alpha:1-3`],
    [`${U3}:1-3:alpha:1-3`, `${U3}:1-3:alpha:1-3`],
    [`${U3}:ALPHA:1-3`, `${U3}:alpha:1-3`],
    [`${U1}:1-3:tag1:4-7:tag2:1`, `${U1}:1-3:tag1:4-7:tag2:1`],
    // untagged first, then tags sorted, regardless of input order
    [`${U1}:zeta:1,${U1}:1-3:alpha:2-4`, `${U1}:1-3:alpha:2-4:zeta:1`],
    // numbers after a tag stay with that tag
    [`${U1}:zeta:1:5-6`, `${U1}:zeta:1:5-6`],
    [`${U3}:beta:5,${U3}:alpha:1,${U3}:7`, `${U3}:7:alpha:1:beta:5`],
    [`${U1}:_t_9:1`, `${U1}:_t_9:1`],
    [`${U1}:${MAX_GNO}`, `${U1}:${MAX_GNO}`],
  ])('%j -> %j', (input, expected) => {
    expect(fmy(input)).toBe(expected);
  });

  it.each([
    // adjacent intervals merge
    [`${U1}:1-5:6-10`, `${U1}:1-10`],
    [`${U1}:1:2:3`, `${U1}:1-3`],
    // overlapping intervals merge
    [`${U1}:1-5:3-8`, `${U1}:1-8`],
    [`${U1}:3-8:1-5`, `${U1}:1-8`],
    [`${U1}:1-10:2-3`, `${U1}:1-10`],
    // unsorted and gapped intervals sort
    [`${U1}:20-30:1-5`, `${U1}:1-5:20-30`],
    // repeated uuid groups merge
    [`${U1}:1-5,${U1}:6-7`, `${U1}:1-7`],
    [`${U1}:tag:1-2,${U1}:TAG:3`, `${U1}:tag:1-3`],
    // a tag and the untagged numbers of the same uuid stay apart
    [`${U1}:1-2:t:3-4`, `${U1}:1-2:t:3-4`],
  ])('normalises %j -> %j', (input, expected) => {
    expect(fmy(input)).toBe(expected);
  });

  it('exposes a structured form', () => {
    expect(my(`${U1}:1-3:tag:5`)).toEqual([
      { uuid: U1, tag: '', intervals: [{ start: 1n, end: 3n }] },
      { uuid: U1, tag: 'tag', intervals: [{ start: 5n, end: 5n }] },
    ]);
  });

  it.each([
    ['abc', 'abc'],
    ['uuid:0', 'uuid:0'],
    [`${U1}:0`, `${U1}:0`],
    [`${U1}:5-3`, `${U1}:5-3`],
    [`${U1}:1-x`, `${U1}:1-x`],
    [`${U1}:-1`, `${U1}:-1`],
    [`${U1}`, `${U1}`],
    [`${U1}:`, `${U1}:`],
    [`${U1}:1-5,`, ''],
    [`${U1}:1-5,,${U2}:1`, ''],
    [`${U1}:1-5:tag`, `${U1}:1-5:tag`],
    [`${U1}:9tag:1`, `${U1}:9tag:1`],
    [`${U1}:${'t'.repeat(33)}:1`, `${U1}:${'t'.repeat(33)}:1`],
    [`${U1}:${MAX_GNO + 1n}`, `${U1}:${MAX_GNO + 1n}`],
    ['3e11fa47-71ca-11e1-9e33-c80aa942956:1', '3e11fa47-71ca-11e1-9e33-c80aa942956:1'],
    ['0-1-5', '0-1-5'],
  ])('rejects %j', (input, fragment) => {
    expect(() => my(input)).toThrow(GtidParseError);
    try {
      my(input);
    } catch (e) {
      expect(e).toBeInstanceOf(GtidParseError);
      expect((e as GtidParseError).fragment).toBe(fragment);
      expect((e as Error).message).toContain(`"${fragment}"`);
    }
  });
});

describe('MySQL set operations', () => {
  it.each([
    [`${U1}:1-5`, `${U1}:6-10`, `${U1}:1-10`],
    [`${U1}:1-5`, `${U1}:8-10`, `${U1}:1-5:8-10`],
    [`${U1}:1-5`, `${U2}:1-2`, `${U2}:1-2,${U1}:1-5`],
    [`${U1}:1-5`, '', `${U1}:1-5`],
    [`${U1}:1-5`, `${U1}:t:1-5`, `${U1}:1-5:t:1-5`],
    [`${U1}:1-3:7-9`, `${U1}:4-6`, `${U1}:1-9`],
  ])('union %j ∪ %j = %j', (a, b, expected) => {
    expect(formatMysqlGtidSet(unionMysql(my(a), my(b)))).toBe(expected);
  });

  it.each([
    [`${U1}:1-10`, `${U1}:3-4`, `${U1}:1-2:5-10`],
    [`${U1}:1-10`, `${U1}:1-10`, ''],
    [`${U1}:1-10`, `${U1}:1-20`, ''],
    [`${U1}:1-10`, `${U1}:5-20`, `${U1}:1-4`],
    [`${U1}:1-10`, `${U1}:1`, `${U1}:2-10`],
    [`${U1}:1-10`, `${U1}:10`, `${U1}:1-9`],
    [`${U1}:1-10:20-30`, `${U1}:5-25`, `${U1}:1-4:26-30`],
    [`${U1}:1-10`, `${U1}:2:4:6`, `${U1}:1:3:5:7-10`],
    [`${U1}:1-10,${U2}:1-3`, `${U2}:1-3`, `${U1}:1-10`],
    [`${U1}:1-10`, `${U2}:1-10`, `${U1}:1-10`],
    [`${U1}:1-5:t:1-5`, `${U1}:t:1-5`, `${U1}:1-5`],
    [`${U1}:1-5:t:1-5`, `${U1}:1-5`, `${U1}:t:1-5`],
    ['', `${U1}:1-5`, ''],
  ])('subtract %j − %j = %j', (a, b, expected) => {
    expect(formatMysqlGtidSet(subtractMysql(my(a), my(b)))).toBe(expected);
  });

  it.each([
    [`${U1}:1-10`, `${U1}:5-20`, `${U1}:5-10`],
    [`${U1}:1-10,${U2}:1-3`, `${U2}:2-9`, `${U2}:2-3`],
    [`${U1}:1-5`, `${U1}:t:1-5`, ''],
  ])('intersect %j ∩ %j = %j', (a, b, expected) => {
    expect(formatMysqlGtidSet(intersectMysql(my(a), my(b)))).toBe(expected);
  });

  it.each([
    ['', '', true],
    ['', `${U1}:1`, true],
    [`${U1}:1`, '', false],
    [`${U1}:1-5`, `${U1}:1-10`, true],
    [`${U1}:1-10`, `${U1}:1-5`, false],
    [`${U1}:2-3:7`, `${U1}:1-10`, true],
    [`${U1}:1-5`, `${U1}:1-4:6-10`, false],
    [`${U1}:1-5`, `${U1}:1-5,${U2}:1`, true],
    [`${U1}:t:1-5`, `${U1}:1-5`, false],
  ])('isSubset %j ⊆ %j = %s', (a, b, expected) => {
    expect(isSubsetMysql(my(a), my(b))).toBe(expected);
  });

  it('equal, count, empty', () => {
    expect(equalMysql(my(`${U1}:1-5:6-7`), my(`${U1}:1-7`))).toBe(true);
    expect(equalMysql(my(`${U1}:1-5`), my(`${U1}:1-6`))).toBe(false);
    expect(countMysql(my(''))).toBe(0n);
    expect(countMysql(my(`${U1}:1-5:11-18,\n${U2}:1-3`))).toBe(16n);
    expect(countMysql(my(`${U1}:1-3:tag1:4-7:tag2:1`))).toBe(8n);
    expect(countMysql(my(`${U1}:1-${MAX_GNO}`))).toBe(MAX_GNO);
    expect(isEmptyMysql(my(''))).toBe(true);
    expect(isEmptyMysql(my(`${U1}:1`))).toBe(false);
  });
});

describe('MariaDB GTID positions', () => {
  it.each([
    ['', ''],
    ['0-1-1042', '0-1-1042'],
    ['0-1-5,1-2-9', '0-1-5,1-2-9'],
    ['1-2-9,0-1-5', '0-1-5,1-2-9'],
    ['0-1-5,\n 1-2-9', '0-1-5,1-2-9'],
    ['10-1-1,2-1-1', '2-1-1,10-1-1'],
    ['0-4294967295-18446744073709551615', '0-4294967295-18446744073709551615'],
  ])('%j -> %j', (input, expected) => {
    expect(fma(input)).toBe(expected);
  });

  it('exposes a domain map', () => {
    const p = ma('0-1-5,1-2-9');
    expect(p.get(0)).toEqual({ domain: 0, serverId: 1, seq: 5n });
    expect(p.get(1)).toEqual({ domain: 1, serverId: 2, seq: 9n });
    expect(p.size).toBe(2);
  });

  it.each([
    ['abc', 'abc'],
    ['0-1', '0-1'],
    ['0-1-x', '0-1-x'],
    ['0-1-5-6', '0-1-5-6'],
    ['-1-1-5', '-1-1-5'],
    ['0--1-5', '0--1-5'],
    ['0-1-5,0-2-9', '0-2-9'],
    ['0-1-5,', ''],
    ['4294967296-1-1', '4294967296-1-1'],
    ['0-1-18446744073709551616', '0-1-18446744073709551616'],
    [`${U1}:1-5`, `${U1}:1-5`],
  ])('rejects %j', (input, fragment) => {
    expect(() => ma(input)).toThrow(GtidParseError);
    try {
      ma(input);
    } catch (e) {
      expect((e as GtidParseError).fragment).toBe(fragment);
      expect((e as Error).message).toContain(fragment);
    }
  });

  it.each([
    ['0-1-5', '0-1-9', '0-1-9'],
    ['0-1-9', '0-1-5', '0-1-9'],
    ['0-1-5', '0-2-5', '0-1-5'], // tie keeps a's server id
    ['0-2-5', '0-1-5', '0-2-5'],
    ['0-1-5', '1-2-3', '0-1-5,1-2-3'],
    ['0-1-5,1-2-3', '0-3-7', '0-3-7,1-2-3'],
    ['', '0-1-5', '0-1-5'],
  ])('union %j ∪ %j = %j', (a, b, expected) => {
    expect(formatMariadbGtidPos(unionMariadb(ma(a), ma(b)))).toBe(expected);
  });

  it.each([
    ['0-1-9', '0-1-5', '0-1-9'],
    ['0-1-5', '0-1-9', ''],
    ['0-1-5', '0-1-5', ''],
    ['0-1-5,1-2-9', '0-1-5', '1-2-9'],
    ['0-1-5,1-2-9', '1-2-10', '0-1-5'],
    ['0-1-5', '', '0-1-5'],
    ['', '0-1-5', ''],
  ])('subtract %j − %j = %j', (a, b, expected) => {
    expect(formatMariadbGtidPos(subtractMariadb(ma(a), ma(b)))).toBe(expected);
  });

  it.each([
    ['', '', true],
    ['', '0-1-5', true],
    ['0-1-5', '', false],
    ['0-1-5', '0-1-9', true],
    ['0-1-9', '0-1-5', false],
    ['0-1-5', '0-2-5', true],
    ['0-1-5,1-2-3', '0-1-5', false],
    ['0-1-5', '0-1-5,1-2-3', true],
  ])('isSubset %j ⊆ %j = %s', (a, b, expected) => {
    expect(isSubsetMariadb(ma(a), ma(b))).toBe(expected);
  });
});

describe('flavor-neutral helpers', () => {
  const m = (t: string): GtidSet => parseGtid('mysql', t);
  const d = (t: string): GtidSet => parseGtid('mariadb', t);

  it('parses and formats per flavor', () => {
    expect(formatGtid(m(`${U1}:1-5,\n${U2}:1`))).toBe(`${U2}:1,${U1}:1-5`);
    expect(formatGtid(d('1-2-9,0-1-5'))).toBe('0-1-5,1-2-9');
    expect(() => parseGtid('mariadb', `${U1}:1-5`)).toThrow(GtidParseError);
    expect(() => parseGtid('mysql', '0-1-5')).toThrow(GtidParseError);
  });

  it.each([
    [m(`${U1}:1-5`), m(`${U1}:1-5`), 'equal'],
    [m(''), m(''), 'equal'],
    [m(`${U1}:1-10`), m(`${U1}:1-5`), 'ahead'],
    [m(`${U1}:1-5`), m(`${U1}:1-10`), 'behind'],
    [m(`${U1}:1-5,${U2}:1`), m(`${U1}:1-6`), 'diverged'],
    [m(`${U1}:1-5`), m(''), 'ahead'],
    [m(''), m(`${U1}:1`), 'behind'],
    [d('0-1-5'), d('0-1-5'), 'equal'],
    [d('0-1-9'), d('0-1-5'), 'ahead'],
    [d('0-1-5'), d('0-1-9,1-2-1'), 'behind'],
    [d('0-1-9,1-2-1'), d('0-1-10'), 'diverged'],
  ] as const)('compare #%# -> %s', (a, b, expected) => {
    expect(compareGtid(a, b)).toBe(expected);
  });

  it('union, subtract, subset, empty', () => {
    expect(formatGtid(gtidUnion(m(`${U1}:1-5`), m(`${U1}:6`)))).toBe(`${U1}:1-6`);
    expect(formatGtid(gtidSubtract(m(`${U1}:1-5`), m(`${U1}:2`)))).toBe(`${U1}:1:3-5`);
    expect(formatGtid(gtidUnion(d('0-1-5'), d('1-1-2')))).toBe('0-1-5,1-1-2');
    expect(formatGtid(gtidSubtract(d('0-1-5,1-1-2'), d('1-1-2')))).toBe('0-1-5');
    expect(gtidIsSubset(d('0-1-5'), d('0-1-6'))).toBe(true);
    expect(gtidIsSubset(m(`${U1}:7`), m(`${U1}:1-6`))).toBe(false);
    expect(gtidIsEmpty(m(''))).toBe(true);
    expect(gtidIsEmpty(d(''))).toBe(true);
    expect(gtidIsEmpty(d('0-1-1'))).toBe(false);
    expect(gtidIsEmpty(gtidSubtract(m(`${U1}:1-5`), m(`${U1}:1-9`)))).toBe(true);
  });

  it('refuses to mix flavors', () => {
    expect(() => gtidUnion(m(''), d(''))).toThrow(Error);
    expect(() => gtidSubtract(d('0-1-1'), m(`${U1}:1`))).toThrow(/mariadb.*mysql/);
    expect(() => gtidIsSubset(m(''), d(''))).toThrow(Error);
    expect(() => compareGtid(d(''), m(''))).toThrow(Error);
  });

  it('summarises', () => {
    expect(gtidSummary(d('1-2-9,0-1-5'))).toBe('0-1-5,1-2-9');
    expect(gtidSummary(m(''))).toBe('');
    expect(gtidSummary(m(`${U1}:1-5`))).toBe(`${U1}:1-5`);
    // 2 groups, well over 60 characters
    expect(gtidSummary(m(`${U1}:1-5,${U2}:1-3`))).toBe(`${U2}:1-3 (+1 more)`);
    expect(gtidSummary(m(`${U1}:1-5,${U2}:1-3,${U3}:1`))).toBe(`${U2}:1-3 (+2 more)`);
    // a single long group is left whole
    const long = `${U1}:1-5:7-9:11-13:15-17:19-21`;
    expect(long.length).toBeGreaterThan(60);
    expect(gtidSummary(m(long))).toBe(long);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const UUIDS = [U1, U2, U3];
const TAGS = ['', 'alpha', 'beta'];

const mysqlText = fc
  .array(
    fc.record({
      uuid: fc.constantFrom(...UUIDS),
      tag: fc.constantFrom(...TAGS),
      start: fc.bigInt({ min: 1n, max: 40n }),
      len: fc.bigInt({ min: 0n, max: 8n }),
      upper: fc.boolean(),
    }),
    { maxLength: 8 },
  )
  .map((parts) =>
    parts
      .map(({ uuid, tag, start, len, upper }) => {
        const u = upper ? uuid.toUpperCase() : uuid;
        const t = tag === '' ? '' : `:${upper ? tag.toUpperCase() : tag}`;
        const iv = len === 0n ? `${start}` : `${start}-${start + len}`;
        return `${u}${t}:${iv}`;
      })
      .join(',\n'),
  );
const mysqlSet = mysqlText.map(parseMysqlGtidSet);

const mariadbPos = fc
  .uniqueArray(
    fc.record({
      domain: fc.integer({ min: 0, max: 3 }),
      serverId: fc.integer({ min: 1, max: 3 }),
      seq: fc.bigInt({ min: 0n, max: 50n }),
    }),
    { selector: (e) => e.domain, maxLength: 4 },
  )
  .map((entries) => parseMariadbGtidPos(entries.map((e) => `${e.domain}-${e.serverId}-${e.seq}`).join(',')));

/** Every transaction of a small set, one by one: a brute-force model to check against. */
function members(s: MysqlGtidSet): Set<string> {
  const out = new Set<string>();
  for (const g of s) for (const iv of g.intervals) for (let n = iv.start; n <= iv.end; n++) out.add(`${g.uuid}:${g.tag}:${n}`);
  return out;
}

describe('MySQL properties', () => {
  const fmt = formatMysqlGtidSet;

  it('format(parse(format(x))) == format(x)', () => {
    fc.assert(fc.property(mysqlSet, (s) => fmt(parseMysqlGtidSet(fmt(s))) === fmt(s)));
  });

  it('output is normalised: no adjacent or overlapping intervals, sorted groups', () => {
    fc.assert(
      fc.property(mysqlSet, (s) => {
        for (const g of s) {
          for (let i = 1; i < g.intervals.length; i++) expect(g.intervals[i]!.start).toBeGreaterThan(g.intervals[i - 1]!.end + 1n);
        }
        const keys = s.map((g) => [g.uuid, g.tag] as const);
        const sorted = [...keys].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
        expect(keys).toEqual(sorted);
        expect(fmt(s)).toBe(fmt(s).toLowerCase());
      }),
    );
  });

  it('union is commutative and idempotent', () => {
    fc.assert(
      fc.property(mysqlSet, mysqlSet, (a, b) => {
        expect(fmt(unionMysql(a, b))).toBe(fmt(unionMysql(b, a)));
        expect(fmt(unionMysql(a, a))).toBe(fmt(a));
      }),
    );
  });

  it('a ⊆ a ∪ b and b ⊆ a ∪ b', () => {
    fc.assert(fc.property(mysqlSet, mysqlSet, (a, b) => isSubsetMysql(a, unionMysql(a, b)) && isSubsetMysql(b, unionMysql(a, b))));
  });

  it('subtract(a, a) is empty', () => {
    fc.assert(fc.property(mysqlSet, (a) => isEmptyMysql(subtractMysql(a, a))));
  });

  it('a − b ⊆ a, and (a − b) ∩ b = ∅', () => {
    fc.assert(
      fc.property(mysqlSet, mysqlSet, (a, b) => {
        const d = subtractMysql(a, b);
        expect(isSubsetMysql(d, a)).toBe(true);
        expect(isEmptyMysql(intersectMysql(d, b))).toBe(true);
        expect(fmt(subtractMysql(d, b))).toBe(fmt(d));
      }),
    );
  });

  it('(a − b) ∪ b ⊇ a, and (a − b) ∪ (a ∩ b) = a', () => {
    fc.assert(
      fc.property(mysqlSet, mysqlSet, (a, b) => {
        expect(isSubsetMysql(a, unionMysql(subtractMysql(a, b), b))).toBe(true);
        expect(equalMysql(unionMysql(subtractMysql(a, b), intersectMysql(a, b)), a)).toBe(true);
      }),
    );
  });

  it('agrees with a brute-force model of individual transactions', () => {
    fc.assert(
      fc.property(mysqlSet, mysqlSet, (a, b) => {
        const ma = members(a);
        const mb = members(b);
        expect(members(unionMysql(a, b))).toEqual(new Set([...ma, ...mb]));
        expect(members(subtractMysql(a, b))).toEqual(new Set([...ma].filter((x) => !mb.has(x))));
        expect(members(intersectMysql(a, b))).toEqual(new Set([...ma].filter((x) => mb.has(x))));
        expect(isSubsetMysql(a, b)).toBe([...ma].every((x) => mb.has(x)));
        expect(countMysql(a)).toBe(BigInt(ma.size));
      }),
    );
  });

  it('compareGtid is consistent with subset in both directions', () => {
    fc.assert(
      fc.property(mysqlSet, mysqlSet, (a, b) => {
        const ga: GtidSet = { flavor: 'mysql', set: a };
        const gb: GtidSet = { flavor: 'mysql', set: b };
        const flip = { equal: 'equal', ahead: 'behind', behind: 'ahead', diverged: 'diverged' } as const;
        expect(compareGtid(gb, ga)).toBe(flip[compareGtid(ga, gb)]);
        expect(compareGtid(gtidUnion(ga, gb), ga)).not.toBe('behind');
        expect(compareGtid(ga, ga)).toBe('equal');
      }),
    );
  });
});

describe('MariaDB properties', () => {
  const fmt = formatMariadbGtidPos;

  it('format(parse(format(x))) == format(x)', () => {
    fc.assert(fc.property(mariadbPos, (p) => fmt(parseMariadbGtidPos(fmt(p))) === fmt(p)));
  });

  it('union is commutative (up to tie server ids) and idempotent', () => {
    fc.assert(
      fc.property(mariadbPos, mariadbPos, (a, b) => {
        const ab = unionMariadb(a, b);
        const ba = unionMariadb(b, a);
        expect([...ab.values()].map((e) => [e.domain, e.seq])).toEqual([...ba.values()].map((e) => [e.domain, e.seq]));
        expect(fmt(unionMariadb(a, a))).toBe(fmt(a));
      }),
    );
  });

  it('a ⊆ a ∪ b and b ⊆ a ∪ b', () => {
    fc.assert(fc.property(mariadbPos, mariadbPos, (a, b) => isSubsetMariadb(a, unionMariadb(a, b)) && isSubsetMariadb(b, unionMariadb(a, b))));
  });

  it('subtract(a, a) is empty; a − b ⊆ a; (a − b) ∪ b ⊇ a', () => {
    fc.assert(
      fc.property(mariadbPos, mariadbPos, (a, b) => {
        expect(subtractMariadb(a, a).size).toBe(0);
        expect(isSubsetMariadb(subtractMariadb(a, b), a)).toBe(true);
        expect(isSubsetMariadb(a, unionMariadb(subtractMariadb(a, b), b))).toBe(true);
        expect(isSubsetMariadb(a, b)).toBe(subtractMariadb(a, b).size === 0);
      }),
    );
  });
});
