// What a topology file gets for the optional `failover:` and `writeBack:` blocks it leaves out.
// Must match the `default`s declared in schemas/topology.schema.json (a unit test compares them).

import type { FailoverSpec, WriteBackSpec } from '../core/model.js';

/** The admin and replication user names when neither a file nor TOPOGIT_USER / TOPOGIT_REPL_USER names one. */
export const DEFAULT_ADMIN_USER = 'topogit';
export const DEFAULT_REPLICATION_USER = 'repl';

/** Used, by identity, when a file has no `failover` block; deeply frozen. */
export const DEFAULT_FAILOVER: FailoverSpec = Object.freeze({
  auto: false,
  maxLagSeconds: 10,
  blockSeconds: 3600,
  detection: Object.freeze({ intervalMs: 2500 }),
  formerPrimary: 'rejoin',
  reconcile: 'auto',
  hooks: Object.freeze({ preFailover: Object.freeze([]), postFailover: Object.freeze([]) }),
  quorum: 'majority',
  fence: Object.freeze({ command: Object.freeze([]), timeoutSeconds: 30 }),
});

/** Used, by identity, when a file has no `writeBack` block; deeply frozen. */
export const DEFAULT_WRITE_BACK: WriteBackSpec = Object.freeze({
  author: Object.freeze({ name: 'topogit', email: 'topogit@localhost' }),
  push: true,
});
