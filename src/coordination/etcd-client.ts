// The few etcd v3 calls topogit makes, through the `etcd3` client, each with a deadline: a
// coordinator that does not answer is a "no" (never a hang), and the error names the endpoints,
// never the credentials.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { TopogitError } from '../core/errors.js';

/** UNAVAILABLE errors of a call that never reached a member (other UNAVAILABLEs — a leader change,
 *  a dropped connection — may come after the request was applied: those are never re-sent). */
const NEVER_SENT = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/;

export interface EtcdConnect {
  readonly hosts: readonly string[];
  readonly tls: boolean;
  readonly files?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  readonly auth?: { readonly user: string; readonly password: string };
  readonly cwd: string;
  /** One call's deadline. */
  readonly callMs: number;
}

export interface Kv {
  readonly key: string;
  readonly value: string;
  readonly mod: string;
  readonly create: string;
  readonly lease: string;
}

/** A condition of a transaction: `Mod == rev`, `Create == 0` (absent), ... */
export interface Cmp {
  readonly key: string;
  readonly target: 'Mod' | 'Create' | 'Version' | 'Value' | 'Lease';
  readonly op: '==' | '!=' | '<' | '>';
  readonly value: string | number;
}

export type Op = { readonly put: string; readonly value: string; readonly lease?: string } | { readonly del: string };

export interface WatchEvents {
  onDelete?: (key: string) => void;
  onPut?: (key: string) => void;
}

/** The revisions etcd hands out are 64-bit integers as decimal strings. */
export type Revision = string;

export class EtcdClient {
  readonly endpoints: string;
  private constructor(
    private readonly client: Etcd3,
    readonly callMs: number,
    hosts: readonly string[],
  ) {
    this.endpoints = hosts.join(',');
  }

