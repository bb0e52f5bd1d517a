/**
 * Pay-per-request HTTP (HTTP 402): a {@link Paywall} admits a request when it carries a fresh
 * channel payment in the `Paychan-Payment` header that covers the route's price.
 *
 * The payment is an ordinary channel payment (a new, higher total signed by the payer); the
 * payee verifies and durably stores it like any other before the request is served. The paywall
 * keeps per-channel books: `creditSat` = what headers paid − what requests were charged.
 * - A header whose total is not above the last one this paywall accepted is refused: equal is
 *   `PAYMENT_REPLAYED`, lower is `AMOUNT_NOT_INCREASING` (a header can buy one request only).
 * - A valid payment too small for the price is still stored (the money is the payee's) and
 *   becomes credit; the 402 says how much more is owed.
 * - Metered routes charge after the response (`settle`); a charge above the upfront price leaves
 *   a debt (negative credit) the next request must cover.
 * Books live in memory: after a payee restart unspent credit (at most one prepayment per
 * channel) is forgotten; payments themselves are in the store. See docs/http-402.md.
 */
import { fromHex, toHex } from '../protocol/bytes.js';
import { ProtocolError, type ProtocolErrorCode } from '../protocol/errors.js';
import { decodeMessage, MAX_MONEY_SAT, PROTOCOL_VERSION, type Message, type MessageOf } from '../protocol/messages.js';
import type { NetworkName } from '../protocol/network.js';
import type { PeerLink } from './link.js';

export const PAYMENT_HEADER = 'paychan-payment';
export const ACK_HEADER = 'paychan-ack';
export const CREDIT_HEADER = 'paychan-credit';

const HEADER_RE = /^channel=([0-9a-f]{64}:[0-9]{1,5}), total=(0|[1-9][0-9]{0,15}), sig=([0-9a-f]{128})$/;

/** The JSON body of every 402 answer. */
export interface PaymentRequiredBody {
  readonly code: ProtocolErrorCode | 'PAYMENT_REQUIRED' | 'INSUFFICIENT_PAYMENT';
  readonly message: string;
  /** Price of this request, satoshis. */
  readonly priceSat: number;
  /**
   * What the next payment on this channel must add for this request, satoshis: the price, less
   * unspent credit, plus any metered debt. Equals `priceSat` for a new channel.
   */
  readonly dueSat: number;
  /** WebSocket URL where a payer opens a channel with this payee. */
  readonly channelUrl: string;
  readonly network: NetworkName;
  readonly header: string;
}

export type Admission =
  | { readonly ok: true; readonly channelId: string; readonly totalSat: bigint; readonly creditSat: bigint }
  | { readonly ok: false; readonly body: PaymentRequiredBody };

interface Books {
  lastTotalSat: bigint;
  creditSat: bigint;
  chargedSat: bigint;
  /** Admissions of one channel run one at a time. */
  queue: Promise<unknown>;
}

/**
 * What the paywall needs of a payee (src/payee/payee-service.ts implements it): the transport
 * knows the payee only through this.
 */
export interface PaywallPayee {
  /**
   * What was paid on `channelId` so far (its newest acknowledged total, 0 before the first
   * payment), or undefined for a channel the payee does not hold.
   */
  paidSat(channelId: string): bigint | undefined;
  /**
   * Handles one payment as if it came on a channel's connection, and answers on `link`:
   * `payment-ack` once it is durable, or `error` (and nothing changed). Never rejects.
   */
  handle(payment: MessageOf<'payment'>, link: PeerLink): Promise<void>;
}

export interface PaywallOptions {
  readonly payee: PaywallPayee;
  readonly channelUrl: string;
  readonly network: NetworkName;
}

/** Formats a payment for the `Paychan-Payment` header. */
export function formatPaymentHeader(payment: MessageOf<'payment'>): string {
  return `channel=${payment.channelId}, total=${payment.totalSat}, sig=${toHex(payment.signature)}`;
}

/**
 * Parses a `Paychan-Payment` header into a payment message (through the wire schema).
 * @throws ProtocolError MALFORMED_MESSAGE.
 */
