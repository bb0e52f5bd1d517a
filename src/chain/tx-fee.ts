/**
 * The fee a transaction the node knows of pays: what its inputs spend minus what it pays out.
 * The closer and the duplex watcher both need it to replace a conflicting spend (BIP125: the
 * replacement pays more than the transaction it replaces, in total and per vbyte).
 */
import { Transaction } from 'bitcoinjs-lib';
import { hashToTxid } from '../protocol/bytes.js';
import type { ChainBackend } from './backend.js';

/**
 * @returns `tx`'s fee in sat, from its inputs' values as the node knows them (one
 *   `getTransaction` per input); null if the node lacks one of them.
 */
export async function transactionFeeSat(backend: ChainBackend, tx: Transaction): Promise<bigint | null> {
  let inSat = 0n;
  for (const input of tx.ins) {
    const prev = await backend.getTransaction(hashToTxid(input.hash));
    const out = prev && Transaction.fromHex(prev.hex).outs[input.index];
    if (!out) return null;
    inSat += out.value;
  }
  return inSat - tx.outs.reduce((sum, o) => sum + o.value, 0n);
}
