/**
 * The buyer's side of the `paychan` x402 scheme: a {@link PaychanClientScheme} registered into
 * the official `x402Client` (what `wrapFetchWithPayment` of `@x402/fetch` runs). For each
 * requirement it opens or reuses a channel to the payee named by `payTo` (through the caller's
 * `channelFor`, as the paying fetch of src/payer/paying-fetch.ts) and answers with the next
 * cumulative payment on it.
 *
 * Payments to one payee go one at a time: a payload is signed only once the previous one was
 * answered (its response reached the scheme's `onPaymentResponse`) or its requirement's
 * `maxTimeoutSeconds` passed. Each payload carries a higher total than the last, and the payee
 * refuses a total below one it already took, so two requests must not overtake each other
 * between signing and arrival; concurrent fetches just queue.
 *
 * On a refusal that means "this channel is done" (closed, expiring, full) the next payload opens
 * a new channel; on a stale or replayed total it signs a higher one; both ask the SDK to retry
 * once with a fresh payload.
 */
import type { PaymentResponseContext } from '@x402/core/client';
import type { PaymentPayloadContext, PaymentPayloadResult, PaymentRequirements, SchemeClientHooks, SchemeNetworkClient } from '@x402/core/types';
import type { MessageOf } from '../protocol/messages.js';
import { CannotPayError } from '../protocol/payer-machine.js';
import type { PayerClient } from '../payer/payer-client.js';
import { CHANNEL_DONE, PaymentRefusedError } from '../payer/paying-fetch.js';
import { codeOfReason, decodePayload, encodePayload, PAYCHAN_SCHEME, readOffer, type ChannelOffer } from './paychan-scheme.js';

export interface PaychanClientOptions {
  /**
   * The channel to pay `offer.channelUrl` through, opening one if needed: called for the first
   * payment to a payee and whenever its channel can pay no more.
   */
  readonly channelFor: (offer: ChannelOffer) => Promise<PayerClient>;
  /** Never pay more than this for one request (also capped by the x402Client's spend controls). */
  readonly maxPriceSat: bigint;
}

/** Codes after which a fresh payload (a higher total) is worth one retry. */
const RETRY_WITH_HIGHER_TOTAL = new Set(['AMOUNT_NOT_INCREASING', 'PAYMENT_REPLAYED', 'INSUFFICIENT_PAYMENT']);

/** The longest a payee's next payment waits for the answer to the one before. */
const RELEASE_AFTER_MS = 30_000;

interface Payee {
  channel: Promise<PayerClient> | null;
  /** Credit the payee reported on the current channel (a canceled request's price). */
  creditSat: bigint;
  /** Resolves when no payment to this payee is in flight. */
  turn: Promise<void>;
  inFlight: InFlight | null;
}

interface InFlight {
  readonly payer: PayerClient;
  readonly payment: MessageOf<'payment'>;
  readonly release: () => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class PaychanClientScheme implements SchemeNetworkClient {
  readonly scheme = PAYCHAN_SCHEME;
  readonly schemeHooks: SchemeClientHooks;
  private readonly payees = new Map<string, Payee>();

  constructor(private readonly options: PaychanClientOptions) {
    if (options.maxPriceSat <= 0n) throw new RangeError('maxPriceSat must be positive');
    this.schemeHooks = { onPaymentResponse: (ctx) => this.answered(ctx) };
  }

  /**
   * The next cumulative payment for `requirements`, once the previous payment to the same payee
   * was answered.
   * @throws RangeError for a requirement that is not a paychan one; PaymentRefusedError
   *   PRICE_TOO_HIGH above `maxPriceSat` or the spend cap; what `channelFor` throws.
   */
  async createPaymentPayload(x402Version: number, requirements: PaymentRequirements, context?: PaymentPayloadContext): Promise<PaymentPayloadResult> {
    const offer = readOffer(requirements);
    const cap = context?.maxAmountPerPayment === undefined ? this.options.maxPriceSat : min(this.options.maxPriceSat, BigInt(context.maxAmountPerPayment));
    if (offer.priceSat > cap) throw new PaymentRefusedError('PRICE_TOO_HIGH', `asked to pay ${offer.priceSat} sat, more than the cap of ${cap}`);
    const payee = this.payeeOf(offer.channelUrl);
    const previous = payee.turn;
    let release!: () => void;
    payee.turn = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      const { payer, payment } = await this.sign(payee, offer);
      // A request that failed in transit never reaches onPaymentResponse: stop waiting for it
      // after the requirement's timeout, at most RELEASE_AFTER_MS. Ordering only matters until
      // the payee verified the payment (before its handler runs), so this is seldom too early;
      // if it is, the overtaken payload is refused as stale and retried higher.
      const timer = setTimeout(() => this.release(payee, payment), Math.min(requirements.maxTimeoutSeconds * 1000, RELEASE_AFTER_MS));
      timer.unref?.();
      payee.inFlight = { payer, payment, release, timer };
      return { x402Version, payload: encodePayload(payment) };
    } catch (err) {
      release();
      throw err;
    }
  }

