/**
 * The payee service's own bounds and admission rules, on the in-process service with a fake
 * chain and a store the test can stall (test/helpers/payee-unit.ts).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_PENDING_STEPS_PER_CHANNEL } from '../../src/payee/payee-service.js';
import { authMessage } from '../../src/protocol/auth.js';
import { msg } from '../../src/protocol/messages.js';
import { PAYER_KEY, secp } from '../helpers/protocol.js';
import { recordingLink, TEMP_ID, unitPayee } from '../helpers/payee-unit.js';
import { waitUntil } from '../helpers/wait.js';

describe('payee service: a stalled store', () => {
  it('refuses a channel\'s payments RATE_LIMITED, unprocessed, once its pending steps reach the bound; takes them again once the store answers', async () => {
    const { payee, store, channelId, payment } = await unitPayee({ maxPendingStepsPerChannel: 8 });
    const link = recordingLink();
    store.stall();
    for (let i = 1n; i <= 20n; i++) await payee.handle(payment(i), link);
    // Eight payments wait for the store; the twelve after them were refused and changed nothing.
    expect(store.heldSaves).toBe(8);
    expect(link.errors('RATE_LIMITED')).toHaveLength(12);
    expect(link.errors()).toHaveLength(12);
    expect(link.errors()[0]!.action).toBe('reject');
    expect(payee.paidSat(channelId)).toBe(8n);
    expect(link.received.filter((m) => m.type === 'payment-ack')).toHaveLength(0);
    store.resume();
    await waitUntil(() => link.received.filter((m) => m.type === 'payment-ack').length === 8, 'the eight stored payments acknowledged');
    await payee.handle(payment(9n), link);
    await waitUntil(() => link.received.some((m) => m.type === 'payment-ack' && m.totalSat === 9n), 'the next payment acknowledged');
    expect(payee.paidSat(channelId)).toBe(9n);
    expect(link.errors()).toHaveLength(12);
  });

  it('bounds by default at 1,024 pending steps per channel', async () => {
    expect(DEFAULT_MAX_PENDING_STEPS_PER_CHANNEL).toBe(1024);
    const { payee, store, payment } = await unitPayee();
    const link = recordingLink();
    store.stall();
    for (let i = 1n; i <= 1030n; i++) await payee.handle(payment(i), link);
    expect(store.heldSaves).toBe(1024);
    expect(link.errors('RATE_LIMITED')).toHaveLength(6);
    store.resume();
  });

  it('refuses a bound that is not an integer ≥ 1', async () => {
    await expect(unitPayee({ maxPendingStepsPerChannel: 0 })).rejects.toThrow(RangeError);
    await expect(unitPayee({ maxPendingStepsPerChannel: 1.5 })).rejects.toThrow(/maxPendingStepsPerChannel/);
  });
});

describe('payee service: error messages', () => {
  const peerError = (ref: string) => msg('error', { code: 'INTERNAL_ERROR', message: 'x'.repeat(1000), action: 'close', ref });

  it('ignores an error for a channel from a connection not authenticated as its payer: nothing answered, one log line for many', async () => {
    const log: string[] = [];
    const { payee, channelId } = await unitPayee({ log: (l) => log.push(l) });
    const stranger = recordingLink();
    for (let i = 0; i < 1000; i++) {
      await payee.handle(peerError(channelId), stranger);
      await payee.handle(peerError(TEMP_ID), stranger);
      await payee.handle(peerError('cd'.repeat(16)), stranger); // no such channel
    }
    await payee.drain();
    expect(stranger.received).toEqual([]);
    expect(log.filter((l) => l.includes('payer reported'))).toEqual([]);
    expect(log.filter((l) => l.includes('xxxx'))).toEqual([]);
    expect(log.filter((l) => /ignored \d+ error message/.test(l))).toHaveLength(1);
  });

  it('takes an error from the connection that authenticated as the channel\'s payer (logged)', async () => {
    const log: string[] = [];
    const { payee, channelId } = await unitPayee({ log: (l) => log.push(l) });
    const payer = recordingLink();
    await payee.handle(authMessage(secp, payer.challenge!, TEMP_ID, PAYER_KEY), payer);
    expect(payer.received).toEqual([]);
    await payee.handle(peerError(channelId), payer);
    await waitUntil(() => log.some((l) => l.includes('payer reported INTERNAL_ERROR')), 'the payer\'s error logged');
    expect(payer.received).toEqual([]);
  });
});

describe('payee service: the tip payments are checked against', () => {
  it('refuses payments, changing nothing, while no tip was read from the node for maxTipAgeMs; takes them again once it answers (each change logged once)', async () => {
    const log: string[] = [];
    const { payee, chain, channelId, payment } = await unitPayee({ maxTipAgeMs: 300, log: (l) => log.push(l) });
    payee.start();
    try {
      const link = recordingLink();
      await payee.handle(payment(1n), link);
      await waitUntil(() => link.received.some((m) => m.type === 'payment-ack'), 'the first payment acknowledged');
      chain.down = true;
      await waitUntil(() => log.some((l) => l.includes('payments are refused')), 'the tip counted stale');
      await payee.handle(payment(2n), link);
      expect(link.errors()).toMatchObject([{ code: 'INTERNAL_ERROR', action: 'reject', message: expect.stringMatching(/chain tip.*retry later/) }]);
      expect(payee.paidSat(channelId)).toBe(1n);
      chain.down = false;
      await waitUntil(() => log.some((l) => l.includes('payments are taken again')), 'the tip fresh again');
      await payee.handle(payment(2n), link);
      await waitUntil(() => link.received.some((m) => m.type === 'payment-ack' && m.totalSat === 2n), 'the payment acknowledged');
      expect(log.filter((l) => l.includes('payments are refused'))).toHaveLength(1);
      expect(log.filter((l) => l.includes('payments are taken again'))).toHaveLength(1);
    } finally {
      payee.stop();
    }
  });

  it('checks a payment against the highest tip read from the node, not only the last notified one', async () => {
    const { payee, chain, channelId, payment } = await unitPayee({ maxTipAgeMs: 300 });
    payee.start();
    try {
      // The close deadline is expiry 1000 − margin 3 = 997; no block notification comes (a lagging poll).
      chain.tip = { height: 997, hash: '33'.repeat(32) };
      const reads = chain.reads;
      await waitUntil(() => chain.reads >= reads + 2, 'the payee to read the tip');
      const link = recordingLink();
      await payee.handle(payment(1n), link);
      expect(link.errors().map((e) => e.code)).toEqual(['CHANNEL_EXPIRING']);
      expect(payee.paidSat(channelId)).toBe(0n);
    } finally {
      payee.stop();
    }
  });

  it('refuses a maxTipAgeMs out of range', async () => {
    await expect(unitPayee({ maxTipAgeMs: 10 })).rejects.toThrow(/maxTipAgeMs/);
  });

  it("a payer's error refused at the pending bound is not answered with an error (no ping-pong)", async () => {
    const { payee, store, channelId, payment } = await unitPayee({ maxPendingStepsPerChannel: 2 });
    const payer = recordingLink();
    await payee.handle(authMessage(secp, payer.challenge!, TEMP_ID, PAYER_KEY), payer);
    store.stall();
    for (let i = 1n; i <= 2n; i++) await payee.handle(payment(i), payer);
    await payee.handle(payment(3n), payer); // refused: the bound is reached
    expect(payer.errors('RATE_LIMITED')).toHaveLength(1);
    await payee.handle(msg('error', { code: 'INTERNAL_ERROR', message: 'payer side failed', action: 'close', ref: channelId }), payer); // refused too, silently
    expect(payer.errors()).toHaveLength(1);
    store.resume();
  });
});
