/**
 * The `paychan` x402 scheme's wire format and checks, shared by its server, facilitator and
 * client sides (docs/x402.md is the spec). Pure: no I/O, no SDK runtime, only its types.
 *
 * - A requirement names a payee by `payTo` (its channel WebSocket URL), prices in satoshis of
 *   the asset `<caip2>/slip44:0` (CAIP-19 native BTC, as x402's Bitcoin `batch-settlement`
 *   binding), and carries in `extra` what a payer needs to open a channel there.
 * - A payload is one channel payment: the channel id, the new cumulative total, the payer's
 *   signature, parsed through paychan's own wire schema (the same checks as a WebSocket
 *   payment or a `Paychan-Payment` header).
 * - Refusals are x402 reasons: `invalid_paychan_` + paychan's error code in lower case.
 */
import type { PaymentPayload, PaymentRequirements } from '@x402/core/types';
import { toHex } from '../protocol/bytes.js';
import { caip2Of, networkOfCaip2 } from '../protocol/caip2.js';
import { ProtocolError, type ProtocolErrorCode } from '../protocol/errors.js';
import { decodeMessage, type MessageOf } from '../protocol/messages.js';
import type { NetworkName } from '../protocol/network.js';
import type { PayeePolicy } from '../protocol/policy.js';
import { isVariantName, type VariantName as Variant } from '../protocol/variants/index.js';

/** The scheme's name in requirements and payloads. */
export const PAYCHAN_SCHEME = 'paychan';

/** Refusal reasons that are not one of paychan's protocol codes. */
export type X402Reason =
  | 'unsupported_scheme'
  | 'network_mismatch'
  | 'unsupported_network'
  | 'invalid_x402_version'
  | 'invalid_paychan_requirements_mismatch'
  | 'invalid_paychan_not_verified'
  | `invalid_paychan_${Lowercase<ProtocolErrorCode>}`
  | 'invalid_paychan_payment_required'
  | 'invalid_paychan_insufficient_payment';

/** @returns the x402 reason for a paychan error code (the 402 body's `code` of docs/http-402.md). */
export function reasonOf(code: ProtocolErrorCode | 'PAYMENT_REQUIRED' | 'INSUFFICIENT_PAYMENT'): X402Reason {
  return `invalid_paychan_${code.toLowerCase() as Lowercase<typeof code>}`;
}

/** @returns the paychan code inside an x402 reason of this scheme, or undefined for other reasons. */
export function codeOfReason(reason: string | undefined): string | undefined {
  return reason?.startsWith('invalid_paychan_') ? reason.slice('invalid_paychan_'.length).toUpperCase() : undefined;
}

/** The asset id of satoshis on `network` (CAIP-19). */
export function satAsset(network: NetworkName): string {
  return `${caip2Of(network)}/slip44:0`;
}

/** What a payee offers for opening a channel: the requirement's `extra`. Sats as decimal strings. */
export interface ChannelTerms {
  readonly variants: readonly Variant[];
  readonly minCapacitySat: string;
  readonly maxCapacitySat: string;
  /** Blocks from the current tip to the channel's expiry the payee accepts. */
  readonly minExpiryBlocks: number;
  readonly maxExpiryBlocks: number;
}

/** The terms a payee's policy offers, as the requirements' `extra` carries them. */
export function channelTermsOf(policy: Pick<PayeePolicy, 'variants' | 'minCapacitySat' | 'maxCapacitySat' | 'minExpiryBlocks' | 'maxExpiryBlocks'>): ChannelTerms {
  return Object.freeze({
    variants: [...policy.variants],
    minCapacitySat: policy.minCapacitySat.toString(),
    maxCapacitySat: policy.maxCapacitySat.toString(),
    minExpiryBlocks: policy.minExpiryBlocks,
    maxExpiryBlocks: policy.maxExpiryBlocks,
  });
}

/** A requirement of this scheme, read and checked: what a payer acts on. */
export interface ChannelOffer {
  readonly network: NetworkName;
  /** The payee's channel WebSocket URL (`payTo`). */
  readonly channelUrl: string;
  readonly priceSat: bigint;
  readonly variants: readonly Variant[];
  readonly minCapacitySat: bigint;
  readonly maxCapacitySat: bigint;
  readonly minExpiryBlocks: number;
  readonly maxExpiryBlocks: number;
}

const SATS = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Reads a requirement of this scheme.
 * @throws RangeError naming the first field that is not as docs/x402.md says.
 */
