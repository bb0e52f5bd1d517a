/**
 * What a duplex fee bump pays (src/protocol/duplex-bump.ts): the target rate × vsize, or the
 * replaced version's fee plus its increment, or the state's fee plus a dust-sized coin, whichever
 * is most, and never more (issue 12.1: a bump once spent a whole wallet coin as fee).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1 } from '../../src/crypto/index.js';
import { fromHex } from '../../src/protocol/bytes.js';
import { answerRival, FEE_INPUT_VBYTES, planBump } from '../../src/protocol/duplex-bump.js';
import { duplexOutputs, duplexSpendVsize, makeDuplexChannel } from '../../src/protocol/duplex-tx.js';
import { feeForVsize } from '../../src/protocol/transactions.js';

const secp = loadNativeSecp256k1();
const channel = makeDuplexChannel(
  {
    network: 'regtest',
    keyA: secp.publicKeyCreate(fromHex('11'.repeat(32))),
    keyB: secp.publicKeyCreate(fromHex('22'.repeat(32))),
    scriptA: fromHex('0014' + '33'.repeat(20)),
    scriptB: fromHex('5120' + '55'.repeat(32)),
    contributionASat: 600_000n,
    contributionBSat: 400_000n,
    initialLocktime: 1_103,
    deltaBlocks: 6,
    stateFeeRateSatPerVb: 2,
  },
  { txid: 'ab'.repeat(32), vout: 0 },
);
const state = { index: 3, balanceASat: 550_000n, balanceBSat: 450_000n };
const P2WPKH_DUST = 294n;

describe('planBump', () => {
  it('pays exactly the target rate × vsize when that is what binds', () => {
    const plan = planBump(channel, state, 50);
    const vsize = duplexSpendVsize(channel) + FEE_INPUT_VBYTES;
    expect(plan.vsize).toBe(vsize);
    expect(plan.feeSat).toBe(feeForVsize(vsize, 50));
    expect(plan.coinSat).toBe(plan.feeSat - duplexOutputs(channel, state, 2).feeSat);
  });

  it('never pays more than the largest of the rate, the replaced fee plus its increment, and a dust coin', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.bigInt({ min: 0n, max: 200_000n }), (rate, replacedFee) => {
        const plan = planBump(channel, state, rate, { feeSat: replacedFee });
        const stateFee = duplexOutputs(channel, state, 2).feeSat;
        const floors = [feeForVsize(plan.vsize, rate), replacedFee + BigInt(plan.vsize), stateFee + P2WPKH_DUST];
        const most = floors.reduce((a, b) => (a > b ? a : b));
        expect(plan.feeSat).toBe(most);
        expect(plan.coinSat).toBeGreaterThanOrEqual(P2WPKH_DUST);
        expect(plan.feeSat - plan.coinSat).toBe(stateFee);
      }),
    );
  });
});

describe('answerRival', () => {
  // Vectors: what a rival spend of the funding output in the mempool is worth answering.
  const base = { ourNewestSat: 510_000n, planCoinSat: 700n, ceilingCoinSat: 60_000n, ownOlderVersion: false };
  const vectors = [
    // The peer's older state paying us 1 sat more: never replaced (it is better for us).
    { name: 'accepts a rival paying us 1 sat more', input: { ...base, ourInRivalSat: 510_001n }, expected: { type: 'Accept' } },
    { name: 'accepts a rival paying us the same', input: { ...base, ourInRivalSat: 510_000n }, expected: { type: 'Accept' } },
    // Our own older version paying us more (scenario a: the newer state paid the peer): let it confirm.
    { name: 'accepts our own older version paying us more', input: { ...base, ourInRivalSat: 530_000n, ownOlderVersion: true }, expected: { type: 'Accept' } },
    // Our own older version paying us less: a routine bump, the exact coin only.
    { name: 'replaces our own older version paying us less with the exact coin', input: { ...base, ourInRivalSat: 490_000n, ownOlderVersion: true }, expected: { type: 'Replace', maxCoinSat: 700n } },
    // The peer's older state taking 1 sat of ours: at most 1 sat over the plan.
    { name: 'caps the coin at the plan plus the loss', input: { ...base, ourInRivalSat: 509_999n }, expected: { type: 'Replace', maxCoinSat: 701n } },
    { name: 'caps the coin at the ceiling when the loss is larger', input: { ...base, ourInRivalSat: 400_000n }, expected: { type: 'Replace', maxCoinSat: 60_000n } },
    { name: 'never caps below the plan', input: { ...base, ourInRivalSat: 0n, ceilingCoinSat: 500n }, expected: { type: 'Replace', maxCoinSat: 700n } },
  ] as const;
  for (const v of vectors) {
    it(v.name, () => {
      expect(answerRival(v.input)).toEqual(v.expected);
    });
  }

  it('refuses negative amounts', () => {
    expect(() => answerRival({ ...base, ourInRivalSat: -1n })).toThrow(RangeError);
  });

  it('never lets a coin cost more than winning gains (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 8n }), fc.bigInt({ min: 0n, max: 10n ** 8n }), fc.bigInt({ min: 294n, max: 10n ** 6n }), (newest, inRival, plan) => {
        const answer = answerRival({ ourNewestSat: newest, ourInRivalSat: inRival, planCoinSat: plan, ceilingCoinSat: 10n ** 7n, ownOlderVersion: false });
        if (inRival >= newest) return answer.type === 'Accept';
        return answer.type === 'Replace' && answer.maxCoinSat - plan <= newest - inRival;
      }),
    );
  });
});
