// `npm run drills`: every fault drill in turn (or those named in TOPOGIT_DRILLS, comma-separated),
// printing one table row per run and writing bench/results/drills.json. TOPOGIT_DRILL_REPEAT sets the
// runs per kind (default 10 for kill, fewer for the slow ones), TOPOGIT_DRILL_INTERVAL_MS the daemon's
// detection.intervalMs (default 1000; the product's default is 2500).
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { runDrill, TABLE_HEADER, tableRow, type DrillKind, type DrillReport } from './harness.js';

const ALL: DrillKind[] = ['kill', 'stop', 'freeze', 'partition', 'kill-two', 'daemon-crash', 'errant', 'semisync', 'maintenance', 'minority', 'reset', 'intermediate', 'delayed', 'semisync-lagging', 'restart'];
const selected = (process.env.TOPOGIT_DRILLS?.split(',').filter(Boolean) as DrillKind[] | undefined) ?? ALL;
const repeat = Number(process.env.TOPOGIT_DRILL_REPEAT ?? 10);
const intervalMs = Number(process.env.TOPOGIT_DRILL_INTERVAL_MS ?? 1000);
const all: DrillReport[] = [];

describe('fault drills', () => {
  afterAll(async () => {
    process.stdout.write(`\n${TABLE_HEADER}\n${all.map(tableRow).join('\n')}\n`);
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/drills.json', JSON.stringify({ date: new Date().toISOString(), reports: all }, null, 2) + '\n');
  });
  for (const kind of selected) {
    it(kind, { timeout: 600_000 }, async () => {
      const reports = await runDrill(kind, { baseOctet: 101, repeat, intervalMs });
      all.push(...reports);
      for (const r of reports) process.stdout.write(`${JSON.stringify(r)}\n`);
      expect(reports.every((r) => r.ok), JSON.stringify(reports.filter((r) => !r.ok))).toBe(true);
    });
  }
});
