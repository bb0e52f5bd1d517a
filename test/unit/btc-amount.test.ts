import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { btcPerKvbToSatPerVb, btcToSat } from '../../src/chain/btc-amount.js';

describe('btcToSat', () => {
  const valid: ReadonlyArray<readonly [number, bigint]> = [
    [0, 0n],
    [-0, 0n],
    [1, 100_000_000n],
    [50, 5_000_000_000n],
    [0.00000001, 1n],
    [0.00001, 1000n],
    [49.99999, 4_999_999_000n],
    [0.1, 10_000_000n],
    [0.3, 30_000_000n],
    [1.1, 110_000_000n],
    // 0.1 + 0.2 !== 0.3 in binary; a node never prints the sum, but the nearest 8-decimal value is exact.
    [0.29, 29_000_000n],
    [0.57, 57_000_000n], // Math.floor(0.57 * 1e8) would give 56999999
    [1e-7, 10n], // printed by JS as 1e-7
    [20_999_999.9769, 2_099_999_997_690_000n], // all bitcoin that will ever exist
    [21_000_000, 2_100_000_000_000_000n],
    [-0.5, -50_000_000n], // fee deltas can be negative
  ];
  for (const [btc, sat] of valid) {
    it(`${btc} BTC = ${sat} sat`, () => expect(btcToSat(btc)).toBe(sat));
  }

  const invalid: readonly number[] = [NaN, Infinity, -Infinity, 21_000_000.00000001, 1e21, 0.123456789, 1e-9, 50.000000001];
  for (const btc of invalid) {
    it(`rejects ${btc}`, () => expect(() => btcToSat(btc)).toThrow(RangeError));
  }

  it('inverts the decimal a node prints, for every amount up to 21 million BTC', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n }), (sat) => {
        const printed = `${sat / 100_000_000n}.${(sat % 100_000_000n).toString().padStart(8, '0')}`;
        expect(btcToSat(JSON.parse(printed) as number)).toBe(sat);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('btcPerKvbToSatPerVb', () => {
  it('converts BTC/kvB to sat/vB', () => {
    expect(btcPerKvbToSatPerVb(0.00001)).toBe(1);
    expect(btcPerKvbToSatPerVb(0.0002)).toBe(20);
    expect(btcPerKvbToSatPerVb(0.00009090909090909092)).toBe(9.090909);
    expect(btcPerKvbToSatPerVb(0)).toBe(0);
  });
  it('rejects what is not a fee rate', () => {
    expect(() => btcPerKvbToSatPerVb(-1)).toThrow(RangeError);
    expect(() => btcPerKvbToSatPerVb(NaN)).toThrow(RangeError);
  });
});