  private payeeOf(channelUrl: string): Payee {
    let p = this.payees.get(channelUrl);
    if (!p) this.payees.set(channelUrl, (p = { channel: null, creditSat: 0n, turn: Promise.resolve(), inFlight: null }));
    return p;
  }

  /** Signs what this request adds on the payee's channel, on a new channel if the current one cannot pay. */
  private async sign(payee: Payee, offer: ChannelOffer): Promise<{ payer: PayerClient; payment: MessageOf<'payment'> }> {
    const due = offer.priceSat > payee.creditSat ? offer.priceSat - payee.creditSat : 1n;
    let payer = await this.channelOf(payee, offer);
    try {
      return { payer, payment: await payer.authorize(due) };
    } catch (err) {
      if (!(err instanceof CannotPayError)) throw err;
      // Full, or no longer open: the same as a "channel done" refusal, without the round trip.
      payee.channel = null;
      payer = await this.channelOf(payee, offer);
      return { payer, payment: await payer.authorize(offer.priceSat) };
    }
  }

  private async channelOf(payee: Payee, offer: ChannelOffer): Promise<PayerClient> {
    if (payee.channel) {
      const payer = await payee.channel;
      if (payer.state?.type === 'Open') return payer;
    }
    payee.creditSat = 0n;
    const opening = this.options.channelFor(offer);
    payee.channel = opening;
    opening.catch(() => {
      if (payee.channel === opening) payee.channel = null;
    });
    return opening;
  }

  /** The SDK's report on the request that carried our payload. */
  private answered(ctx: PaymentResponseContext): Promise<void | { recovered: true }> {
    if (ctx.requirements.scheme !== PAYCHAN_SCHEME) return Promise.resolve();
    const payee = this.payees.get(ctx.requirements.payTo);
    let payment: MessageOf<'payment'>;
    try {
      payment = decodePayload(ctx.paymentPayload.payload);
    } catch {
      return Promise.resolve();
    }
    const inFlight = payee?.inFlight;
    if (!payee || !inFlight || inFlight.payment.channelId !== payment.channelId || inFlight.payment.totalSat !== payment.totalSat) return Promise.resolve();
    let recovered = false;
    const settled = ctx.settleResponse;
    if (settled?.success) {
      if (inFlight.payer.state?.type === 'Open') inFlight.payer.acknowledge(payment.totalSat);
      const credit = settled.extra?.creditSat;
      if (settled.extra?.channelId === payment.channelId && typeof credit === 'string' && /^[0-9]{1,16}$/.test(credit)) payee.creditSat = BigInt(credit);
    } else {
      const code = codeOfReason(ctx.paymentRequired?.error);
      if (code !== undefined && CHANNEL_DONE.has(code)) {
        payee.channel = null;
        recovered = true;
      } else if (code !== undefined && RETRY_WITH_HIGHER_TOTAL.has(code)) {
        payee.creditSat = 0n;
        recovered = true;
      }
    }
    this.release(payee, inFlight.payment);
    return Promise.resolve(recovered ? { recovered: true } : undefined);
  }

  /** Lets the next payment to `payee` be signed, if `payment` is still the one in flight. */
  private release(payee: Payee, payment: MessageOf<'payment'>): void {
    const inFlight = payee.inFlight;
    if (!inFlight || inFlight.payment !== payment) return;
    payee.inFlight = null;
    clearTimeout(inFlight.timer);
    inFlight.release();
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
