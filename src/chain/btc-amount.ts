/**
 * Conversions from the JSON numbers Bitcoin nodes print (BTC as a float, fee rates in BTC/kvB)
 * to paychan's units (bigint satoshis, sat/vB).
 *
 * Why not `BigInt(Math.round(x * 1e8))`: the multiplication happens in binary floating point,
 * and although rounding repairs most of the damage, reasoning about it needs care. Instead we go
 * back to the decimal the node printed: JSON.parse gives the double nearest to that decimal, and
 * `toFixed(8)` recovers it exactly as long as |x| ≤ 21e6 BTC (there a double still resolves
 * 1e-9, finer than the 1e-8 we need). Anything that does not survive the round trip had more than
 * eight decimals and is not an amount at all, so it is refused rather than silently rounded.
 */

const MAX_BTC = 21_000_000;

/**
 * Converts a BTC amount as printed by a node's JSON-RPC (e.g. `0.00012345`) to satoshis.
 * @returns the exact number of satoshis (negative if `btc` is negative).
 * @throws RangeError if `btc` is not finite, exceeds 21 million BTC in magnitude, or has more
 *   than eight decimal places.
 */
export function btcToSat(btc: number): bigint {
  if (!Number.isFinite(btc)) throw new RangeError(`not a BTC amount: ${btc}`);
  if (Math.abs(btc) > MAX_BTC) throw new RangeError(`BTC amount out of range: ${btc}`);
  const fixed = btc.toFixed(8);
  if (Number(fixed) !== btc) throw new RangeError(`BTC amount has more than 8 decimals: ${btc}`);
  const negative = fixed.startsWith('-');
  const [whole = '0', frac = ''] = (negative ? fixed.slice(1) : fixed).split('.');
  const sat = BigInt(whole) * 100_000_000n + BigInt(frac.padEnd(8, '0'));
  return negative ? -sat : sat;
}

/**
 * Converts a fee rate in BTC per 1000 virtual bytes (what `estimatesmartfee`/`estimatefee`
 * return) to sat/vB. Fee rates are not amounts: fractions of a sat/vB are meaningful, so the
 * result is a plain number.
 * @throws RangeError if `btcPerKvb` is not a finite, non-negative number.
 */
export function btcPerKvbToSatPerVb(btcPerKvb: number): number {
  if (!Number.isFinite(btcPerKvb) || btcPerKvb < 0) {
    throw new RangeError(`not a fee rate in BTC/kvB: ${btcPerKvb}`);
  }
  // 1 BTC/kvB = 1e8 sat / 1000 vB = 1e5 sat/vB; round away float noise below 1e-6 sat/vB.
  return Math.round(btcPerKvb * 1e11) / 1e6;
}
