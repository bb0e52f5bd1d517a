/**
 * PaymentLatency pairs payment frames with their acks: by position for encodeMessage's form, by
 * JSON.parse for any other spelling; refused payments (no ack) are dropped by a later ack.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, msg } from '../../src/protocol/messages.js';
import { PaymentLatency } from '../../src/transport/payment-latency.js';

const ID = `${'ab'.repeat(32)}:1`;
const frame = (totalSat: bigint): string => encodeMessage(msg('payment', { channelId: ID, totalSat, signature: new Uint8Array(64).fill(7) }));

describe('PaymentLatency', () => {
  it('times a payment in the encoder form from frame in to ack out', () => {
    const l = new PaymentLatency(10);
    l.frameIn(frame(500n), 1000);
    expect(l.ackOut(ID, 500n, 1250)).toBe(0.25);
    expect(l.ackOut(ID, 500n, 1300)).toBeUndefined(); // matched once only
  });

  it('reads other spellings of a payment through JSON', () => {
    const l = new PaymentLatency(10);
    const spaced = ` {"type": "payment", "v": 1, "totalSat": "9", "channelId": "${ID}", "signature": "00"}`;
    l.frameIn(spaced, 10);
    expect(l.ackOut(ID, 9n, 30)).toBe(0.02);
  });

  it('ignores what is not a payment (it would take the only slot)', () => {
    const l = new PaymentLatency(1);
    l.frameIn(encodeMessage(msg('close-request', { channelId: ID })), 0);
    l.frameIn('{"v":1,"type":"payment","channelId":"truncated', 0);
    l.frameIn('not json "payment"', 0);
    l.frameIn(` {"v":1,"type":"payment-ack","channelId":"${ID}","totalSat":"1"}`, 0);
    l.frameIn(frame(1n), 5);
    expect(l.ackOut(ID, 1n, 7)).toBe(0.002);
  });

  it('drops the refused payments before an acknowledged one, and frees their slots', () => {
    const l = new PaymentLatency(3);
    l.frameIn(frame(1n), 0);
    l.frameIn(frame(2n), 1);
    l.frameIn(frame(3n), 2);
    l.frameIn(frame(4n), 3); // over maxTracked: untimed
    expect(l.ackOut(ID, 4n, 10)).toBeUndefined();
    expect(l.ackOut(ID, 2n, 10)).toBe(0.009); // 1 was refused: popped with 2
    l.frameIn(frame(5n), 20);
    expect(l.ackOut(ID, 5n, 21)).toBe(0.001); // 3 popped with it
    expect(l.ackOut(ID, 3n, 30)).toBeUndefined();
  });
});
