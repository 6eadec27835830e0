#!/usr/bin/env node
// Benchmarks `sandbox up` and `status` on a real sandbox. Prints a table and writes
// bench/results/status.json. Medians, because this machine is noisy. Usage:
//   node scripts/bench-status.mjs [--instances 3] [--runs 10]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '3' }, runs: { type: 'string', default: '10' }, 'base-ip': { type: 'string', default: '11' } } });
const n = Number(values.instances);
const runs = Number(values.runs);
const bin = fileURLToPath(new URL('../bin/topogit.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'topogit-bench-'));
const env = { ...process.env, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox'), TOPOGIT_PASSWORD: 'bench-pw', TOPOGIT_REPL_PASSWORD: 'bench-repl' };
const topogit = (...args) => {
  const t = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8' });
  return { ms: performance.now() - t, code: r.status, out: r.stdout, err: r.stderr };
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const up = [];
const status = [];
const probeMs = [];
try {
  // Three ups: the first builds the bootstrap template (cold), the others copy it (warm).
  for (let k = 0; k < 3; k++) {
    const r = topogit('sandbox', 'up', '--cluster', 'bench', '--instances', String(n), '--base-ip', values['base-ip']);
    if (r.code !== 0) throw new Error(r.err);
    up.push(r.ms);
    if (k < 2) topogit('sandbox', 'down', '--cluster', 'bench');
  }
  topogit('status'); // warm the file cache
  for (let k = 0; k < runs; k++) {
    const r = topogit('status', '--json');
    if (r.code !== 0) throw new Error(`status exited ${r.code}: ${r.err}`);
    status.push(r.ms);
    const j = JSON.parse(r.out);
    probeMs.push(Math.max(...j.clusters[0].instances.map((i) => i.probeMs)));
  }
} finally {
  topogit('sandbox', 'down', '--cluster', 'bench');
  rmSync(dir, { recursive: true, force: true });
}
const result = {
  date: new Date().toISOString(),
  instances: n,
  runs,
  sandboxUpColdMs: Math.round(up[0]),
  sandboxUpWarmMedianMs: Math.round(median(up.slice(1))),
  statusCliMedianMs: Math.round(median(status)),
  statusCliMinMs: Math.round(Math.min(...status)),
  slowestProbeMedianMs: median(probeMs),
};
console.log('| measure | value |\n|---|---|');
console.log(`| sandbox up, ${n} instances, cold (bootstraps the data-dir template) | ${result.sandboxUpColdMs} ms |`);
console.log(`| sandbox up, ${n} instances, warm (median of 2) | ${result.sandboxUpWarmMedianMs} ms |`);
console.log(`| topogit status, whole CLI process (median of ${runs}) | ${result.statusCliMedianMs} ms |`);
console.log(`| slowest single-instance probe within it (median) | ${result.slowestProbeMedianMs} ms |`);
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/status-${n}.json`, JSON.stringify(result, null, 2) + '\n');
