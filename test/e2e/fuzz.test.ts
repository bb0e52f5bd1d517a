/**
 * A short run of the hostile-peer fuzzer (test/fuzz, `npm run test:fuzz` for the long one):
 * `paychan payee serve` in its own process takes 3,000 malformed, mutated, oversized,
 * out-of-order and replayed frames over several WebSockets while an honest payer keeps paying;
 * then its per-peer limits are checked. The payee must not crash, must answer every frame,
 * must keep every channel state as it was, and must acknowledge every honest payment.
 *
 * Seed: PAYCHAN_FUZZ_SEED, else a fixed one (the run is reproducible from it).
 */
import { describe, expect, it } from 'vitest';
import { fuzzPayee } from '../fuzz/payee-fuzz.js';

const seed = Number(process.env.PAYCHAN_FUZZ_SEED ?? 20_260_101);
const log = process.env.PAYCHAN_TEST_LOG === '1' ? (l: string) => console.error(`[fuzz] ${l}`) : undefined;

describe('hostile peers against the payee process', () => {
  it(`3,000 hostile frames (seed ${seed}): no crash, every frame answered, no state changed, honest payer served`, async () => {
    const report = await fuzzPayee({ messages: 3_000, seed, rateFrames: 100_000, textFloodFrames: 30_000, helloFlood: 20, log });
    const { findings, samples, byKind, stateChecks, ...figures } = report;
    console.log(`[fuzz] ${JSON.stringify(figures)}`);
    for (const f of findings) console.log(`[fuzz] finding [${f.severity}] ${f.id}: ${f.evidence.slice(0, 300)}`);
    for (const s of stateChecks) if (!s.ok) console.log(`[fuzz] state changed: ${JSON.stringify(s)}`);

    expect(report.messages).toBeGreaterThanOrEqual(3_000);
    expect(report.crashes, JSON.stringify(samples.crashes)).toBe(0);
    expect(report.unanswered, JSON.stringify(samples.unanswered)).toBe(0);
    expect(report.unexpectedAccepts, JSON.stringify(samples.unexpectedAccepts)).toBe(0);
    expect(report.unexpectedCloses, JSON.stringify(samples.unexpectedCloses)).toBe(0);
    expect(report.wrongCodes, JSON.stringify(samples.wrongCodes)).toBe(0);
    expect(report.invalidReplies, JSON.stringify(samples.invalidReplies)).toBe(0);
    expect(report.internalErrorReplies, JSON.stringify(samples.internalErrorReplies)).toBe(0);
    expect(report.decoderThrew, JSON.stringify(samples.decoderThrew)).toBe(0);
    expect(report.stateChanges, JSON.stringify(stateChecks)).toBe(0);
    expect(report.orphanRows).toBe(0);
    expect(report.honestFailures, JSON.stringify(samples.honestFailures)).toBe(0);
    expect(report.honestPayments).toBeGreaterThan(0);
    expect(report.errorReplies + Object.values(report.nonErrorReplies).reduce((a, b) => a + b, 0) + report.silent + Object.values(report.closes).reduce((a, b) => a + b, 0)).toBe(report.messages);
    // Every kind of hostile frame was sent.
    for (const [kind, counts] of Object.entries(byKind)) expect(counts.sent, kind).toBeGreaterThan(0);
    expect(report.closes['1009']).toBeGreaterThan(0);
    expect(report.byCode.MALFORMED_MESSAGE).toBeGreaterThan(0);
    // The default per-address connection limit: 429 beyond 16 from one address.
    expect(report.limits?.connectionsPerAddress).toMatchObject({ ok: true, refusedStatus: 429, refusedCode: 'TOO_MANY_CONNECTIONS_FROM_ADDRESS' });
    // The default message rate (20,000/s, burst 40,000): a binary flood beyond it gets RATE_LIMITED.
    expect(report.limits?.messageRate).toMatchObject({ unanswered: 0, ok: true });
    expect(report.limits?.textFlood).toMatchObject({ unanswered: 0, ok: true });
    // Unfunded proposals hold nothing (opening cookies): every hello is accepted, no row, no key.
    expect(report.limits?.openAttempts).toMatchObject({ ok: true, accepted: 20, rowsAdded: 0, keyIndicesUsed: 0, otherPeerAccepted: true });
    // The payee restarted on its store (a probe) with every stored channel and still running.
    expect(findings.map((f) => f.id)).not.toContain('restart-lost-channels');
    expect(report.ok).toBe(true);
  });
});
