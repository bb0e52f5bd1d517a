/**
 * The payee's close of one or many channels in one transaction.
 *
 * Each payer's signature (SIGHASH_SINGLE|ANYONECANPAY) commits to its input and to the output
 * with the same index only, so a batch puts channels with change first — input i spends channel
 * i's funding, output i is payer i's change exactly as signed — then the channels paid in full
 * (SIGHASH_NONE|ANYONECANPAY: no output of theirs), then one output for the payee with the sum
 * of what was paid, minus the one fee. The payee signs every input SIGHASH_ALL, so it alone can
 * replace the batch with a higher fee (BIP125).
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { Transaction } from 'bitcoinjs-lib';
import { txidToHash } from './bytes.js';
import type { Channel } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { SIGHASH_ALL } from './sighash.js';
import { PAYMENT_LOCKTIME, SEQUENCE_LOCKTIME_RBF, TX_VERSION, feeForVsize, paymentChangeOutput, paymentHashType, sighashView } from './transactions.js';
import { variantOf } from './variants/index.js';

export interface CloseItem {
  readonly channel: Channel;
  /** The newest payment: total and the payer's 64-byte compact signature. */
  readonly totalSat: bigint;
  readonly signature: Uint8Array;
  /** The payee's private key for this channel. */
  readonly payeePrivateKey: Uint8Array;
}

export interface SignedBatchClose {
  readonly txHex: string;
  readonly txid: string;
  readonly feeSat: bigint;
  readonly vsize: number;
  readonly feeRateSatPerVb: number;
  /** The payee's one output: Σ totals − fee. */
  readonly payeeValueSat: bigint;
  /** Channel ids in input order. */
  readonly channelIds: readonly string[];
}

function build(ordered: readonly CloseItem[], payeeScript: Uint8Array, payeeValueSat: bigint): Transaction {
  const tx = new Transaction();
  tx.version = TX_VERSION;
  tx.locktime = PAYMENT_LOCKTIME;
  for (const item of ordered) tx.addInput(txidToHash(item.channel.funding.txid), item.channel.funding.vout, SEQUENCE_LOCKTIME_RBF);
  for (const item of ordered) {
    const change = paymentChangeOutput(item.channel, item.totalSat);
    if (change) tx.addOutput(change.script, change.valueSat);
  }
  tx.addOutput(payeeScript, payeeValueSat);
  return tx;
}

/** Channels with change first, so that input i and output i pair up for SIGHASH_SINGLE. */
function inputOrder(items: readonly CloseItem[]): CloseItem[] {
  return [...items.filter((i) => i.totalSat < i.channel.capacitySat), ...items.filter((i) => i.totalSat === i.channel.capacitySat)];
}

/** The worst-case vsize the fee is computed from, with placeholder signatures. */
function sizedVsize(ordered: readonly CloseItem[], payeeScript: Uint8Array, paidSat: bigint): number {
  const sized = build(ordered, payeeScript, paidSat);
  ordered.forEach((item, i) => sized.setWitness(i, variantOf(item.channel.variant).sizes.cooperativeWitness(item.channel)));
  return sized.virtualSize();
}

/** The vsize the close of `items` is charged for (what {@link signBatchClose} would report), without signing. */
export function batchCloseVsize(items: readonly CloseItem[], payeeScript: Uint8Array): number {
  const ordered = inputOrder(items);
  return sizedVsize(ordered, payeeScript, ordered.reduce((s, i) => s + i.totalSat, 0n));
}

/**
 * The vsize `item` adds to a batch close: its input with the cooperative witness, and its change
 * output if it has one (rounded up; the segwit marker is counted too, so it errs high).
 */
export function closeItemVsize(item: CloseItem, payeeScript: Uint8Array): number {
  const withItem = build([item], payeeScript, item.totalSat);
  withItem.setWitness(0, variantOf(item.channel.variant).sizes.cooperativeWitness(item.channel));
  const without = build([], payeeScript, item.totalSat);
  return Math.ceil((withItem.weight() - without.weight()) / 4);
}

