#!/usr/bin/env node
// `status` / `plan` latency against fleet size. Prints a markdown table and writes
// bench/results/scale.json. Medians, because this machine is noisy.
//
// - Real fleets (sizes up to --max-real, default 30): `topogit sandbox up` real MariaDB servers on
//   127.0.0.<base-ip>.. (port 3306 each), timed, then brought down.
// - Simulated fleets (larger sizes): protocol-level stand-ins (scripts/lib/standin.mjs, mysql2's
//   server API) on 127.0.0.1:<base-port>+i, in their own process, answering the probe's three
//   statements with rows modelled on a real 10.11 capture. Labelled "simulated (stand-in)": they
//   measure topogit's cost per probe (connect, handshake, three queries, parse, classify), not a
//   real server's.
//
// For each size: the whole CLI process (`status --json`, `plan`; node start-up included, at the
// CLI's default --concurrency 32 unless --cli-concurrency) and the probe round alone in-process
// (dist/engine/gather.js + dist/adapters/mysql/probe.js, as `status` wires it) at each
// --concurrency. The goal: cost ~ fleet size / concurrency x per-probe cost, concurrency bounded.
//
// Usage: node scripts/bench-scale.mjs [--sizes 3,9,30,300,3000] [--runs 10] [--concurrency 8,32,128]
//          [--base-ip 91] [--base-port 23000] [--max-real 30] [--cli-concurrency 32] [--latency-ms 0]
// Needs `npx tsc -p tsconfig.build.json` first (it imports dist/).
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { standinTree } from './lib/standin.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '3,9,30,300,3000' },
    runs: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '8,32,128' },
    'base-ip': { type: 'string', default: '91' },
    'base-port': { type: 'string', default: '23000' },
    'max-real': { type: 'string', default: '30' },
    'cli-concurrency': { type: 'string', default: '32' },
    'latency-ms': { type: 'string', default: '0' },
    out: { type: 'string' },
  },
});
const list = (s) => s.split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0);
const sizes = list(values.sizes);
const runs = Number(values.runs);
const concurrencies = list(values.concurrency);
const baseIp = Number(values['base-ip']);
const basePort = Number(values['base-port']);
const maxReal = Number(values['max-real']);
const cliConcurrency = Number(values['cli-concurrency']);
const latencyMs = Number(values['latency-ms']);

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin/topogit.js');
const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
const [{ gather }, { probe }, { loadTopologies, resolveCredentials }, { HeldConnections }, { probeCluster }] = await Promise.all([
  dist('engine/gather.js'),
  dist('adapters/mysql/probe.js'),
  dist('config/load.js'),
  dist('adapters/mysql/held.js'),
  dist('engine/probe-round.js'),
]);

const PASSWORD = 'bench-pw';
const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s) => process.stderr.write(`[bench-scale] ${s}\n`);

