/**
 * paychan's x402 client scheme without I/O: payer clients are stand-ins that sign increasing
 * totals, and the SDK's calls (createPaymentPayload, then onPaymentResponse with the receipt or
 * the 402) are made by hand.
 */
import type { PaymentRequirements, SettleResponse } from '@x402/core/types';
import { describe, expect, it } from 'vitest';
import { CannotPayError } from '../../src/protocol/payer-machine.js';
import { msg } from '../../src/protocol/messages.js';
import type { PayerClient } from '../../src/payer/payer-client.js';
import { PaychanClientScheme, type ChannelOffer } from '../../src/x402/index.js';

const REGTEST = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';
const REQ: PaymentRequirements = {
  scheme: 'paychan',
  network: REGTEST,
  amount: '7',
  asset: `${REGTEST}/slip44:0`,
  payTo: 'ws://127.0.0.1:8420/v1/ws',
  maxTimeoutSeconds: 300,
  extra: { variants: ['spilman-v2'], minCapacitySat: '10000', maxCapacitySat: '100000000', minExpiryBlocks: 10, maxExpiryBlocks: 4320 },
};

/** A stand-in payer: signs totals on channel `n`, refuses beyond `capacitySat`. */
function fakePayer(n: number, capacitySat = 1_000n) {
  const s = { type: 'Open' as string, signedTotalSat: 0n, ackedTotalSat: 0n };
  const id = `${n.toString(16).padStart(64, '0')}:0`;
  const payer = {
    get state() {
      return s;
    },
    channel: { id },
    authorize(amountSat: bigint) {
      if (s.type !== 'Open') return Promise.reject(new CannotPayError('CHANNEL_NOT_OPEN', 'closed'));
      if (s.signedTotalSat + amountSat > capacitySat) return Promise.reject(new CannotPayError('AMOUNT_EXCEEDS_CAPACITY', 'full'));
      s.signedTotalSat += amountSat;
      return Promise.resolve(msg('payment', { channelId: id, totalSat: s.signedTotalSat, signature: new Uint8Array(64).fill(n) }));
    },
    acknowledge(totalSat: bigint) {
      s.ackedTotalSat = totalSat;
    },
  };
  return { payer: payer as unknown as PayerClient, s, id };
}

function setup(capacitySat?: bigint) {
  const opened: ReturnType<typeof fakePayer>[] = [];
  const offers: ChannelOffer[] = [];
  const scheme = new PaychanClientScheme({
    maxPriceSat: 50n,
    channelFor: (offer) => {
      offers.push(offer);
      const p = fakePayer(opened.length + 1, capacitySat);
      opened.push(p);
      return Promise.resolve(p.payer);
    },
  });
  const pay = async (req: PaymentRequirements = REQ, maxAmountPerPayment?: string) => {
    const result = await scheme.createPaymentPayload(2, req, maxAmountPerPayment === undefined ? undefined : { maxAmountPerPayment });
    return { x402Version: 2, accepted: req, payload: result.payload };
  };
  const answer = (payload: Awaited<ReturnType<typeof pay>>, outcome: { settled?: Partial<SettleResponse>; error?: string }) =>
    scheme.schemeHooks.onPaymentResponse!({
      paymentPayload: payload,
      requirements: payload.accepted,
      ...(outcome.settled ? { settleResponse: { success: true, transaction: String(payload.payload.channelId), network: REGTEST, ...outcome.settled } } : {}),
      ...(outcome.error ? { paymentRequired: { x402Version: 2, error: outcome.error, resource: { url: 'http://x/' }, accepts: [REQ] } } : {}),
    });
  const ok = (payload: Awaited<ReturnType<typeof pay>>, creditSat = '0') => answer(payload, { settled: { extra: { channelId: payload.payload.channelId, creditSat } } });
  return { scheme, opened, offers, pay, answer, ok };
}

