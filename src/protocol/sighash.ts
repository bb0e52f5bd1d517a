/**
 * BIP143 (segwit v0) signature hashes, and a per-channel precomputation for the payment hot path.
 *
 * The payee verifies one payment signature per payment, and the payer signs one. With
 * SIGHASH_SINGLE|ANYONECANPAY the preimage is constant except for hashOutputs (the payer's change
 * output), so {@link Bip143PaymentSighasher} hashes the constant prefix once per channel and reuses the
 * SHA-256 midstate: per payment only the change output and the last block or two are hashed,
 * with an allocation-free SHA-256 (sha256-blocks.ts) — a general hasher spent more time on
 * objects than on rounds here.
 * Cross-checked against bitcoinjs-lib's `hashForWitnessV0` in test/unit/sighash.test.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, txidToHash, u32le, u64le, varSlice } from './bytes.js';
import { SHA256_IV, compressBlock, finish } from './sha256-blocks.js';
import { ecdsa } from './variants/ecdsa.js';
import type { PaymentSighasher, SignatureScheme } from './variants/variant.js';

export type { PaymentSighasher } from './variants/variant.js';

export const SIGHASH_ALL = 0x01;
export const SIGHASH_NONE = 0x02;
export const SIGHASH_SINGLE = 0x03;
export const SIGHASH_ANYONECANPAY = 0x80;
export const SIGHASH_SINGLE_ACP = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY;
export const SIGHASH_NONE_ACP = SIGHASH_NONE | SIGHASH_ANYONECANPAY;

const ZERO32 = new Uint8Array(32);

export function hash256(data: Uint8Array): Uint8Array {
  return sha256(sha256(data));
}

export interface SighashInput {
  readonly txid: string;
  readonly vout: number;
  readonly sequence: number;
}

export interface SighashOutput {
  readonly script: Uint8Array;
  readonly valueSat: bigint;
}

/** The parts of a transaction that BIP143 commits to. */
export interface SighashTx {
  readonly version: number;
  readonly locktime: number;
  readonly inputs: readonly SighashInput[];
  readonly outputs: readonly SighashOutput[];
}

export function serializeOutput(output: SighashOutput): Uint8Array {
  return concatBytes(u64le(output.valueSat), varSlice(output.script));
}

function outpointBytes(input: SighashInput): Uint8Array {
  return concatBytes(txidToHash(input.txid), u32le(input.vout));
}

/**
 * BIP143 signature hash of input `index` spending `valueSat` locked by `witnessScript`.
 * @throws RangeError if `index` is out of range, or SIGHASH_SINGLE has no matching output (the
 *   "sighash one" quirk is not something we ever want to sign).
 */
export function bip143Sighash(tx: SighashTx, index: number, witnessScript: Uint8Array, valueSat: bigint, hashType: number): Uint8Array {
  const input = tx.inputs[index];
  if (!input) throw new RangeError(`input ${index} out of range`);
  const anyoneCanPay = (hashType & SIGHASH_ANYONECANPAY) !== 0;
  const base = hashType & 0x1f;
  const hashPrevouts = anyoneCanPay ? ZERO32 : hash256(concatBytes(...tx.inputs.map(outpointBytes)));
  const hashSequence =
    anyoneCanPay || base === SIGHASH_SINGLE || base === SIGHASH_NONE ? ZERO32 : hash256(concatBytes(...tx.inputs.map((i) => u32le(i.sequence))));
  let hashOutputs: Uint8Array;
  if (base === SIGHASH_SINGLE) {
    const output = tx.outputs[index];
    if (!output) throw new RangeError(`SIGHASH_SINGLE without output ${index}`);
    hashOutputs = hash256(serializeOutput(output));
  } else if (base === SIGHASH_NONE) {
    hashOutputs = ZERO32;
  } else {
    hashOutputs = hash256(concatBytes(...tx.outputs.map(serializeOutput)));
  }
  return hash256(
    concatBytes(
      u32le(tx.version),
      hashPrevouts,
      hashSequence,
      outpointBytes(input),
      varSlice(witnessScript),
      u64le(valueSat),
      u32le(input.sequence),
      hashOutputs,
      u32le(tx.locktime),
      u32le(hashType),
    ),
  );
}

