/**
 * fast-check arbitraries of the payment path's wire texts, shared by the codec tests that hold a
 * fast path to the schema path: valid payments and acks as encodeMessage writes them, and those
 * texts with one character changed.
 */
import fc from 'fast-check';
import { toHex } from '../../src/protocol/bytes.js';
import { encodeMessage, msg } from '../../src/protocol/messages.js';

export const channelId = fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 120_000 })).map(([t, v]) => `${toHex(t)}:${v}`);
/** Up to just past the 21e14-sat maximum, so the limit itself is crossed. */
export const total = fc.bigInt({ min: 0n, max: 2_200_000_000_000_000n });
export const payment = fc.record({ channelId, totalSat: total, signature: fc.uint8Array({ minLength: 64, maxLength: 64 }) }).map((f) => encodeMessage(msg('payment', f)));
export const ack = fc.record({ channelId, totalSat: total }).map((f) => encodeMessage(msg('payment-ack', f)));
/** A payment or an ack with one character replaced by a printable ASCII one. */
export const mutated = fc.tuple(fc.oneof(payment, ack), fc.nat(), fc.integer({ min: 32, max: 126 })).map(([text, at, code]) => {
  const i = at % text.length;
  return text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1);
});
