/**
 * Payments (T3): the payer signs the funding input with SIGHASH_SINGLE|ANYONECANPAY, committing
 * to its own change output 0 only; the payee keeps the newest signature. The whole-capacity
 * payment has no change and is signed SIGHASH_NONE|ANYONECANPAY. Totals, never deltas, so a lost
 * or repeated message is harmless.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { Channel } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { ProtocolError } from './errors.js';
import { PaymentSighasher } from './sighash.js';
import { PAYMENT_LOCKTIME, SEQUENCE_LOCKTIME_RBF, TX_VERSION, paymentChangeOutput } from './transactions.js';

/** The per-channel sighasher for payments (precomputes the constant part of the preimage). */
export function paymentSighasher(channel: Channel): PaymentSighasher {
  return new PaymentSighasher(
    { txid: channel.funding.txid, vout: channel.funding.vout, valueSat: channel.capacitySat, witnessScript: channel.witnessScript },
    TX_VERSION,
    SEQUENCE_LOCKTIME_RBF,
    PAYMENT_LOCKTIME,
  );
}

/**
 * Checks that `totalSat` is a valid next total after `lastTotalSat`.
 * @throws ProtocolError AMOUNT_NOT_INCREASING, AMOUNT_EXCEEDS_CAPACITY or CHANGE_BELOW_DUST.
 */
export function checkPaymentTotal(channel: Channel, lastTotalSat: bigint, totalSat: bigint): void {
  if (totalSat <= lastTotalSat) throw new ProtocolError('AMOUNT_NOT_INCREASING', `total ${totalSat} ≤ last ${lastTotalSat}`);
  if (totalSat > channel.capacitySat) throw new ProtocolError('AMOUNT_EXCEEDS_CAPACITY', `total ${totalSat} > capacity ${channel.capacitySat}`);
  const change = channel.capacitySat - totalSat;
  if (change > 0n && change < dustThresholdSat(channel.payerScript)) {
    throw new ProtocolError('CHANGE_BELOW_DUST', `change ${change} < dust ${dustThresholdSat(channel.payerScript)}; pay the whole capacity`);
  }
}

/** The digest a payment of `totalSat` signs. `totalSat` must have passed {@link checkPaymentTotal}. */
export function paymentDigest(channel: Channel, sighasher: PaymentSighasher, totalSat: bigint): Uint8Array {
  const change = paymentChangeOutput(channel, totalSat);
  return change ? sighasher.singleAcp(change) : sighasher.noneAcp();
}

/** The payer's signature on a payment of `totalSat` (64-byte compact). */
export function signPayment(secp: Secp256k1, channel: Channel, sighasher: PaymentSighasher, payerPrivateKey: Uint8Array, totalSat: bigint): Uint8Array {
  return secp.ecdsaSign(paymentDigest(channel, sighasher, totalSat), payerPrivateKey);
}

/**
 * Payee side: validates the total and the payer's signature.
 * @throws ProtocolError with the reason; on success the payment is safe to store and acknowledge.
 */
export function verifyPayment(
  secp: Secp256k1,
  channel: Channel,
  sighasher: PaymentSighasher,
  lastTotalSat: bigint,
  totalSat: bigint,
  signature: Uint8Array,
): void {
  checkPaymentTotal(channel, lastTotalSat, totalSat);
  if (!secp.ecdsaVerify(signature, paymentDigest(channel, sighasher, totalSat), channel.payerPubkey)) {
    throw new ProtocolError('INVALID_SIGNATURE', `payment signature for total ${totalSat} does not verify`);
  }
}
