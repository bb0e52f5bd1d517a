/**
 * Native libsecp256k1, the WASM fallback and the browser's pure-JS noble must agree on every
 * signature and every verdict.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadNativeSecp256k1, secp256k1, wasmSecp256k1 } from '../../src/crypto/index.js';
import { nobleSecp256k1 } from '../../src/crypto/noble.js';
import { toHex } from '../../src/protocol/bytes.js';

const native = loadNativeSecp256k1();
const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => native.isPrivateKey(k));
const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('secp256k1 backends', () => {
  it('the process picks the native addon here', () => {
    expect(secp256k1().native).toBe(true);
  });

  it('give identical public keys and signatures, and both verify them', () => {
    fc.assert(
      fc.property(key, digest, (k, d) => {
        const pub = native.publicKeyCreate(k);
        expect(toHex(wasmSecp256k1.publicKeyCreate(k))).toBe(toHex(pub));
        const sig = native.ecdsaSign(d, k);
        expect(toHex(nobleSecp256k1.publicKeyCreate(k))).toBe(toHex(pub));
        expect(toHex(wasmSecp256k1.ecdsaSign(d, k))).toBe(toHex(sig));
        expect(toHex(nobleSecp256k1.ecdsaSign(d, k))).toBe(toHex(sig));
        expect(native.ecdsaVerify(sig, d, pub)).toBe(true);
        expect(wasmSecp256k1.ecdsaVerify(sig, d, pub)).toBe(true);
        expect(nobleSecp256k1.ecdsaVerify(sig, d, pub)).toBe(true);
        expect(nobleSecp256k1.isPublicKey(pub)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('give identical verdicts on tampered, high-S and garbage signatures', () => {
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    fc.assert(
      fc.property(key, digest, fc.nat({ max: 63 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (k, d, flip, garbage) => {
        const pub = native.publicKeyCreate(k);
        const sig = native.ecdsaSign(d, k);
        const tampered = Uint8Array.from(sig);
        tampered[flip] = tampered[flip]! ^ 1;
        // Same signature with s → n − s: valid in consensus, refused by both as non-standard.
        const s = BigInt('0x' + toHex(sig.slice(32)));
        const highS = Uint8Array.from([...sig.slice(0, 32), ...Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex')]);
        for (const candidate of [tampered, highS, garbage]) {
          expect(wasmSecp256k1.ecdsaVerify(candidate, d, pub)).toBe(native.ecdsaVerify(candidate, d, pub));
          expect(nobleSecp256k1.ecdsaVerify(candidate, d, pub)).toBe(native.ecdsaVerify(candidate, d, pub));
        }
        expect(native.ecdsaVerify(highS, d, pub)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('reject malformed keys and lengths without throwing', () => {
    for (const secp of [native, wasmSecp256k1, nobleSecp256k1]) {
      expect(secp.isPublicKey(new Uint8Array(33))).toBe(false);
      expect(secp.isPrivateKey(new Uint8Array(32))).toBe(false);
      expect(secp.ecdsaVerify(new Uint8Array(63), new Uint8Array(32), new Uint8Array(33))).toBe(false);
      expect(() => secp.ecdsaSign(new Uint8Array(32), new Uint8Array(32))).toThrow(TypeError);
    }
  });

  it('verify against the bytes a key holds now, when the same key array is used again', () => {
    const [k1, k2] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    const d = new Uint8Array(32).fill(9);
    const pub = native.publicKeyCreate(k1);
    const sig1 = native.ecdsaSign(d, k1);
    const sig2 = native.ecdsaSign(d, k2);
    expect(native.ecdsaVerify(sig1, d, pub)).toBe(true);
    expect(native.ecdsaVerify(sig1, d, pub)).toBe(true); // the kept expansion
    pub.set(native.publicKeyCreate(k2)); // the same array now holds another key
    expect(native.ecdsaVerify(sig1, d, pub)).toBe(false);
    expect(native.ecdsaVerify(sig2, d, pub)).toBe(true);
    pub[0] = 0x05; // not a point encoding at all
    expect(native.ecdsaVerify(sig2, d, pub)).toBe(false);
  });
});
