/**
 * Pure-JS {@link Secp256k1}: @noble/curves (audited, no WASM, no Node module), the browser
 * payer's default. A payer only signs (one ECDSA signature per payment) and verifies a handful of
 * the payee's signatures per channel, so what matters in a page is the bundle, not the verify
 * speed: tiny-secp256k1's WASM is 1.2 MB, this is about 25 kB gzipped.
 *
 * Speed: noble builds its fixed-base tables lazily with a small window; forcing an 8-bit window
 * once (about 70 ms, a few MB) doubles signing (measured ~1,300 → ~2,600 signatures/s on one
 * core here). Larger windows cost seconds to build and were slower (cache misses). The table is
 * built on first use, so importing this module costs nothing.
 */
import { secp256k1 as curve } from '@noble/curves/secp256k1.js';
import type { Secp256k1 } from './secp256k1.js';

/** The fixed-base precomputation window (bits): see the module comment for why 8. */
const BASE_WINDOW_BITS = 8;
let tablesBuilt = false;

function withTables(): void {
  if (tablesBuilt) return;
  curve.Point.BASE.precompute(BASE_WINDOW_BITS, false);
  tablesBuilt = true;
}

const SIGN = { prehash: false, lowS: true, format: 'compact' } as const;
const VERIFY = { prehash: false, lowS: true, format: 'compact' } as const;

export const nobleSecp256k1: Secp256k1 = {
  name: '@noble/curves (js)',
  native: false,
  isPrivateKey: (key) => key.length === 32 && curve.utils.isValidSecretKey(key),
  isPublicKey: (key) => key.length === 33 && (key[0] === 2 || key[0] === 3) && curve.utils.isValidPublicKey(key, true),
  publicKeyCreate(privateKey) {
    if (privateKey.length !== 32 || !curve.utils.isValidSecretKey(privateKey)) throw new TypeError('invalid private key');
    withTables();
    return curve.getPublicKey(privateKey, true);
  },
  ecdsaSign(digest, privateKey) {
    if (digest.length !== 32) throw new TypeError('digest must be 32 bytes');
    if (privateKey.length !== 32 || !curve.utils.isValidSecretKey(privateKey)) throw new TypeError('invalid private key');
    withTables();
    return curve.sign(digest, privateKey, SIGN);
  },
  ecdsaVerify(signature, digest, publicKey) {
    if (signature.length !== 64 || digest.length !== 32 || publicKey.length !== 33) return false;
    try {
      return curve.verify(signature, digest, publicKey, VERIFY);
    } catch {
      return false;
    }
  },
};
