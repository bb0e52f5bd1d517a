/**
 * Builders for the transactions that spend a channel's funding output: the refund (T2, or v2's
 * CLTV refund), the payment (T3) the payer signs, and the payee's close. Funding (T1) itself is
 * an ordinary wallet transaction with one P2WSH output (see src/wallet).
 *
 * All are version 2 with nSequence 0xfffffffd: locktime-enabled and BIP125-replaceable, so every
 * party can re-broadcast its own spend with a higher fee (the seed's 思考).
 */
import { Transaction, script as bscript } from 'bitcoinjs-lib';
import { hashToTxid, txidToHash } from './bytes.js';
import type { Channel, FundingOutpoint } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { refundWitness } from './scripts.js';
import { SIGHASH_NONE_ACP, SIGHASH_SINGLE_ACP, type SighashOutput, type SighashTx } from './sighash.js';

export const TX_VERSION = 2;
/** Enables nLockTime and signals BIP125 replaceability. */
export const SEQUENCE_LOCKTIME_RBF = 0xfffffffd;
/** Payments and closes are final at once. */
export const PAYMENT_LOCKTIME = 0;
/**
 * Largest signature in a witness: DER of a low-S signature with a high R (71 bytes) plus the
 * sighash byte. Every signature we make or accept is low-S (both secp256k1 backends refuse
 * high-S), so this bound is exact.
 */
export const MAX_SIGNATURE_BYTES = 72;

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

/** Refund T2 (v1) or the CLTV refund (v2): the whole capacity back to the payer after expiry. */
export function buildRefundTx(channel: Channel, output: TxOutputSpec): Transaction {
  return spendFunding(channel, channel.expiryHeight, [output]);
}

/** DER signature with the sighash byte, as it goes in a witness. */
export function encodeSignature(compact: Uint8Array, hashType: number): Uint8Array {
  return bscript.signature.encode(compact, hashType);
}

const PLACEHOLDER_SIG = new Uint8Array(MAX_SIGNATURE_BYTES);

/** Worst-case vsize of a refund once signed. */
export function refundVsize(channel: Channel, tx: Transaction): number {
  const sized = tx.clone();
  const witness =
    channel.variant === 'spilman-v1'
      ? refundWitness({ variant: 'spilman-v1', payerSig: PLACEHOLDER_SIG, payeeSig: PLACEHOLDER_SIG }, channel.witnessScript)
      : refundWitness({ variant: 'spilman-v2', payerSig: PLACEHOLDER_SIG }, channel.witnessScript);
  sized.setWitness(0, witness);
  return sized.virtualSize();
}

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
