/**
 * A `fetch` that pays: on `402 Payment Required` from a paychan paywall it opens (or reuses) a
 * channel to the payee named in the 402, signs what is due, and retries with the payment in the
 * `Paychan-Payment` header. Once it knows a route's price it pays upfront, so a paid request
 * costs one round trip.
 *
 * Requests to one origin are paid one at a time: each carries a higher total than the last, and
 * the paywall refuses a total below one it already accepted, so two requests must not overtake
 * each other between signing and arrival.
 */
import { ACK_HEADER, CREDIT_HEADER, PAYMENT_HEADER, formatPaymentHeader, type PaymentRequiredBody } from '../transport/paywall.js';
import type { PayerClient } from './payer-client.js';

export interface PayingFetchOptions {
  /** The channel to use for a payee, opening one if needed (called once per `channelUrl`). */
  readonly channelFor: (offer: PaymentRequiredBody) => Promise<PayerClient>;
  /** Never pay more than this for one request. */
  readonly maxPriceSat: bigint;
  readonly fetch?: typeof fetch;
}

/** The paywall asked for more than `maxPriceSat`, or kept refusing. */
export class PaymentRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly body?: PaymentRequiredBody,
  ) {
    super(message);
    this.name = 'PaymentRefusedError';
  }
}

interface Origin {
  channel: Promise<PayerClient> | null;
  /** Known price per path, from earlier 402s. */
  prices: Map<string, bigint>;
  credit: bigint;
  queue: Promise<unknown>;
}

const MAX_ATTEMPTS = 3;
/** 402 codes that mean "this channel cannot pay any more": open a new one. */
export const CHANNEL_DONE: ReadonlySet<string> = new Set(['CHANNEL_NOT_OPEN', 'CHANNEL_EXPIRING', 'UNKNOWN_CHANNEL', 'AMOUNT_EXCEEDS_CAPACITY', 'CHANGE_BELOW_DUST']);

export function createPayingFetch(options: PayingFetchOptions): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  const origins = new Map<string, Origin>();

  const pay = async (origin: Origin, offer: PaymentRequiredBody | null, amountSat: bigint): Promise<{ header: string; payer: PayerClient }> => {
    if (amountSat > options.maxPriceSat) throw new PaymentRefusedError('PRICE_TOO_HIGH', `asked to pay ${amountSat} sat, more than maxPriceSat ${options.maxPriceSat}`, offer ?? undefined);
    if (!origin.channel) {
      if (!offer) throw new Error('unreachable: no channel and no offer');
      origin.channel = options.channelFor(offer);
      origin.channel.catch(() => (origin.channel = null));
    }
    let payer = await origin.channel;
    if (payer.state?.type !== 'Open' && offer) {
      // Closed, or used up: a fresh channel for this payee.
      origin.channel = options.channelFor(offer);
      origin.credit = 0n;
      payer = await origin.channel;
    }
    const payment = await payer.authorize(amountSat);
    return { header: formatPaymentHeader(payment), payer };
  };

  const exchange = async (origin: Origin, url: URL, init: RequestInit | undefined): Promise<Response> => {
    const path = url.pathname;
    const known = origin.prices.get(path);
    let header: string | undefined;
    let payer: PayerClient | undefined;
    if (known !== undefined && origin.channel) {
      // Paying upfront at the known price; if that channel cannot pay, ask the server first.
      ({ header, payer } = await pay(origin, null, known > origin.credit ? known - origin.credit : 1n).catch(() => ({ header: undefined, payer: undefined })));
    }
    for (let attempt = 1; ; attempt++) {
      const headers = new Headers(init?.headers);
      if (header) headers.set(PAYMENT_HEADER, header);
      const response = await doFetch(url, { ...init, headers });
      if (response.status !== 402) {
        const ack = response.headers.get(ACK_HEADER);
        if (ack && payer) payer.acknowledge(BigInt(ack.split(' ')[1] ?? '0'));
        const credit = response.headers.get(CREDIT_HEADER);
        if (credit !== null) origin.credit = BigInt(credit);
        return response;
      }
      const body = (await response.json()) as PaymentRequiredBody;
      if (attempt >= MAX_ATTEMPTS) throw new PaymentRefusedError(body.code, `paywall still refuses after ${attempt} attempts: ${body.message}`, body);
      origin.prices.set(path, BigInt(body.priceSat));
      if (CHANNEL_DONE.has(body.code)) {
        origin.channel = null;
        origin.credit = 0n;
      }
      ({ header, payer } = await pay(origin, body, BigInt(body.dueSat)));
    }
  };

  return (input, init) => {
    const url = new URL(input);
    let origin = origins.get(url.origin);
    if (!origin) origins.set(url.origin, (origin = { channel: null, prices: new Map(), credit: 0n, queue: Promise.resolve() }));
    const o = origin;
    const result = o.queue.then(() => exchange(o, url, init));
    o.queue = result.catch(() => undefined);
    return result;
  };
}
