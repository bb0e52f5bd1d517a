/**
 * The channel scripts and their witnesses (DESIGN.md "Transactions"): the building blocks the
 * variant specs (./variants/) are made of; which variant uses which is said there.
 *
 * spilman-v1 funds a P2WSH 2-of-2 `OP_2 <K1> <K2> OP_2 OP_CHECKMULTISIG` (K1 = payer first, as
 * the seed says); the refund needs the payee's signature up front. spilman-v2 replaces that round
 * trip with BIP65: the payee's key is needed only on the payment branch, and after
 * `expiryHeight` the payer can spend alone.
 */
import { opcodes, script as bscript } from 'bitcoinjs-lib';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from './bytes.js';
import type { VariantName } from './variants/index.js';

/** @deprecated the name of a variant is {@link VariantName} (./variants/index.ts); this alias keeps old imports working. */
export type Variant = VariantName;

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

/** `OP_0 <sha256(witnessScript)>` */
export function p2wshOutputScript(witnessScript: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(0x00, 0x20), sha256(witnessScript));
}

/** Spends {@link multisigScript} with both signatures: CHECKMULTISIG's extra pop, then the signatures in key order. */
export function multisigWitness(payerSig: Uint8Array, payeeSig: Uint8Array, witnessScript: Uint8Array): Uint8Array[] {
  return [new Uint8Array(0), payerSig, payeeSig, witnessScript];
}

/** Spends {@link cltvScript} on its payee branch (both signatures): 0x01 selects OP_IF (MINIMALIF). */
export function cltvPayeeBranchWitness(payerSig: Uint8Array, payeeSig: Uint8Array, witnessScript: Uint8Array): Uint8Array[] {
  return [payerSig, payeeSig, Uint8Array.of(1), witnessScript];
}

/** Spends {@link cltvScript} on its refund branch (the payer alone, after expiry): empty selects OP_ELSE. */
export function cltvRefundWitness(payerSig: Uint8Array, witnessScript: Uint8Array): Uint8Array[] {
  return [payerSig, new Uint8Array(0), witnessScript];
}

/**
 * Witness with both signatures of a 2-of-2 multisig ('spilman-v1', as duplex funds with) or of
 * the CLTV script's payee branch ('spilman-v2').
 * @deprecated Spilman code asks its variant's spec (`variantOf(name).cooperativeWitness`); this
 *   stays for src/protocol/duplex-tx.ts, which spends its 2-of-2 with it, until that is rewritten
 *   (then use {@link multisigWitness}).
 */
export function cooperativeWitness(script: 'spilman-v1' | 'spilman-v2', payerSig: Uint8Array, payeeSig: Uint8Array, witnessScript: Uint8Array): Uint8Array[] {
  switch (script) {
    case 'spilman-v1':
      return multisigWitness(payerSig, payeeSig, witnessScript);
    case 'spilman-v2':
      return cltvPayeeBranchWitness(payerSig, payeeSig, witnessScript);
    default: {
      const _exhaustive: never = script;
      throw new RangeError(`unknown script ${String(_exhaustive)}`);
    }
  }
}
