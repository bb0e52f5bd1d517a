/**
 * What both sides agree a channel is, and what follows from it (scripts, ids). Built once from
 * validated terms; everything downstream trusts it.
 */
import { toHex } from './bytes.js';
import type { FundingLock } from './variants/variant.js';
import type { NetworkName } from './network.js';
import { variantOf, type VariantName } from './variants/index.js';

export interface ChannelTerms {
  readonly variant: VariantName;
  readonly network: NetworkName;
  /** K1, 33-byte compressed. */
  readonly payerPubkey: Uint8Array;
  /** K2, 33-byte compressed; fresh for every channel. */
  readonly payeePubkey: Uint8Array;
  readonly capacitySat: bigint;
  /** Block height from which the payer can refund (T2's nLockTime, or v2's CLTV height). */
  readonly expiryHeight: number;
  /** Where the payer's change (in payments) and refund go. */
  readonly payerScript: Uint8Array;
}

export interface FundingOutpoint {
  readonly txid: string;
  readonly vout: number;
}

export interface Channel extends ChannelTerms {
  readonly funding: FundingOutpoint;
  /** `txid:vout` of the funding output. */
  readonly id: string;
  readonly witnessScript: Uint8Array;
  readonly fundingScript: Uint8Array;
}

export function channelId(funding: FundingOutpoint): string {
  return `${funding.txid}:${funding.vout}`;
}

/**
 * The funding lock of `terms`, by its variant.
 * @throws RangeError if the terms cannot make one (e.g. an expiry out of locktime range).
 */
export function fundingScriptOf(terms: ChannelTerms): FundingLock {
  return variantOf(terms.variant).fundingLock(terms);
}

export function makeChannel(terms: ChannelTerms, funding: FundingOutpoint): Channel {
  return { ...terms, ...fundingScriptOf(terms), funding, id: channelId(funding) };
}

/** A short human label for logs. */
export function describeChannel(channel: Channel): string {
  return `${channel.variant} ${channel.id} capacity=${channel.capacitySat} expiry=${channel.expiryHeight} payer=${toHex(channel.payerPubkey).slice(0, 12)}…`;
}
