/**
 * paychan's x402 scheme for `paychan proxy` (src/proxy): the requirements of the proxy's 402s
 * and the payments of `PAYMENT-SIGNATURE` headers. The proxy is no Express or Hono app, so the
 * SDK's middleware does not run there; this builds the same requirement `PaychanServerScheme`
 * does through the SDK, and checks a payload with the same `checkPayload` as
 * `PaychanFacilitator.verify`. The admission itself stays the proxy's, through the paywall's
 * books (`Paywall.admitPayment` with `refuseShort`: an x402 payload buys its request or
 * nothing), exactly as the facilitator does.
 */
import { decodePaymentSignatureHeader, encodePaymentResponseHeader } from '@x402/core/http';
import type { PaymentRequirements } from '@x402/core/types';
import { caip2Of } from '../protocol/caip2.js';
import type { NetworkName } from '../protocol/network.js';
import type { PayeePolicy } from '../protocol/policy.js';
import type { ProxyX402, X402PaymentRead } from '../proxy/payment-required.js';
import { channelTermsOf, checkPayload, PAYCHAN_SCHEME, satAsset } from './paychan-scheme.js';

export interface ProxyX402Options {
  /** The payee's policy: its network and the channel terms a payer must meet. */
  readonly policy: Pick<PayeePolicy, 'network' | 'variants' | 'minCapacitySat' | 'maxCapacitySat' | 'minExpiryBlocks' | 'maxExpiryBlocks'>;
  /** Where payers open channels with this payee: the requirements' `payTo`. */
  readonly channelUrl: string;
  /** How long a payer may take to answer a 402; default 300 s, as the README's seller. */
  readonly maxTimeoutSeconds?: number;
}

/** @throws RangeError if `channelUrl` is not a ws:// or wss:// URL. */
export function proxyX402(options: ProxyX402Options): ProxyX402 {
  if (!/^wss?:\/\//.test(options.channelUrl)) throw new RangeError('channelUrl must be a ws:// or wss:// URL');
  const network: NetworkName = options.policy.network;
  const caip2 = caip2Of(network);
  const terms = channelTermsOf(options.policy);
  const requirements = (priceSat: bigint): PaymentRequirements => ({
    scheme: PAYCHAN_SCHEME,
    network: caip2,
    amount: priceSat.toString(),
    asset: satAsset(network),
    payTo: options.channelUrl,
    maxTimeoutSeconds: options.maxTimeoutSeconds ?? 300,
    extra: { ...terms, variants: [...terms.variants] },
  });
  return {
    // The price of the request, not what is due after credit: x402 payers pay per request.
    encode: ({ body }) => requirements(BigInt(body.priceSat)),
    readPayment(header: string, priceSat: bigint): X402PaymentRead {
      let payload;
      try {
        payload = decodePaymentSignatureHeader(header);
      } catch (err) {
        return { ok: false, code: 'MALFORMED_MESSAGE', message: `PAYMENT-SIGNATURE is not base64 JSON of an x402 payload: ${(err as Error).message}` };
      }
      const checked = checkPayload(payload, requirements(priceSat), network);
      // Every reason checkPayload gives (version, scheme, network, terms, the payload's form)
      // says the payload is not one for this request; the x402 reason leads the message.
      if (!checked.ok) return { ok: false, code: 'MALFORMED_MESSAGE', message: `${checked.reason}: ${checked.message}` };
      return { ok: true, payment: checked.payment };
    },
    paymentResponse: (admission) =>
      encodePaymentResponseHeader({
        success: true,
        transaction: admission.channelId,
        network: caip2,
        payer: admission.channelId,
        extra: { channelId: admission.channelId, totalSat: admission.totalSat.toString(), creditSat: admission.creditSat.toString() },
      }),
  };
}
