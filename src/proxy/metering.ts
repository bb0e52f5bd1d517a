/**
 * What a proxied request costs: the price a route asks upfront, and what it used once it is done.
 * Pure bigint arithmetic, no clock and no I/O, so the books can be checked by unit tests.
 *
 * A route's price has three parts (any may be 0):
 *   perRequestSat                 charged for every admitted request;
 *   perKiBSat × KiB of body       the response body the client received, in *started* KiB;
 *   perSecondSat × seconds        the response's duration (headers to end), in *started* seconds.
 * Rounding is up, per unit: 1 byte costs a whole KiB, 1 ms a whole second, so a payer can always
 * compute the most it will be charged, and a payee is never short by a fraction. Zero bytes and
 * zero milliseconds cost nothing.
 *
 * Metered parts are prepaid: the upfront price buys `prepayKiB` KiB and `prepaySeconds` seconds.
 * The proxy cuts the response off when either runs out, so what is used never exceeds what was
 * paid; the unused part is credited back to the channel (Paywall.settle).
 */

/** One route's price, validated (see price-table.ts). Satoshis are bigint. */
export interface RoutePrice {
  readonly perRequestSat: bigint;
  readonly perKiBSat: bigint;
  readonly perSecondSat: bigint;
  /** KiB of response body the upfront price buys (0 when `perKiBSat` is 0). */
  readonly prepayKiB: bigint;
  /** Seconds of response the upfront price buys (0 when `perSecondSat` is 0). */
  readonly prepaySeconds: bigint;
}

/** What a response used. */
export interface Usage {
  readonly bodyBytes: number;
  readonly elapsedMs: number;
}

export const BYTES_PER_KIB = 1024;
export const MS_PER_SECOND = 1000;

/** The price to pay before the upstream is called. */
export function upfrontSat(price: RoutePrice): bigint {
  return price.perRequestSat + price.perKiBSat * price.prepayKiB + price.perSecondSat * price.prepaySeconds;
}

/** True when the route asks nothing: the proxy forwards without a payment. */
export function isFree(price: RoutePrice): boolean {
  return upfrontSat(price) === 0n;
}

/** `ceil(value / unit)` for a non-negative finite number, as bigint. */
export function startedUnits(value: number, unit: number): bigint {
  if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`usage must be a non-negative finite number, got ${value}`);
  return BigInt(Math.ceil(value / unit));
}

/**
 * The final price of a response that used `usage`, never above {@link upfrontSat}: a unit past
 * the prepaid budget (a timer firing a few ms late, the byte that tripped the cut-off) is not
 * charged, because it was not paid for.
 * @throws RangeError for a negative or non-finite usage.
 */
export function meteredSat(price: RoutePrice, usage: Usage): bigint {
  const kib = price.perKiBSat === 0n ? 0n : min(startedUnits(usage.bodyBytes, BYTES_PER_KIB), price.prepayKiB);
  const seconds = price.perSecondSat === 0n ? 0n : min(startedUnits(usage.elapsedMs, MS_PER_SECOND), price.prepaySeconds);
  return price.perRequestSat + price.perKiBSat * kib + price.perSecondSat * seconds;
}

/** How many body bytes the prepayment covers; Infinity when the body is not priced. */
export function byteBudget(price: RoutePrice): number {
  return price.perKiBSat === 0n ? Infinity : Number(price.prepayKiB) * BYTES_PER_KIB;
}

/** How long the prepayment lasts, ms; Infinity when time is not priced. */
export function timeBudgetMs(price: RoutePrice): number {
  return price.perSecondSat === 0n ? Infinity : Number(price.prepaySeconds) * MS_PER_SECOND;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
