/**
 * Builds and signs a version-2 transaction spending P2WPKH coins: BIP143 sighash (SIGHASH_ALL)
 * from bitcoinjs-lib, the signature from the project's {@link Secp256k1}, DER-encoded by
 * bitcoinjs-lib. Every signature is verified before the transaction is returned, so a faulty
 * signer shows up here and not as a mempool rejection.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { payments, script as bscript, Transaction } from 'bitcoinjs-lib';
import type { Outpoint } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { TxOutputSpec } from './coin-selection.js';
import type { KeyPair } from './keys.js';

/**
 * nSequence of every input: opts in to replacement (BIP125), so the wallet can later bump the
 * fee of a stuck funding transaction, and enables nLockTime.
 */
export const RBF_SEQUENCE = 0xfffffffd;

export interface P2wpkhInput {
  readonly outpoint: Outpoint;
  readonly valueSat: bigint;
  readonly key: KeyPair;
}

export interface SignRequest {
  readonly inputs: readonly P2wpkhInput[];
  readonly outputs: readonly TxOutputSpec[];
  /** A block height (< 500,000,000); see {@link Wallet.fund} for why it is the synced height. */
  readonly locktime: number;
}

/**
 * @returns the signed transaction.
 * @throws RangeError if `locktime` is not a block height; Error if a signature does not verify
 *   (a broken signer; nothing should be broadcast then).
 */
export function signP2wpkhTransaction(request: SignRequest, secp: Secp256k1): Transaction {
  if (!Number.isInteger(request.locktime) || request.locktime < 0 || request.locktime >= 500_000_000) {
    throw new RangeError(`locktime must be a block height, got ${request.locktime}`);
  }
  const tx = new Transaction();
  tx.version = 2;
  tx.locktime = request.locktime;
  for (const input of request.inputs) {
    tx.addInput(hexToBytes(input.outpoint.txid).reverse(), input.outpoint.vout, RBF_SEQUENCE);
  }
  for (const output of request.outputs) tx.addOutput(output.script, output.valueSat);

  request.inputs.forEach((input, index) => tx.setWitness(index, signP2wpkhInput(tx, index, input.valueSat, input.key, secp)));
  return tx;
}

/**
 * The witness of input `index` of `tx` spending a P2WPKH coin of `key` worth `valueSat`
 * (SIGHASH_ALL), verified before it is returned.
 * @throws Error if the signature does not verify (a broken signer).
 */
export function signP2wpkhInput(tx: Transaction, index: number, valueSat: bigint, key: KeyPair, secp: Secp256k1): Uint8Array[] {
  const { privateKey, publicKey } = key;
  // BIP143: a P2WPKH input's scriptCode is the P2PKH script of the same key hash.
  const scriptCode = payments.p2pkh({ pubkey: publicKey }).output;
  if (!scriptCode) throw new Error('unreachable: p2pkh without output');
  const digest = tx.hashForWitnessV0(index, scriptCode, valueSat, Transaction.SIGHASH_ALL);
  const signature = secp.ecdsaSign(digest, privateKey);
  if (!secp.ecdsaVerify(signature, digest, publicKey)) {
    throw new Error(`signature for input ${index} does not verify (signer ${secp.name})`);
  }
  return [bscript.signature.encode(signature, Transaction.SIGHASH_ALL), publicKey];
}
