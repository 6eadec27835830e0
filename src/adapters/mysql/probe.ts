// probe: one bounded read of everything topogit needs from one server. Never throws.
import type { Endpoint, ProbeResult } from '../../core/model.js';
import { PROBE_VARIABLES_SQL, parseVersion, showReplicaStatus, showReplicas } from './dialect.js';
import { parseInstanceState, parseVariables } from './rows.js';
import { openSession } from './session.js';
import { DEFAULT_TIMEOUTS, type Login, type Timeouts } from '../../core/ports.js';

export async function probe(endpoint: Endpoint, login: Login, timeouts: Timeouts = DEFAULT_TIMEOUTS): Promise<ProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let session;
  try {
    session = await openSession(endpoint, login, timeouts);
  } catch (e) {
    return { ok: false, endpoint, ...describeError(e), ms: ms(), ...(serverAnswered(e) ? { answered: true } : {}) };
  }
  try {
    const varRows = await session.query(PROBE_VARIABLES_SQL);
    const vars = parseVariables(varRows);
    const v = parseVersion(vars.get('version') ?? '', vars.get('version_comment') ?? '');
    const statusRows = await session.query(showReplicaStatus(v));
    const replicaRows = await session.query(showReplicas(v));
    return { ok: true, endpoint, state: parseInstanceState(varRows, statusRows, replicaRows), ms: ms() };
  } catch (e) {
    // The handshake succeeded: whatever failed after it, the server is alive.
    return { ok: false, endpoint, ...describeError(e), ms: ms(), answered: true };
  } finally {
    await session.close();
  }
}

/**
 * Did the server itself answer? Server errors carry an errno below 2000 (ER_CON_COUNT_ERROR 1040,
 * ER_ACCESS_DENIED_ERROR 1045, ER_HOST_IS_BLOCKED 1129, ...); client-side failures (refused, reset,
 * timed out) carry a negative errno or none. https://mariadb.com/kb/en/mariadb-error-codes/
 */
export function serverAnswered(e: unknown): boolean {
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno > 0 && errno < 2000;
}

/** A one-line reason and a stable code; never the password (mysql2 does not echo it). */
export function describeError(e: unknown): { error: string; code: string } {
  const err = e as { code?: string; message?: string; sqlMessage?: string };
  const code = err.code ?? 'EUNKNOWN';
  const text = (err.sqlMessage ?? err.message ?? String(e)).split('\n')[0] ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return { code, error: 'connection refused' };
    case 'ETIMEDOUT':
    case 'PROTOCOL_SEQUENCE_TIMEOUT':
      return { code: 'ETIMEDOUT', error: /timed? ?out/i.test(text) ? text : `timed out: ${text}` };
    case 'ECONNRESET':
    case 'PROTOCOL_CONNECTION_LOST':
      return { code, error: 'connection lost' };
    default:
      return { code, error: text };
  }
}
