/**
 * A token bucket: `ratePerSecond` tokens flow in continuously up to `burst`; each message takes
 * one. It allows short bursts (a payer catching up after a pause) while bounding the sustained
 * rate, which a fixed per-second window does not (it lets 2× through across a window edge).
 *
 * The clock is passed in (milliseconds, monotonic), so tests need no timers.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /** @throws RangeError unless `ratePerSecond` and `burst` are positive and finite. */
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    if (!(ratePerSecond > 0 && Number.isFinite(ratePerSecond))) throw new RangeError('ratePerSecond must be positive');
    if (!(burst >= 1 && Number.isFinite(burst))) throw new RangeError('burst must be at least 1');
    this.tokens = burst;
    this.last = nowMs;
  }

  /** Takes one token if there is one. @returns false when the caller is over the rate. */
  take(nowMs: number): boolean {
    // A clock that goes backwards (it should not: use a monotonic one) refills nothing.
    const elapsed = Math.max(0, nowMs - this.last);
    this.last = Math.max(this.last, nowMs);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
