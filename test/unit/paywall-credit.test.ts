/**
 * The paywall credits what a payment added over the total the payee replaced when it stored
 * that payment, not over a total read before the payment was submitted: a payment that lands on
 * another carrier meanwhile (the channel's WebSocket, a second Paywall) is not counted twice.
 * The payee here is a scripted PaywallPayee (the contract of src/transport/paywall.ts); the real
 * one is exercised on btcd by test/integration/http402.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { msg, type MessageOf } from '../../src/protocol/messages.js';
import type { PeerLink } from '../../src/transport/link.js';
import { Paywall, type PaywallPayee } from '../../src/transport/paywall.js';

const CHANNEL = `${'ab'.repeat(32)}:0`;
const payment = (totalSat: bigint): MessageOf<'payment'> => ({ v: 1, type: 'payment', channelId: CHANNEL, totalSat, signature: new Uint8Array(64) });

/** Holds `paid`; `beforeStore` runs between the paywall's submit and this payment being stored (another carrier's payment). */
function scriptedPayee(paid: bigint, beforeStore: (payee: { paid: bigint }) => void = () => undefined): PaywallPayee & { paid: bigint } {
  const payee = {
    paid,
    paidSat: () => payee.paid,
    handle: (p: MessageOf<'payment'>, link: PeerLink): Promise<void> => {
      beforeStore(payee);
      if (p.totalSat < payee.paid) {
        link.send(msg('error', { code: 'AMOUNT_NOT_INCREASING', message: 'lower', action: 'reject' }));
        return Promise.resolve();
      }
      const replaced = payee.paid;
      payee.paid = p.totalSat;
      link.send(msg('payment-ack', { channelId: CHANNEL, totalSat: p.totalSat }), replaced);
      return Promise.resolve();
    },
  };
  return payee;
}

const paywallOf = (payee: PaywallPayee): Paywall => new Paywall({ payee, channelUrl: 'ws://127.0.0.1:1/v1/ws', network: 'regtest' });

describe('Paywall credit', () => {
  it('a payment on another carrier between the read and the store is not counted again', async () => {
    // Paid 100; the header for 300 is in flight; a WebSocket payment of 200 lands first.
    const payee = scriptedPayee(100n, (p) => {
      p.paid = 200n;
    });
    const paywall = paywallOf(payee);
    const admission = await paywall.admit(`channel=${CHANNEL}, total=300, sig=${'00'.repeat(64)}`, 150n);
    // The header added 100 over the 200 it replaced: short of 150, kept as credit.
    expect(admission).toMatchObject({ ok: false, body: { code: 'INSUFFICIENT_PAYMENT', dueSat: 50 } });
    expect(paywall.account(CHANNEL)).toEqual({ chargedSat: 0n, creditSat: 100n, lastTotalSat: 300n });
  });

  it('credits total minus the replaced total on the ordinary path', async () => {
    const paywall = paywallOf(scriptedPayee(100n));
    expect(await paywall.admitPayment(payment(250n), 150n)).toMatchObject({ ok: true, creditSat: 0n, totalSat: 250n });
    expect(paywall.account(CHANNEL)).toEqual({ chargedSat: 150n, creditSat: 0n, lastTotalSat: 250n });
  });

  it('a total the payee already held (sent on another carrier) is refused as a replay and spends no credit', async () => {
    const payee = scriptedPayee(0n);
    const paywall = paywallOf(payee);
    expect(await paywall.admitPayment(payment(400n), 100n)).toMatchObject({ ok: true, creditSat: 300n });
    payee.paid = 500n; // paid 500 over the WebSocket; someone replays that payment as a header
    expect(await paywall.admitPayment(payment(500n), 100n)).toMatchObject({ ok: false, body: { code: 'PAYMENT_REPLAYED' } });
    expect(paywall.account(CHANNEL)).toEqual({ chargedSat: 100n, creditSat: 300n, lastTotalSat: 400n });
  });
});
