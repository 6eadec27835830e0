// GTID sets and positions: parse, normalise, format and compare. Pure: no I/O, no logging.
//
// MySQL (https://dev.mysql.com/doc/refman/8.4/en/replication-gtids-concepts.html): a GTID set is a
// set of (uuid, tag, number) triples, written as uuid groups of intervals, e.g.
// `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18,2174b383-5441-11e8-b90a-c80aa9429562:1-3`, and
// since 8.3/8.4 with tags: `uuid:1-3:alpha:1-2` (intervals after a tag belong to that tag).
//
// MariaDB (https://mariadb.com/kb/en/gtid/): a GTID *position* such as `0-1-1042,1-2-7` is not a
// set of intervals. Each entry domain-server-seq means "everything in domain d up to seq s", and
// with gtid_strict_mode sequence numbers are monotonic per domain, so we model a position as a map
// domain -> {serverId, seq} and compare domains by seq alone. Set operations are therefore
// per-domain max (union) and "domains where a is further along than b" (subtract). The server id of
// an entry is carried along but does not take part in comparisons.

import type { Flavor } from './model.js';

export class GtidParseError extends Error {
  override readonly name = 'GtidParseError';
  constructor(
    message: string,
    readonly fragment: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL

/** Closed interval of transaction numbers, 1 <= start <= end <= 2^63-1. */
export interface GtidInterval {
  readonly start: bigint;
  readonly end: bigint;
}

/** The transactions of one uuid (and tag; '' = untagged). Intervals sorted, disjoint, non-adjacent. */
export interface MysqlGtidGroup {
  readonly uuid: string;
  readonly tag: string;
  readonly intervals: readonly GtidInterval[];
}

/**
 * A normalised MySQL GTID set: groups sorted by uuid, then untagged before tagged, tags ascending;
 * no empty groups; no two groups with the same (uuid, tag). Build it with the functions here.
 */
export type MysqlGtidSet = readonly MysqlGtidGroup[];

export const MAX_GNO = (1n << 63n) - 1n;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TAG_RE = /^[a-z_][a-z0-9_]{0,31}$/i;
const INTERVAL_RE = /^(\d+)(?:-(\d+))?$/;

const cmp = <T extends bigint | string>(x: T, y: T): number => (x < y ? -1 : x > y ? 1 : 0);

/** Sort, then merge overlapping and adjacent intervals. */
function mergeIntervals(list: readonly GtidInterval[]): GtidInterval[] {
  const sorted = [...list].sort((x, y) => cmp(x.start, y.start));
  const out: GtidInterval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && iv.start <= last.end + 1n) {
      if (iv.end > last.end) out[out.length - 1] = { start: last.start, end: iv.end };
    } else {
      out.push(iv);
    }
  }
  return out;
}

/** a minus b, both normalised. */
function subtractIntervals(a: readonly GtidInterval[], b: readonly GtidInterval[]): GtidInterval[] {
  const out: GtidInterval[] = [];
  let j = 0;
  for (const iv of a) {
    let start = iv.start;
    const end = iv.end;
    while (j < b.length && b[j]!.end < start) j++;
    for (let k = j; k < b.length && start <= end; k++) {
      const cut = b[k]!;
      if (cut.start > end) break;
      if (cut.start > start) out.push({ start, end: cut.start - 1n });
      if (cut.end + 1n > start) start = cut.end + 1n;
    }
    if (start <= end) out.push({ start, end });
  }
  return out;
}

const groupKey = (uuid: string, tag: string): string => `${uuid}:${tag}`;

