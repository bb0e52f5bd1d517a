/**
 * The closer's fee arithmetic for a close that must replace a conflicting spend (BIP125), and
 * the unsigned vsize it computes that fee on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchCloseVsize, outbiddingFeeRate, signBatchClose } from '../../src/protocol/batch-close.js';
import { PAYEE_KEY, PAYEE_SCRIPT, channel, secp } from '../helpers/protocol.js';

describe('outbiddingFeeRate', () => {
  it('is the lowest whole rate with a higher fee rate and a fee covering the conflict plus 1 sat/vB of our size', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 100n, max: 10_000_000n }), fc.integer({ min: 60, max: 100_000 }), fc.integer({ min: 60, max: 100_000 }), (conflictFeeSat, conflictVsize, vsize) => {
        const ok = (rate: number) => rate * conflictVsize > Number(conflictFeeSat) && rate * vsize >= Number(conflictFeeSat) + vsize;
        const rate = outbiddingFeeRate(conflictFeeSat, conflictVsize, vsize);
        expect(ok(rate)).toBe(true);
        expect(ok(rate - 1)).toBe(false);
      }),
    );
  });
});

describe('batchCloseVsize', () => {
  it('is the vsize signBatchClose charges its fee on', () => {
    const variants = ['spilman-v1', 'spilman-v2', 'spilman-v1'] as const;
    const items = variants.map((variant, i) => {
      const c = channel(variant, { capacitySat: 1_000_000n + BigInt(i) }); // distinct fundings
      const totalSat = i === 2 ? c.capacitySat : 10_000n * BigInt(i + 1); // the last without change
      return { channel: c, totalSat, signature: new Uint8Array(64).fill(1), payeePrivateKey: PAYEE_KEY };
    });
    const signed = signBatchClose(secp, items, PAYEE_SCRIPT, 1);
    expect(batchCloseVsize(items, PAYEE_SCRIPT)).toBe(Number(signed.feeSat));
  });
});
