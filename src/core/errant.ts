// Can `replica` replicate from `source` without losing or skipping anything? Pure GTID reasoning.
// A replica may only be pointed at a source that has (or will soon have) every transaction the
// replica executed. What it has beyond the source is either not yet replicated to the source (the
// source lags the cluster's primary: wait) or errant (written on the replica or on a dead line of
// history: refuse and name it; rejoining it would either fail or silently fork the data).
import { formatMysqlGtidSet, GtidParseError, isEmptyMysql, parseMysqlGtidSet, subtractMysql } from './gtid.js';
import type { Flavor, GtidState } from './model.js';

export type Reachability =
  | { readonly kind: 'ok' }
  /** The source lacks transactions the primary has: wait for it to catch up, then repoint. */
  | { readonly kind: 'source-behind'; readonly missing: string }
  /** Transactions no member of the live primary line has. Never rejoined silently. */
  | { readonly kind: 'errant'; readonly errant: string }
  | { readonly kind: 'unknown'; readonly why: string };

export function canReplicateFrom(flavor: Flavor, replica: GtidState, source: GtidState, primary: GtidState): Reachability {
  try {
    return flavor === 'mysql' ? mysqlVerdict(replica, source, primary) : mariadbVerdict(replica, source, primary);
  } catch (e) {
    if (e instanceof GtidParseError) return { kind: 'unknown', why: `unreadable GTID state: ${e.message}` };
    throw e;
  }
}

function mysqlVerdict(replica: GtidState, source: GtidState, primary: GtidState): Reachability {
  const r = parseMysqlGtidSet(replica.executed);
  const extra = subtractMysql(r, parseMysqlGtidSet(source.executed));
  if (isEmptyMysql(extra)) return { kind: 'ok' };
  const errant = subtractMysql(extra, parseMysqlGtidSet(primary.executed));
  if (!isEmptyMysql(errant)) return { kind: 'errant', errant: formatMysqlGtidSet(errant) };
  return { kind: 'source-behind', missing: formatMysqlGtidSet(extra) };
}

interface Entry {
  readonly domain: number;
  readonly serverId: number;
  readonly seq: bigint;
}

/** Entries of a MariaDB position or binlog state: `d-s-n,...` (a state may repeat a domain). */
export function parseMariadbEntries(text: string): Entry[] {
  if (text.trim() === '') return [];
  return text.split(',').map((raw) => {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(raw.trim());
    if (!m) throw new GtidParseError(`Invalid MariaDB GTID "${raw.trim()}": expected domain-server-seq`, raw.trim());
    return { domain: Number(m[1]), serverId: Number(m[2]), seq: BigInt(m[3] as string) };
  });
}

/**
 * Does `holder` have the transaction `e`? With gtid_strict_mode sequence numbers grow per domain,
 * so `holder` has it when its position in the domain reached e.seq and the GTID at that seq came
 * from the same server: exactly (same seq) or through its binlog state (a later seq, and the
 * state's last GTID of e's server in that domain is at least e.seq).
 * https://mariadb.com/kb/en/gtid/#gtid_binlog_state
 */
function mariadbHas(holder: GtidState, e: Entry): boolean {
  const cur = parseMariadbEntries(holder.executed).find((x) => x.domain === e.domain);
  if (!cur || cur.seq < e.seq) return false;
  if (cur.seq === e.seq) return cur.serverId === e.serverId;
  const state = parseMariadbEntries(holder.binlogState ?? '');
  return state.some((x) => x.domain === e.domain && x.serverId === e.serverId && x.seq >= e.seq);
}

function mariadbVerdict(replica: GtidState, source: GtidState, primary: GtidState): Reachability {
  const extra = parseMariadbEntries(replica.executed).filter((e) => !mariadbHas(source, e));
  if (extra.length === 0) return { kind: 'ok' };
  const errant = extra.filter((e) => !mariadbHas(primary, e));
  const fmt = (xs: Entry[]) => xs.map((x) => `${x.domain}-${x.serverId}-${x.seq}`).join(',');
  if (errant.length > 0) return { kind: 'errant', errant: fmt(errant) };
  return { kind: 'source-behind', missing: fmt(extra) };
}

/** Has `a` executed everything `b` has? (Switchover: the candidate caught up with the old primary.) */
export function hasAll(flavor: Flavor, a: GtidState, b: GtidState): boolean {
  const v = canReplicateFrom(flavor, b, a, a);
  return v.kind === 'ok';
}
