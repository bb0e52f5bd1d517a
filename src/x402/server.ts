/**
 * The seller's side of the `paychan` x402 scheme: a {@link PaychanServerScheme} registered into
 * the official `x402ResourceServer` (what `paymentMiddleware` of `@x402/express` and
 * `@x402/hono` run), and a {@link PaychanFacilitator} the same resource server uses as its
 * facilitator, in process: the payee is its own facilitator and nothing leaves the machine.
 *
 * Both sit on the project's payee and {@link Paywall}: verification submits the payment through
 * the paywall's per-channel books (`Paywall.admitPayment`, the path of the `Paychan-Payment`
 * header), which has the payee verify and durably store it before the request is served.
 * Settlement moves nothing on chain (the channel closes later, with every payment in it): it
 * confirms the paywall admitted the payment and answers with the channel id as the
 * transaction reference.
 *
 * The payment flow is x402's `authorization`: verify before the handler, settle after it. A
 * handler that fails (the SDK cancels the verified payment) does not pay for its request: the
 * price goes back to the channel as credit, which the payer's next request uses.
 */
import type { FacilitatorClient } from '@x402/core/server';
import type {
  AssetAmount,
  Network,
  PaymentFlowConfig,
  PaymentPayload,
  PaymentRequirements,
  Price,
  SchemeNetworkFacilitator,
  SchemeNetworkServer,
  SchemeServerHooks,
  SettleResponse,
  SupportedResponse,
  VerifiedPaymentCanceledContext,
  VerifyResponse,
} from '@x402/core/types';
import { caip2Of, type Caip2Id } from '../protocol/caip2.js';
import type { NetworkName } from '../protocol/network.js';
import type { PayeePolicy } from '../protocol/policy.js';
import type { PayeeState } from '../protocol/payee-machine.js';
import type { Paywall } from '../transport/paywall.js';
import { channelTermsOf, checkPayload, PAYCHAN_SCHEME, reasonOf, satAsset, type ChannelTerms, type X402Reason } from './paychan-scheme.js';

/** What the x402 side reads from the payee: its channels (the narrow part of PayeeService). */
export interface PayeeChannels {
  /** A channel by funding outpoint (or tempId, which the x402 side never passes on as a channel). */
  channel(id: string): PayeeState | undefined;
}

export interface PaychanX402Options {
  /** The payee's books for paid HTTP requests; shared with any `Paychan-Payment` routes. */
  readonly paywall: Paywall;
  readonly payee: PayeeChannels;
  /** Where payers open channels with this payee (`PayeeServer.wsUrl`): the requirements' `payTo`. */
  readonly channelUrl: string;
  /** The payee's policy: its network and the channel terms a payer must meet. */
  readonly policy: Pick<PayeePolicy, 'network' | 'variants' | 'minCapacitySat' | 'maxCapacitySat' | 'minExpiryBlocks' | 'maxExpiryBlocks'>;
}

/** The scheme's two seller-side halves and the network id to register them for. */
export interface PaychanX402 {
  readonly network: Caip2Id;
  readonly server: PaychanServerScheme;
  readonly facilitator: PaychanFacilitator;
}

/**
 * The seller's setup:
 * `const p = paychanX402({...}); new x402ResourceServer(p.facilitator).register(p.network, p.server)`.
 * @throws RangeError if `channelUrl` is not a ws:// or wss:// URL.
 */
