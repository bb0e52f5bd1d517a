/**
 * Exact virtual size of a transaction that spends only P2WPKH inputs, before it is signed, and
 * the fee such a size costs at a given rate.
 *
 * The only byte count not known before signing is the DER signature's. We count the largest one
 * our signer can produce: 72 bytes with the sighash byte. DER of (r, s) is at most 2 + (2 + 33) +
 * (2 + 33) = 72 bytes plus sighash = 73 in general, but every {@link Secp256k1} implementation
 * returns low-S signatures (s < n/2, so s needs no 0x00 sign-padding byte: at most 32 bytes), which
 * caps DER at 71 and the witness item at 72 (Bitcoin Core's wallet counts the same 72). A real
 * signature is 0 to 2 bytes shorter, i.e. 0 to 0.5 vB per input, so the fee rate actually paid is
 * never below the requested one.
 */
import { outputSize } from '../protocol/dust.js';

/** Largest low-S DER signature (71) plus the sighash byte. */
export const MAX_P2WPKH_SIGNATURE_BYTES = 72;

/** outpoint 32 + 4, empty scriptSig length 1, nSequence 4: weighed at 4 WU per byte. */
const P2WPKH_INPUT_NON_WITNESS_BYTES = 32 + 4 + 1 + 4;
/** item count 1, signature length 1 + signature, public key length 1 + 33. */
const P2WPKH_WITNESS_BYTES = 1 + 1 + MAX_P2WPKH_SIGNATURE_BYTES + 1 + 33;

/** Weight of one P2WPKH input: 4 × 41 + 108 = 272 WU, i.e. exactly 68 vB. */
export const P2WPKH_INPUT_WEIGHT = 4 * P2WPKH_INPUT_NON_WITNESS_BYTES + P2WPKH_WITNESS_BYTES;
export const P2WPKH_INPUT_VBYTES = P2WPKH_INPUT_WEIGHT / 4;

function compactSizeLength(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : 5;
}

/**
 * @param inputCount number of P2WPKH inputs (≥ 1 for a valid transaction; 0 gives the size of
 *   everything but the inputs, segwit marker included).
 * @param outputScripts the output scripts, in order.
 * @returns the transaction's weight in WU with worst-case signatures.
 * @throws RangeError if `inputCount` is negative or not an integer.
 */
export function p2wpkhSpendWeight(inputCount: number, outputScripts: readonly Uint8Array[]): number {
  if (!Number.isInteger(inputCount) || inputCount < 0) throw new RangeError(`bad input count ${inputCount}`);
  let nonWitness = 4 + compactSizeLength(inputCount) + inputCount * P2WPKH_INPUT_NON_WITNESS_BYTES;
  nonWitness += compactSizeLength(outputScripts.length);
  for (const script of outputScripts) nonWitness += outputSize(script);
  nonWitness += 4;
  // Segwit marker and flag (2 WU), then one witness per input.
  const witness = 2 + inputCount * P2WPKH_WITNESS_BYTES;
  return 4 * nonWitness + witness;
}

/**
 * @returns the virtual size (weight / 4, rounded up) of a transaction spending `inputCount`
 *   P2WPKH inputs to `outputScripts`, with worst-case signatures.
 * @throws RangeError if `inputCount` is negative or not an integer.
 */
export function p2wpkhSpendVsize(inputCount: number, outputScripts: readonly Uint8Array[]): number {
  return Math.ceil(p2wpkhSpendWeight(inputCount, outputScripts) / 4);
}

/** @returns the fee for `vsize` at `feeRateSatPerVb`, rounded up to a whole satoshi. */
export function feeForVsize(feeRateSatPerVb: number, vsize: number): bigint {
  return BigInt(Math.ceil(feeRateSatPerVb * vsize));
}