function cli(dir, env, args, okCodes = [0, 2]) {
  const t = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = performance.now() - t;
  if (!okCodes.includes(r.status)) throw new Error(`topogit ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
  return { ms, code: r.status, out: r.stdout, err: r.stderr };
}

/** status --json and plan, whole CLI process, `n` runs each; plus one sanity read of each. */
function timeCli(dir, env, n) {
  const g = ['--concurrency', String(cliConcurrency)];
  cli(dir, env, [...g, 'status']); // warm the file cache
  const status = [];
  const plan = [];
  let last;
  for (let k = 0; k < n; k++) {
    last = cli(dir, env, [...g, 'status', '--json']);
    status.push(last.ms);
  }
  for (let k = 0; k < n; k++) plan.push(cli(dir, env, [...g, 'plan']).ms);
  const j = JSON.parse(last.out);
  const instances = j.clusters.flatMap((c) => c.instances);
  const health = {};
  for (const i of instances) health[i.health] = (health[i.health] ?? 0) + 1;
  const planJson = JSON.parse(cli(dir, env, [...g, 'plan', '--format', 'json']).out);
  return {
    runs: n,
    statusMs: status.map(Math.round),
    planMs: plan.map(Math.round),
    statusMedianMs: Math.round(median(status)),
    planMedianMs: Math.round(median(plan)),
    statusExitCode: last.code,
    health,
    healthy: j.clusters.every((c) => c.healthy && c.inSync),
    slowestProbeMs: Math.max(...instances.map((i) => i.probeMs ?? 0)),
    planSummary: planJson.summary,
  };
}

/** The probe round alone, in this process, `n` rounds at each concurrency. */
async function timeGather(dir, env, n) {
  const { specs, issues } = await loadTopologies(['topologies'], { env, cwd: dir });
  if (issues.length) throw new Error(`topology issues: ${JSON.stringify(issues.slice(0, 3))}`);
  const size = specs.reduce((a, s) => a + s.instances.length, 0);
  const out = {};
  for (const c of concurrencies) {
    await gather(specs, { env, concurrency: c, probe }); // warm-up round (JIT, connection paths)
    const rounds = [];
    const probeMs = [];
    let failed = 0;
    const cpu0 = process.cpuUsage();
    for (let k = 0; k < n; k++) {
      const t = performance.now();
      const obs = await gather(specs, { env, concurrency: c, probe });
      rounds.push(performance.now() - t);
      for (const o of obs) {
        for (const p of o.probes.values()) {
          probeMs.push(p.ms);
          if (!p.ok) failed++;
        }
      }
    }
    const cpu = process.cpuUsage(cpu0);
    const perProbe = median(probeMs);
    const m = median(rounds);
    out[c] = {
      rounds: n,
      medianMs: Math.round(m),
      roundsMs: rounds.map(Math.round),
      medianProbeMs: perProbe,
      // The model: ceil(size / concurrency) waves, each as long as one probe.
      modelMs: Math.round(Math.ceil(size / c) * perProbe),
      probesPerSecond: Math.round((size / m) * 1000),
      // topogit's own CPU per probe (this process: mysql2 client, parsing, classify; not the servers').
      clientCpuMsPerProbe: Number(((cpu.user + cpu.system) / 1000 / (n * size)).toFixed(2)),
      failedProbes: failed,
    };
    log(`  gather c=${c}: median ${out[c].medianMs} ms (per probe ${perProbe} ms, client CPU ${out[c].clientCpuMsPerProbe} ms/probe, ${out[c].probesPerSecond}/s${failed ? `, ${failed} FAILED` : ''})`);
  }
  return out;
}

/**
 * The daemon's probe round: every instance of each cluster at once (probeCluster), over held
 * connections (one per instance, opened by a first round that is not timed). Median of `n` rounds
 * and topogit's CPU per probe.
 */
async function timeHeld(dir, env, n) {
  const { specs } = await loadTopologies(['topologies'], { env, cwd: dir });
  const size = specs.reduce((a, s) => a + s.instances.length, 0);
  const held = new HeldConnections();
  const timeouts = { connectMs: 10_000, queryMs: 10_000 };
  const round = () => Promise.all(specs.map((s) => probeCluster(s, held.probe, resolveCredentials(s, env).admin, timeouts)));
  try {
    await round(); // opens the connections
    await round(); // warm (JIT)
    const rounds = [];
    let failed = 0;
    const cpu0 = process.cpuUsage();
    for (let k = 0; k < n; k++) {
      const t = performance.now();
      const probes = await round();
      rounds.push(performance.now() - t);
      for (const m of probes) for (const p of m.values()) if (!p.ok) failed++;
    }
    const cpu = process.cpuUsage(cpu0);
    const out = { rounds: n, medianMs: Math.round(median(rounds)), clientCpuMsPerProbe: Number(((cpu.user + cpu.system) / 1000 / (n * size)).toFixed(3)), connections: held.size, failedProbes: failed };
    log(`  held connections (the daemon): round median ${out.medianMs} ms, client CPU ${out.clientCpuMsPerProbe} ms/probe, ${out.connections} connections${failed ? `, ${failed} FAILED` : ''}`);
    return out;
  } finally {
    await held.close();
  }
}

/** Servers this run started under `dir` that a failed `sandbox up` left running (no pid file yet). */
async function killLeftovers(dir) {
  for (let pass = 0; pass < 2; pass++) {
    await new Promise((r) => setTimeout(r, 3000)); // let servers still starting get that far
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmd;
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes(`--datadir=${dir}/`)) {
        log(`killing leftover server ${pid} (${cmd.split('\0').find((a) => a.startsWith('--bind-address')) ?? ''})`);
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }
}

async function real(n) {
  if (baseIp + n - 1 > 254) throw new Error(`--base-ip ${baseIp} leaves no room for ${n} instances`);
  const dir = mkdtempSync(path.join(tmpdir(), 'topogit-scale-'));
  const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'), TOPOGIT_PASSWORD: PASSWORD, TOPOGIT_REPL_PASSWORD: 'bench-repl' };
  const cluster = `scale${n}`;
  try {
    let up;
    const failures = [];
    for (let attempt = 1; !up; attempt++) {
      log(`real ${n}: sandbox up on 127.0.0.${baseIp}..${baseIp + n - 1}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      try {
        up = cli(dir, env, ['sandbox', 'up', '--cluster', cluster, '--instances', String(n), '--base-ip', String(baseIp)], [0]);
      } catch (e) {
        // Many servers starting at once on few cores: a first connection can miss the sandbox's
        // 1 s connect timeout, and `up` then tears down only the servers that had written a pid file.
        const first = String(e.message).split('\n').find((l) => /topogit:/.test(l)) ?? String(e.message).slice(0, 200);
        failures.push(first.trim());
        log(`real ${n}: sandbox up failed: ${first.trim()}`);
        await killLeftovers(dir);
        if (attempt >= 3) throw e;
      }
    }
    log(`real ${n}: up in ${Math.round(up.ms)} ms; timing the CLI`);
    const c = timeCli(dir, env, runs);
    log(`real ${n}: status ${c.statusMedianMs} ms, plan ${c.planMedianMs} ms (${JSON.stringify(c.health)})`);
    const g = await timeGather(dir, env, runs);
    const h = await timeHeld(dir, env, runs);
    return { size: n, kind: 'real', hosts: `127.0.0.${baseIp}..${baseIp + n - 1}:3306`, sandboxUpMs: Math.round(up.ms), sandboxUpFailures: failures, cli: c, gather: g, held: h };
  } finally {
    spawnSync(process.execPath, [bin, 'sandbox', 'down', '--cluster', cluster], { cwd: dir, env });
    await killLeftovers(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function topologyYaml(cluster, n, parents) {
  const name = (i) => `s${String(i).padStart(4, '0')}`;
  const lines = [
    `# Simulated: ${n} protocol-level stand-ins (scripts/lib/standin.mjs), not real servers.`,
    `cluster: ${cluster}`,
    'flavor: mariadb',
    'credentials:',
    '  admin:       { user: topogit, passwordEnv: TOPOGIT_PASSWORD }',
    '  replication: { user: repl,    passwordEnv: TOPOGIT_REPL_PASSWORD }',
    'instances:',
  ];
  for (let i = 0; i < n; i++) lines.push(`  ${name(i)}: { host: 127.0.0.1, port: ${basePort + i}${parents[i] >= 0 ? `, source: ${name(parents[i])}` : ''} }`);
  return lines.join('\n') + '\n';
}

async function startStandinProcess(n) {
  const child = spawn(process.execPath, [path.join(root, 'scripts/lib/standin.mjs'), '--count', String(n), '--base-port', String(basePort), '--password', PASSWORD, '--latency-ms', String(latencyMs)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const ready = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (l) => resolve(JSON.parse(l)));
    child.once('exit', (code) => reject(new Error(`stand-ins exited ${code}: ${err}`)));
  });
  return {
    ready,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve(err.trim()));
        child.stdin.end(); // the stand-in process stops on stdin EOF
      }),
  };
}

