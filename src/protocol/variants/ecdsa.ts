/**
 * ECDSA over secp256k1 as segwit v0 uses it: 64-byte compact signatures in messages, DER with
 * the sighash byte in witnesses. Every signature we make or accept is low-S (both secp256k1
 * backends refuse high-S), so the longest witness form is a high-R DER of 71 bytes plus the
 * sighash byte: 72, an exact bound for fees.
 */
import { script as bscript } from 'bitcoinjs-lib';
import type { SignatureScheme } from './variant.js';

/** DER signature with the sighash byte, as it goes in a witness. */
export function encodeDerSignature(compact: Uint8Array, hashType: number): Uint8Array {
  return bscript.signature.encode(compact, hashType);
}

export const ecdsa: SignatureScheme = Object.freeze<SignatureScheme>({
  name: 'ecdsa',
  maxWitnessSignatureBytes: 72,
  sign: (secp, digest, privateKey) => secp.ecdsaSign(digest, privateKey),
  verify: (secp, signature, digest, publicKey) => secp.ecdsaVerify(signature, digest, publicKey),
  toWitness: encodeDerSignature,
});
