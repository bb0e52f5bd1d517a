/**
 * PaymentLatency pairs decoded payments with their acks; refused payments (no ack) are dropped
 * by a later ack.
 */
import { describe, expect, it } from 'vitest';
import { PaymentLatency } from '../../src/transport/payment-latency.js';

const ID = `${'ab'.repeat(32)}:1`;

describe('PaymentLatency', () => {
  it('times a payment from frame in to ack out', () => {
    const l = new PaymentLatency(10);
    l.frameIn(ID, 500n, 1000);
    expect(l.ackOut(ID, 500n, 1250)).toBe(0.25);
    expect(l.ackOut(ID, 500n, 1300)).toBeUndefined(); // matched once only
  });

  it('keeps channels apart', () => {
    const l = new PaymentLatency(10);
    const other = `${'cd'.repeat(32)}:0`;
    l.frameIn(ID, 1n, 0);
    l.frameIn(other, 1n, 5);
    expect(l.ackOut(other, 1n, 6)).toBe(0.001);
    expect(l.ackOut(ID, 1n, 7)).toBe(0.007);
  });

  it('drops the refused payments before an acknowledged one, and frees their slots', () => {
    const l = new PaymentLatency(3);
    l.frameIn(ID, 1n, 0);
    l.frameIn(ID, 2n, 1);
    l.frameIn(ID, 3n, 2);
    l.frameIn(ID, 4n, 3); // over maxTracked: untimed
    expect(l.ackOut(ID, 4n, 10)).toBeUndefined();
    expect(l.ackOut(ID, 2n, 10)).toBe(0.009); // 1 was refused: popped with 2
    l.frameIn(ID, 5n, 20);
    expect(l.ackOut(ID, 5n, 21)).toBe(0.001); // 3 popped with it
    expect(l.ackOut(ID, 3n, 30)).toBeUndefined();
  });
});