async function simulated(n) {
  if (basePort + n - 1 > 65535) throw new Error(`--base-port ${basePort} leaves no room for ${n} stand-ins`);
  const dir = mkdtempSync(path.join(tmpdir(), 'topogit-scale-'));
  const env = { ...process.env, TOPOGIT_PASSWORD: PASSWORD, TOPOGIT_REPL_PASSWORD: 'bench-repl' };
  log(`simulated ${n}: stand-ins on 127.0.0.1:${basePort}..${basePort + n - 1}`);
  const t = performance.now();
  const fleet = await startStandinProcess(n);
  const startMs = Math.round(performance.now() - t);
  let standinSummary = '';
  let result;
  try {
    const parents = standinTree(n);
    mkdirSync(path.join(dir, 'topologies'));
    writeFileSync(path.join(dir, 'topologies', `sim${n}.yaml`), topologyYaml(`sim${n}`, n, parents));
    const cliRuns = n >= 1000 ? Math.min(runs, 5) : runs;
    const c = timeCli(dir, env, cliRuns);
    log(`simulated ${n}: status ${c.statusMedianMs} ms, plan ${c.planMedianMs} ms (${JSON.stringify(c.health)})`);
    const g = await timeGather(dir, env, runs);
    const h = await timeHeld(dir, env, runs);
    const depth = Math.max(...parents.map((_, i) => { let d = 0; for (let j = i; parents[j] >= 0; j = parents[j]) d++; return d; }));
    result = { size: n, kind: 'simulated (stand-in)', hosts: `127.0.0.1:${basePort}..${basePort + n - 1}`, standinStartMs: startMs, latencyMs, treeDepth: depth, intermediates: new Set(parents.filter((p) => p > 0)).size, cli: c, gather: g, held: h };
  } finally {
    standinSummary = await fleet.stop();
    if (standinSummary) log(`simulated ${n}: ${standinSummary}`);
    rmSync(dir, { recursive: true, force: true });
  }
  return { ...result, standins: standinSummary };
}

