// The status page, rendered on the server from the same JSON as /api/clusters: every cluster as a
// tree (as `topogit status` draws it), the drift `plan` would propose, recent failovers, relocations
// and switchovers, and who leads. Pure functions of their input; every value that came from a
// server or a file goes through `esc`. The page's script only swaps in fragments rendered here.
import type { HistoryEntry } from '../../core/history.js';
import type { ClusterJson, ClustersJson, InstanceJson } from '../http.js';

export interface PageOptions {
  /** e.g. "https://git.example.com/ops/topologies/commit/{sha}": commits become links. */
  readonly commitUrl?: string;
  /** Seconds between reloads for a browser without JavaScript. */
  readonly refreshSeconds?: number;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text and attribute values: nothing from a server or a file reaches the page unescaped. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** A stable id for a cluster's section (names are free text in the file's `cluster:`). */
export function clusterId(name: string): string {
  return `cluster-${Buffer.from(name, 'utf8').toString('hex')}`;
}

const HEALTH_CLASS: Record<string, string> = {
  OK: 'ok',
  Drift: 'warn',
  Lagging: 'warn',
  'SQL stopped': 'bad',
  Disconnected: 'bad',
  'SQL error': 'bad',
  Fenced: 'bad',
  Unreachable: 'bad',
};

function health(word: string | null): string {
  const w = word ?? 'not probed yet';
  return `<span class="health ${HEALTH_CLASS[w] ?? 'unknown'}">${esc(w)}</span>`;
}

function commitRef(sha: string | null, o: PageOptions): string {
  if (!sha) return '<span class="muted">not committed</span>';
  const short = esc(sha.slice(0, 12));
  if (!o.commitUrl) return `<code>${short}</code>`;
  return `<a href="${esc(o.commitUrl.replaceAll('{sha}', encodeURIComponent(sha)))}"><code>${short}</code></a>`;
}

function instanceLine(i: InstanceJson): string {
  const marks: string[] = [];
  if (i.health === 'Fenced') marks.push('<span class="mark">fenced</span>');
  if (i.maintenance) marks.push(`<span class="mark">maintenance${i.maintenance.until ? ` until ${esc(i.maintenance.until)}` : ''}${i.maintenance.reason ? `: ${esc(i.maintenance.reason)}` : ''}</span>`);
  const role = i.liveRole === 'primary' ? 'primary' : i.liveRole === 'replica' ? 'replica' : 'role unknown';
  const details = [
    `<span class="role">${role}${i.role !== i.liveRole && i.liveRole !== 'unknown' ? ` (file: ${i.role})` : ''}</span>`,
    health(i.health),
    i.readOnly === null ? '' : `<span>${i.readOnly ? 'read-only' : 'writable'}</span>`,
    i.lagSeconds === null ? '' : `<span>lag ${esc(i.lagSeconds)}s</span>`,
    `<span>promotion ${esc(i.promotion)}</span>`,
    ...marks,
  ].filter(Boolean);
  const problems = i.problems.length ? `<ul class="problems">${i.problems.map((p) => `<li>${esc(p.health)}: ${esc(p.detail)}</li>`).join('')}</ul>` : '';
  const error = i.error ? `<p class="error">${esc(i.error)}</p>` : '';
  return (
    `<div class="node" data-instance="${esc(i.name)}" data-health="${esc(i.health)}" data-role="${esc(i.liveRole)}">` +
    `<strong class="name">${esc(i.name)}</strong> <span class="addr">${esc(i.host)}:${esc(i.port)}</span> ${details.join(' ')}` +
    `${i.gtid ? `<div class="gtid">GTID <code>${esc(i.gtid)}</code></div>` : ''}${error}${problems}</div>`
  );
}

