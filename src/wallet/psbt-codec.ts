/**
 * Reading and writing a PSBT whose unsigned transaction has no input, which bitcoinjs-lib 7
 * (with bip174 3) gets wrong both ways.
 *
 * Writing: bip174 writes one empty input map even when there is no input, a stray 00 byte that
 * BIP174 readers (Bitcoin Core's `decodepsbt`, btcd) take for the first output's map, then
 * refuse the PSBT for its extra data. {@link writePsbt} drops it.
 *
 * Reading: BIP174 serializes the unsigned transaction without witnesses, so a transaction with no input
 * starts `version | 00 (no input) | count of outputs`. bitcoinjs-lib parses it as a segwit
 * transaction (a 00 marker), and fails, or misreads it when there is one output (01 looks like
 * the segwit flag). An output-only funding PSBT (see psbt-funding.ts) is exactly such a PSBT, so
 * reading it takes {@link readPsbt}: the same parse, with the unsigned transaction read as BIP174 says.
 * It relies on two bitcoinjs-lib internals reached through a PSBT's own objects (the classes of
 * `psbt.data` and of its unsigned transaction), pinned with the dependency's version.
 */
import { Psbt, Transaction, type Network } from 'bitcoinjs-lib';

interface PsbtTransactionLike {
  tx: Transaction;
}
interface PsbtBaseClass {
  fromBuffer(buffer: Uint8Array, txFromBuffer: (buffer: Uint8Array) => PsbtTransactionLike): Psbt['data'];
}

/**
 * Parses a binary PSBT, with or without inputs.
 * @throws Error (bitcoinjs-lib's or ours) when it is not a valid PSBT.
 */
export function readPsbt(bytes: Uint8Array, network: Network): Psbt {
  const blank = new Psbt({ network });
  const PsbtBase = blank.data.constructor as unknown as PsbtBaseClass;
  const PsbtTransaction = blank.data.globalMap.unsignedTx.constructor as new (buffer?: Uint8Array) => PsbtTransactionLike;
  const data = PsbtBase.fromBuffer(bytes, (txBytes) => {
    if (txBytes.length < 5 || txBytes[4] !== 0x00) return new PsbtTransaction(txBytes);
    const unsigned = new PsbtTransaction(); // an empty transaction, replaced by the one read
    unsigned.tx = inputlessTx(txBytes);
    return unsigned;
  });
  return new Psbt({ network }, data);
}

/**
 * Serializes a PSBT as BIP174 says, also when it has no input.
 */
export function writePsbt(psbt: Psbt): Uint8Array {
  const bytes = psbt.toBuffer();
  if (psbt.inputCount > 0) return bytes;
  const r = reader(bytes);
  r.skip(5); // magic
  for (let keyLength = r.varint(); keyLength !== 0; keyLength = r.varint()) {
    r.skip(keyLength);
    r.skip(r.varint());
  }
  const strayAt = r.at();
  if (bytes[strayAt] !== 0x00) throw new Error('unreachable: no empty input map to drop');
  return Uint8Array.from([...bytes.subarray(0, strayAt), ...bytes.subarray(strayAt + 1)]);
}

function reader(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new Error('truncated');
  };
  const u32 = () => (need(4), (at += 4), view.getUint32(at - 4, true));
  return {
    at: () => at,
    u32,
    skip: (n: number) => (need(n), (at += n)),
    bytes: (n: number) => (need(n), (at += n), bytes.slice(at - n, at)),
    u64: () => (need(8), (at += 8), view.getBigUint64(at - 8, true)),
    varint: (): number => {
      need(1);
      const first = bytes[at++]!;
      if (first < 0xfd) return first;
      if (first === 0xfd) return (need(2), (at += 2), view.getUint16(at - 2, true));
      if (first === 0xfe) return u32();
      throw new Error('count too large');
    },
  };
}

/** A transaction with no input, serialized without witness (BIP174's unsigned transaction). */
function inputlessTx(bytes: Uint8Array): Transaction {
  const r = reader(bytes);
  const { u32, varint } = r;
  const tx = new Transaction();
  tx.version = u32();
  if (varint() !== 0) throw new Error('unreachable: not an input-less transaction');
  const outputs = varint();
  for (let i = 0; i < outputs; i++) {
    const value = r.u64();
    tx.addOutput(r.bytes(varint()), value);
  }
  tx.locktime = u32();
  if (r.at() !== bytes.length) throw new Error('unsigned transaction: trailing bytes');
  return tx;
}
