/**
 * Crash safety, short: the harness of test/crash/harness.ts (the payee process SIGKILLed at
 * random points of a payment stream on several channels, restarted at once, its store checked
 * after every kill; then once more while its closes wait to be broadcast) at a size that fits in
 * `npm test`. The long run is `npm run test:crash`.
 *
 * Set PAYCHAN_CRASH_SEED to replay a seed's kill delays and amounts. The deterministic crash
 * points of test/crash/scenarios.ts (a payee dying between broadcasting a close and storing it,
 * between storing a funding and broadcasting it, and in the middle of the opening handshake)
 * run too.
 */
import { describe, expect, it } from 'vitest';
import { runCrashHarness } from '../crash/harness.js';
import { randomSeed } from '../crash/prng.js';
import { runScenario, SCENARIOS } from '../crash/scenarios.js';

const CHANNELS = 3;
const PAYMENTS = 5_000;
const KILLS = 8;

describe('crash safety', () => {
  it(`${KILLS} payee SIGKILLs during ${PAYMENTS} payments on ${CHANNELS} channels lose nothing acknowledged; every close pays it`, async () => {
    const seed = process.env.PAYCHAN_CRASH_SEED ? Number(process.env.PAYCHAN_CRASH_SEED) : randomSeed();
    const lines: string[] = [];
    const report = await runCrashHarness({
      channels: CHANNELS,
      payments: PAYMENTS,
      kills: KILLS,
      seed,
      earlyKillRatio: 0.25,
      log: (line) => lines.push(line),
    });
    const context = `seed ${seed} (replay: PAYCHAN_CRASH_SEED=${seed})\n${report.failures.join('\n')}\n--- last log lines ---\n${lines.slice(-30).join('\n')}`;
    expect(report.failures, context).toEqual([]);
    expect(report.ackedLost, context).toBe(0);
    expect(report.kills, context).toBeGreaterThanOrEqual(KILLS);
    expect(report.payments, context).toBeGreaterThanOrEqual(PAYMENTS);
    expect(report.storeChecks, context).toBe(KILLS + 2);
    expect(report.closeKills, context).toBe(1);
    expect(report.closingAtCloseKill, context).toBeGreaterThanOrEqual(1);
    expect(report.closedOnChain, context).toBe(CHANNELS);
    expect(BigInt(report.minCloseMarginSat ?? '-1'), context).toBeGreaterThanOrEqual(0n);
    expect(report.unexpectedExits, context).toBe(0);
    expect(report.ok, context).toBe(true);
  }, 150_000);

  describe('deterministic crash points', () => {
    for (const scenario of SCENARIOS) {
      it(scenario, async () => {
        const report = await runScenario(scenario);
        expect(report.ok, report.steps.join('\n')).toBe(true);
      }, 120_000);
    }
  });
});