/** The live tree: each instance under the source it replicates from (an unreachable one under its file source). */
function tree(instances: readonly InstanceJson[]): string {
  const names = new Set(instances.map((i) => i.name));
  const parentOf = (i: InstanceJson): string | null => {
    const p = i.liveSource && names.has(i.liveSource) ? i.liveSource : i.liveRole === 'unknown' && i.source && names.has(i.source) ? i.source : null;
    return p === i.name ? null : p;
  };
  const children = new Map<string | null, InstanceJson[]>();
  for (const i of instances) {
    const p = parentOf(i);
    children.set(p, [...(children.get(p) ?? []), i]);
  }
  const drawn = new Set<string>();
  const branch = (parent: string | null): string => {
    const kids = (children.get(parent) ?? []).filter((k) => !drawn.has(k.name));
    if (kids.length === 0) return '';
    for (const k of kids) drawn.add(k.name);
    return `<ul>${kids.map((k) => `<li>${instanceLine(k)}${branch(k.name)}</li>`).join('')}</ul>`;
  };
  let html = branch(null);
  // A replication loop has no root: draw what is left flat rather than lose it.
  const rest = instances.filter((i) => !drawn.has(i.name));
  if (rest.length > 0) html += `<ul>${rest.map((i) => `<li>${instanceLine(i)} <span class="mark">in a replication loop</span></li>`).join('')}</ul>`;
  return `<div class="tree">${html}</div>`;
}

