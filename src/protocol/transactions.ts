/**
 * The skeleton every spend of a channel's funding output shares, whatever its variant: the
 * payment (T3) the payer signs, the refund (refund.ts) and the close (batch-close.ts) are built
 * on it, with the witnesses and sighashes of the channel's variant (./variants/). Funding (T1)
 * itself is an ordinary wallet transaction with one output to the variant's lock (see src/wallet).
 *
 * All are version 2 with nSequence 0xfffffffd: locktime-enabled and BIP125-replaceable, so every
 * party can re-broadcast its own spend with a higher fee (the seed's 思考).
 */
import { Transaction } from 'bitcoinjs-lib';
import { hashToTxid, txidToHash } from './bytes.js';
import type { Channel, FundingOutpoint } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { SIGHASH_NONE_ACP, SIGHASH_SINGLE_ACP, type SighashOutput, type SighashTx } from './sighash.js';
import { ecdsa, encodeDerSignature } from './variants/ecdsa.js';

export const TX_VERSION = 2;
/** Enables nLockTime and signals BIP125 replaceability. */
export const SEQUENCE_LOCKTIME_RBF = 0xfffffffd;
/** Payments and closes are final at once. */
export const PAYMENT_LOCKTIME = 0;
/**
 * Largest ECDSA signature in a witness (see ./variants/ecdsa.ts). Spilman sizes its fees through
 * its variant's spec; duplex (2-of-2 ECDSA) reads it here.
 */
export const MAX_SIGNATURE_BYTES = ecdsa.maxWitnessSignatureBytes;

export interface TxOutputSpec {
  readonly script: Uint8Array;
  readonly valueSat: bigint;
}

/** An unsigned spend of a channel's funding outpoint (any variant: Spilman or duplex). */
export function spendFunding(channel: { readonly funding: FundingOutpoint }, locktime: number, outputs: readonly TxOutputSpec[]): Transaction {
  const tx = new Transaction();
  tx.version = TX_VERSION;
  tx.locktime = locktime;
  tx.addInput(txidToHash(channel.funding.txid), channel.funding.vout, SEQUENCE_LOCKTIME_RBF);
  for (const o of outputs) tx.addOutput(o.script, o.valueSat);
  return tx;
}

/** The sighash type a payment of `totalSat` is signed with (see {@link paymentChangeOutput}). */
export function paymentHashType(channel: Channel, totalSat: bigint): number {
  return totalSat === channel.capacitySat ? SIGHASH_NONE_ACP : SIGHASH_SINGLE_ACP;
}

/**
 * The payer's change output 0 of a payment, or null when the payment spends the whole capacity
 * (then there is no change and the payer signs SIGHASH_NONE|ANYONECANPAY).
 * @throws RangeError if the total is out of range or the change would be dust: a caller bug,
 *   since payments are validated first (src/protocol/payment.ts).
 */
export function paymentChangeOutput(channel: Channel, totalSat: bigint): SighashOutput | null {
  if (totalSat <= 0n || totalSat > channel.capacitySat) throw new RangeError(`total ${totalSat} out of 1..${channel.capacitySat}`);
  if (totalSat === channel.capacitySat) return null;
  const valueSat = channel.capacitySat - totalSat;
  if (valueSat < dustThresholdSat(channel.payerScript)) throw new RangeError(`payer change ${valueSat} is dust`);
  return { script: channel.payerScript, valueSat };
}

/** DER signature with the sighash byte, as it goes in a segwit v0 witness (ECDSA; see ./variants/ecdsa.ts). */
export const encodeSignature = encodeDerSignature;

/**
 * Fee for `vsize` at `feeRateSatPerVb`, rounded up so the real rate is never below the target.
 * @throws RangeError on a negative or non-finite rate.
 */
export function feeForVsize(vsize: number, feeRateSatPerVb: number): bigint {
  if (!Number.isFinite(feeRateSatPerVb) || feeRateSatPerVb < 0) throw new RangeError('fee rate must be a finite number ≥ 0');
  return BigInt(Math.ceil(vsize * feeRateSatPerVb));
}

/** The fields of a bitcoinjs-lib transaction that BIP143 commits to. */
export function sighashView(tx: Transaction): SighashTx {
  return {
    version: tx.version,
    locktime: tx.locktime,
    inputs: tx.ins.map((i) => ({ txid: hashToTxid(i.hash), vout: i.index, sequence: i.sequence })),
    outputs: tx.outs.map((o) => ({ script: o.script, valueSat: o.value })),
  };
}
