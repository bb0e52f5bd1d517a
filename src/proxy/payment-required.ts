/**
 * One 402 answer in the three dialects a payer may speak:
 * - paychan's own: the JSON body (PaymentRequiredBody, what the paying fetch reads);
 * - x402 v2: the `PAYMENT-REQUIRED` header, base64 of a JSON PaymentRequired;
 * - `WWW-Authenticate: Paychan ...` (RFC 9110 challenge syntax) for generic HTTP clients.
 *
 * The x402 requirements come from an {@link X402Encoder}. The one here is a minimal local
 * encoding (scheme `paychan`, CAIP-2 `bip122:` network id, the channel URL and amounts in
 * `extra`); paychan's x402 scheme (src/x402, its own spec) provides the real encoder, passed to
 * the proxy as `x402Encoder`: that option is the one seam where it plugs in.
 */
import type { NetworkName } from '../protocol/network.js';
import type { PaymentRequiredBody } from '../transport/paywall.js';

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

/**
 * CAIP-2 ids of Bitcoin networks: `bip122:` + the first 32 hex digits of the genesis block hash
 * (as block explorers print it). Signet is the default signet.
 */
export const BIP122_NETWORKS: Readonly<Record<NetworkName, string>> = {
  mainnet: 'bip122:000000000019d6689c085ae165831e93',
  testnet: 'bip122:000000000933ea01ad0ee984209779ba',
  signet: 'bip122:00000008819873e925422c1ff0f99f7c',
  regtest: 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328',
};

/** The local encoding: what is due, in satoshis, payable over the channel at `payTo`. */
export const localX402Encoder: X402Encoder = ({ body }) => ({
  scheme: 'paychan',
  network: BIP122_NETWORKS[body.network],
  amount: body.dueSat,
  asset: 'sat',
  payTo: body.channelUrl,
  maxTimeoutSeconds: 60,
  extra: { priceSat: body.priceSat, dueSat: body.dueSat, code: body.code, header: body.header },
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
  return `Paychan realm="paychan", channel_url=${q(body.channelUrl)}, network=${q(body.network)}, price_sat=${q(body.priceSat)}, due_sat=${q(body.dueSat)}, code=${q(body.code)}`;
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
