/**
 * The joint funding transaction of a duplex channel. A builds it from both sides' inputs and
 * outputs; each side checks that it contains its own inputs and outputs exactly and the funding
 * output, before it signs state 0 (B) or its inputs (both, after holding state 0 signed by both).
 *
 * Its txid must not change once state 0 is signed over it: every input must be segwit (checked
 * against the chain by the caller, since an unsigned input does not show its type) and carry no
 * scriptSig.
 */
import { Transaction } from 'bitcoinjs-lib';
import { equalBytes, hashToTxid, txidToHash } from './bytes.js';
import { ProtocolError } from './errors.js';
import { SEQUENCE_LOCKTIME_RBF, TX_VERSION } from './transactions.js';

export interface FundingInput {
  readonly txid: string;
  readonly vout: number;
  readonly valueSat: bigint;
}

export interface FundingOutput {
  readonly script: Uint8Array;
  readonly valueSat: bigint;
}

/** Output 0 funds the channel; then A's outputs, then B's. Inputs: A's, then B's. Unsigned. */
export function buildDuplexFundingTx(
  fundingScript: Uint8Array,
  capacitySat: bigint,
  inputs: readonly FundingInput[],
  outputs: readonly FundingOutput[],
): Transaction {
  const tx = new Transaction();
  tx.version = TX_VERSION;
  tx.locktime = 0;
  for (const i of inputs) tx.addInput(txidToHash(i.txid), i.vout, SEQUENCE_LOCKTIME_RBF);
  tx.addOutput(fundingScript, capacitySat);
  for (const o of outputs) tx.addOutput(o.script, o.valueSat);
  return tx;
}

/**
 * Checks a proposed funding transaction from one side's point of view.
 * @returns the transaction, its txid and the outpoints of the other side's inputs (to check on chain).
 * @throws ProtocolError FUNDING_MALFORMED or FUNDING_MISMATCH.
 */
export function checkDuplexFundingTx(
  txHex: string,
  fundingVout: number,
  expected: { fundingScript: Uint8Array; capacitySat: bigint; ownInputs: readonly FundingInput[]; ownOutputs: readonly FundingOutput[] },
): { tx: Transaction; txid: string; otherInputs: { txid: string; vout: number }[]; ownIndexes: number[] } {
  let tx: Transaction;
  try {
    tx = Transaction.fromHex(txHex);
  } catch (err) {
    throw new ProtocolError('FUNDING_MALFORMED', (err as Error).message);
  }
  if (tx.ins.length === 0) throw new ProtocolError('FUNDING_MALFORMED', 'no inputs');
  // A locktime would let the builder hold the other side's coins in a transaction not yet valid.
  if (tx.locktime !== 0) throw new ProtocolError('FUNDING_MISMATCH', `nLockTime ${tx.locktime}: a duplex funding is final at once (0)`);
  const seen = new Set<string>();
  const otherInputs: { txid: string; vout: number }[] = [];
  const ownIndexes: number[] = [];
  for (const [i, input] of tx.ins.entries()) {
    if (input.script.length > 0) throw new ProtocolError('FUNDING_NOT_SEGWIT', `input ${i} has a scriptSig`);
    const txid = hashToTxid(input.hash);
    const key = `${txid}:${input.index}`;
    if (seen.has(key)) throw new ProtocolError('FUNDING_MALFORMED', `input ${key} spent twice`);
    seen.add(key);
    if (expected.ownInputs.some((o) => o.txid === txid && o.vout === input.index)) ownIndexes.push(i);
    else otherInputs.push({ txid, vout: input.index });
  }
  for (const own of expected.ownInputs) {
    if (!seen.has(`${own.txid}:${own.vout}`)) throw new ProtocolError('FUNDING_MISMATCH', `own input ${own.txid}:${own.vout} is missing`);
  }
  const funding = tx.outs[fundingVout];
  if (!funding || funding.value !== expected.capacitySat || !equalBytes(funding.script, expected.fundingScript)) {
    throw new ProtocolError('FUNDING_MISMATCH', `output ${fundingVout} does not pay ${expected.capacitySat} sat to the channel script`);
  }
  const unmatched = tx.outs.filter((_, vout) => vout !== fundingVout);
  for (const own of expected.ownOutputs) {
    const at = unmatched.findIndex((o) => o.value === own.valueSat && equalBytes(o.script, own.script));
    if (at < 0) throw new ProtocolError('FUNDING_MISMATCH', `own output of ${own.valueSat} sat is missing`);
    unmatched.splice(at, 1);
  }
  return { tx, txid: tx.getId(), otherInputs, ownIndexes };
}

/** Whether a previous output script is a witness program (so spending it cannot change the txid). */
export function isWitnessOutputScript(scriptHex: string): boolean {
  return /^00(14[0-9a-f]{40}|20[0-9a-f]{64})$/.test(scriptHex) || /^5120[0-9a-f]{64}$/.test(scriptHex);
}
