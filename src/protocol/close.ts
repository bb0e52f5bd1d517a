/**
 * The payee's close: the newest payment T3 completed with the payee's own outputs and signature.
 * The payee pays the fee from its share and signs SIGHASH_ALL, so it alone can replace its close
 * with a higher fee at any time (BIP125) — the payer's signature covers only its change.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { Channel } from './channel.js';
import { signBatchClose } from './batch-close.js';

export interface LatestPayment {
  readonly totalSat: bigint;
  /** The payer's 64-byte compact signature on that total. */
  readonly signature: Uint8Array;
}

export interface SignedClose {
  readonly txHex: string;
  readonly txid: string;
  readonly feeSat: bigint;
  readonly vsize: number;
  /** What the payee's output carries: its share minus the fee. */
  readonly payeeValueSat: bigint;
  /** What goes back to the payer (output 0), 0 for a whole-capacity payment. */
  readonly payerValueSat: bigint;
}

/**
 * Builds and signs the close of `channel` for the newest payment: a batch of one (see
 * batch-close.ts), output 0 the payer's change, output 1 the payee's share minus the fee.
 * @throws RangeError if the payee's output would be dust after the fee (closing would cost more
 *   than it earns; the payee should let the payer refund instead).
 */
export function signClose(
  secp: Secp256k1,
  channel: Channel,
  payment: LatestPayment,
  payeePrivateKey: Uint8Array,
  payeeScript: Uint8Array,
  feeRateSatPerVb: number,
): SignedClose {
  const batch = signBatchClose(secp, [{ channel, totalSat: payment.totalSat, signature: payment.signature, payeePrivateKey }], payeeScript, feeRateSatPerVb);
  return {
    txHex: batch.txHex,
    txid: batch.txid,
    feeSat: batch.feeSat,
    vsize: batch.vsize,
    payeeValueSat: batch.payeeValueSat,
    payerValueSat: channel.capacitySat - payment.totalSat,
  };
}
