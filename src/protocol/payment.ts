/**
 * Payments (T3), the same for every variant but for the digest and the signature scheme, which
 * the channel's payment sighasher brings (./variants/): the payer signs the funding input with SIGHASH_SINGLE|ANYONECANPAY, committing
 * to its own change output 0 only; the payee keeps the newest signature. The whole-capacity
 * payment has no change and is signed SIGHASH_NONE|ANYONECANPAY. Totals, never deltas, so a lost
 * or repeated message is harmless.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { Channel } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { ProtocolError } from './errors.js';
import { paymentChangeOutput } from './transactions.js';
import { variantOf } from './variants/index.js';
import type { PaymentSighasher } from './variants/variant.js';

/**
 * The per-channel sighasher for payments (precomputes the constant part of the preimage). The
 * one look-up of the channel's variant on the payment path: the sighasher carries its signature
 * scheme, so signing and verifying a payment look nothing up.
 */
export function paymentSighasher(channel: Channel): PaymentSighasher {
  return variantOf(channel.variant).paymentSighasher(channel);
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
  return sighasher.signatures.sign(secp, paymentDigest(channel, sighasher, totalSat), payerPrivateKey);
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
  if (!sighasher.signatures.verify(secp, signature, paymentDigest(channel, sighasher, totalSat), channel.payerPubkey)) {
    throw new ProtocolError('INVALID_SIGNATURE', `payment signature for total ${totalSat} does not verify`);
  }
}
