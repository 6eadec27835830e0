// The ports the engine works through — types only. The adapters implement them (mysql2, Git,
// the file system, child processes); unit tests implement them with fakes. Nothing here runs.
import type { Endpoint, ProbeResult } from './model.js';
import type { RouterChange, RouterServer, RouterSpec } from './routing.js';
import type { ClusterState } from './state.js';

export interface Login {
  readonly user: string;
  readonly password: string;
}

export interface Timeouts {
  readonly connectMs: number;
  readonly queryMs: number;
  /** The local address connections leave from (`--local-address`), e.g. for per-source firewalling. */
  readonly localAddress?: string;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 1000, queryMs: 1000 };

export type Row = Record<string, unknown>;

/** One connection to one server. */
export interface Session {
  /** Runs one statement; `values` are bound client-side as escaped literals. */
  query(sql: string, values?: readonly unknown[], timeoutMs?: number): Promise<Row[]>;
  close(): Promise<void>;
}

export type OpenSession = (e: Endpoint, login: Login, t: Timeouts) => Promise<Session>;
/** One probe of one server: never throws; an unreachable server is a result. */
export type ProbeFn = (e: Endpoint, login: Login, t: Timeouts) => Promise<ProbeResult>;

export interface Clock {
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/** What running and verifying actions on servers needs. */
export interface ServerPorts extends Clock {
  readonly open: OpenSession;
  readonly probe: ProbeFn;
}

/** A router's runtime interface (HAProxy's runtime API). Errors are thrown with a one-line message. */
export interface RouterPort {
  /** Every server of these backends. Throws when the router cannot be reached or a backend does not exist. */
  read(router: RouterSpec, backends: readonly string[], timeoutMs: number): Promise<RouterServer[]>;
  /** One change (state, then sessions shut down when asked). Throws when refused. Verify with read(). */
  apply(router: RouterSpec, change: RouterChange, timeoutMs: number): Promise<void>;
}

/** Per-cluster state that survives a crash (`.topogit/state/<cluster>.json`). */
export interface StatePort {
  read(cluster: string): Promise<ClusterState>;
  update(cluster: string, f: (s: ClusterState) => ClusterState): Promise<ClusterState>;
}

export interface WriteBackRequest {
  /** Working tree that holds the file. */
  readonly repoDir: string;
  /** Path relative to repoDir, e.g. topologies/shop.yaml. */
  readonly file: string;
  /** Pure: given the file's current text on the branch head, return the new text (or the same text when nothing changes). Called again on the new head after a rejected push. */
  readonly edit: (text: string) => string;
  /** Full commit message: subject line, blank line, body. */
  readonly message: string;
  /** Used as author and committer. */
  readonly author: { readonly name: string; readonly email: string };
  /** Push when the branch has an upstream. */
  readonly push: boolean;
  /** Push attempts before giving up; default 5. */
  readonly maxAttempts?: number;
  /** Wait before the attempt after `attempt` (1-based) was rejected; default 200 * 2^attempt, capped at 5000. */
  readonly backoffMs?: (attempt: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export type WriteBackResult =
  | { readonly kind: 'unchanged' }
  /** `retriable`: the push may succeed later (local commits in the way); false when it never will (push disabled, no upstream). */
  | { readonly kind: 'committed'; readonly commit: string; readonly pushed: false; readonly why: string; readonly retriable?: boolean }
  | { readonly kind: 'committed'; readonly commit: string; readonly pushed: true; readonly attempts: number }
  | { readonly kind: 'failed'; readonly commit?: string; readonly error: string; readonly attempts: number };

export interface HookResult {
  readonly code: number;
  readonly output: string;
}

/** What a failover (and a reconcile pass) needs beyond the servers. */
export interface FailoverPorts extends ServerPorts {
  readonly state: StatePort;
  readonly writeBack: (req: WriteBackRequest) => Promise<WriteBackResult>;
  /** Runs a hook or fence command with the TOPOGIT_* environment, killed after timeoutMs (default 30 s). */
  readonly runHook: (command: string, env: Record<string, string>, timeoutMs?: number) => Promise<HookResult>;
  /** Called after each journaled step; tests kill the process here (TOPOGIT_FAULT_AFTER). */
  readonly faultPoint: (step: string) => void;
  /** May this process still act on this cluster (the daemon's lease, or the coordinator's fencing
   *  check: an etcd transaction proving its leadership)? Asked before each irreversible step. */
  readonly mayAct?: () => boolean | Promise<boolean>;
  /** The routers' runtime interface (the file's `routing:`); without it routers are reported, not changed. */
  readonly router?: RouterPort;
}

export interface ReconcilePorts extends FailoverPorts {
  /** Has a human committed to `file` after `commit` (an acknowledgement of that failover)? */
  readonly committedSince: (commit: string, file: string) => Promise<boolean>;
  /** Is the failover's commit in HEAD's history of `file` (its hash an ancestor of HEAD, or a
   *  commit with its `Failover-Id:` line, which survives a rebase)? Absent: assumed so. */
  readonly failoverInHistory?: (failover: { readonly id: string; readonly commit: string | null }, file: string) => Promise<boolean>;
}

/** One more attempt at a pending write-back (src/core/state.ts PendingWriteBack). */
export interface WriteBackRetryRequest {
  readonly repoDir: string;
  readonly file: string;
  /** Pure: does this text (the upstream's, HEAD's) already say what the edit says? */
  readonly applied: (text: string) => boolean;
  /** Pure: the edit, for a commit when HEAD does not have it yet. */
  readonly edit: (text: string) => string;
  readonly message: string;
  readonly author: { readonly name: string; readonly email: string };
  /** The failovers it records: the commit carrying each one's `Failover-Id:` line is reported once pushed. */
  readonly failoverIds: readonly string[];
}

export type WriteBackRetryResult =
  /** On the upstream now; `commits`: failover id -> the commit that records it. */
  | { readonly kind: 'pushed'; readonly head: string; readonly commits: Readonly<Record<string, string>> }
  /** The upstream's file already says it (someone pushed the same change); `upstream`: its head. */
  | { readonly kind: 'already'; readonly upstream: string }
  | { readonly kind: 'failed'; readonly error: string; readonly commit?: string };

/** What retrying pending write-backs needs: the state, a clock, the lease, and Git. */
export interface WriteBackRetryPorts extends Clock {
  readonly state: StatePort;
  readonly mayAct?: () => boolean | Promise<boolean>;
  readonly retryWriteBack: (req: WriteBackRetryRequest) => Promise<WriteBackRetryResult>;
}
