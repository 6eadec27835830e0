// Can a cluster be observed at all? What is planned from servers that cannot be probed, or that
// refuse the credentials, is not "no changes": it is an error. Pure.
import type { ProbeResult } from './model.js';

/**
 * Clusters that could not be observed at all (every instance unreachable), or instances that
 * refused the admin credentials: what is planned from that is not "no changes", it is an error.
 */
export function unobservable(observed: readonly { cluster: string; probes: ReadonlyMap<string, ProbeResult> }[]): string[] {
  const out: string[] = [];
  for (const o of observed) {
    const failed = [...o.probes.entries()].filter(([, p]) => !p.ok);
    const denied = failed.filter(([, p]) => !p.ok && /ACCESS_DENIED/.test(p.code));
    const first = failed[0]?.[1];
    if (denied.length > 0) out.push(`cluster ${o.cluster}: access denied on ${denied.map(([n]) => n).join(', ')} (check the admin credentials)`);
    else if (failed.length > 0 && failed.length === o.probes.size) out.push(`cluster ${o.cluster}: no instance could be probed (${first && !first.ok ? first.error : 'unknown'})`);
  }
  return out;
}