const results = [];
for (const n of sizes) results.push(n <= maxReal ? await real(n) : await simulated(n));

const fmt = (ms) => (Number.isFinite(ms) ? `${ms} ms` : '—');
const header = ['fleet size', 'kind', `status CLI median`, `plan CLI median`, ...concurrencies.map((c) => `probe round in-process, c=${c}`)];
console.log(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
for (const r of results) {
  const cells = [
    String(r.size),
    r.kind,
    `${fmt(r.cli.statusMedianMs)} (${r.cli.runs})`,
    `${fmt(r.cli.planMedianMs)} (${r.cli.runs})`,
    ...concurrencies.map((c) => {
      const g = r.gather[c];
      return `${fmt(g.medianMs)}${g.failedProbes ? ` (${g.failedProbes} probes failed)` : ''}`;
    }),
  ];
  console.log(`| ${cells.join(' | ')} |`);
}
console.log(
  `\nCLI: whole process incl. node start-up, --concurrency ${cliConcurrency}, median of (n) runs. In-process: gather() only, median of ${runs} rounds. ` +
    `"simulated (stand-in)": mysql2 protocol stand-ins in one separate process${latencyMs ? `, ${latencyMs} ms added per query` : ''}, not real servers. ${cpus().length} CPUs.`,
);
console.log(`\n| fleet size | the daemon's probe round over held connections, median | client CPU per probe |\n|---|---|---|`);
for (const r of results) if (r.held) console.log(`| ${r.size}${r.kind === 'real' ? '' : ' (sim)'} | ${r.held.medianMs} ms | ${r.held.clientCpuMsPerProbe} ms |`);
console.log(`\n| fleet size | concurrency | round median | per-probe median | model ceil(N/c) x per-probe | probes/s | client CPU per probe |\n|---|---|---|---|---|---|---|`);
for (const r of results) {
  for (const c of concurrencies) {
    const g = r.gather[c];
    console.log(`| ${r.size}${r.kind === 'real' ? '' : ' (sim)'} | ${c} | ${g.medianMs} ms | ${g.medianProbeMs} ms | ${g.modelMs} ms | ${g.probesPerSecond} | ${g.clientCpuMsPerProbe} ms |`);
  }
}

const outFile = values.out ?? path.join(root, 'bench/results/scale.json');
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, runs, concurrencies, cliConcurrency, latencyMs, node: process.version, results }, null, 2) + '\n',
);
log(`wrote ${path.relative(process.cwd(), outFile) || outFile}`);