function historyTable(entries: readonly HistoryEntry[], o: PageOptions): string {
  if (entries.length === 0) return '<p class="muted">No failover, relocation or switchover recorded in Git yet.</p>';
  const rows = entries
    .map(
      (e) =>
        `<tr data-kind="${esc(e.kind)}"><td><time datetime="${esc(e.at)}">${esc(e.at.replace('T', ' ').replace(/\.\d+/, ''))}</time></td><td>${esc(e.kind)}</td><td>${esc(e.summary)}</td><td>${esc(e.analysis ?? '-')}</td>` +
        `<td>${e.writableMs === null ? '-' : `writable ${esc(e.writableMs)} ms, repointed ${esc(e.repointedMs)} ms`}</td><td>${commitRef(e.commit, o)}</td></tr>`,
    )
    .join('');
  return `<div class="scroll"><table><caption>Recent failovers, relocations and switchovers</caption><thead><tr><th scope="col">when</th><th scope="col">what</th><th scope="col">change</th><th scope="col">analysis</th><th scope="col">timings from detection</th><th scope="col">commit</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** One cluster's section; the unit the page's event stream replaces. */
/** Who acts on the cluster: per cluster with etcd (its leader), else the one lease of the clone. */
function ledBy(c: ClusterJson, role: 'active' | 'standby'): string {
  if (c.leader) return c.leader.mine ? `this daemon (${esc(c.leader.name ?? '?')}, etcd)` : c.leader.name ? `${esc(c.leader.name)} (etcd; this daemon stands by)` : 'no daemon yet (etcd)';
  return role === 'active' ? 'this daemon (it holds the lease)' : 'another daemon (this one stands by)';
}

export function renderCluster(c: ClusterJson, role: 'active' | 'standby', o: PageOptions = {}): string {
  const id = clusterId(c.name);
  const conditions = c.conditions
    .filter((k) => (k.type === 'Ready' ? !k.status : k.status))
    .map((k) => `<li><strong>${k.type === 'Ready' ? 'Not ready' : esc(k.type)}</strong>: ${esc(k.reason)}</li>`)
    .join('');
  const blocked = c.conditions.find((k) => k.type === 'FailoverBlocked' && k.status);
  const needed = c.analysis && c.analysis !== 'PrimaryReachable';
  const drift = c.drift.length
    ? `<ol>${c.drift.map((s) => `<li>${esc(s)}</li>`).join('')}</ol>`
    : '<p class="muted">No drift: the live servers match the file.</p>';
  const readiness = c.failover ? `<p>If the primary died now: ${esc(c.failover.ready ? `fail over to ${c.failover.candidate ?? 'a replica'}` : `no failover (${c.failover.reasons.join('; ') || 'not ready'})`)}</p>` : '';
  return (
    `<section class="cluster" id="${id}" data-cluster="${esc(c.name)}" aria-labelledby="${id}-h">` +
    `<h2 id="${id}-h">${esc(c.name)} ${health(c.health)}</h2>` +
    (needed ? `<p class="alert">Recovery needed: ${esc(c.analysis)}${blocked ? ` (blocked: ${esc(blocked.reason)})` : ''}</p>` : '') +
    `<p class="meta">file <code>${esc(c.file)}</code> · primary in the file <strong>${esc(c.primary ?? '-')}</strong> · live writable ${esc(c.livePrimaries.join(', ') || 'none')} · analysis ${esc(c.analysis ?? '-')} · led by ${ledBy(c, role)}</p>` +
    (c.fileValid ? '' : `<div class="alert"><p>The file does not validate; the last valid version is in force:</p><ul>${c.fileIssues.map((i) => `<li>${esc(i)}</li>`).join('')}</ul></div>`) +
    (conditions ? `<ul class="conditions">${conditions}</ul>` : '') +
    `<h3>Topology</h3>${tree(c.tree)}${readiness}` +
    `<h3>Drift</h3>${drift}` +
    (c.routers.length ? `<h3>Routers</h3><ul class="routers">${c.routers.map((r) => `<li data-router="${esc(r.router)}">${esc(r.router)}: ${r.inStep ? '<span class="health ok">in step</span>' : `<span class="health bad">not in step</span> ${esc(r.detail)}`}</li>`).join('')}</ul>` : '') +
    `<h3>History</h3>${historyTable(c.history, o)}` +
    `</section>`
  );
}

/** The header line: who this daemon is and what it watches. */
export function renderDaemonLine(s: ClustersJson): string {
  return `<p id="daemon" class="meta">This daemon is <strong>${s.role === 'active' ? 'active (holds the lease, acts)' : 'standing by (observes, never acts)'}</strong> · started ${esc(s.startedAt)} · ${s.clusters.length} cluster${s.clusters.length === 1 ? '' : 's'} · read-only page</p>`;
}

/** The main element: the list of clusters and one section each. */
export function renderMain(s: ClustersJson, o: PageOptions = {}): string {
  const nav = s.clusters.length > 1 ? `<nav aria-label="Clusters"><ul>${s.clusters.map((c) => `<li><a href="#${clusterId(c.name)}">${esc(c.name)}</a></li>`).join('')}</ul></nav>` : '';
  const body = s.clusters.length ? s.clusters.map((c) => renderCluster(c, s.role, o)).join('') : '<p>No cluster loaded yet.</p>';
  return `<main id="main">${renderDaemonLine(s)}${nav}${body}</main>`;
}

export function renderPage(s: ClustersJson, o: PageOptions = {}): string {
  const refresh = o.refreshSeconds ?? 5;
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>topogit</title><link rel="stylesheet" href="/assets/page.css"><script src="/assets/page.js" defer></script>` +
    `<noscript><meta http-equiv="refresh" content="${refresh}"></noscript></head>` +
    `<body><a class="skip" href="#main">Skip to the clusters</a><header><h1>topogit</h1><p id="live" class="muted" aria-live="polite">Rendered at ${esc(new Date().toISOString())}; without JavaScript this page reloads every ${refresh} s.</p><p id="updated" class="muted"></p></header>` +
    renderMain(s, o) +
    '</body></html>'
  );
}

/** The page a browser gets without a valid token: a form to give one (posted, never in a URL). */
export function renderLogin(wrong: boolean): string {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>topogit: token needed</title><link rel="stylesheet" href="/assets/page.css"></head>' +
    `<body><main id="main"><h1>topogit</h1><p>This page needs the daemon's token (the file given to <code>--http-token-file</code>).</p>${wrong ? '<p class="alert" role="alert">That token is not right.</p>' : ''}` +
    '<form method="post" action="/login"><label for="token">Token</label> <input id="token" name="token" type="password" autocomplete="current-password" required> <button type="submit">Open</button></form></main></body></html>'
  );
}