/**
 * BIP143 payment sighashes for one channel: the funding input is fixed, so for
 * SIGHASH_SINGLE|ANYONECANPAY and SIGHASH_NONE|ANYONECANPAY only hashOutputs varies.
 * BIP143 digests are signed with ECDSA (segwit v0 has no other scheme).
 */
export class Bip143PaymentSighasher implements PaymentSighasher {
  /** On the prototype, not per instance: the payee holds one sighasher per open channel. */
  get signatures(): SignatureScheme {
    return ecdsa;
  }
  /** SHA-256 state after the prefix's whole 64-byte blocks, and how many bytes that is. */
  private readonly prefixState = new Uint32Array(8);
  private readonly prefixAbsorbed: number;
  /** The prefix's remaining bytes, then hashOutputs and the tail are written after them. */
  private readonly work = new Uint8Array(128);
  private readonly leftover: number;
  private readonly state = new Uint32Array(8);
  private readonly digest32 = new Uint8Array(32);
  /** What {@link singleAcp} returns, rewritten by each call (see PaymentSighasher.singleAcp). */
  private readonly singleAcpDigest = new Uint8Array(32);
  private readonly noneAcpDigest: Uint8Array;
  /** The change output's serialization, with the value overwritten per payment (no allocation). */
  private output: { readonly script: Uint8Array; readonly bytes: Uint8Array; readonly view: DataView } | null = null;

  constructor(funding: { txid: string; vout: number; valueSat: bigint; witnessScript: Uint8Array }, version: number, sequence: number, locktime: number) {
    const prefixBytes = concatBytes(
      u32le(version),
      ZERO32,
      ZERO32,
      txidToHash(funding.txid),
      u32le(funding.vout),
      varSlice(funding.witnessScript),
      u64le(funding.valueSat),
      u32le(sequence),
    );
    this.prefixState.set(SHA256_IV);
    this.prefixAbsorbed = prefixBytes.length - (prefixBytes.length % 64);
    for (let off = 0; off < this.prefixAbsorbed; off += 64) compressBlock(this.prefixState, prefixBytes, off);
    this.leftover = prefixBytes.length - this.prefixAbsorbed;
    this.work.set(prefixBytes.subarray(this.prefixAbsorbed), 0);
    this.work.set(concatBytes(u32le(locktime), u32le(SIGHASH_SINGLE_ACP)), this.leftover + 32);
    this.noneAcpDigest = hash256(concatBytes(prefixBytes, ZERO32, u32le(locktime), u32le(SIGHASH_NONE_ACP)));
  }

  /** Digest the payer signs with SIGHASH_SINGLE|ANYONECANPAY for change output `output` (this sighasher's own array, rewritten by the next call). */
  singleAcp(output: SighashOutput): Uint8Array {
    let o = this.output;
    if (o === null || o.script !== output.script) {
      const bytes = serializeOutput(output);
      o = this.output = { script: output.script, bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    }
    o.view.setBigUint64(0, output.valueSat, true);
    const s = this.state;
    // hashOutputs = SHA256(SHA256(output)), written straight into the preimage's tail.
    s.set(SHA256_IV);
    finish(s, 0, o.bytes, o.bytes.length, this.digest32, 0);
    s.set(SHA256_IV);
    finish(s, 0, this.digest32, 32, this.work, this.leftover);
    // The preimage from the prefix's midstate, then the outer SHA256.
    s.set(this.prefixState);
    finish(s, this.prefixAbsorbed, this.work, this.leftover + 40, this.digest32, 0);
    s.set(SHA256_IV);
    finish(s, 0, this.digest32, 32, this.singleAcpDigest, 0);
    return this.singleAcpDigest;
  }

  /** Digest the payer signs with SIGHASH_NONE|ANYONECANPAY (the final, whole-capacity payment). */
  noneAcp(): Uint8Array {
    return this.noneAcpDigest;
  }
}
