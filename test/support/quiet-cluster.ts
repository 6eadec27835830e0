// The fields of a cluster (as the daemon's snapshot and /api/clusters carry them) that have nothing
// to say: no condition, pass, failover, drift, history or router. Tests spread it and set the rest.
export const QUIET = {
  conditions: [],
  lastPass: null,
  lastFailover: null,
  fileValid: true,
  fileIssues: [],
  driftCount: 0,
  shapes: [],
  failover: null,
  drift: [],
  history: [],
  routers: [],
} as const;
