// discover: from any member, walk up to the primary and down to every replica, like Orchestrator's
// Cluster > Discover. Up follows each replica's source; down follows the replicas a server sees
// (SHOW REPLICAS: report_host/report_port), confirmed by the replica's own status.
import { TopogitError } from '../core/errors.js';
import type { Endpoint, Flavor, InstanceState, ProbeResult } from '../core/model.js';
import { endpointKey } from '../core/model.js';
import type { Login, Timeouts } from '../core/ports.js';
import type { ProbeFn } from '../core/ports.js';

export interface DiscoveredInstance {
  readonly name: string;
  readonly endpoint: Endpoint;
  readonly source?: string;
  /** Undefined when it could not be probed (a dead primary is still part of the tree). */
  readonly state?: InstanceState;
}

export interface Discovery {
  readonly cluster: string;
  readonly flavor: Flavor | 'auto';
  readonly version?: string;
  /** Primary first, then breadth-first. */
  readonly instances: readonly DiscoveredInstance[];
  readonly warnings: readonly string[];
}

export interface DiscoverOptions {
  readonly login: Login;
  readonly timeouts: Timeouts;
  readonly probe: ProbeFn;
  readonly cluster?: string;
  /** Names already used in topology files, by host:port; they win over derived names. */
  readonly knownNames?: ReadonlyMap<string, string>;
  readonly maxInstances?: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export async function discover(start: Endpoint, o: DiscoverOptions): Promise<Discovery> {
  const max = o.maxInstances ?? 1000;
  const warnings: string[] = [];
  const probes = new Map<string, ProbeResult>();
  const probeOnce = async (e: Endpoint) => {
    const k = endpointKey(e);
    let r = probes.get(k);
    if (!r) {
      r = await o.probe(e, o.login, o.timeouts);
      probes.set(k, r);
    }
    return r;
  };

  const first = await probeOnce(start);
  if (!first.ok) throw new TopogitError('TOPOGIT_DISCOVERY_FAILED', `cannot probe ${endpointKey(start)}: ${first.error}`, 'check the address, TOPOGIT_USER and TOPOGIT_PASSWORD');

  // Up: follow sources until a server that replicates from nobody, or one we cannot reach.
  let root: Endpoint = start;
  const upPath = new Set<string>([endpointKey(start)]);
  for (;;) {
    const p = await probeOnce(root);
    if (!p.ok) {
      warnings.push(`${endpointKey(root)} is unreachable (${p.error}); it is taken as the primary`);
      break;
    }
    const ch = p.state.replication[0];
    if (!ch) break;
    if (p.state.replication.length > 1) warnings.push(`${endpointKey(root)} replicates over ${p.state.replication.length} channels; following "${ch.channel}"`);
    const up = { host: ch.sourceHost, port: ch.sourcePort };
    if (upPath.has(endpointKey(up))) throw new TopogitError('TOPOGIT_DISCOVERY_FAILED', `replication cycle through ${endpointKey(up)}: no primary to start from`);
    upPath.add(endpointKey(up));
    root = up;
  }

  // Down, breadth-first from the root.
  const order: { endpoint: Endpoint; parent?: string }[] = [{ endpoint: root }];
  const seen = new Set([endpointKey(root)]);
  for (let n = 0; n < order.length && order.length <= max; n++) {
    const node = order[n] as { endpoint: Endpoint; parent?: string };
    const p = await probeOnce(node.endpoint);
    if (!p.ok) continue;
    // Server id order keeps the output stable across runs.
    for (const r of [...p.state.seenReplicas].sort((a, b) => a.serverId - b.serverId)) {
      if (!r.host) {
        warnings.push(`server_id ${r.serverId} replicates from ${endpointKey(node.endpoint)} but has no report_host; set report_host on it so it can be discovered`);
        continue;
      }
      const e = { host: r.host, port: r.port };
      if (seen.has(endpointKey(e))) continue;
      const rp = await probeOnce(e);
      if (!rp.ok) {
        warnings.push(`${endpointKey(e)} (server_id ${r.serverId}) is seen as a replica but cannot be probed: ${rp.error}; left out`);
        continue;
      }
      if (!repliesFrom(rp.state, node.endpoint, p.state.serverId)) continue;
      seen.add(endpointKey(e));
      order.push({ endpoint: e, parent: endpointKey(node.endpoint) });
    }
  }
  // The member we started from may be a disconnected replica its source no longer lists.
  for (const k of upPath) {
    if (seen.has(k)) continue;
    const p = probes.get(k);
    const ch = p?.ok ? p.state.replication[0] : undefined;
    if (p?.ok && ch) {
      seen.add(k);
      order.push({ endpoint: p.endpoint, parent: `${ch.sourceHost}:${ch.sourcePort}` });
    }
  }

  const names = assignNames(order.map((x) => x.endpoint), probes, o.knownNames ?? new Map());
  const instances = order.map((x) => {
    const p = probes.get(endpointKey(x.endpoint));
    const name = names.get(endpointKey(x.endpoint)) as string;
    const source = x.parent ? names.get(x.parent) : undefined;
    return { name, endpoint: x.endpoint, ...(source ? { source } : {}), ...(p?.ok ? { state: p.state } : {}) };
  });
  const states = instances.flatMap((i) => (i.state ? [i.state] : []));
  const primary = instances[0] as DiscoveredInstance;
  return {
    cluster: o.cluster ?? sanitize(primary.name),
    flavor: states[0]?.flavor ?? 'auto',
    ...(states[0] ? { version: states[0].version } : {}),
    instances,
    warnings,
  };
}

function repliesFrom(s: InstanceState, source: Endpoint, sourceServerId: number): boolean {
  return s.replication.some(
    (c) => (c.sourceHost === source.host && c.sourcePort === source.port) || (c.sourceServerId !== undefined && c.sourceServerId === sourceServerId),
  );
}

/** Known names first, then report_host when it is a host name, else the address. */
function assignNames(endpoints: readonly Endpoint[], probes: ReadonlyMap<string, ProbeResult>, known: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const e of endpoints) {
    const k = endpointKey(e);
    const p = probes.get(k);
    const reportHost = p?.ok ? p.state.reportHost : undefined;
    let name = known.get(k) ?? sanitize(reportHost && !/^[0-9.:]+$/.test(reportHost) ? reportHost : e.host);
    if (used.has(name)) name = sanitize(`${name}-${e.port}`);
    for (let n = 2; used.has(name); n++) name = sanitize(`${name}-${n}`);
    used.add(name);
    out.set(k, name);
  }
  return out;
}

export function sanitize(s: string): string {
  const cleaned = s.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return NAME_RE.test(cleaned) ? cleaned : 'instance';
}
