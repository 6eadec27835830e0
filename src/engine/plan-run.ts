// Wires read -> gather -> plan, and what a saved plan needs to be checked before it runs:
// the files' hashes, the Git commit, and a fingerprint of the live state the plan depends on.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TopogitError } from '../core/errors.js';
import { classifyCluster, DEFAULT_CLASSIFY } from '../core/classify.js';
import { leaveAlone } from '../core/maintenance.js';
import type { ClusterSpec, ProbeResult } from '../core/model.js';
import type { Maintenance } from '../core/state.js';
import type { StatusJson } from '../core/status-document.js';
import { planCluster, type ClusterPlan, type PlanOptions, type Step } from '../core/plan.js';
import { withRouterSteps } from '../core/route-plan.js';
import { resolveCredentials } from '../config/load.js';
import { countChanges, viewPlan, type PlanBasis, type PlanDocument, type PlanStepView } from '../core/plan-document.js';
import { displayAction } from '../adapters/mysql/actions.js';
import type { Observation } from './gather.js';

export function planObservations(observations: readonly Observation[], opts: PlanOptions, env: NodeJS.ProcessEnv): { plans: ClusterPlan[]; doc: Omit<PlanDocument, 'against'> } {
  const plans = observations.map((o) => {
    // A fenced former primary (status shows it) is never rejoined by a plan either.
    const fenced = new Map(o.view.instances.filter((i) => i.health === 'Fenced').map((i) => [i.name, i.problems[0]?.detail ?? 'fenced']));
    // Nor is an instance in maintenance touched (status shows it).
    const maintenance = new Map(o.view.instances.flatMap((i) => (i.maintenance ? [[i.name, i.maintenance] as const] : [])));
    const planned = leaveAlone(planCluster(o.spec, o.probes, fenced.size ? { ...opts, fenced } : opts), o.spec, maintenance);
    // Fenced and maintenance instances never take reads (nor the writes) through a router.
    return o.routers ? withRouterSteps(planned, o.spec, o.probes, o.routers, new Set([...fenced.keys(), ...maintenance.keys()])) : planned;
  });
  const views = plans.map((p, n) => {
    const o = observations[n] as Observation;
    // Only the user name is shown; the replication password stays unread until apply runs.
    const replUser = replicationUser(o.spec, env);
    return viewPlan(p, o.view.version, replUser, displayAction);
  });
  return { plans, doc: { formatVersion: 1, createdAt: new Date().toISOString(), summary: countChanges(views), clusters: views } };
}

function replicationUser(spec: ClusterSpec, env: NodeJS.ProcessEnv): string {
  try {
    return resolveCredentials(spec, env).replication.user;
  } catch {
    return spec.credentials.replication.user;
  }
}

/** The part of an instance's live state a plan depends on. GTID positions move with every write
 *  and are re-checked when steps run, so they are not part of it. */
export function fingerprintProbe(p: ProbeResult | undefined): string {
  if (!p) return 'absent';
  if (!p.ok) return 'unreachable';
  const s = p.state;
  const ch = s.replication.map((c) => `${c.sourceHost}:${c.sourcePort} io=${c.ioThread === 'no' ? 'no' : 'yes'} sql=${c.sqlThread} sqlerr=${c.lastSqlErrno} gtid=${c.gtidAutoPosition} retry=${c.connectRetry ?? '?'} hb=${c.heartbeatPeriod ?? '?'}`);
  return `ro=${s.readOnly} ${ch.length ? ch.join(';') : 'source=none'}`;
}

export function liveFingerprint(observations: readonly Observation[]): PlanBasis['live'] {
  return Object.fromEntries(observations.map((o) => [o.spec.cluster, Object.fromEntries(o.spec.instances.map((i) => [i.name, fingerprintProbe(o.probes.get(i.name))]))]));
}

export async function fileHashes(specs: readonly ClusterSpec[], cwd: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of specs) out[s.file] = createHash('sha256').update(await readFile(path.resolve(cwd, s.file))).digest('hex');
  return out;
}

export async function planBasis(observations: readonly Observation[], cwd: string): Promise<PlanBasis> {
  const specs = observations.map((o) => o.spec);
  const dir = specs[0] ? path.dirname(path.resolve(cwd, specs[0].file)) : cwd;
  const { headCommit } = await import('../adapters/git.js');
  return { gitCommit: await headCommit(dir), files: await fileHashes(specs, cwd), live: liveFingerprint(observations) };
}

/** Why a saved plan may no longer be applied, one line each; empty when it still holds. */
export function stalePlanReasons(saved: PlanBasis, files: Record<string, string>, live: PlanBasis['live']): string[] {
  const out: string[] = [];
  for (const [file, hash] of Object.entries(saved.files)) {
    if (files[file] === undefined) out.push(`${file} is no longer among the topology files`);
    else if (files[file] !== hash) out.push(`${file} changed since the plan was made`);
  }
  for (const [cluster, instances] of Object.entries(saved.live)) {
    for (const [name, fp] of Object.entries(instances)) {
      const now = live[cluster]?.[name];
      if (now !== fp) out.push(`live state of ${cluster}/${name} changed since the plan was made (was: ${fp}; now: ${now ?? 'absent'})`);
    }
  }
  return out;
}

/** A saved plan's clusters back into executable plans (the SQL shown is re-derived, not trusted). */
export function plansFromDocument(doc: PlanDocument): ClusterPlan[] {
  const toStep = (s: PlanStepView): Step => ({
    id: s.id,
    instance: s.instance,
    symbol: s.symbol,
    summary: s.summary,
    reason: s.reason,
    actions: s.actions,
    ...(s.substeps ? { substeps: s.substeps.map(toStep) } : {}),
  });
  return doc.clusters.map((c) => ({ cluster: c.cluster, file: c.file, flavor: c.flavor === 'mysql' || c.flavor === 'mariadb' ? c.flavor : null, steps: c.steps.map(toStep), notices: c.notices }));
}

/** Replays `topogit status --json` output as an observation, for `plan --against` in CI. */
export function observationsFromStatus(json: unknown, specs: readonly ClusterSpec[], source: string): Observation[] {
  const doc = json as Partial<StatusJson> | null;
  if (doc?.formatVersion !== 1 || !Array.isArray(doc.clusters)) {
    throw new TopogitError('TOPOGIT_USAGE', `${source} is not the output of \`topogit status --json\` (formatVersion 1)`);
  }
  return specs.map((spec) => {
    const recorded = doc.clusters?.find((c) => c.name === spec.cluster);
    const probes = new Map<string, ProbeResult>();
    const maintenance = new Map<string, Maintenance>();
    for (const i of spec.instances) {
      const r = recorded?.instances.find((x) => x.host === i.host && x.port === i.port) ?? recorded?.instances.find((x) => x.name === i.name);
      const endpoint = { host: i.host, port: i.port };
      if (r?.maintenance) maintenance.set(i.name, r.maintenance);
      probes.set(
        i.name,
        r?.state
          ? { ok: true, endpoint, state: r.state, ms: 0 }
          : { ok: false, endpoint, error: r ? (r.error ?? 'unreachable when recorded') : `not in ${source}`, code: r?.errorCode ?? 'ERECORDED', ms: 0 },
      );
    }
    return { spec, probes, view: classifyCluster(spec, probes, { ...DEFAULT_CLASSIFY, ...(maintenance.size ? { maintenance } : {}) }) };
  });
}