/**
 * The items that pay for their place in a batch close at `feeRateSatPerVb`: each must pay the
 * payee more than the fee on the bytes it adds ({@link closeItemVsize}). Closing one that pays
 * less takes the difference out of the other channels' earnings (a payer could open many
 * channels, pay 1 sat on each, and have its refunds' fees paid by the payee): it is left to its
 * payer's refund instead.
 */
export function closeItemsWorthClosing<T extends CloseItem>(items: readonly T[], payeeScript: Uint8Array, feeRateSatPerVb: number): { worth: T[]; notWorth: T[] } {
  const worth: T[] = [];
  const notWorth: T[] = [];
  for (const item of items) (item.totalSat > feeForVsize(closeItemVsize(item, payeeScript), feeRateSatPerVb) ? worth : notWorth).push(item);
  return { worth, notWorth };
}

/**
 * The lowest whole fee rate at which a transaction of `vsize` replaces a conflicting one that
 * pays `conflictFeeSat` for `conflictVsize` (BIP125 rules 3, 4 and 6 as btcd and Bitcoin Core
 * apply them): a higher fee rate, and an absolute fee at least the conflict's plus
 * `incrementalSatPerVb` for its own size. Descendants of the conflict are not counted: if they
 * exist the node refuses, and says so.
 */
export function outbiddingFeeRate(conflictFeeSat: bigint, conflictVsize: number, vsize: number, incrementalSatPerVb = 1): number {
  const aboveRate = Math.floor(Number(conflictFeeSat) / conflictVsize) + 1;
  const aboveFee = Math.ceil((Number(conflictFeeSat) + incrementalSatPerVb * vsize) / vsize);
  return Math.max(aboveRate, aboveFee);
}

/**
 * Builds and signs the close of `items` at `feeRateSatPerVb`.
 * @throws RangeError for an empty batch, a channel listed twice, or a payee output that would be
 *   dust after the fee (the close costs more than it earns).
 */
export function signBatchClose(secp: Secp256k1, items: readonly CloseItem[], payeeScript: Uint8Array, feeRateSatPerVb: number): SignedBatchClose {
  if (items.length === 0) throw new RangeError('nothing to close');
  if (new Set(items.map((i) => i.channel.id)).size !== items.length) throw new RangeError('a channel is listed twice');
  const ordered = inputOrder(items);
  const paidSat = ordered.reduce((s, i) => s + i.totalSat, 0n);
  const feeSat = feeForVsize(sizedVsize(ordered, payeeScript, paidSat), feeRateSatPerVb);
  const payeeValueSat = paidSat - feeSat;
  const dust = dustThresholdSat(payeeScript);
  if (payeeValueSat < dust) throw new RangeError(`close uneconomic: paid ${paidSat} − fee ${feeSat} = ${payeeValueSat} < dust ${dust}`);
  const tx = build(ordered, payeeScript, payeeValueSat);
  const view = sighashView(tx);
  // Every input's coin: a variant whose sighash commits to all of them (BIP341) needs the list.
  const spent = ordered.map((item) => item.channel);
  ordered.forEach((item, i) => {
    // Channels of different variants may share a batch: each input is signed by its own.
    const spec = variantOf(item.channel.variant);
    const digest = spec.spendSighash(view, i, spent, SIGHASH_ALL);
    const payeeSig = spec.signatures.toWitness(spec.signatures.sign(secp, digest, item.payeePrivateKey), SIGHASH_ALL);
    const payerSig = spec.signatures.toWitness(item.signature, paymentHashType(item.channel, item.totalSat));
    tx.setWitness(i, spec.cooperativeWitness(payerSig, payeeSig, item.channel));
  });
  return { txHex: tx.toHex(), txid: tx.getId(), feeSat, vsize: tx.virtualSize(), feeRateSatPerVb, payeeValueSat, channelIds: ordered.map((i) => i.channel.id) };
}
