/**
 * What the segwit v0 variants share: a P2WSH funding output, BIP143 sighashes (with the
 * per-channel midstate of the payment hot path) and ECDSA. A variant built on them names its
 * witness script and its witnesses; a Taproot variant would have its own module of this kind.
 */
import type { Channel } from '../channel.js';
import { p2wshOutputScript } from '../scripts.js';
import { Bip143PaymentSighasher, bip143Sighash, type SighashTx } from '../sighash.js';
import { PAYMENT_LOCKTIME, SEQUENCE_LOCKTIME_RBF, TX_VERSION } from '../transactions.js';
import type { FundingLock, PaymentSighasher, SpentChannel } from './variant.js';

/** The P2WSH lock of `witnessScript`. */
export function p2wshLock(witnessScript: Uint8Array): FundingLock {
  return { witnessScript, fundingScript: p2wshOutputScript(witnessScript) };
}

/**
 * BIP143 digest of input `index`: commits to its own coin's value and witness script only.
 * @throws RangeError for an index out of range (or without its coin), or SIGHASH_SINGLE without its output.
 */
export function bip143SpendSighash(tx: SighashTx, index: number, spent: readonly SpentChannel[], hashType: number): Uint8Array {
  const coin = spent[index];
  if (!coin) throw new RangeError(`no spent coin for input ${index}`);
  return bip143Sighash(tx, index, coin.witnessScript, coin.capacitySat, hashType);
}

/** The BIP143 midstate sighasher of a channel's payments (version 2, nSequence 0xfffffffd, locktime 0). */
export function bip143PaymentSighasher(channel: Channel): PaymentSighasher {
  return new Bip143PaymentSighasher(
    { txid: channel.funding.txid, vout: channel.funding.vout, valueSat: channel.capacitySat, witnessScript: channel.witnessScript },
    TX_VERSION,
    SEQUENCE_LOCKTIME_RBF,
    PAYMENT_LOCKTIME,
  );
}