/** Builds a normalised set from groups in any order, possibly repeated or empty. */
function normalise(groups: Iterable<MysqlGtidGroup>): MysqlGtidSet {
  const byKey = new Map<string, { uuid: string; tag: string; intervals: GtidInterval[] }>();
  for (const g of groups) {
    const key = groupKey(g.uuid, g.tag);
    const cur = byKey.get(key);
    if (cur) cur.intervals.push(...g.intervals);
    else byKey.set(key, { uuid: g.uuid, tag: g.tag, intervals: [...g.intervals] });
  }
  const out: MysqlGtidGroup[] = [];
  for (const g of byKey.values()) {
    if (g.intervals.length > 0) out.push({ uuid: g.uuid, tag: g.tag, intervals: mergeIntervals(g.intervals) });
  }
  return out.sort((x, y) => cmp(x.uuid, y.uuid) || cmp(x.tag, y.tag));
}

function parseGno(digits: string, fragment: string): bigint {
  const n = BigInt(digits);
  if (n < 1n || n > MAX_GNO) {
    throw new GtidParseError(`GTID number out of range (1..${MAX_GNO}) in "${fragment}"`, fragment);
  }
  return n;
}

export function parseMysqlGtidSet(text: string): MysqlGtidSet {
  if (text.trim() === '') return [];
  const groups: MysqlGtidGroup[] = [];
  for (const rawGroup of text.split(',')) {
    const fragment = rawGroup.trim();
    const parts = fragment.split(':').map((p) => p.trim());
    const uuid = parts[0] ?? '';
    if (!UUID_RE.test(uuid)) {
      throw new GtidParseError(`Invalid GTID set: bad uuid in "${fragment}"`, fragment);
    }
    if (parts.length < 2) {
      throw new GtidParseError(`Invalid GTID set: no transaction numbers in "${fragment}"`, fragment);
    }
    let tag = '';
    let intervals: GtidInterval[] = [];
    let sawTag = false;
    const flush = (): void => {
      if (sawTag && intervals.length === 0) {
        throw new GtidParseError(`Invalid GTID set: tag "${tag}" without numbers in "${fragment}"`, fragment);
      }
      if (intervals.length > 0) groups.push({ uuid: uuid.toLowerCase(), tag, intervals });
    };
    for (const part of parts.slice(1)) {
      const m = INTERVAL_RE.exec(part);
      if (m) {
        const start = parseGno(m[1]!, fragment);
        const end = m[2] === undefined ? start : parseGno(m[2], fragment);
        if (end < start) {
          throw new GtidParseError(`Invalid GTID set: interval "${part}" ends before it starts in "${fragment}"`, fragment);
        }
        intervals.push({ start, end });
      } else if (TAG_RE.test(part)) {
        flush();
        tag = part.toLowerCase();
        intervals = [];
        sawTag = true;
      } else {
        throw new GtidParseError(`Invalid GTID set: bad interval or tag "${part}" in "${fragment}"`, fragment);
      }
    }
    flush();
  }
  return normalise(groups);
}

const formatInterval = (iv: GtidInterval): string => (iv.start === iv.end ? `${iv.start}` : `${iv.start}-${iv.end}`);

/** One text group per uuid: `uuid:1-3:tag:1-2`. */
function formatUuidGroups(s: MysqlGtidSet): string[] {
  const out: string[] = [];
  let uuid: string | undefined;
  let text = '';
  for (const g of s) {
    if (g.uuid !== uuid) {
      if (uuid !== undefined) out.push(text);
      uuid = g.uuid;
      text = uuid;
    }
    if (g.tag !== '') text += `:${g.tag}`;
    for (const iv of g.intervals) text += `:${formatInterval(iv)}`;
  }
  if (uuid !== undefined) out.push(text);
  return out;
}

export function formatMysqlGtidSet(s: MysqlGtidSet): string {
  return formatUuidGroups(s).join(',');
}

function combineMysql(
  a: MysqlGtidSet,
  b: MysqlGtidSet,
  op: (x: readonly GtidInterval[], y: readonly GtidInterval[]) => GtidInterval[],
): MysqlGtidSet {
  const bByKey = new Map(b.map((g) => [groupKey(g.uuid, g.tag), g.intervals]));
  return normalise(a.map((g) => ({ ...g, intervals: op(g.intervals, bByKey.get(groupKey(g.uuid, g.tag)) ?? []) })));
}

