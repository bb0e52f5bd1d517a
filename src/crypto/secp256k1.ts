/**
 * The one signing/verification interface of paychan.
 *
 * Everything that signs or verifies goes through {@link Secp256k1}, so the protocol core never
 * knows which implementation runs: native libsecp256k1 in Node (the payee's hot path is one
 * verification per payment, so this is where speed lives), WASM in browsers. Every
 * implementation must be deterministic (RFC 6979 nonces, no extra entropy) and produce low-S
 * signatures, so that all of them give byte-identical signatures; a test holds them to it.
 */
export interface Secp256k1 {
  /** Short name for logs and benchmarks, e.g. `libsecp256k1 (native)`. */
  readonly name: string;
  /** True when this implementation runs native code (the fast path). */
  readonly native: boolean;
  /** @returns true if `key` is a valid 32-byte private key (0 < key < n). */
  isPrivateKey(key: Uint8Array): boolean;
  /** @returns true if `key` is a valid 33-byte compressed public key on the curve. */
  isPublicKey(key: Uint8Array): boolean;
  /**
   * @returns the 33-byte compressed public key of `privateKey`.
   * @throws TypeError if the private key is invalid.
   */
  publicKeyCreate(privateKey: Uint8Array): Uint8Array;
  /**
   * Signs a 32-byte digest. Deterministic (RFC 6979) and low-S.
   * @returns the 64-byte compact signature (r || s).
   * @throws TypeError if the digest or key is malformed.
   */
  ecdsaSign(digest: Uint8Array, privateKey: Uint8Array): Uint8Array;
  /**
   * Verifies a 64-byte compact signature over a 32-byte digest. High-S signatures are rejected
   * (they are non-standard in Bitcoin), malformed inputs give `false` rather than throwing: the
   * caller is usually checking a peer's bytes.
   */
  ecdsaVerify(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): boolean;
}
