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
 * The connection decodes each frame as it arrives and tells this of the payments (channel id
 * and total: no text is read twice). Per payment a total and a time are appended to the
 * channel's two arrays (no object per payment). Memory is bounded by `maxTracked`; past it,
 * payments go untimed (they are still processed).
 */
export class PaymentLatency {
  /** Per channel, the timed payments in arrival order: their totals and start times. */
  private readonly lanes = new Map<string, { readonly totals: bigint[]; readonly starts: number[] }>();
  private tracked = 0;

  constructor(private readonly maxTracked: number) {}

  /** Notes an incoming payment (decoded: its channel id and total). */
  frameIn(channelId: string, totalSat: bigint, nowMs: number): void {
    if (this.tracked >= this.maxTracked) return;
    let lane = this.lanes.get(channelId);
    if (!lane) {
      // Lanes stay once made (a channel pays again soon); past maxTracked the empty ones go.
      if (this.lanes.size >= this.maxTracked) for (const [id, l] of this.lanes) if (l.totals.length === 0) this.lanes.delete(id);
      this.lanes.set(channelId, (lane = { totals: [], starts: [] }));
    }
    lane.totals.push(totalSat);
    lane.starts.push(nowMs);
    this.tracked++;
  }

  /**
   * Notes an outgoing `payment-ack`. @returns the payment's latency in seconds, or undefined if
   * its frame was not timed (or it is a re-acknowledgement already matched).
   */
  ackOut(channelId: string, totalSat: bigint, nowMs: number): number | undefined {
    const lane = this.lanes.get(channelId);
    if (!lane) return undefined;
    const { totals, starts } = lane;
    let at = 0;
    while (at < totals.length && totals[at] !== totalSat) at++;
    if (at === totals.length) return undefined;
    const startMs = starts[at]!;
    if (at === 0) {
      totals.shift();
      starts.shift();
    } else {
      totals.splice(0, at + 1);
      starts.splice(0, at + 1);
    }
    this.tracked -= at + 1;
    return (nowMs - startMs) / 1000;
  }
}
