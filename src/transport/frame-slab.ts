/**
 * Where the payment path's frames are written: each payment or ack is encoded as bytes
 * (protocol/wire-bytes.ts) into the next free part of a slab and handed to `ws` as a view of it,
 * instead of a string that the socket then copies into a Buffer of its own.
 *
 * A part once handed out is never written again (the socket may hold it until it is flushed);
 * a full slab is left to the views that still point into it and a new one is taken, as Node's
 * own Buffer pool does.
 */
import { encodeHotPathInto, MAX_HOT_FRAME_BYTES } from '../protocol/wire-bytes.js';
import type { Message } from '../protocol/messages.js';

const SLAB_BYTES = 64 * 1024;

/**
 * `ws.send` options for a text frame given as bytes: one object for every send (ws copies its
 * options per send anyway; a literal here would be one more object per payment).
 */
export const TEXT_FRAME: { readonly binary: false } = Object.freeze({ binary: false });

export class FrameSlab {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  /** The wire bytes of a payment or an ack, or null for any other message (send its text). */
  encode(message: Message): Buffer | null {
    if (message.type !== 'payment' && message.type !== 'payment-ack') return null;
    if (SLAB_BYTES - this.used < MAX_HOT_FRAME_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const n = encodeHotPathInto(message, this.slab, this.used);
    if (n < 0) return null;
    const frame = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return frame;
  }
}
