// Renders cluster views as the operator's tree and as the documented JSON.
import type { ClusterView, InstanceView } from '../core/classify.js';
import type { ClusterReport } from '../core/report.js';

export function renderStatusText(clusters: readonly { readonly view: ClusterView; readonly report?: ClusterReport }[]): string {
  return clusters.map((c) => renderCluster(c.view, c.report)).join('\n');
}

/** The cluster's own lines under its tree: failover readiness, then each failure shape. */
export function reportLines(r: ClusterReport): string[] {
  const f = r.failover;
  const failover = f.ready ? `  failover: ready, ${f.reasons.join('; ')}` : `  ! failover: not ready: ${f.reasons.join('; ')}`;
  const bypass = r.readOnlyBypass?.length
    ? [`  ! accounts that can write through read_only (READ ONLY ADMIN; SUPER before MariaDB 10.11): ${r.readOnlyBypass.join(', ')} (a fence kills their sessions, not their next ones: keep the privilege away from applications)`]
    : [];
  const routers = (r.routers ?? []).map((x) => (x.inStep ? `  router ${x.router}: in step` : `  ! RoutingStale: router ${x.router} not in step: ${x.detail}`));
  const pending = (r.writeBackPending ?? []).map((p) => `  ! WriteBackPending: ${p.reason}`);
  const leader = r.leader ? [r.leader.name ? `  leader: ${r.leader.name} (${r.leader.coordinator}${r.leader.since ? `, since ${r.leader.since}` : ''})` : `  ! leader: no daemon leads it (${r.leader.coordinator})`] : [];
  return [...leader, failover, ...r.shapes.map((s) => `  ! ${s.code}: ${s.summary}`), ...bypass, ...routers, ...pending];
}

function renderCluster(v: ClusterView, report: ClusterReport | undefined): string {
  const version = v.version ? ` ${shortVersion(v.version)}` : '';
  const lines = [`${v.name}  (${v.flavor ?? 'flavor unknown'}${version})  ${v.file}`];
  const byName = new Map(v.instances.map((i) => [i.name, i]));
  // Draw the tree the servers report; fall back to the file's tree for what cannot be seen.
  const parentOf = (i: InstanceView) => {
    const live = i.liveSource !== null && byName.has(i.liveSource) ? i.liveSource : null;
    if (live !== null) return live;
    if (i.liveRole === 'primary') return null;
    return i.source;
  };
  const children = new Map<string | null, InstanceView[]>();
  for (const i of v.instances) {
    const p = parentOf(i);
    children.set(p, [...(children.get(p) ?? []), i]);
  }
  const rows: { prefix: string; i: InstanceView }[] = [];
  const visited = new Set<string>();
  const walk = (parent: string | null, prefix: string, top: boolean) => {
    const kids = children.get(parent) ?? [];
    kids.forEach((k, n) => {
      if (visited.has(k.name)) return;
      visited.add(k.name);
      const last = n === kids.length - 1;
      rows.push({ prefix: top ? '' : prefix + (last ? '└─ ' : '├─ '), i: k });
      walk(k.name, top ? '' : prefix + (last ? '   ' : '│  '), false);
    });
  };
  walk(null, '', true);
  // Anything in a cycle or under an unknown parent still gets a row.
  for (const i of v.instances) if (!visited.has(i.name)) rows.push({ prefix: '?  ', i });
  const cells = rows.map(({ prefix, i }) => [
    prefix + i.name,
    `${i.host}:${i.port}`,
    i.liveRole === 'unknown' ? i.role : i.liveRole,
    i.health,
    i.lagSeconds !== null ? `lag ${i.lagSeconds}s` : '',
    i.readOnly === null ? '' : i.readOnly ? 'ro' : 'rw',
    [i.gtid ? `gtid ${i.gtid}` : '', i.promotion === 'never' ? 'never-promote' : i.promotion === 'prefer' ? 'prefer-promote' : '', i.maintenance ? `maintenance${i.maintenance.until ? ` until ${i.maintenance.until}` : ''}` : '']
      .filter(Boolean)
      .join('  '),
  ]);
  const widths = cells[0]?.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length))) ?? [];
  for (const r of cells) lines.push(r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd());
  if (report) lines.push(...reportLines(report));
  const details = v.instances.flatMap((i) => i.problems.map((p) => `  ! ${i.name}: ${p.health}: ${p.detail}`));
  lines.push(...details);
  for (const i of v.instances) {
    const m = i.maintenance;
    if (m) lines.push(`  ~ ${i.name}: in maintenance since ${m.since}, ${m.until ? `until ${m.until}` : 'until turned off'}${m.reason ? `: ${m.reason}` : ''}; topogit neither fails over for it nor fences, promotes or repairs it`);
  }
  for (const u of v.unmanaged) lines.push(`  ! unmanaged replica ${u.host}:${u.port} (server_id ${u.serverId}) of ${u.of}: not in ${v.file}`);
  for (const n of v.notes) lines.push(`  ! ${n}`);
  return lines.join('\n') + '\n';
}

function shortVersion(v: string): string {
  return /^(\d+\.\d+)/.exec(v)?.[1] ?? v;
}