  static async connect(o: EtcdConnect): Promise<EtcdClient> {
    const [{ Etcd3, isRecoverableError, GRPCUnavailableError }, cockatiel] = await Promise.all([import('etcd3'), import('cockatiel')]);
    const read = (f: string | undefined, what: string): Buffer | undefined => {
      if (f === undefined) return undefined;
      try {
        return readFileSync(path.resolve(o.cwd, f));
      } catch (e) {
        throw new TopogitError('TOPOGIT_USAGE', `${what} ${f}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    };
    const ca = read(o.files?.ca, '--etcd-ca');
    const cert = read(o.files?.cert, '--etcd-cert');
    const key = read(o.files?.key, '--etcd-key');
    if ((cert === undefined) !== (key === undefined)) throw new TopogitError('TOPOGIT_USAGE', '--etcd-cert and --etcd-key go together');
    const scheme = o.tls ? 'https' : 'http';
    const client = new Etcd3({
      hosts: o.hosts.map((h) => `${scheme}://${h}`),
      dialTimeout: o.callMs,
      ...(o.tls ? { credentials: { rootCertificate: ca ?? Buffer.alloc(0), ...(key ? { privateKey: key } : {}), ...(cert ? { certChain: cert } : {}) } } : {}),
      ...(o.auth ? { auth: { username: o.auth.user, password: o.auth.password } } : {}),
      // Every unary call has a deadline; streams (watches) do not.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + o.callMs }),
      // A member that failed is tried again after half a second (the client's default is 5 s, too
      // slow to notice a restored etcd). One retry on another member, only when the call never
      // reached etcd (UNAVAILABLE: a member down); a deadline passed is not retried, since that
      // transaction may still commit (callers decide again from what etcd says next).
      faultHandling: {
        host: () => cockatiel.circuitBreaker(cockatiel.handleWhen(isRecoverableError), { halfOpenAfter: 500, breaker: new cockatiel.ConsecutiveBreaker(3) }),
        global: cockatiel.retry(cockatiel.handleWhen((e) => e instanceof GRPCUnavailableError && NEVER_SENT.test(e.message)), { maxAttempts: 1 }),
      },
    });
    return new EtcdClient(client, o.callMs, o.hosts);
  }

  /** Rejects after the deadline with a message that names the endpoints and the call. */
  private bounded<T>(what: string, p: Promise<T>, ms = this.callMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`etcd ${this.endpoints} did not answer ${what} within ${ms} ms (unreachable, or no quorum)`)), ms);
    });
    return Promise.race([p.catch((e: Error) => Promise.reject(new Error(`etcd ${this.endpoints}: ${what}: ${oneLine(e.message)}`))), deadline]).finally(() => clearTimeout(timer));
  }

  async get(key: string): Promise<Kv | null> {
    const r = await this.bounded(`get ${key}`, this.client.get(key).exec());
    const kv = r.kvs[0];
    return kv ? toKv(kv) : null;
  }

  async getPrefix(prefix: string): Promise<Kv[]> {
    const r = await this.bounded(`get ${prefix}*`, this.client.getAll().prefix(prefix).exec());
    return r.kvs.map(toKv);
  }

  /** One transaction: when every condition holds, the operations run. Returns whether they did, and the revision. */
  async txn(what: string, cmps: readonly Cmp[], ops: readonly Op[]): Promise<{ succeeded: boolean; revision: Revision }> {
    const first = cmps[0];
    if (!first) throw new Error('etcd txn without a condition');
    let b = this.client.if(first.key, first.target, first.op, first.value);
    for (const c of cmps.slice(1)) b = b.and(c.key, c.target, c.op, c.value);
    b = b.then(...ops.map((op) => ('del' in op ? this.client.delete().key(op.del) : op.lease !== undefined ? this.client.put(op.put).value(op.value).lease(op.lease) : this.client.put(op.put).value(op.value))));
    const r = await this.bounded(what, b.commit());
    return { succeeded: r.succeeded, revision: r.header.revision };
  }

  /** A new lease of `ttlSeconds`; its id. */
  async grant(ttlSeconds: number): Promise<string> {
    const r = await this.bounded('lease grant', this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return r.ID;
  }

  /** Renews the lease once; its remaining TTL in seconds (0 or less: the lease is gone). */
  async keepalive(lease: string): Promise<number> {
    return this.bounded('lease keepalive', this.keepaliveOnce(lease, this.callMs));
  }

  private async keepaliveOnce(lease: string, ms: number): Promise<number> {
    // The keepalive RPC is a stream: one request, one answer (TTL 0 when the lease is gone).
    const stream = await this.client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', (e: Error) => reject(e));
        stream.on('end', () => reject(new Error('keepalive stream ended')));
        // No answer in time: the stream is cancelled, not left open (one per renewal otherwise).
        timer = setTimeout(() => reject(new Error('no answer')), ms);
      });
      stream.write({ ID: lease });
      return await answer;
    } finally {
      clearTimeout(timer);
      stream.cancel();
    }
  }

  async revoke(lease: string): Promise<void> {
    await this.bounded('lease revoke', this.client.leaseClient.leaseRevoke({ ID: lease })).catch(() => undefined);
  }

  /** Calls back on every change under `prefix` (the client reconnects by itself). */
  watchPrefix(prefix: string, ev: WatchEvents): { cancel(): Promise<void> } {
    let w: { cancel(): Promise<void> } | undefined;
    let cancelled = false;
    void this.client
      .watch()
      .prefix(prefix)
      .create()
      .then((watcher) => {
        if (cancelled) return void watcher.cancel();
        w = watcher;
        watcher.on('delete', (kv) => ev.onDelete?.(kv.key.toString()));
        watcher.on('put', (kv) => ev.onPut?.(kv.key.toString()));
        watcher.on('error', () => undefined);
      })
      .catch(() => undefined);
    return {
      cancel: async () => {
        cancelled = true;
        await w?.cancel().catch(() => undefined);
      },
    };
  }

  close(): void {
    this.client.close();
  }
}

function toKv(kv: { key: Buffer; value: Buffer; mod_revision: string; create_revision: string; lease: string }): Kv {
  return { key: kv.key.toString(), value: kv.value.toString(), mod: kv.mod_revision, create: kv.create_revision, lease: kv.lease };
}

export function oneLine(s: string): string {
  return (s.split('\n')[0] ?? s).slice(0, 300);
}
