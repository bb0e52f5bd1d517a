/**
 * Metering arithmetic of the proxy (bigint satoshis): every started KiB and every started
 * second is charged, never more than was prepaid, and the upfront price is exactly the budget.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteBudget, isFree, meteredSat, startedUnits, timeBudgetMs, upfrontSat, type RoutePrice } from '../../src/proxy/metering.js';

const price = (p: Partial<RoutePrice>): RoutePrice => ({ perRequestSat: 0n, perKiBSat: 0n, perSecondSat: 0n, prepayKiB: 0n, prepaySeconds: 0n, ...p });

describe('metering', () => {
  it('upfront = per request + prepaid KiB + prepaid seconds', () => {
    expect(upfrontSat(price({ perRequestSat: 3n, perKiBSat: 2n, prepayKiB: 10n, perSecondSat: 5n, prepaySeconds: 7n }))).toBe(3n + 20n + 35n);
    expect(isFree(price({}))).toBe(true);
    expect(isFree(price({ perRequestSat: 1n }))).toBe(false);
  });

  it('rounds up per started KiB and per started second', () => {
    const p = price({ perRequestSat: 1n, perKiBSat: 2n, prepayKiB: 100n, perSecondSat: 10n, prepaySeconds: 100n });
    expect(meteredSat(p, { bodyBytes: 0, elapsedMs: 0 })).toBe(1n);
    expect(meteredSat(p, { bodyBytes: 1, elapsedMs: 0 })).toBe(1n + 2n);
    expect(meteredSat(p, { bodyBytes: 1024, elapsedMs: 0 })).toBe(1n + 2n);
    expect(meteredSat(p, { bodyBytes: 1025, elapsedMs: 0 })).toBe(1n + 4n);
    expect(meteredSat(p, { bodyBytes: 0, elapsedMs: 0.2 })).toBe(1n + 10n);
    expect(meteredSat(p, { bodyBytes: 0, elapsedMs: 1000 })).toBe(1n + 10n);
    expect(meteredSat(p, { bodyBytes: 0, elapsedMs: 1000.5 })).toBe(1n + 20n);
    expect(startedUnits(2049, 1024)).toBe(3n);
  });

  it('never charges past the prepaid budget (a late timer, the byte that tripped the cut-off)', () => {
    const p = price({ perSecondSat: 10n, prepaySeconds: 3n, perKiBSat: 1n, prepayKiB: 2n });
    expect(meteredSat(p, { bodyBytes: 10_000, elapsedMs: 3_004 })).toBe(upfrontSat(p));
    expect(byteBudget(p)).toBe(2048);
    expect(timeBudgetMs(p)).toBe(3000);
    expect(byteBudget(price({ perRequestSat: 1n }))).toBe(Infinity);
    expect(timeBudgetMs(price({ perRequestSat: 1n }))).toBe(Infinity);
  });

  it('unpriced parts cost nothing, whatever was used', () => {
    expect(meteredSat(price({ perRequestSat: 4n }), { bodyBytes: 1e9, elapsedMs: 1e9 })).toBe(4n);
  });

  it('refuses a negative or non-finite usage', () => {
    expect(() => meteredSat(price({ perKiBSat: 1n, prepayKiB: 1n }), { bodyBytes: -1, elapsedMs: 0 })).toThrow(RangeError);
    expect(() => meteredSat(price({ perSecondSat: 1n, prepaySeconds: 1n }), { bodyBytes: 0, elapsedMs: NaN })).toThrow(RangeError);
  });

  it('property: 0 ≤ per request ≤ metered ≤ upfront, monotone in usage', () => {
    const sat = fc.bigInt({ min: 0n, max: 1_000_000n });
    fc.assert(
      fc.property(sat, sat, sat, fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: 1n, max: 1000n }), fc.nat(5_000_000), fc.nat(5_000_000), fc.nat(1000), fc.nat(1000), (r, k, s, pk, ps, bytes, ms, moreBytes, moreMs) => {
        const p = price({ perRequestSat: r, perKiBSat: k, perSecondSat: s, prepayKiB: pk, prepaySeconds: ps });
        const a = meteredSat(p, { bodyBytes: bytes, elapsedMs: ms });
        const b = meteredSat(p, { bodyBytes: bytes + moreBytes, elapsedMs: ms + moreMs });
        return r <= a && a <= b && b <= upfrontSat(p);
      }),
    );
  });
});
