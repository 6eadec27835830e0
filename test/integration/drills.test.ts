// A short subset of the fault drills (`npm run drills` runs them all), so CI guards them: one
// SIGKILL of the primary, the SIGSTOP one (must not fail over), and the errant old primary.
import { describe, expect, it } from 'vitest';
import { runDrill, tableRow } from '../drills/harness.js';

describe('fault drills under write load (subset)', () => {
  it('SIGKILL of the primary: one failover, never two writable, no replica left behind', { timeout: 180_000 }, async () => {
    const [r] = await runDrill('kill', { baseOctet: 111, repeat: 1 });
    process.stdout.write(`${tableRow(r!)}\n`);
    expect(r).toMatchObject({ failedOver: true, twoWritableSamples: 0, replicasLeftBehind: 0, unexpectedFailovers: 0, writesResumed: true });
    expect(r!.ackedWrites).toBeGreaterThan(20);
    expect(r!.ok).toBe(true);
  });

  it('SIGSTOP of the primary for 10 s: no failover, and writes resume', { timeout: 180_000 }, async () => {
    const [r] = await runDrill('freeze', { baseOctet: 111 });
    process.stdout.write(`${tableRow(r!)}\n`);
    expect(r).toMatchObject({ failedOver: false, twoWritableSamples: 0, unexpectedFailovers: 0, missingAcked: 0, replicasLeftBehind: 0, writesResumed: true });
    expect(r!.ok).toBe(true);
  });

  it('the old primary returns with a transaction nobody else has: fenced, never rejoined', { timeout: 180_000 }, async () => {
    const [r] = await runDrill('errant', { baseOctet: 111 });
    process.stdout.write(`${tableRow(r!)}\n`);
    expect(r!.detail).toContain('fenced: read-only, not replicating');
    expect(r).toMatchObject({ failedOver: true, twoWritableSamples: 0, replicasLeftBehind: 0 });
    expect(r!.ok).toBe(true);
  });
});