export function parsePaymentHeader(value: string): MessageOf<'payment'> {
  const m = HEADER_RE.exec(value.trim());
  if (!m) throw new ProtocolError('MALFORMED_MESSAGE', `expected 'channel=<txid:vout>, total=<sat>, sig=<128 hex>'`);
  // The spelling every payer sends (a vout without leading zeros, both numbers in range) is
  // exactly what the wire decoder's hot path accepts: build that message here, without a JSON
  // round trip through it (this runs once per paid request). Anything else takes the schema.
  const channelId = m[1]!;
  const vout = channelId.slice(65);
  const totalSat = BigInt(m[2]!);
  if (totalSat <= MAX_MONEY_SAT && (vout === '0' || (vout.charCodeAt(0) !== 48 && Number(vout) <= 0xffff))) {
    return { v: PROTOCOL_VERSION, type: 'payment', channelId, totalSat, signature: fromHex(m[3]!) };
  }
  const message = decodeMessage(JSON.stringify({ v: 1, type: 'payment', channelId: m[1], totalSat: m[2], signature: m[3] }));
  if (message.type !== 'payment') throw new ProtocolError('MALFORMED_MESSAGE', 'not a payment');
  return message;
}

/**
 * Submits a payment that arrived outside the channel's connection (an HTTP header) and resolves
 * with the payee's answer: `payment-ack` once the payment is durable, or `error`. The payee
 * answers on a link of this one request, which takes the first answer only.
 */
export function submitPayment(payee: Pick<PaywallPayee, 'handle'>, payment: MessageOf<'payment'>): Promise<Message> {
  return submitPaymentForCredit(payee, payment).then((r) => r.answer);
}

/**
 * {@link submitPayment}, also with the total the payee replaced when it stored the payment (given
 * with a `payment-ack`, PeerLink.send): what a carrier that counts credit credits it by.
 */
function submitPaymentForCredit(payee: Pick<PaywallPayee, 'handle'>, payment: MessageOf<'payment'>): Promise<{ answer: Message; replacedSat: bigint | undefined }> {
  return new Promise((resolve) => {
    let answered = false;
    const link: PeerLink = {
      send: (answer, replacedSat) => {
        if (answered) return;
        answered = true;
        resolve({ answer, replacedSat });
      },
    };
    void payee.handle(payment, link);
  });
}

export class Paywall {
  private readonly books = new Map<string, Books>();

  constructor(private readonly options: PaywallOptions) {}

  /** What this paywall has charged and holds as credit on `channelId`. */
  account(channelId: string): { chargedSat: bigint; creditSat: bigint; lastTotalSat: bigint } | undefined {
    const b = this.books.get(channelId);
    return b && { chargedSat: b.chargedSat, creditSat: b.creditSat, lastTotalSat: b.lastTotalSat };
  }

  /** Decides on one request of price `priceSat` carrying `header` (the header's value, if any). */
  admit(header: string | undefined, priceSat: bigint): Promise<Admission> {
    if (header === undefined || header === '') return Promise.resolve(this.paymentRequired('PAYMENT_REQUIRED', 'this resource costs satoshis: pay through a channel', priceSat));
    let payment: MessageOf<'payment'>;
    try {
      payment = parsePaymentHeader(header);
    } catch (err) {
      return Promise.resolve(this.paymentRequired('MALFORMED_MESSAGE', (err as Error).message, priceSat));
    }
    return this.admitPayment(payment, priceSat);
  }

  /**
   * The refusal of a request of price `priceSat` whose payment never reached the payee: none was
   * sent, or its carrier could not be read (a malformed header, an x402 payload that does not
   * answer its requirement). The whole price is due; nothing changes (no books are opened, so a
   * stranger's garbage costs no memory). Every 402 of this paywall is built here or by `admit`.
   */
  paymentRequired(code: PaymentRequiredBody['code'], message: string, priceSat: bigint): Admission & { ok: false } {
    return this.refuse(code, message, priceSat, priceSat);
  }

