// Rules the schema cannot express: the source tree within one file, and uniqueness across files.

import type { ClusterSpec } from '../core/model.js';
import type { Problem } from './schema.js';

export interface RuleInstance {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly source?: string | undefined;
}

/** host:port as people write it; IPv6 literals get brackets. */
export function endpointLabel(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Host names are case-insensitive. */
function endpointId(host: string, port: number): string {
  return `${host.toLowerCase()} ${port}`;
}

function listNames(names: readonly string[]): string {
  if (names.length <= 2) return names.join(' and ');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1] ?? ''}`;
}

/**
 * The rules of one cluster's tree, on schema-valid data: every source names another instance of
 * the file, no cycles, exactly one primary, no host:port used twice. `instances` in file order.
 */
export function checkClusterRules(cluster: string, instances: readonly RuleInstance[]): Problem[] {
  const problems: Problem[] = [];
  const byName = new Map(instances.map((i) => [i.name, i]));
  /** The instance's source when it is a usable edge of the tree (known, not itself). */
  const edge = new Map<string, string>();

  for (const inst of instances) {
    if (inst.source === undefined) continue;
    const at = ['instances', inst.name, 'source'];
    if (inst.source === inst.name) {
      problems.push({ path: at, at: 'value', message: `${inst.name} cannot replicate from itself` });
    } else if (!byName.has(inst.source)) {
      problems.push({ path: at, at: 'value', message: `"${inst.source}" is not an instance of cluster ${cluster}` });
    } else {
      edge.set(inst.name, inst.source);
    }
  }

  // Cycles: follow sources from every instance; a walk that meets its own trail found one.
  const order = new Map(instances.map((i, n) => [i.name, n]));
  const done = new Set<string>();
  for (const start of instances) {
    const trail: string[] = [];
    let cur: string | undefined = start.name;
    while (cur !== undefined && !done.has(cur) && !trail.includes(cur)) {
      trail.push(cur);
      cur = edge.get(cur);
    }
    if (cur !== undefined && trail.includes(cur)) {
      const cycle = trail.slice(trail.indexOf(cur));
      // Report it once, at the member written first in the file.
      let first = 0;
      cycle.forEach((name, n) => {
        if ((order.get(name) ?? 0) < (order.get(cycle[first] ?? '') ?? 0)) first = n;
      });
      const rotated = [...cycle.slice(first), ...cycle.slice(0, first)];
      const head = rotated[0] ?? cur;
      problems.push({
        path: ['instances', head, 'source'],
        at: 'value',
        message: `cycle ${[...rotated, head].join(' -> ')}`,
      });
    }
    for (const name of trail) done.add(name);
  }

  const primaries = instances.filter((i) => i.source === undefined);
  if (primaries.length === 0) {
    problems.push({ path: ['instances'], at: 'value', message: 'no primary: exactly one instance must have no source' });
  } else if (primaries.length > 1) {
    const second = primaries[1]?.name ?? '';
    problems.push({
      path: ['instances', second],
      at: 'key',
      message: `more than one primary: ${listNames(primaries.map((p) => p.name))} have no source; exactly one instance must have no source`,
    });
  }

  const seen = new Map<string, string>();
  for (const inst of instances) {
    const id = endpointId(inst.host, inst.port);
    const other = seen.get(id);
    if (other === undefined) {
      seen.set(id, inst.name);
    } else {
      problems.push({
        path: ['instances', inst.name, 'host'],
        at: 'value',
        message: `${endpointLabel(inst.host, inst.port)} is also used by instance ${other}`,
      });
    }
  }
  return problems;
}

export interface FileProblem extends Problem {
  /** Index into the `specs` given to checkAcrossFiles. */
  readonly index: number;
}

/**
 * Uniqueness across files: cluster names, and host:port. The later file is the one reported.
 * `shadowed` holds the indexes of specs whose cluster name an earlier file already took.
 */
export function checkAcrossFiles(specs: readonly ClusterSpec[]): { problems: FileProblem[]; shadowed: Set<number> } {
  const problems: FileProblem[] = [];
  const shadowed = new Set<number>();
  const clusters = new Map<string, ClusterSpec>();
  const endpoints = new Map<string, { spec: ClusterSpec; instance: string }>();

  specs.forEach((spec, index) => {
    const earlier = clusters.get(spec.cluster);
    if (earlier) {
      shadowed.add(index);
      problems.push({
        index,
        path: ['cluster'],
        at: 'value',
        message: `"${spec.cluster}" is also defined in ${earlier.file}`,
      });
      return; // a copy of another file would repeat every host:port; one line is enough
    }
    clusters.set(spec.cluster, spec);
    for (const inst of spec.instances) {
      const id = endpointId(inst.host, inst.port);
      const other = endpoints.get(id);
      if (other === undefined) {
        endpoints.set(id, { spec, instance: inst.name });
      } else if (other.spec !== spec) {
        problems.push({
          index,
          path: ['instances', inst.name, 'host'],
          at: 'value',
          message: `${endpointLabel(inst.host, inst.port)} is also used by instance ${other.instance} of cluster ${other.spec.cluster} (${other.spec.file})`,
        });
      }
    }
  });
  return { problems, shadowed };
}

/** The routing section's rules: a router listed once, a reader backend that is not the writer. */
export function checkRoutingRules(routing: readonly { haproxy: string; writer: string; reader?: string }[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  routing.forEach((r, n) => {
    const first = seen.get(r.haproxy);
    if (first !== undefined) problems.push({ path: ['routing', n, 'haproxy'], at: 'value', message: `router ${r.haproxy} is listed twice (routing[${first}] and routing[${n}]): list each router once` });
    else seen.set(r.haproxy, n);
    if (r.reader !== undefined && r.reader === r.writer) problems.push({ path: ['routing', n, 'reader'], at: 'value', message: `the reader backend ${r.reader} is the writer backend: replicas would take writes` });
  });
  return problems;
}
