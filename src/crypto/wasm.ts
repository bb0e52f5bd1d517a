/**
 * Browser-safe {@link Secp256k1}: tiny-secp256k1 (libsecp256k1 compiled to WASM). About a third
 * of native speed; used in browsers, and in Node only when the native addon cannot load.
 */
import * as tiny from 'tiny-secp256k1';
import type { Secp256k1 } from './secp256k1.js';

export const wasmSecp256k1: Secp256k1 = {
  name: 'tiny-secp256k1 (wasm)',
  native: false,
  isPrivateKey: (key) => key.length === 32 && tiny.isPrivate(key),
  isPublicKey: (key) => key.length === 33 && tiny.isPointCompressed(key) && tiny.isPoint(key),
  publicKeyCreate(privateKey) {
    if (privateKey.length !== 32 || !tiny.isPrivate(privateKey)) throw new TypeError('invalid private key');
    const point = tiny.pointFromScalar(privateKey, true);
    if (!point) throw new TypeError('invalid private key');
    return point;
  },
  ecdsaSign(digest, privateKey) {
    if (digest.length !== 32) throw new TypeError('digest must be 32 bytes');
    if (privateKey.length !== 32 || !tiny.isPrivate(privateKey)) throw new TypeError('invalid private key');
    return tiny.sign(digest, privateKey);
  },
  ecdsaVerify(signature, digest, publicKey) {
    if (signature.length !== 64 || digest.length !== 32 || publicKey.length !== 33) return false;
    try {
      return tiny.verify(digest, publicKey, signature, true);
    } catch {
      return false;
    }
  },
};