  /**
   * Decides on one request of price `priceSat` paid by `payment`, already parsed (by the header
   * or by another carrier of the same payment, e.g. an x402 payload: src/x402).
   * With `refuseShort`, a payment that adds less than is due is refused before the payee sees
   * it (INSUFFICIENT_PAYMENT, nothing stored) instead of being stored as credit.
   */
  admitPayment(payment: MessageOf<'payment'>, priceSat: bigint, refuseShort = false): Promise<Admission> {
    // No books for channels the payee does not have: forged ids must not grow memory.
    if (this.options.payee.paidSat(payment.channelId) === undefined) return Promise.resolve(this.paymentRequired('UNKNOWN_CHANNEL', `no channel ${payment.channelId}`, priceSat));
    const books = this.booksOf(payment.channelId);
    const result = books.queue.then(() => this.admitInOrder(books, payment, priceSat, refuseShort));
    books.queue = result.catch(() => undefined);
    return result;
  }

  /** Records the final price of a metered request admitted at `upfrontSat`. */
  settle(channelId: string, upfrontSat: bigint, actualSat: bigint): void {
    const books = this.booksOf(channelId);
    books.creditSat -= actualSat - upfrontSat;
    books.chargedSat += actualSat - upfrontSat;
  }

  private async admitInOrder(books: Books, payment: MessageOf<'payment'>, priceSat: bigint, refuseShort: boolean): Promise<Admission> {
    const due = () => (priceSat > books.creditSat ? priceSat - books.creditSat : 0n);
    if (payment.totalSat === books.lastTotalSat) return this.refuse('PAYMENT_REPLAYED', 'this payment already paid for a request; sign a higher total', priceSat, due());
    if (payment.totalSat < books.lastTotalSat) return this.refuse('AMOUNT_NOT_INCREASING', `total ${payment.totalSat} is below ${books.lastTotalSat}, already used`, priceSat, due());
    const paidBefore = this.options.payee.paidSat(payment.channelId) ?? 0n;
    if (refuseShort && payment.totalSat > paidBefore && payment.totalSat - paidBefore + books.creditSat < priceSat) {
      return this.refuse('INSUFFICIENT_PAYMENT', `total ${payment.totalSat} adds ${payment.totalSat - paidBefore} sat to ${paidBefore}; ${due()} is due`, priceSat, due());
    }
    const { answer, replacedSat } = await submitPaymentForCredit(this.options.payee, payment);
    if (answer.type === 'error') return this.refuse(answer.code, answer.message, priceSat, due());
    if (answer.type !== 'payment-ack') return this.refuse('INTERNAL_ERROR', `unexpected ${answer.type}`, priceSat, due());
    // Stored. Count only what this payment added over the total it replaced, as the payee read
    // it when it stored this payment: `paidBefore` was read before the await, and a payment
    // landing meanwhile on another carrier (the channel's WebSocket, another Paywall) would be
    // counted twice. A payee that does not say falls back to `paidBefore`.
    const replaced = replacedSat ?? paidBefore;
    const added = payment.totalSat > replaced ? payment.totalSat - replaced : 0n;
    // A total the payee already held (sent on another carrier, perhaps sniffed there) buys
    // nothing here: it would spend this paywall's credit for whoever replays it. Its own last
    // total was refused above as a replay.
    if (added === 0n) return this.refuse('PAYMENT_REPLAYED', `total ${payment.totalSat} was already paid to the payee; sign a higher total`, priceSat, due());
    books.lastTotalSat = payment.totalSat;
    books.creditSat += added;
    if (books.creditSat < priceSat) {
      return this.refuse('INSUFFICIENT_PAYMENT', `payment stored as credit (${books.creditSat} sat); this request costs ${priceSat}`, priceSat, due());
    }
    books.creditSat -= priceSat;
    books.chargedSat += priceSat;
    return { ok: true, channelId: payment.channelId, totalSat: payment.totalSat, creditSat: books.creditSat };
  }

  private booksOf(channelId: string): Books {
    let b = this.books.get(channelId);
    if (!b) this.books.set(channelId, (b = { lastTotalSat: 0n, creditSat: 0n, chargedSat: 0n, queue: Promise.resolve() }));
    return b;
  }

  private refuse(code: PaymentRequiredBody['code'], message: string, priceSat: bigint, dueSat: bigint): Admission & { ok: false } {
    return {
      ok: false,
      body: {
        code,
        message,
        priceSat: Number(priceSat),
        dueSat: Number(dueSat),
        channelUrl: this.options.channelUrl,
        network: this.options.network,
        header: 'Paychan-Payment: channel=<txid:vout>, total=<sat>, sig=<128 hex>',
      },
    };
  }
}
