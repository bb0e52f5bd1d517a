/**
 * What both sides agree a channel is, and what follows from it (scripts, ids). Built once from
 * validated terms; everything downstream trusts it.
 */
import { toHex } from './bytes.js';
import type { NetworkName } from './network.js';
import { fundingWitnessScript, p2wshOutputScript, type Variant } from './scripts.js';

export interface ChannelTerms {
  readonly variant: Variant;
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

export function fundingScriptOf(terms: ChannelTerms): { witnessScript: Uint8Array; fundingScript: Uint8Array } {
  const witnessScript = fundingWitnessScript(terms.variant, terms.payerPubkey, terms.payeePubkey, terms.expiryHeight);
  return { witnessScript, fundingScript: p2wshOutputScript(witnessScript) };
}

export function makeChannel(terms: ChannelTerms, funding: FundingOutpoint): Channel {
  return { ...terms, ...fundingScriptOf(terms), funding, id: channelId(funding) };
}

/** A short human label for logs. */
export function describeChannel(channel: Channel): string {
  return `${channel.variant} ${channel.id} capacity=${channel.capacitySat} expiry=${channel.expiryHeight} payer=${toHex(channel.payerPubkey).slice(0, 12)}…`;
}
