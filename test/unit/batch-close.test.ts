/**
 * The closer's fee arithmetic for a close that must replace a conflicting spend (BIP125), and
 * the unsigned vsize it computes that fee on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchCloseVsize, closeItemVsize, closeItemsWorthClosing, outbiddingFeeRate, signBatchClose } from '../../src/protocol/batch-close.js';
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

describe('closeItemVsize and closeItemsWorthClosing', () => {
  const item = (variant: 'spilman-v1' | 'spilman-v2', i: number, totalSat: bigint) => {
    const c = channel(variant, { capacitySat: 1_000_000n + BigInt(i) });
    return { channel: c, totalSat: totalSat === -1n ? c.capacitySat : totalSat, signature: new Uint8Array(64).fill(1), payeePrivateKey: PAYEE_KEY };
  };

  it('is what one more channel adds to a batch (never less; at most the segwit marker more)', () => {
    for (const variant of ['spilman-v1', 'spilman-v2'] as const) {
      for (const total of [10_000n, -1n]) {
        const base = [item('spilman-v1', 0, 50_000n), item('spilman-v2', 1, -1n)];
        const added = item(variant, 2, total);
        const grown = batchCloseVsize([...base, added], PAYEE_SCRIPT) - batchCloseVsize(base, PAYEE_SCRIPT);
        const marginal = closeItemVsize(added, PAYEE_SCRIPT);
        expect(marginal).toBeGreaterThanOrEqual(grown);
        expect(marginal - grown).toBeLessThanOrEqual(1);
      }
    }
  });

  it('a channel with change adds its change output; one paid in full does not', () => {
    expect(closeItemVsize(item('spilman-v1', 0, 10_000n), PAYEE_SCRIPT) - closeItemVsize(item('spilman-v1', 0, -1n), PAYEE_SCRIPT)).toBe(31); // the payer's P2WPKH change: 8-byte value, 1-byte length, 22-byte script
  });

  it('leaves out the channels that pay less than the fee on their own bytes', () => {
    const honest = item('spilman-v2', 0, 500_000n);
    const tiny = Array.from({ length: 20 }, (_, i) => item('spilman-v1', i + 1, 1n));
    const rate = 50;
    const { worth, notWorth } = closeItemsWorthClosing([honest, ...tiny], PAYEE_SCRIPT, rate);
    expect(worth).toEqual([honest]);
    expect(notWorth).toEqual(tiny);
    // What the review measured: the honest channel's close earns more alone than with the tiny ones.
    const alone = signBatchClose(secp, [honest], PAYEE_SCRIPT, rate).payeeValueSat;
    const withTiny = signBatchClose(secp, [honest, ...tiny], PAYEE_SCRIPT, rate).payeeValueSat;
    expect(alone).toBeGreaterThan(withTiny);
    // At the boundary: exactly the fee on its bytes is not worth it, one sat more is.
    const fee = BigInt(Math.ceil(closeItemVsize(item('spilman-v1', 30, 10_000n), PAYEE_SCRIPT) * rate));
    expect(closeItemsWorthClosing([item('spilman-v1', 30, fee)], PAYEE_SCRIPT, rate).worth).toHaveLength(0);
    expect(closeItemsWorthClosing([item('spilman-v1', 30, fee + 1n)], PAYEE_SCRIPT, rate).worth).toHaveLength(1);
  });
});
