/**
 * Pairs a connection's incoming `payment` frames with the `payment-ack`s sent back on it, to
 * time each payment from "frame read off the socket" to "ack handed to the socket".
 *
 * Why match on the way out instead of timing `service.receive()`: `receive` resolves when the
 * message is stepped, while the ack waits for the store; and with pipelining the service sends
 * an ack on the channel's current link, not on the call that caused it. Acks of one channel
 * come in the order of its payments (the service steps a channel's inputs in order), so each
 * channel keeps a FIFO of (total, start time); an ack for total T pops entries until T, and the
 * popped ones before T were refused (they got an `error`, not an ack).
 *
 * Incoming frames are peeked before the service's own strict decoding; the peek only decides
 * whether to start a timer, never what the service sees. A payment in encodeMessage's form is
 * read by position (this runs for every payment, and a second JSON.parse cost ~1 KB of garbage
 * each); other spellings go through JSON.parse. Memory is bounded by `maxTracked`; past it,
 * payments go untimed (they are still processed).
 */
export class PaymentLatency {
  private readonly pending = new Map<string, { totalSat: string; startMs: number }[]>();
  private tracked = 0;

  constructor(private readonly maxTracked: number) {}

  /** Notes an incoming frame, if it looks like a payment. */
  frameIn(text: string, nowMs: number): void {
    // A payment is ~260 bytes; anything much bigger is not one, and not worth parsing twice.
    if (this.tracked >= this.maxTracked || text.length > 1024) return;
    let channelId: unknown;
    let totalSat: unknown;
    if (text.startsWith(CANONICAL_PAYMENT)) {
      const idEnd = text.indexOf(TOTAL_KEY, CANONICAL_PAYMENT.length);
      const totalEnd = idEnd < 0 ? -1 : text.indexOf('"', idEnd + TOTAL_KEY.length);
      if (totalEnd < 0) return;
      channelId = text.slice(CANONICAL_PAYMENT.length, idEnd);
      totalSat = text.slice(idEnd + TOTAL_KEY.length, totalEnd);
    } else {
      if (!text.includes('"payment"')) return;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return;
      }
      if (typeof raw !== 'object' || raw === null || (raw as { type?: unknown }).type !== 'payment') return;
      ({ channelId, totalSat } = raw as Record<string, unknown>);
    }
    if (typeof channelId !== 'string' || typeof totalSat !== 'string') return;
    let queue = this.pending.get(channelId);
    if (!queue) this.pending.set(channelId, (queue = []));
    queue.push({ totalSat, startMs: nowMs });
    this.tracked++;
  }

  /**
   * Notes an outgoing `payment-ack`. @returns the payment's latency in seconds, or undefined if
   * its frame was not timed (or it is a re-acknowledgement already matched).
   */
  ackOut(channelId: string, totalSat: bigint, nowMs: number): number | undefined {
    const queue = this.pending.get(channelId);
    if (!queue) return undefined;
    const total = totalSat.toString();
    let at = 0;
    while (at < queue.length && queue[at]!.totalSat !== total) at++;
    if (at === queue.length) return undefined;
    const matched = queue[at]!;
    if (at === 0) queue.shift();
    else queue.splice(0, at + 1);
    this.tracked -= at + 1;
    if (queue.length === 0) this.pending.delete(channelId);
    return (nowMs - matched.startMs) / 1000;
  }
}

/** How encodeMessage starts a payment (protocol version 1), and the key after the channel id. */
const CANONICAL_PAYMENT = '{"v":1,"type":"payment","channelId":"';
const TOTAL_KEY = '","totalSat":"';
