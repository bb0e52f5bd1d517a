/**
 * decodeMessage's hot path (payments and acks in encodeMessage's exact form) must agree with the
 * schema path on every input: same value, or the same error code. A leading space bypasses the
 * hot path (its patterns are anchored) while JSON.parse still accepts the text.
 * encodeMessage's hot path must write exactly what JSON.stringify writes for the same message.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeMessage, encodeMessage, msg } from '../../src/protocol/messages.js';
import { formatPaymentHeader, parsePaymentHeader } from '../../src/transport/paywall.js';
import { wireJson } from '../helpers/protocol.js';
import { ack, channelId, mutated, payment, total } from '../helpers/wire-arbitraries.js';

function outcome(text: string): unknown {
  try {
    return decodeMessage(text);
  } catch (err) {
    return (err as ProtocolError).code;
  }
}


describe('decodeMessage hot path', () => {
  it('agrees with the schema path on valid and mutated payments and acks', () => {
    fc.assert(
      fc.property(fc.oneof(payment, ack, mutated), (text) => {
        expect(outcome(text)).toEqual(outcome(` ${text}`));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('encodeMessage hot path', () => {
  // Any string as a channel id: the ones that would need escaping must take the general path.
  const anyChannelId = fc.oneof(channelId, fc.string({ maxLength: 80 }));

  it('writes payments and acks byte for byte as JSON.stringify does, and they decode back', () => {
    fc.assert(
      fc.property(anyChannelId, total, fc.uint8Array({ minLength: 64, maxLength: 64 }), (id, totalSat, signature) => {
        const payment = msg('payment', { channelId: id, totalSat, signature });
        const ack = msg('payment-ack', { channelId: id, totalSat });
        expect(encodeMessage(payment)).toBe(wireJson(payment));
        expect(encodeMessage(ack)).toBe(wireJson(ack));
        if (/^[0-9a-f]{64}:(?:0|[1-9][0-9]{0,4})$/.test(id) && Number(id.slice(65)) <= 0xffff && totalSat <= 2_100_000_000_000_000n) {
          expect(decodeMessage(encodeMessage(payment))).toEqual(payment);
          expect(decodeMessage(encodeMessage(ack))).toEqual(ack);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes a channel id that needs it (general path)', () => {
    const ack = msg('payment-ack', { channelId: 'a"b\\c', totalSat: 1n });
    expect(JSON.parse(encodeMessage(ack))).toEqual({ v: 1, type: 'payment-ack', channelId: 'a"b\\c', totalSat: '1' });
  });
});

describe('parsePaymentHeader', () => {
  /** The header's payment through the schema path (a leading space bypasses the hot path), or its error code. */
  function viaSchema(header: string): unknown {
    const m = /^channel=([0-9a-f]{64}:[0-9]{1,5}), total=(0|[1-9][0-9]{0,15}), sig=([0-9a-f]{128})$/.exec(header.trim());
    if (!m) return 'MALFORMED_MESSAGE';
    return outcome(` ${JSON.stringify({ v: 1, type: 'payment', channelId: m[1], totalSat: m[2], signature: m[3] })}`);
  }
  function parsed(header: string): unknown {
    try {
      return parsePaymentHeader(header);
    } catch (err) {
      return (err as ProtocolError).code;
    }
  }
  // Vouts with leading zeros and above 0xffff, totals above 21 million BTC: the schema refuses them.
  const vout = fc.oneof(fc.nat({ max: 120_000 }).map(String), fc.nat({ max: 999 }).map((n) => `0${n}`));
  const header = fc
    .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), vout, total, fc.uint8Array({ minLength: 64, maxLength: 64 }))
    .map(([txid, v, t, sig]) => `channel=${toHex(txid)}:${v}, total=${t}, sig=${toHex(sig)}`);
  const mutatedHeader = fc.tuple(header, fc.nat(), fc.integer({ min: 32, max: 126 })).map(([text, at, code]) => {
    const i = at % text.length;
    return text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1);
  });

  it('builds the same payment the schema decodes, and refuses what it refuses', () => {
    fc.assert(
      fc.property(fc.oneof(header, mutatedHeader), (text) => {
        expect(parsed(text)).toEqual(viaSchema(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('reads the header formatPaymentHeader writes', () => {
    const payment = msg('payment', { channelId: `${'ab'.repeat(32)}:1`, totalSat: 42n, signature: new Uint8Array(64).fill(7) });
    expect(parsePaymentHeader(formatPaymentHeader(payment))).toEqual(payment);
    expect(parsed(`channel=${'ab'.repeat(32)}:01, total=42, sig=${'07'.repeat(64)}`)).toBe('MALFORMED_MESSAGE');
    expect(parsed(`channel=${'ab'.repeat(32)}:0, total=2100000000000001, sig=${'07'.repeat(64)}`)).toBe('MALFORMED_MESSAGE');
  });
});
