/**
 * Where the payment path's frames are written: each payment or ack is encoded as bytes
 * (protocol/wire-bytes.ts) into the next free part of a slab and handed to `ws` as a view of it,
 * instead of a string that the socket then copies into a Buffer of its own.
 *
 * A part once handed out is never written again (the socket may hold it until it is flushed);
 * a full slab is left to the views that still point into it and a new one is taken, as Node's
 * own Buffer pool does.
 *
 * One small slab per connection, not one for the process: a queued view keeps its whole slab
 * alive, and `ws` counts only the view's bytes against a connection's high-water mark. With a
 * process-wide 64 KiB slab, a peer that stopped reading one connection while acks flowed on
 * others pinned a different slab with nearly every queued ack (~460 MiB for the 1 MiB the
 * high-water mark allows: found from outside). A connection's own slabs hold only its own
 * frames, so what it pins is what it has queued plus at most one slab; an idle connection holds
 * none (taken on its first frame).
 */
import { encodeHotPathInto, MAX_HOT_FRAME_BYTES } from '../protocol/wire-bytes.js';
import { encodeMessage, type Message } from '../protocol/messages.js';

/** ~16–30 frames a slab: one allocation per slab, little memory per connection. */
const SLAB_BYTES = 4 * 1024;

/**
 * `ws.send` options for a text frame given as bytes: one object for every send (ws copies its
 * options per send anyway; a literal here would be one more object per payment).
 */
export const TEXT_FRAME: { readonly binary: false } = Object.freeze({ binary: false });

/** One connection's frames (never shared between connections: see the file's comment). */
export class FrameSlab {
  private slab: Buffer | null = null;
  private used = SLAB_BYTES;

  /** The wire bytes of a payment or an ack in the slab, or null for any other message. */
  hotPathFrame(message: Message): Buffer | null {
    if (message.type !== 'payment' && message.type !== 'payment-ack') return null;
    let slab = this.slab;
    if (slab === null || SLAB_BYTES - this.used < MAX_HOT_FRAME_BYTES) {
      slab = this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const n = encodeHotPathInto(message, slab, this.used);
    if (n < 0) return null;
    const frame = slab.subarray(this.used, this.used + n);
    this.used += n;
    return frame;
  }

  /** What to hand `ws.send` (with {@link TEXT_FRAME}) for `message`: its slab bytes, else its text. */
  wireFrame(message: Message): Buffer | string {
    return this.hotPathFrame(message) ?? encodeMessage(message);
  }
}
