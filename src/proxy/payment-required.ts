/**
 * One 402 answer in the three dialects a payer may speak:
 * - paychan's own: the JSON body (PaymentRequiredBody, what the paying fetch reads);
 * - x402 v2: the `PAYMENT-REQUIRED` header, base64 of a JSON PaymentRequired;
 * - `WWW-Authenticate: Paychan ...` (RFC 9110 challenge syntax) for generic HTTP clients.
 *
 * The x402 requirements, and the payments of `PAYMENT-SIGNATURE` headers, come from paychan's
 * x402 scheme (src/x402/proxy-binding.ts, spec docs/x402.md) through {@link ProxyX402}: the
 * proxy's one seam for it. Without it (a library user who passes none) the 402 still carries a
 * minimal local encoding, and only paychan's own header pays.
 */
import { caip2Of } from '../protocol/caip2.js';
import type { MessageOf } from '../protocol/messages.js';
import type { Admission, PaymentRequiredBody } from '../transport/paywall.js';

export const PAYMENT_REQUIRED_HEADER = 'payment-required';

/** What an x402 encoder is told about one refused request. */
export interface PaymentOffer {
  readonly body: PaymentRequiredBody;
  /** The absolute URL the payer asked for. */
  readonly resourceUrl: string;
}

/** x402 v2 `PaymentRequirements` (the fields the SDK's schema requires). */
export interface X402Requirements {
  readonly scheme: string;
  readonly network: string;
  readonly amount: string;
  readonly asset: string;
  readonly payTo: string;
  readonly maxTimeoutSeconds: number;
  readonly extra?: Record<string, unknown>;
}

/** Turns an offer into x402 v2 requirements (one entry of `accepts`). */
export type X402Encoder = (offer: PaymentOffer) => X402Requirements;

/** A `PAYMENT-SIGNATURE` header read against the requirement of its request. */
export type X402PaymentRead =
  | { readonly ok: true; readonly payment: MessageOf<'payment'> }
  | { readonly ok: false; readonly code: PaymentRequiredBody['code']; readonly message: string };

/** paychan's x402 scheme as the proxy uses it (implemented by src/x402/proxy-binding.ts). */
export interface ProxyX402 {
  /** The requirements of a 402. */
  readonly encode: X402Encoder;
  /** The payment in a `PAYMENT-SIGNATURE` header for a request priced `priceSat`, or why not (nothing is stored then). */
  readPayment(header: string, priceSat: bigint): X402PaymentRead;
  /** The `PAYMENT-RESPONSE` header of an admitted payment. */
  paymentResponse(admission: Admission & { ok: true }): string;
}

export const PAYMENT_SIGNATURE_HEADER = 'payment-signature';
export const PAYMENT_RESPONSE_HEADER = 'payment-response';

/**
 * The local encoding: what is due, in satoshis, payable over the channel at `payTo`. x402 fixes
 * `amount` as a decimal string, and the scheme's `extra` keeps that form too (docs/x402.md):
 * x402 messages are a wire format of their own, unlike paychan's JSON numbers.
 */
export const localX402Encoder: X402Encoder = ({ body }) => ({
  scheme: 'paychan',
  network: caip2Of(body.network),
  amount: String(body.dueSat),
  asset: 'sat',
  payTo: body.channelUrl,
  maxTimeoutSeconds: 60,
  extra: { priceSat: String(body.priceSat), dueSat: String(body.dueSat), code: body.code, header: body.header },
});

/** The `PAYMENT-REQUIRED` header's value: base64 of the x402 v2 PaymentRequired JSON. */
export function x402Header(offer: PaymentOffer, encode: X402Encoder): string {
  const paymentRequired = {
    x402Version: 2,
    error: offer.body.message,
    resource: { url: offer.resourceUrl },
    accepts: [encode(offer)],
  };
  return Buffer.from(JSON.stringify(paymentRequired)).toString('base64');
}

/** `Paychan realm="paychan", channel_url="ws://…", network="regtest", price_sat="10", due_sat="10", code="PAYMENT_REQUIRED"` */
export function wwwAuthenticate(body: PaymentRequiredBody): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  return `Paychan realm="paychan", channel_url=${q(body.channelUrl)}, network=${q(body.network)}, price_sat=${q(String(body.priceSat))}, due_sat=${q(String(body.dueSat))}, code=${q(body.code)}`;
}

/** Every header of a 402 besides CORS: content type, x402 and WWW-Authenticate. */
export function paymentRequiredHeaders(offer: PaymentOffer, encode: X402Encoder): Record<string, string> {
  return {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    [PAYMENT_REQUIRED_HEADER]: x402Header(offer, encode),
    'www-authenticate': wwwAuthenticate(offer.body),
  };
}