export function unionMysql(a: MysqlGtidSet, b: MysqlGtidSet): MysqlGtidSet {
  return normalise([...a, ...b]);
}

/** a minus b. */
export function subtractMysql(a: MysqlGtidSet, b: MysqlGtidSet): MysqlGtidSet {
  return combineMysql(a, b, subtractIntervals);
}

export function intersectMysql(a: MysqlGtidSet, b: MysqlGtidSet): MysqlGtidSet {
  return combineMysql(a, b, (x, y) => subtractIntervals(x, subtractIntervals(x, y)));
}

export function isEmptyMysql(s: MysqlGtidSet): boolean {
  return s.every((g) => g.intervals.length === 0);
}

/** a ⊆ b. */
export function isSubsetMysql(a: MysqlGtidSet, b: MysqlGtidSet): boolean {
  return isEmptyMysql(subtractMysql(a, b));
}

export function equalMysql(a: MysqlGtidSet, b: MysqlGtidSet): boolean {
  return isSubsetMysql(a, b) && isSubsetMysql(b, a);
}

/** Number of transactions in the set. */
export function countMysql(s: MysqlGtidSet): bigint {
  let n = 0n;
  for (const g of s) for (const iv of g.intervals) n += iv.end - iv.start + 1n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// MariaDB

export interface MariadbGtidEntry {
  readonly domain: number;
  readonly serverId: number;
  readonly seq: bigint;
}

/** domain -> last GTID applied in that domain. At most one entry per domain. */
export type MariadbGtidPos = ReadonlyMap<number, MariadbGtidEntry>;

const MAX_U32 = 4294967295;
const MAX_U64 = (1n << 64n) - 1n;
const MARIADB_RE = /^(\d+)-(\d+)-(\d+)$/;

export function parseMariadbGtidPos(text: string): MariadbGtidPos {
  const pos = new Map<number, MariadbGtidEntry>();
  if (text.trim() === '') return pos;
  for (const raw of text.split(',')) {
    const fragment = raw.trim();
    const m = MARIADB_RE.exec(fragment);
    if (!m) {
      throw new GtidParseError(`Invalid MariaDB GTID "${fragment}": expected domain-server-seq`, fragment);
    }
    const domain = Number(m[1]);
    const serverId = Number(m[2]);
    const seq = BigInt(m[3]!);
    if (domain > MAX_U32 || serverId > MAX_U32 || seq > MAX_U64) {
      throw new GtidParseError(`Invalid MariaDB GTID "${fragment}": number out of range`, fragment);
    }
    if (pos.has(domain)) {
      throw new GtidParseError(`Invalid MariaDB GTID position: domain ${domain} appears twice ("${fragment}")`, fragment);
    }
    pos.set(domain, { domain, serverId, seq });
  }
  return pos;
}

function fromEntries(entries: Iterable<MariadbGtidEntry>): MariadbGtidPos {
  const sorted = [...entries].sort((x, y) => x.domain - y.domain);
  return new Map(sorted.map((e) => [e.domain, e]));
}

export function formatMariadbGtidPos(p: MariadbGtidPos): string {
  return [...fromEntries(p.values()).values()].map((e) => `${e.domain}-${e.serverId}-${e.seq}`).join(',');
}

/** Per domain the higher seq wins; on a tie a's entry (and server id) is kept. */
export function unionMariadb(a: MariadbGtidPos, b: MariadbGtidPos): MariadbGtidPos {
  const out = new Map(a);
  for (const e of b.values()) {
    const cur = out.get(e.domain);
    if (cur === undefined || e.seq > cur.seq) out.set(e.domain, e);
  }
  return fromEntries(out.values());
}

/** The entries of a that are further along than b (or whose domain b lacks). */
export function subtractMariadb(a: MariadbGtidPos, b: MariadbGtidPos): MariadbGtidPos {
  return fromEntries([...a.values()].filter((e) => e.seq > (b.get(e.domain)?.seq ?? -1n)));
}

/** Every domain of a is in b with b's seq >= a's seq. */
export function isSubsetMariadb(a: MariadbGtidPos, b: MariadbGtidPos): boolean {
  return subtractMariadb(a, b).size === 0;
}

export function isEmptyMariadb(p: MariadbGtidPos): boolean {
  return p.size === 0;
}

// ---------------------------------------------------------------------------------------------
// Flavor-neutral

export type GtidSet =
  | { readonly flavor: 'mysql'; readonly set: MysqlGtidSet }
  | { readonly flavor: 'mariadb'; readonly pos: MariadbGtidPos };

export type GtidComparison = 'equal' | 'ahead' | 'behind' | 'diverged';

export function parseGtid(flavor: Flavor, text: string): GtidSet {
  return flavor === 'mysql' ? { flavor, set: parseMysqlGtidSet(text) } : { flavor, pos: parseMariadbGtidPos(text) };
}

export function formatGtid(g: GtidSet): string {
  return g.flavor === 'mysql' ? formatMysqlGtidSet(g.set) : formatMariadbGtidPos(g.pos);
}

function binary<T>(
  a: GtidSet,
  b: GtidSet,
  mysql: (x: MysqlGtidSet, y: MysqlGtidSet) => T,
  mariadb: (x: MariadbGtidPos, y: MariadbGtidPos) => T,
): T {
  if (a.flavor === 'mysql' && b.flavor === 'mysql') return mysql(a.set, b.set);
  if (a.flavor === 'mariadb' && b.flavor === 'mariadb') return mariadb(a.pos, b.pos);
  throw new Error(`Cannot combine a ${a.flavor} GTID set with a ${b.flavor} one`);
}

export function gtidUnion(a: GtidSet, b: GtidSet): GtidSet {
  return binary<GtidSet>(a, b, (x, y) => ({ flavor: 'mysql', set: unionMysql(x, y) }), (x, y) => ({ flavor: 'mariadb', pos: unionMariadb(x, y) }));
}

/** What a has that b lacks. */
export function gtidSubtract(a: GtidSet, b: GtidSet): GtidSet {
  return binary<GtidSet>(a, b, (x, y) => ({ flavor: 'mysql', set: subtractMysql(x, y) }), (x, y) => ({ flavor: 'mariadb', pos: subtractMariadb(x, y) }));
}

/** a ⊆ b. */
export function gtidIsSubset(a: GtidSet, b: GtidSet): boolean {
  return binary(a, b, isSubsetMysql, isSubsetMariadb);
}

export function gtidIsEmpty(g: GtidSet): boolean {
  return g.flavor === 'mysql' ? isEmptyMysql(g.set) : isEmptyMariadb(g.pos);
}

/** 'ahead': a ⊋ b; 'behind': a ⊊ b; 'diverged': each has something the other lacks. */
export function compareGtid(a: GtidSet, b: GtidSet): GtidComparison {
  const aInB = gtidIsSubset(a, b);
  const bInA = gtidIsSubset(b, a);
  if (aInB && bInA) return 'equal';
  if (aInB) return 'behind';
  if (bInA) return 'ahead';
  return 'diverged';
}

const SUMMARY_MAX = 60;

/** Short human form: MariaDB position as is; a long MySQL set as its first uuid group + `(+N more)`. */
export function gtidSummary(g: GtidSet): string {
  if (g.flavor === 'mariadb') return formatMariadbGtidPos(g.pos);
  const groups = formatUuidGroups(g.set);
  const full = groups.join(',');
  if (full.length <= SUMMARY_MAX || groups.length <= 1) return full;
  return `${groups[0]} (+${groups.length - 1} more)`;
}
