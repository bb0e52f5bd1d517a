/**
 * Payments per second for the operator's dashboard, overall and per channel, over the last
 * few seconds.
 *
 * The hot path only counts: {@link PaymentActivity.onPayment} (the payee service's `onPayment`
 * hook, after a payment is durable) bumps a number on the channel's counter object, which exists
 * from the channel's first payment of a busy period on; no allocation, closure or promise per
 * payment. A sampler ({@link PaymentActivity.sample}, once a second) turns the counts into a
 * ring of recent per-sample deltas, each with the time it was taken: a rate is payments in the
 * window divided by the time the window really spans (a late timer on a busy machine makes no
 * false spike). Channels idle for a whole window are dropped, so memory follows the channels
 * being paid now, not every channel that ever was.
 *
 * Duplex channels already count their updates in their state (`updates`): the sampler is given
 * those counts and keeps their deltas the same way, so there is no second hook on the duplex
 * peer.
 */

/** Samples in a per-channel window: rates are over this many samples (seconds at 1 Hz). */
export const RATE_WINDOW_SAMPLES = 10;
/** Samples of the overall series the dashboard draws (a minute at 1 Hz). */
export const SERIES_SAMPLES = 60;

/** One channel's counts: `count` goes up with payments, the ring holds per-sample deltas. */
class ChannelCounter {
  count: number;
  private sampled: number;
  /** Duplex: the sample that last saw the channel live (a closed one is dropped). */
  seenAt = 0;
  private readonly ring = new Uint32Array(RATE_WINDOW_SAMPLES);
  /** Sum of the ring: payments in the window. */
  inWindow = 0;

  /** @param start the count to start from (a duplex channel's updates when first seen). */
  constructor(start = 0) {
    this.count = start;
    this.sampled = start;
  }

  /** Records the payments since the previous sample in slot `slot`. */
  sample(slot: number): void {
    const delta = this.count - this.sampled;
    this.sampled = this.count;
    this.inWindow += delta - (this.ring[slot] as number);
    this.ring[slot] = delta;
  }
}

/** A channel's recent rate, for the dashboard. */
export interface ChannelRate {
  readonly paymentsPerSecond: number;
  /** Payments counted since this process started tracking the channel's current busy period. */
  readonly recentPayments: number;
}

export class PaymentActivity {
  /** Spilman channels by channel id (the hook's key). */
  private readonly counters = new Map<string, ChannelCounter>();
  /** Duplex channels by channel id, from their states' update counters. */
  private readonly duplex = new Map<string, ChannelCounter>();
  /** Overall per-sample deltas and the time (ms) each sample was taken, oldest overwritten first. */
  private readonly series = new Float64Array(SERIES_SAMPLES);
  private readonly times = new Float64Array(SERIES_SAMPLES);
  /** Samples taken so far (the next slot is `taken % SERIES_SAMPLES`). */
  private taken = 0;
  private total = 0;
  private totalSampled = 0;

  /**
   * The payee service's `onPayment` hook (bound): one acknowledged Spilman payment.
   * Per payment: one map lookup and two increments.
   */
  readonly onPayment = (channelId: string): void => {
    let counter = this.counters.get(channelId);
    if (counter === undefined) {
      // Once per channel per busy period, not per payment.
      counter = new ChannelCounter();
      this.counters.set(channelId, counter);
    }
    counter.count++;
    this.total++;
  };

  /**
   * Takes one sample at time `nowMs` (a monotonic clock, ms). `duplexUpdates` are the duplex
   * channels' update counters as their states hold them now (channel id → updates); a channel
   * seen for the first time counts from here on.
   */
  sample(nowMs: number, duplexUpdates: Iterable<readonly [string, number]> = []): void {
    const slot = this.taken % RATE_WINDOW_SAMPLES;
    for (const [channelId, updates] of duplexUpdates) {
      let counter = this.duplex.get(channelId);
      if (counter === undefined) {
        // Counted from here on: what came before this process saw it is not "recent".
        counter = new ChannelCounter(updates);
        this.duplex.set(channelId, counter);
      } else if (updates > counter.count) {
        this.total += updates - counter.count;
        counter.count = updates;
      }
      counter.seenAt = this.taken;
    }
    for (const [channelId, counter] of this.duplex) {
      if (counter.seenAt === this.taken) counter.sample(slot);
      else this.duplex.delete(channelId); // no longer live (closed): no more updates
    }
    for (const [channelId, counter] of this.counters) {
      counter.sample(slot);
      // Idle over a whole window: forgotten (its next payment starts a new counter).
      if (counter.inWindow === 0 && this.taken >= RATE_WINDOW_SAMPLES) this.counters.delete(channelId);
    }
    const i = this.taken % SERIES_SAMPLES;
    this.series[i] = this.total - this.totalSampled;
    this.times[i] = nowMs;
    this.totalSampled = this.total;
    this.taken++;
  }

  /** Payments per second over the last {@link RATE_WINDOW_SAMPLES} samples (0 before two samples). */
  paymentsPerSecond(): number {
    const n = Math.min(this.taken - 1, RATE_WINDOW_SAMPLES);
    if (n <= 0) return 0;
    let sum = 0;
    for (let k = 0; k < n; k++) sum += this.series[(this.taken - 1 - k) % SERIES_SAMPLES] as number;
    return sum / this.spanSeconds(n);
  }

  /**
   * A channel's recent rate (over the same window), or undefined when it had no payment in it.
   * `duplex` selects the duplex counter of that channel id (its updates, both ways).
   */
  channelRate(channelId: string, duplex = false): ChannelRate | undefined {
    const counter = (duplex ? this.duplex : this.counters).get(channelId);
    if (counter === undefined || counter.inWindow === 0) return undefined;
    const n = Math.min(this.taken - 1, RATE_WINDOW_SAMPLES);
    return { paymentsPerSecond: n <= 0 ? 0 : counter.inWindow / this.spanSeconds(n), recentPayments: counter.inWindow };
  }

  /** The overall per-sample payment counts, oldest first (at most {@link SERIES_SAMPLES}). */
  recentSeries(): number[] {
    const n = Math.min(this.taken, SERIES_SAMPLES);
    const out: number[] = [];
    for (let k = n - 1; k >= 0; k--) out.push(this.series[(this.taken - 1 - k) % SERIES_SAMPLES] as number);
    return out;
  }

  /** Channels being tracked now (for tests: idle ones are dropped). */
  trackedChannels(): number {
    return this.counters.size + this.duplex.size;
  }

  /** Seconds spanned by the last `n` samples (from the sample before them to the newest). */
  private spanSeconds(n: number): number {
    const newest = this.times[(this.taken - 1) % SERIES_SAMPLES] as number;
    const before = this.times[(this.taken - 1 - n) % SERIES_SAMPLES] as number;
    return Math.max(newest - before, 1) / 1000;
  }
}