export function readOffer(requirements: PaymentRequirements): ChannelOffer {
  if (requirements.scheme !== PAYCHAN_SCHEME) throw new RangeError(`scheme ${requirements.scheme} is not ${PAYCHAN_SCHEME}`);
  const network = networkOfCaip2(requirements.network);
  if (!network) throw new RangeError(`unknown network ${requirements.network}`);
  if (requirements.asset !== satAsset(network)) throw new RangeError(`asset ${requirements.asset} is not ${satAsset(network)}`);
  if (!SATS.test(requirements.amount) || requirements.amount === '0') throw new RangeError(`amount ${requirements.amount} is not a positive number of satoshis`);
  if (!/^wss?:\/\//.test(requirements.payTo)) throw new RangeError('payTo is not a ws:// or wss:// URL');
  const extra = requirements.extra ?? {};
  const variants = extra.variants;
  if (!Array.isArray(variants) || variants.length === 0 || !variants.every((x) => typeof x === 'string' && isVariantName(x))) throw new RangeError('extra.variants');
  const sats = (key: string): bigint => {
    const value = extra[key];
    if (typeof value !== 'string' || !SATS.test(value)) throw new RangeError(`extra.${key}`);
    return BigInt(value);
  };
  const blocks = (key: string): number => {
    const value = extra[key];
    if (!Number.isInteger(value) || (value as number) < 1) throw new RangeError(`extra.${key}`);
    return value as number;
  };
  return {
    network,
    channelUrl: requirements.payTo,
    priceSat: BigInt(requirements.amount),
    variants: variants as Variant[],
    minCapacitySat: sats('minCapacitySat'),
    maxCapacitySat: sats('maxCapacitySat'),
    minExpiryBlocks: blocks('minExpiryBlocks'),
    maxExpiryBlocks: blocks('maxExpiryBlocks'),
  };
}

/** The scheme's `payload`: one channel payment. */
export interface PaychanPayload {
  /** Funding outpoint `txid:vout`. */
  readonly channelId: string;
  /** The new cumulative total paid on the channel, satoshis, decimal. */
  readonly totalSat: string;
  /** The payer's 64-byte compact signature of the payment transaction, lowercase hex. */
  readonly signature: string;
  [key: string]: unknown;
}

/** A payment as this scheme's payload. */
export function encodePayload(payment: MessageOf<'payment'>): PaychanPayload {
  return { channelId: payment.channelId, totalSat: payment.totalSat.toString(), signature: toHex(payment.signature) };
}

/**
 * Reads a payload into a payment through paychan's wire schema (no extra fields, canonical
 * numbers, lowercase hex).
 * @throws ProtocolError MALFORMED_MESSAGE.
 */
export function decodePayload(payload: Record<string, unknown>): MessageOf<'payment'> {
  const keys = Object.keys(payload);
  if (keys.length !== 3 || typeof payload.channelId !== 'string' || typeof payload.totalSat !== 'string' || typeof payload.signature !== 'string') {
    throw new ProtocolError('MALFORMED_MESSAGE', 'a paychan payload is exactly {channelId, totalSat, signature}, all strings');
  }
  const message = decodeMessage(JSON.stringify({ v: 1, type: 'payment', channelId: payload.channelId, totalSat: payload.totalSat, signature: payload.signature }));
  if (message.type !== 'payment') throw new ProtocolError('MALFORMED_MESSAGE', 'not a payment');
  return message;
}

/** A payload checked against the requirement it claims to answer. */
export type CheckedPayment =
  | { readonly ok: true; readonly payment: MessageOf<'payment'>; readonly priceSat: bigint }
  | { readonly ok: false; readonly reason: X402Reason; readonly message: string };

/**
 * The facilitator's checks before the payee sees a payment (docs/x402.md, verification 1–4):
 * version, scheme, network, the accepted terms equal to the requirement, a well-formed payload.
 * Treats both arguments as untrusted.
 */
export function checkPayload(payload: PaymentPayload, requirements: PaymentRequirements, network: NetworkName): CheckedPayment {
  const refuse = (reason: X402Reason, message: string): CheckedPayment => ({ ok: false, reason, message });
  if (payload.x402Version !== 2) return refuse('invalid_x402_version', `x402 version ${String(payload.x402Version)}; this scheme is v2 only`);
  const accepted = payload.accepted;
  if (requirements.scheme !== PAYCHAN_SCHEME || accepted?.scheme !== PAYCHAN_SCHEME) return refuse('unsupported_scheme', `scheme must be ${PAYCHAN_SCHEME}`);
  if (requirements.network !== caip2Of(network)) return refuse('unsupported_network', `this payee is on ${caip2Of(network)}, not ${requirements.network}`);
  if (accepted.network !== requirements.network) return refuse('network_mismatch', `payload for ${accepted.network}, requirement for ${requirements.network}`);
  for (const field of ['amount', 'asset', 'payTo', 'maxTimeoutSeconds'] as const) {
    if (accepted[field] !== requirements[field]) return refuse('invalid_paychan_requirements_mismatch', `accepted.${field} differs from the requirement`);
  }
  let priceSat: bigint;
  try {
    priceSat = readOffer(requirements).priceSat;
  } catch (err) {
    return refuse('invalid_paychan_requirements_mismatch', `the requirement is not a paychan requirement: ${(err as Error).message}`);
  }
  let payment: MessageOf<'payment'>;
  try {
    payment = decodePayload(payload.payload ?? {});
  } catch (err) {
    return refuse(reasonOf('MALFORMED_MESSAGE'), (err as Error).message);
  }
  return { ok: true, payment, priceSat };
}
