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
 * Incoming frames are peeked with JSON.parse before the service's own strict decoding; the peek
 * only decides whether to start a timer, never what the service sees. Memory is bounded by
 * `maxTracked`; past it, payments go untimed (they are still processed).
 */
export class PaymentLatency {
  private readonly pending = new Map<string, { totalSat: string; startMs: number }[]>();
  private tracked = 0;

  constructor(private readonly maxTracked: number) {}

  /** Notes an incoming frame, if it looks like a payment. */
  frameIn(text: string, nowMs: number): void {
    // A payment is ~260 bytes; anything much bigger is not one, and not worth parsing twice.
    if (this.tracked >= this.maxTracked || text.length > 1024 || !text.includes('"payment"')) return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof raw !== 'object' || raw === null) return;
    const { type, channelId, totalSat } = raw as Record<string, unknown>;
    if (type !== 'payment' || typeof channelId !== 'string' || typeof totalSat !== 'string') return;
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
    const at = queue.findIndex((p) => p.totalSat === total);
    if (at < 0) return undefined;
    const [matched] = queue.splice(0, at + 1).slice(-1);
    this.tracked -= at + 1;
    if (queue.length === 0) this.pending.delete(channelId);
    return matched ? (nowMs - matched.startMs) / 1000 : undefined;
  }
}
