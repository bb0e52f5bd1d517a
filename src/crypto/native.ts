/**
 * Native {@link Secp256k1}: libsecp256k1 through the `secp256k1` package's N-API addon.
 *
 * The package's own entry point silently falls back to a pure-JS implementation ~20x slower
 * when its prebuilt binary is missing. We never take that path: we load the addon directly
 * (`secp256k1/bindings`) and let the caller decide what to do when it is absent.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Secp256k1 } from './secp256k1.js';

interface NativeAddon {
  privateKeyVerify(key: Uint8Array): boolean;
  publicKeyVerify(key: Uint8Array): boolean;
  publicKeyCreate(key: Uint8Array, compressed?: boolean): Uint8Array;
  ecdsaSign(digest: Uint8Array, key: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaVerify(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): boolean;
  publicKeyConvert(publicKey: Uint8Array, compressed?: boolean): Uint8Array;
}

/**
 * The addon's own methods, under the package's JS wrapper: they check their arguments themselves
 * (a TypeError for anything but a Uint8Array of the exact length) and return a status code. The
 * wrapper also builds its error messages, a default options object and type strings on every
 * call, ~500 bytes of garbage per signature or verification: the payment path calls these.
 */
interface RawAddon {
  /** 0: signed into `out.signature` (a 64-byte array the caller gives); 1: the key is invalid. */
  ecdsaSign(out: { signature: Uint8Array; recid: number | null }, digest: Uint8Array, key: Uint8Array): number;
  /** 0: valid; 3: does not verify; 1/2: the signature/key does not parse. */
  ecdsaVerify(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): number;
  /** 0: a valid private key. */
  privateKeyVerify(key: Uint8Array): number;
}

/** A compressed public key as it was when expanded, and its 65-byte uncompressed form. */
interface ExpandedKey {
  readonly compressed: Uint8Array;
  readonly uncompressed: Uint8Array;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Loads the native addon.
 * @throws Error when the addon cannot be loaded (no prebuilt binary for this platform and no
 *   local build); the message names the cause.
 */
export function loadNativeSecp256k1(): Secp256k1 {
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  let raw: RawAddon;
  try {
    addon = require('secp256k1/bindings') as NativeAddon;
    // The same binary (node-gyp-build finds it as secp256k1/bindings did), without the wrapper.
    const bindings = require.resolve('secp256k1/bindings');
    const load = createRequire(bindings)('node-gyp-build') as (dir: string) => { Secp256k1: new () => RawAddon };
    raw = new (load(path.dirname(bindings)).Secp256k1)();
  } catch (err) {
    throw new Error(`native libsecp256k1 addon unavailable: ${(err as Error).message}`, { cause: err });
  }
  /** The addon's output object, reused (it is read back at once); the signature array is new each time. */
  const signed: { signature: Uint8Array; recid: number | null } = { signature: new Uint8Array(0), recid: null };
  return {
    name: 'libsecp256k1 (native)',
    native: true,
    isPrivateKey: (key) => key.length === 32 && addon.privateKeyVerify(key),
    isPublicKey: (key) => key.length === 33 && (key[0] === 2 || key[0] === 3) && addon.publicKeyVerify(key),
    publicKeyCreate(privateKey) {
      if (privateKey.length !== 32 || !addon.privateKeyVerify(privateKey)) throw new TypeError('invalid private key');
      return addon.publicKeyCreate(privateKey, true);
    },
    ecdsaSign(digest, privateKey) {
      if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new TypeError('digest must be 32 bytes');
      if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32 || raw.privateKeyVerify(privateKey) !== 0) throw new TypeError('invalid private key');
      const signature = new Uint8Array(64);
      signed.signature = signature;
      if (raw.ecdsaSign(signed, digest, privateKey) !== 0) throw new TypeError('invalid private key');
      return signature;
    },
    ecdsaVerify(signature, digest, publicKey) {
      if (!(signature instanceof Uint8Array) || !(digest instanceof Uint8Array) || !(publicKey instanceof Uint8Array)) return false;
      if (signature.length !== 64 || digest.length !== 32 || publicKey.length !== 33) return false;
      try {
        return raw.ecdsaVerify(signature, digest, uncompressed(publicKey)) === 0;
      } catch {
        return false;
      }
    },
  };

  // libsecp256k1 parses the public key on every verification; a compressed key costs a field
  // square root there (~5 µs, a tenth of the verification), an uncompressed one only an on-curve
  // check. A payee verifies every payment of a channel against the same key object, so its
  // uncompressed form is kept beside it. The cache is keyed by the array and checked against a
  // copy of its bytes, so a key changed in place is expanded again, never matched stale; it holds
  // nothing the key's owner has dropped.
  function uncompressed(publicKey: Uint8Array): Uint8Array {
    const known = expanded.get(publicKey);
    if (known && sameBytes(known.compressed, publicKey)) return known.uncompressed;
    const entry = { compressed: publicKey.slice(), uncompressed: addon.publicKeyConvert(publicKey, false) };
    expanded.set(publicKey, entry);
    return entry.uncompressed;
  }
}

const expanded = new WeakMap<Uint8Array, ExpandedKey>();

