// Held connections: the daemon keeps one long-lived admin connection per instance and probes over
// it — no handshake per probe, and the probe's statements in one round trip once the server's
// version is known. A held connection that errors or closes while nothing is asked of it (a killed
// or stopped server closes its sockets at once) is reported through `onLost`, so the daemon looks
// at that cluster right away instead of at its next interval. What emits no event (a frozen server,
// a black-holed network) is still found by the next probe, within interval + query timeout.
import type { Endpoint, ProbeResult } from '../../core/model.js';
import type { Login, Row, Timeouts } from '../../core/ports.js';
import type { ServerVersion } from './dialect.js';
import { askProbe, describeError, handshakeVersion, openProbeConnection, serverAnswered, type ProbeConnection, type ProbeStatementKind } from './probe.js';
import { parseInstanceState } from './rows.js';

export type StatementKind = ProbeStatementKind;

export interface HeldOptions {
  /** A held connection closed or failed while idle: the server went away (or the network did). */
  readonly onLost?: (endpoint: Endpoint, why: string) => void;
  /** Every probe statement sent, for the servers' cost to be visible (topogit_statements_total). */
  readonly onStatements?: (endpoint: Endpoint, kind: StatementKind, n: number) => void;
  /** SHOW REPLICAS only finds replicas no file lists: asked this often, not every probe. Default 30 s. */
  readonly replicasEveryMs?: number;
  readonly now?: () => number;
}

interface Held {
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly conn: ProbeConnection;
  version: ServerVersion | undefined;
  replicaRows: Row[];
  replicasAt: number;
  /** Set while a probe runs: an error then is the probe's, not a loss to report. */
  busy: number;
  gone: boolean;
}

const key = (e: Endpoint, login: Login) => `${e.host}:${e.port}|${login.user}`;

export class HeldConnections {
  readonly #held = new Map<string, Held>();
  readonly #opening = new Map<string, Promise<Held>>();
  readonly #o: HeldOptions;
  readonly #now: () => number;

  constructor(o: HeldOptions = {}) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** How many connections are held now. */
  get size(): number {
    return this.#held.size;
  }

  /** One probe of one server over its held connection (opened, or re-opened, on demand). Never throws. */
  readonly probe = async (endpoint: Endpoint, login: Login, timeouts: Timeouts): Promise<ProbeResult> => {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    let h: Held;
    let fresh = false;
    try {
      const existing = this.#held.get(key(endpoint, login));
      fresh = existing === undefined;
      h = existing ?? (await this.#open(endpoint, login, timeouts));
    } catch (e) {
      return { ok: false, endpoint, ...describeError(e), ms: ms(), ...(serverAnswered(e) ? { answered: true } : {}) };
    }
    h.busy++;
    try {
      const [varRows, statusRows, replicaRows] = await this.#ask(h, timeouts);
      return { ok: true, endpoint, state: parseInstanceState(varRows, statusRows, replicaRows), ms: ms() };
    } catch (e) {
      this.#drop(h);
      // A server error is an answer. A timeout on a connection opened just now came after a
      // handshake (alive); on one held since earlier it proves nothing: the server may be frozen.
      const answered = serverAnswered(e) || fresh;
      return { ok: false, endpoint, ...describeError(e), ms: ms(), ...(answered ? { answered: true } : {}) };
    } finally {
      h.busy--;
    }
  };

  /** Closes the connections whose endpoint and login are not in `keep` (files changed, credentials rotated). */
  retain(keep: readonly { endpoint: Endpoint; login: Login }[]): void {
    const wanted = new Set(keep.map((k) => key(k.endpoint, k.login)));
    for (const h of [...this.#held.values()]) if (!wanted.has(h.key)) this.#drop(h);
  }

  async close(): Promise<void> {
    const all = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(all.map((h) => ((h.gone = true), h.conn.end().catch(() => h.conn.destroy()))));
  }

  async #ask(h: Held, t: Timeouts): Promise<[Row[], Row[], Row[]]> {
    const now = this.#now();
    const replicas = h.version === undefined || now - h.replicasAt >= (this.#o.replicasEveryMs ?? 30_000);
    const { rows, version } = await askProbe(h.conn, h.version, t, replicas, (kind) => this.#o.onStatements?.(h.endpoint, kind, 1));
    h.version = version;
    if (replicas) {
      h.replicaRows = rows[2];
      h.replicasAt = now;
    }
    return [rows[0], rows[1], h.replicaRows];
  }

  async #open(endpoint: Endpoint, login: Login, t: Timeouts): Promise<Held> {
    const k = key(endpoint, login);
    // Two probes of the same server at once share one connection attempt.
    const pending = this.#opening.get(k);
    if (pending) return pending;
    const opening = (async () => {
      const conn = await openProbeConnection(endpoint, login, t, true);
      const h: Held = { key: k, endpoint, conn, version: handshakeVersion(conn), replicaRows: [], replicasAt: 0, busy: 0, gone: false };
      const lost = (why: string) => {
        if (h.gone) return;
        const idle = h.busy === 0;
        this.#drop(h);
        if (idle) this.#o.onLost?.(endpoint, why);
      };
      conn.on('error', (e: Error) => lost(describeError(e).error));
      // The socket closing without an error (a clean shutdown's FIN) is a loss too.
      conn.onClose(() => lost('connection closed'));
      this.#held.set(k, h);
      return h;
    })();
    this.#opening.set(k, opening);
    try {
      return await opening;
    } finally {
      this.#opening.delete(k);
    }
  }

  #drop(h: Held): void {
    if (h.gone) return;
    h.gone = true;
    if (this.#held.get(h.key) === h) this.#held.delete(h.key);
    h.conn.destroy();
  }
}
