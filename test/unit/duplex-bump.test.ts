/**
 * What a duplex fee bump pays (src/protocol/duplex-bump.ts): the target rate × vsize, or the
 * replaced version's fee plus its increment, or the state's fee plus a dust-sized coin, whichever
 * is most, and never more (issue 12.1: a bump once spent a whole wallet coin as fee).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1 } from '../../src/crypto/index.js';
import { fromHex } from '../../src/protocol/bytes.js';
import { FEE_INPUT_VBYTES, planBump } from '../../src/protocol/duplex-bump.js';
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