describe('PaychanClientScheme', () => {
  it('opens one channel for a payee and signs cumulative totals, acknowledging each receipt', async () => {
    const t = setup();
    for (let i = 1; i <= 3; i++) {
      const p = await t.pay();
      expect(p.payload).toMatchObject({ channelId: t.opened[0]!.id, totalSat: String(7 * i) });
      expect(await t.ok(p)).toBeUndefined();
    }
    expect(t.offers).toHaveLength(1);
    expect(t.offers[0]).toMatchObject({ channelUrl: REQ.payTo, priceSat: 7n, network: 'regtest' });
    expect(t.opened[0]!.s.ackedTotalSat).toBe(21n);
  });

  it('signs the next payload to a payee only once the previous one was answered', async () => {
    const t = setup();
    const first = await t.pay();
    let secondSigned = false;
    const second = t.pay().then((p) => ((secondSigned = true), p));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(secondSigned).toBe(false);
    await t.ok(first);
    expect((await second).payload.totalSat).toBe('14');
  });

  it("uses the credit the payee's receipt reports, paying at least 1 sat more", async () => {
    const t = setup();
    await t.ok(await t.pay(), '5');
    const p = await t.pay();
    expect(p.payload.totalSat).toBe('9'); // 7 + (7 − 5)
    await t.ok(p, '9');
    expect((await t.pay()).payload.totalSat).toBe('10'); // credit above the price: 1 sat
  });

  it('asks for a retry with a higher total, on the same channel, after a stale or replayed refusal', async () => {
    const t = setup();
    await t.ok(await t.pay());
    expect(await t.answer(await t.pay(), { error: 'invalid_paychan_amount_not_increasing' })).toEqual({ recovered: true });
    const retry = await t.pay();
    expect(retry.payload).toMatchObject({ channelId: t.opened[0]!.id, totalSat: '21' });
    expect(await t.answer(retry, { error: 'invalid_paychan_payment_replayed' })).toEqual({ recovered: true });
    expect(t.offers).toHaveLength(1);
  });

  it('drops a channel the payee says is done, and opens a new one for the retry', async () => {
    const t = setup();
    const p = await t.pay();
    expect(await t.answer(p, { error: 'invalid_paychan_channel_expiring' })).toEqual({ recovered: true });
    const retry = await t.pay();
    expect(t.offers).toHaveLength(2);
    expect(retry.payload).toMatchObject({ channelId: t.opened[1]!.id, totalSat: '7' });
  });

  it('opens a new channel when the current one cannot pay (full or closed), without a round trip', async () => {
    const t = setup(10n);
    await t.ok(await t.pay());
    const p = await t.pay(); // 14 > 10: a new channel
    expect(p.payload).toMatchObject({ channelId: t.opened[1]!.id, totalSat: '7' });
    await t.ok(p);
    t.opened[1]!.s.type = 'Closed';
    expect((await t.pay()).payload).toMatchObject({ channelId: t.opened[2]!.id, totalSat: '7' });
  });

  it('refuses a price above its cap or the spend cap, and requirements that are not paychan ones', async () => {
    const t = setup();
    await expect(t.pay({ ...REQ, amount: '51' })).rejects.toMatchObject({ code: 'PRICE_TOO_HIGH' });
    await expect(t.pay(REQ, '6')).rejects.toMatchObject({ code: 'PRICE_TOO_HIGH' });
    await expect(t.pay({ ...REQ, asset: 'BTC' })).rejects.toThrow(RangeError);
    expect(t.offers).toHaveLength(0);
    // A refusal holds no turn: the next payment goes through.
    expect((await t.pay()).payload.totalSat).toBe('7');
  });

  it('ignores reports about other schemes and payloads no longer in flight', async () => {
    const t = setup();
    const p = await t.pay();
    expect(await t.answer({ ...p, accepted: { ...p.accepted, scheme: 'exact' } }, { error: 'invalid_paychan_channel_expiring' })).toBeUndefined();
    expect(await t.answer({ ...p, payload: { ...p.payload, totalSat: '99' } }, { error: 'invalid_paychan_channel_expiring' })).toBeUndefined();
    await t.ok(p);
    expect(await t.answer(p, { error: 'invalid_paychan_channel_expiring' })).toBeUndefined();
    expect(t.offers).toHaveLength(1);
  });
});