export function paychanX402(options: PaychanX402Options): PaychanX402 {
  if (!/^wss?:\/\//.test(options.channelUrl)) throw new RangeError('channelUrl must be a ws:// or wss:// URL');
  return { network: caip2Of(options.policy.network), server: new PaychanServerScheme(options), facilitator: new PaychanFacilitator(options) };
}

const AUTHORIZATION_ONLY: Readonly<Record<string, PaymentFlowConfig>> = Object.freeze({ default: { supported: ['authorization'], default: 'authorization' } });

/** Builds this scheme's requirements; registered into `x402ResourceServer` for the payee's network. */
export class PaychanServerScheme implements SchemeNetworkServer {
  readonly scheme = PAYCHAN_SCHEME;
  /** No on-wire asset transfer method: a channel payment is the only one. */
  readonly defaultAssetTransferMethod = 'default';
  readonly paymentFlows = AUTHORIZATION_ONLY;
  readonly schemeHooks: SchemeServerHooks;
  private readonly network: NetworkName;
  private readonly asset: string;
  private readonly terms: ChannelTerms;

  constructor(private readonly options: PaychanX402Options) {
    const p = options.policy;
    this.network = p.network;
    this.asset = satAsset(p.network);
    this.terms = channelTermsOf(p);
    this.schemeHooks = { onVerifiedPaymentCanceled: (ctx) => this.refundCanceled(ctx) };
  }

  /**
   * Prices are satoshis: `7`, `"7"`, `"7 sat"`, `"7 sats"`, or `{ amount: "7", asset }` with
   * this network's asset. Dollar prices are refused (no exchange rate here).
   * @throws RangeError for anything else.
   */
  parsePrice(price: Price, network: Network): Promise<AssetAmount> {
    if (network !== caip2Of(this.network)) return Promise.reject(new RangeError(`this payee is on ${caip2Of(this.network)}, not ${network}`));
    let amount: string;
    if (typeof price === 'object') {
      if (price.asset !== this.asset) return Promise.reject(new RangeError(`asset ${price.asset} is not ${this.asset} (satoshis)`));
      amount = price.amount;
    } else {
      const m = /^\s*([0-9]+)\s*(?:sats?)?\s*$/.exec(String(price));
      if (!m) return Promise.reject(new RangeError(`price ${String(price)} is not a number of satoshis (e.g. 7 or "7 sat")`));
      amount = m[1]!;
    }
    if (!/^[1-9][0-9]{0,15}$/.test(amount)) return Promise.reject(new RangeError(`price ${amount} is not a positive number of satoshis`));
    return Promise.resolve({ amount, asset: this.asset });
  }

  /** Adds the channel terms and names this payee's channel endpoint as `payTo`. */
  enhancePaymentRequirements(requirements: PaymentRequirements): Promise<PaymentRequirements> {
    return Promise.resolve({ ...requirements, payTo: this.options.channelUrl, extra: { ...requirements.extra, ...this.terms, variants: [...this.terms.variants] } });
  }

  /** A verified payment whose request was not served: its price becomes the channel's credit. */
  private refundCanceled(ctx: VerifiedPaymentCanceledContext): Promise<void> {
    const channelId = ctx.paymentPayload.payload.channelId;
    if (typeof channelId === 'string' && this.options.paywall.account(channelId)) {
      const priceSat = BigInt(ctx.requirements.amount);
      this.options.paywall.settle(channelId, priceSat, 0n);
    }
    return Promise.resolve();
  }
}

/**
 * Verifies and settles `paychan` payments on this payee. It is both a `SchemeNetworkFacilitator`
 * (to register into an `x402Facilitator`) and a `FacilitatorClient` the resource server calls
 * in process.
 */
export class PaychanFacilitator implements SchemeNetworkFacilitator, FacilitatorClient {
  readonly scheme = PAYCHAN_SCHEME;
  readonly caipFamily = 'bip122:*';
  private readonly network: NetworkName;
  private readonly caip2: Caip2Id;

  constructor(private readonly options: PaychanX402Options) {
    this.network = options.policy.network;
    this.caip2 = caip2Of(this.network);
  }

  getExtra(): undefined {
    return undefined;
  }

  /** No signer: nothing is broadcast at settlement. */
  getSigners(): string[] {
    return [];
  }

  getSupported(): Promise<SupportedResponse> {
    return Promise.resolve({ kinds: [{ x402Version: 2, scheme: PAYCHAN_SCHEME, network: this.caip2 }], extensions: [], signers: {} });
  }

  /**
   * docs/x402.md, verification: the payload answers the requirement, names an open channel of
   * this payee, raises its total by at least the price (less the channel's credit), and the
   * payee verified and durably stored it. A refusal stores nothing.
   */
  async verify(payload: PaymentPayload, requirements: PaymentRequirements): Promise<VerifyResponse> {
    const checked = checkPayload(payload, requirements, this.network);
    if (!checked.ok) return invalid(checked.reason, checked.message);
    const { payment, priceSat } = checked;
    const id = payment.channelId;
    const state = this.options.payee.channel(id);
    // The id must be the funding outpoint: payee.channel() also answers to tempIds.
    if (!state || !('channel' in state) || state.channel.id !== id) return invalid(reasonOf('UNKNOWN_CHANNEL'), `no channel ${id}`);
    // refuseShort: an x402 payload buys one request or nothing (a Paychan-Payment header that
    // adds too little is kept as credit instead).
    const admission = await this.options.paywall.admitPayment(payment, priceSat, true);
    if (!admission.ok) return invalid(reasonOf(admission.body.code), admission.body.message);
    return { isValid: true, payer: id, extra: { channelId: id, totalSat: admission.totalSat.toString(), creditSat: admission.creditSat.toString() } };
  }

  /**
   * Nothing moves on chain: the payment was stored at verification and the channel's close
   * carries it. Succeeds for a payload the paywall admitted, with the channel id as `transaction`
   * and the channel's total and credit in `extra`.
   */
  settle(payload: PaymentPayload, requirements: PaymentRequirements): Promise<SettleResponse> {
    const failed = (reason: X402Reason, message: string): Promise<SettleResponse> =>
      Promise.resolve({ success: false, errorReason: reason, errorMessage: message, transaction: '', network: requirements.network });
    const checked = checkPayload(payload, requirements, this.network);
    if (!checked.ok) return failed(checked.reason, checked.message);
    const id = checked.payment.channelId;
    const account = this.options.paywall.account(id);
    if (!account || account.lastTotalSat < checked.payment.totalSat) return failed('invalid_paychan_not_verified', `total ${checked.payment.totalSat} on ${id} was not verified`);
    return Promise.resolve({
      success: true,
      transaction: id,
      network: requirements.network,
      payer: id,
      amount: requirements.amount,
      extra: { channelId: id, totalSat: account.lastTotalSat.toString(), creditSat: account.creditSat.toString() },
    });
  }
}

function invalid(reason: X402Reason, message: string): VerifyResponse {
  return { isValid: false, invalidReason: reason, invalidMessage: message };
}
