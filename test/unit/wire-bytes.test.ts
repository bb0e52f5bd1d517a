/**
 * The payment path's byte codec (protocol/wire-bytes.ts) must agree with the text codec on every
 * input: decodeMessageBytes gives what decodeMessage gives for the same text (value or error code;
 * a leading space takes the schema path), and encodeHotPathInto writes exactly encodeMessage's
 * bytes, or declines (-1) where encodeMessage's text is then sent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg, type Message } from '../../src/protocol/messages.js';
import { decodeMessageBytes, encodeHotPathInto, MAX_HOT_FRAME_BYTES, WireIds } from '../../src/protocol/wire-bytes.js';
import { ack, channelId, mutated, payment, total } from '../helpers/wire-arbitraries.js';

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

function outcome(decode: () => Message): unknown {
  try {
    return decode();
  } catch (err) {
    return (err as ProtocolError).code;
  }
}

const cut = fc.tuple(fc.oneof(payment, ack), fc.nat()).map(([text, at]) => text.slice(0, at % text.length));

describe('decodeMessageBytes', () => {
  it('agrees with decodeMessage on valid, mutated and cut payments and acks', () => {
    const ids = new WireIds(8); // small: interning and starting over are both exercised
    fc.assert(
      fc.property(fc.oneof(payment, ack, mutated, cut), (text) => {
        const expected = outcome(() => decodeMessage(` ${text}`));
        expect(outcome(() => decodeMessageBytes(bytesOf(text), ids))).toEqual(expected);
        expect(outcome(() => decodeMessageBytes(bytesOf(text)))).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes other messages through the schema, and refuses bytes that are not UTF-8', () => {
    const close = msg('close-request', { channelId: `${'ab'.repeat(32)}:0` });
    expect(decodeMessageBytes(bytesOf(encodeMessage(close)))).toEqual(close);
    expect(outcome(() => decodeMessageBytes(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe('MALFORMED_MESSAGE');
  });

  it('refuses a frame that starts with a byte-order mark, as the text path does', () => {
    const ack = encodeMessage(msg('payment-ack', { channelId: `${'ab'.repeat(32)}:0`, totalSat: 5n }));
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytesOf(ack)]);
    expect(outcome(() => decodeMessage(Buffer.from(withBom).toString('utf8')))).toBe('MALFORMED_MESSAGE');
    expect(outcome(() => decodeMessageBytes(withBom))).toBe('MALFORMED_MESSAGE');
  });

  it('gives the same channel id string for the same id again (interned), and the right one for another vout', () => {
    const ids = new WireIds();
    const txid = 'cd'.repeat(32);
    const frame = (vout: number, totalSat: bigint) => bytesOf(encodeMessage(msg('payment-ack', { channelId: `${txid}:${vout}`, totalSat })));
    const a = decodeMessageBytes(frame(1, 5n), ids) as Extract<Message, { type: 'payment-ack' }>;
    const b = decodeMessageBytes(frame(1, 6n), ids) as Extract<Message, { type: 'payment-ack' }>;
    const c = decodeMessageBytes(frame(10, 6n), ids) as Extract<Message, { type: 'payment-ack' }>;
    expect(b.channelId).toBe(a.channelId);
    expect(c.channelId).toBe(`${txid}:10`);
  });
});

describe('encodeHotPathInto', () => {
  const anyChannelId = fc.oneof(channelId, fc.string({ maxLength: 80 }), fc.constantFrom(`${'ab'.repeat(32)}:007`, `${'AB'.repeat(32)}:1`));

  it('writes payments and acks byte for byte as encodeMessage does, or declines', () => {
    const out = new Uint8Array(MAX_HOT_FRAME_BYTES + 10);
    fc.assert(
      fc.property(anyChannelId, total, fc.uint8Array({ minLength: 63, maxLength: 65 }), fc.nat({ max: 10 }), (id, totalSat, signature, at) => {
        for (const m of [msg('payment', { channelId: id, totalSat, signature }), msg('payment-ack', { channelId: id, totalSat })]) {
          const n = encodeHotPathInto(m, out, at);
          const valid = /^[0-9a-f]{64}:(?:0|[1-9][0-9]{0,4})$/.test(id) && Number(id.slice(65)) <= 0xffff && totalSat <= 2_100_000_000_000_000n && (m.type !== 'payment' || signature.length === 64);
          if (!valid) {
            expect(n).toBe(-1);
            continue;
          }
          expect(n).toBeGreaterThan(0);
          expect(new TextDecoder().decode(out.subarray(at, at + n))).toBe(encodeMessage(m));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('declines other messages and a buffer too small for any payment', () => {
    const id = `${'ab'.repeat(32)}:0`;
    expect(encodeHotPathInto(msg('close-request', { channelId: id }), new Uint8Array(1000), 0)).toBe(-1);
    expect(encodeHotPathInto(msg('payment-ack', { channelId: id, totalSat: 1n }), new Uint8Array(MAX_HOT_FRAME_BYTES - 1), 0)).toBe(-1);
  });
});
