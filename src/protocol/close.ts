/**
 * The payee's close: the newest payment T3 completed with the payee's own outputs and signature.
 * The payee pays the fee from its share and signs SIGHASH_ALL, so it alone can replace its close
 * with a higher fee at any time (BIP125) — the payer's signature covers only its change.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { Channel } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { cooperativeWitness } from './scripts.js';
import { SIGHASH_ALL, bip143Sighash } from './sighash.js';
import { buildCloseTx, cooperativeSpendVsize, encodeSignature, feeForVsize, paymentHashType, sighashView } from './transactions.js';

export interface LatestPayment {
  readonly totalSat: bigint;
  /** The payer's 64-byte compact signature on that total. */
  readonly signature: Uint8Array;
}

export interface SignedClose {
  readonly txHex: string;
  readonly txid: string;
  readonly feeSat: bigint;
  readonly vsize: number;
  /** What the payee's output carries: its share minus the fee. */
  readonly payeeValueSat: bigint;
  /** What goes back to the payer (output 0), 0 for a whole-capacity payment. */
  readonly payerValueSat: bigint;
}

/** The payee's share of a close at `feeRateSatPerVb`, before building it (for policy decisions). */
export function closeFeeSat(channel: Channel, totalSat: bigint, payeeScript: Uint8Array, feeRateSatPerVb: number): bigint {
  const draft = buildCloseTx(channel, totalSat, [{ script: payeeScript, valueSat: totalSat }]);
  return feeForVsize(cooperativeSpendVsize(channel, draft), feeRateSatPerVb);
}

/**
 * Builds and signs the close of `channel` for the newest payment.
 * @throws RangeError if the payee's output would be dust after the fee (closing would cost more
 *   than it earns; the payee should let the payer refund instead).
 */
export function signClose(
  secp: Secp256k1,
  channel: Channel,
  payment: LatestPayment,
  payeePrivateKey: Uint8Array,
  payeeScript: Uint8Array,
  feeRateSatPerVb: number,
): SignedClose {
  const feeSat = closeFeeSat(channel, payment.totalSat, payeeScript, feeRateSatPerVb);
  const payeeValueSat = payment.totalSat - feeSat;
  const dust = dustThresholdSat(payeeScript);
  if (payeeValueSat < dust) {
    throw new RangeError(`close uneconomic: paid ${payment.totalSat} − fee ${feeSat} = ${payeeValueSat} < dust ${dust}`);
  }
  const tx = buildCloseTx(channel, payment.totalSat, [{ script: payeeScript, valueSat: payeeValueSat }]);
  const digest = bip143Sighash(sighashView(tx), 0, channel.witnessScript, channel.capacitySat, SIGHASH_ALL);
  const payeeSig = encodeSignature(secp.ecdsaSign(digest, payeePrivateKey), SIGHASH_ALL);
  const payerSig = encodeSignature(payment.signature, paymentHashType(channel, payment.totalSat));
  tx.setWitness(0, cooperativeWitness(channel.variant, payerSig, payeeSig, channel.witnessScript));
  return {
    txHex: tx.toHex(),
    txid: tx.getId(),
    feeSat,
    vsize: tx.virtualSize(),
    payeeValueSat,
    payerValueSat: channel.capacitySat - payment.totalSat,
  };
}
