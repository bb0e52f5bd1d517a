/**
 * The channel scripts and their witnesses (DESIGN.md "Transactions").
 *
 * spilman-v1 funds a P2WSH 2-of-2 `OP_2 <K1> <K2> OP_2 OP_CHECKMULTISIG` (K1 = payer first, as
 * the seed says); the refund needs the payee's signature up front. spilman-v2 replaces that round
 * trip with BIP65: the payee's key is needed only on the payment branch, and after
 * `expiryHeight` the payer can spend alone.
 */
import { opcodes, script as bscript } from 'bitcoinjs-lib';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from './bytes.js';

export type Variant = 'spilman-v1' | 'spilman-v2';
export const VARIANTS: readonly Variant[] = ['spilman-v1', 'spilman-v2'];

/** BIP65/CLTV uses a 5-byte script number; heights at or above 500,000,000 mean a time instead. */
export const MAX_LOCKTIME_HEIGHT = 499_999_999;

export function multisigScript(payerPubkey: Uint8Array, payeePubkey: Uint8Array): Uint8Array {
  return bscript.compile([opcodes.OP_2, payerPubkey, payeePubkey, opcodes.OP_2, opcodes.OP_CHECKMULTISIG]);
}

/** @throws RangeError if `expiryHeight` is not a block height usable with CLTV. */
export function cltvScript(payerPubkey: Uint8Array, payeePubkey: Uint8Array, expiryHeight: number): Uint8Array {
  if (!Number.isInteger(expiryHeight) || expiryHeight < 1 || expiryHeight > MAX_LOCKTIME_HEIGHT) {
    throw new RangeError(`expiryHeight must be a block height in 1..${MAX_LOCKTIME_HEIGHT}`);
  }
  return bscript.compile([
    opcodes.OP_IF,
    payeePubkey,
    opcodes.OP_CHECKSIGVERIFY,
    opcodes.OP_ELSE,
    bscript.number.encode(expiryHeight),
    opcodes.OP_CHECKLOCKTIMEVERIFY,
    opcodes.OP_DROP,
    opcodes.OP_ENDIF,
    payerPubkey,
    opcodes.OP_CHECKSIG,
  ]);
}

/** The witness script that locks a channel's funding output. */
export function fundingWitnessScript(variant: Variant, payerPubkey: Uint8Array, payeePubkey: Uint8Array, expiryHeight: number): Uint8Array {
  return variant === 'spilman-v1' ? multisigScript(payerPubkey, payeePubkey) : cltvScript(payerPubkey, payeePubkey, expiryHeight);
}

/** `OP_0 <sha256(witnessScript)>` */
export function p2wshOutputScript(witnessScript: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(0x00, 0x20), sha256(witnessScript));
}

/**
 * Witness that spends the funding output with both signatures (payment T3 and the close).
 * Signatures are DER with the sighash byte appended.
 */
export function cooperativeWitness(variant: Variant, payerSig: Uint8Array, payeeSig: Uint8Array, witnessScript: Uint8Array): Uint8Array[] {
  return variant === 'spilman-v1'
    ? [new Uint8Array(0), payerSig, payeeSig, witnessScript] // CHECKMULTISIG's extra pop, then sigs in key order
    : [payerSig, payeeSig, Uint8Array.of(1), witnessScript]; // 0x01 selects OP_IF (MINIMALIF)
}

/** Witness of the refund: v1 needs the payee's (SIGHASH_NONE|ANYONECANPAY) signature, v2 does not. */
export function refundWitness(
  refund: { variant: 'spilman-v1'; payerSig: Uint8Array; payeeSig: Uint8Array } | { variant: 'spilman-v2'; payerSig: Uint8Array },
  witnessScript: Uint8Array,
): Uint8Array[] {
  return refund.variant === 'spilman-v1'
    ? [new Uint8Array(0), refund.payerSig, refund.payeeSig, witnessScript]
    : [refund.payerSig, new Uint8Array(0), witnessScript]; // empty selects OP_ELSE
}
