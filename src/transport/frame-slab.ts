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
import { encodeMessage, type Message } from '../protocol/messages.js';

const SLAB_BYTES = 64 * 1024;

/**
 * `ws.send` options for a text frame given as bytes: one object for every send (ws copies its
 * options per send anyway; a literal here would be one more object per payment).
 */
export const TEXT_FRAME: { readonly binary: false } = Object.freeze({ binary: false });

/**
 * One slab for the whole process, shared by every connection: a part is never written twice, so
 * sharing is safe, and 1,000 connections (a stranger's among them) do not hold 1,000 slabs.
 */
let slab: Buffer | null = null;
let used = SLAB_BYTES;

/** The wire bytes of a payment or an ack in the slab, or null for any other message. */
export function hotPathFrame(message: Message): Buffer | null {
  if (message.type !== 'payment' && message.type !== 'payment-ack') return null;
  if (slab === null || SLAB_BYTES - used < MAX_HOT_FRAME_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    used = 0;
  }
  const n = encodeHotPathInto(message, slab, used);
  if (n < 0) return null;
  const frame = slab.subarray(used, used + n);
  used += n;
  return frame;
}

/** What to hand `ws.send` (with {@link TEXT_FRAME}) for `message`: its slab bytes, else its text. */
export function wireFrame(message: Message): Buffer | string {
  return hotPathFrame(message) ?? encodeMessage(message);
}
