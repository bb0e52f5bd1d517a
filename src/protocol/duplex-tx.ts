/**
 * Duplex channels (the seed's 扩展): both parties hold every state; state `i` spends the 2-of-2
 * funding output with nLockTime `L0 − i·Δ`, so the newest state is the first that can be mined
 * and voids the older ones (docs/duplex.md has the safety argument).
 *
 * - Funding: P2WSH `OP_2 <KA> <KB> OP_2 OP_CHECKMULTISIG` (A = the opener, first), funded by one
 *   or both parties in one transaction.
 * - State i: version 2, one input (the funding outpoint, nSequence 0xfffffffd: locktime on and
 *   BIP125-replaceable), nLockTime `L0 − i·Δ`, outputs A then B.
 * - Cooperative close: the same outputs at an agreed fee rate, nLockTime 0, final at once.
 * - Fees: each output pays half of the transaction's fee (A the odd satoshi); an output that
 *   would fall below dust after its half is left out and its whole balance goes to the fee, and
 *   the other output pays whatever that balance does not cover (never less than the agreed rate).
 * - Signatures: states are signed SIGHASH_ALL|ANYONECANPAY, which commits every signature to all
 *   outputs (no one can move money) and to its own input only, so either holder can later add a
 *   fee input of its own, alone, and re-broadcast (the seed's 思考). Cooperative closes and
 *   rollovers are signed SIGHASH_ALL: nobody needs to change them after both signed, and the
 *   rollover's txid is the next channel's funding outpoint, so no one may change it (with
 *   ANYONECANPAY anyone could add an input, change that txid and strand the new channel's
 *   states; a stuck rollover is covered by the newest state instead, at its locktime).
 */
import { Transaction } from 'bitcoinjs-lib';
import { dustThresholdSat } from './dust.js';
import type { NetworkName } from './network.js';
import { cooperativeWitness, MAX_LOCKTIME_HEIGHT, multisigScript, p2wshOutputScript } from './scripts.js';
import { bip143Sighash, SIGHASH_ALL, SIGHASH_ANYONECANPAY } from './sighash.js';
import { encodeSignature, feeForVsize, MAX_SIGNATURE_BYTES, sighashView, spendFunding } from './transactions.js';

export const DUPLEX_STATE_HASHTYPE = SIGHASH_ALL | SIGHASH_ANYONECANPAY;
export const DUPLEX_CLOSE_HASHTYPE = SIGHASH_ALL;
/** A transaction whose txid another one depends on commits to every input (as the funding does). */
export const DUPLEX_ROLLOVER_HASHTYPE = SIGHASH_ALL;

export type DuplexRole = 'A' | 'B';

/** What both sides agree at opening; everything else follows from it. */
export interface DuplexTerms {
  readonly network: NetworkName;
  /** The opener's key (first in the multisig script), 33-byte compressed. */
  readonly keyA: Uint8Array;
  readonly keyB: Uint8Array;
  /** Where A's and B's balances go when the channel closes. */
  readonly scriptA: Uint8Array;
  readonly scriptB: Uint8Array;
  /** A's and B's contributions; the capacity is their sum, and state 0 gives each its own back. */
  readonly contributionASat: bigint;
  readonly contributionBSat: bigint;
  /** nLockTime of state 0 (L0), a block height. */
  readonly initialLocktime: number;
  /** Δ: blocks between consecutive states' locktimes. */
  readonly deltaBlocks: number;
  /** The fee rate every state is built with (bumped later with a fee input if needed). */
  readonly stateFeeRateSatPerVb: number;
}

export interface DuplexChannel extends DuplexTerms {
  readonly capacitySat: bigint;
  readonly witnessScript: Uint8Array;
  readonly fundingScript: Uint8Array;
  readonly funding: { readonly txid: string; readonly vout: number };
  /** `txid:vout` of the funding output. */
  readonly id: string;
}

/** Balances before fees; `balanceASat + balanceBSat` is always the capacity. */
export interface DuplexBalances {
  readonly balanceASat: bigint;
  readonly balanceBSat: bigint;
}

export interface DuplexState extends DuplexBalances {
  readonly index: number;
}

export function duplexFundingScripts(keyA: Uint8Array, keyB: Uint8Array): { witnessScript: Uint8Array; fundingScript: Uint8Array } {
  const witnessScript = multisigScript(keyA, keyB);
  return { witnessScript, fundingScript: p2wshOutputScript(witnessScript) };
}

export function makeDuplexChannel(terms: DuplexTerms, funding: { txid: string; vout: number }): DuplexChannel {
  return {
    ...terms,
    ...duplexFundingScripts(terms.keyA, terms.keyB),
    capacitySat: terms.contributionASat + terms.contributionBSat,
    funding: { txid: funding.txid, vout: funding.vout },
    id: `${funding.txid}:${funding.vout}`,
  };
}

/** The terms of `channel` alone (what a record stores; the rest follows from them). */
export function termsOf(channel: DuplexChannel): DuplexTerms {
  const { network, keyA, keyB, scriptA, scriptB, contributionASat, contributionBSat, initialLocktime, deltaBlocks, stateFeeRateSatPerVb } = channel;
  return { network, keyA, keyB, scriptA, scriptB, contributionASat, contributionBSat, initialLocktime, deltaBlocks, stateFeeRateSatPerVb };
}

/**
 * nLockTime of state `index`: `L0 − index·Δ`.
 * @throws RangeError if that is below 1 (no such state can exist).
 */
export function stateLocktime(terms: Pick<DuplexTerms, 'initialLocktime' | 'deltaBlocks'>, index: number): number {
  const locktime = terms.initialLocktime - index * terms.deltaBlocks;
  if (!Number.isSafeInteger(index) || index < 0 || locktime < 1 || locktime > MAX_LOCKTIME_HEIGHT) {
    throw new RangeError(`state ${index} has no valid locktime (L0 ${terms.initialLocktime}, Δ ${terms.deltaBlocks})`);
  }
  return locktime;
}

const PLACEHOLDER_SIG = new Uint8Array(MAX_SIGNATURE_BYTES);

/** Worst-case vsize of a spend of the funding output paying A and B, once both signed. */
export function duplexSpendVsize(channel: DuplexChannel): number {
  const tx = spendFunding(channel, 0, [
    { script: channel.scriptA, valueSat: 0n },
    { script: channel.scriptB, valueSat: 0n },
  ]);
  tx.setWitness(0, cooperativeWitness('spilman-v1', PLACEHOLDER_SIG, PLACEHOLDER_SIG, channel.witnessScript));
  return tx.virtualSize();
}

export interface DuplexOutputs {
  /** In order: A's (if not dust), then B's (if not dust). */
  readonly outputs: readonly { readonly script: Uint8Array; readonly valueSat: bigint }[];
  readonly valueASat: bigint;
  readonly valueBSat: bigint;
  readonly feeSat: bigint;
}

/**
 * The outputs of a spend of `balances` at `feeRateSatPerVb`: each side pays half the fee; a side
 * left with dust gets no output (value 0) and its balance goes to the fee.
 * @throws RangeError if the balances do not add up to the capacity, or both outputs would be dust.
 */
export function duplexOutputs(channel: DuplexChannel, balances: DuplexBalances, feeRateSatPerVb: number): DuplexOutputs {
  const { balanceASat, balanceBSat } = balances;
  if (balanceASat < 0n || balanceBSat < 0n || balanceASat + balanceBSat !== channel.capacitySat) {
    throw new RangeError(`balances ${balanceASat} + ${balanceBSat} must be ≥ 0 and add up to the capacity ${channel.capacitySat}`);
  }
  const fee = feeForVsize(duplexSpendVsize(channel), feeRateSatPerVb);
  const halfA = (fee + 1n) / 2n;
  const halfB = fee / 2n;
  const keepsA = balanceASat - halfA >= dustThresholdSat(channel.scriptA);
  const keepsB = balanceBSat - halfB >= dustThresholdSat(channel.scriptB);
  // A side without an output gives its whole balance to the fee; if that is less than its half,
  // the other side pays the rest, so the transaction never pays less than the agreed rate.
  const valueASat = !keepsA ? 0n : keepsB ? balanceASat - halfA : balanceASat - (balanceBSat >= halfB ? halfA : fee - balanceBSat);
  const valueBSat = !keepsB ? 0n : keepsA ? balanceBSat - halfB : balanceBSat - (balanceASat >= halfA ? halfB : fee - balanceASat);
  if ((valueASat === 0n || valueASat < dustThresholdSat(channel.scriptA)) && (valueBSat === 0n || valueBSat < dustThresholdSat(channel.scriptB))) {
    throw new RangeError('both outputs would be dust: the capacity cannot pay the fee');
  }
  if ((keepsA && valueASat < dustThresholdSat(channel.scriptA)) || (keepsB && valueBSat < dustThresholdSat(channel.scriptB))) {
    throw new RangeError('the output left after paying the other side’s share of the fee would be dust');
  }
  const outputs = [
    ...(valueASat > 0n ? [{ script: channel.scriptA, valueSat: valueASat }] : []),
    ...(valueBSat > 0n ? [{ script: channel.scriptB, valueSat: valueBSat }] : []),
  ];
  return { outputs, valueASat, valueBSat, feeSat: channel.capacitySat - valueASat - valueBSat };
}

/** State `state.index` unsigned: nLockTime `L0 − index·Δ`, outputs at the channel's state fee rate. */
export function buildStateTx(channel: DuplexChannel, state: DuplexState): Transaction {
  const { outputs } = duplexOutputs(channel, state, channel.stateFeeRateSatPerVb);
  return spendFunding(channel, stateLocktime(channel, state.index), outputs);
}

/** The cooperative close of `balances` at `feeRateSatPerVb`, unsigned (nLockTime 0). */
export function buildCooperativeCloseTx(channel: DuplexChannel, balances: DuplexBalances, feeRateSatPerVb: number): Transaction {
  return spendFunding(channel, 0, duplexOutputs(channel, balances, feeRateSatPerVb).outputs);
}

/** What either party signs for `tx` spending the funding output with `hashType`. */
export function duplexSighash(channel: DuplexChannel, tx: Transaction, hashType: number): Uint8Array {
  return bip143Sighash(sighashView(tx), 0, channel.witnessScript, channel.capacitySat, hashType);
}

export function stateSighash(channel: DuplexChannel, state: DuplexState): Uint8Array {
  return duplexSighash(channel, buildStateTx(channel, state), DUPLEX_STATE_HASHTYPE);
}

export function closeSighash(channel: DuplexChannel, balances: DuplexBalances, feeRateSatPerVb: number): Uint8Array {
  return duplexSighash(channel, buildCooperativeCloseTx(channel, balances, feeRateSatPerVb), DUPLEX_CLOSE_HASHTYPE);
}

/** Puts both (64-byte compact) signatures in input 0's witness, A's first as the script's key order requires. */
export function completeDuplexSpend(channel: DuplexChannel, tx: Transaction, sigA: Uint8Array, sigB: Uint8Array, hashType: number): Transaction {
  const signed = tx.clone();
  signed.setWitness(0, cooperativeWitness('spilman-v1', encodeSignature(sigA, hashType), encodeSignature(sigB, hashType), channel.witnessScript));
  return signed;
}

/** A state with both signatures, ready to broadcast once final (`tip ≥ its locktime`). */
export function signedStateTx(channel: DuplexChannel, state: DuplexState, sigA: Uint8Array, sigB: Uint8Array): Transaction {
  return completeDuplexSpend(channel, buildStateTx(channel, state), sigA, sigB, DUPLEX_STATE_HASHTYPE);
}

export function signedCloseTx(channel: DuplexChannel, balances: DuplexBalances, feeRateSatPerVb: number, sigA: Uint8Array, sigB: Uint8Array): Transaction {
  return completeDuplexSpend(channel, buildCooperativeCloseTx(channel, balances, feeRateSatPerVb), sigA, sigB, DUPLEX_CLOSE_HASHTYPE);
}

export interface Rollover {
  /** Unsigned; its output 0 funds the next channel (the same 2-of-2 script). */
  readonly tx: Transaction;
  readonly feeSat: bigint;
  /** The next channel's state 0: each side's balance less its half of the fee. */
  readonly contributionASat: bigint;
  readonly contributionBSat: bigint;
}

/**
 * Close-and-reopen in one transaction, when the update budget runs out: spends the funding output
 * into a new funding output for the same keys (nLockTime 0), each side paying half the fee (a
 * side with less pays what it has, the other the rest). Signed SIGHASH_ALL
 * ({@link rolloverSighash}): its txid funds the next channel, whose state 0 is signed before it,
 * so nobody can be allowed to add an input. If it does not confirm in time, the newest state
 * (published at its locktime) settles the channel instead.
 * @throws RangeError if the balances cannot pay the fee.
 */
export function buildRolloverTx(channel: DuplexChannel, balances: DuplexBalances, feeRateSatPerVb: number): Rollover {
  const sized = spendFunding(channel, 0, [{ script: channel.fundingScript, valueSat: 0n }]);
  sized.setWitness(0, cooperativeWitness('spilman-v1', PLACEHOLDER_SIG, PLACEHOLDER_SIG, channel.witnessScript));
  const feeSat = feeForVsize(sized.virtualSize(), feeRateSatPerVb);
  let feeA = (feeSat + 1n) / 2n;
  let feeB = feeSat / 2n;
  if (balances.balanceBSat < feeB) [feeA, feeB] = [feeSat - balances.balanceBSat, balances.balanceBSat];
  if (balances.balanceASat < feeA) [feeA, feeB] = [balances.balanceASat, feeSat - balances.balanceASat];
  if (balances.balanceASat < feeA || balances.balanceBSat < feeB) throw new RangeError(`the balances cannot pay the rollover fee of ${feeSat} sat`);
  const valueSat = channel.capacitySat - feeSat;
  if (valueSat < dustThresholdSat(channel.fundingScript)) throw new RangeError('the rollover output would be dust');
  return {
    tx: spendFunding(channel, 0, [{ script: channel.fundingScript, valueSat }]),
    feeSat,
    contributionASat: balances.balanceASat - feeA,
    contributionBSat: balances.balanceBSat - feeB,
  };
}

/** What either party signs for the rollover `tx` (SIGHASH_ALL: its txid must never change). */
export function rolloverSighash(channel: DuplexChannel, tx: Transaction): Uint8Array {
  return duplexSighash(channel, tx, DUPLEX_ROLLOVER_HASHTYPE);
}

/** The rollover `tx` with both signatures. */
export function signedRolloverTx(channel: DuplexChannel, tx: Transaction, sigA: Uint8Array, sigB: Uint8Array): Transaction {
  return completeDuplexSpend(channel, tx, sigA, sigB, DUPLEX_ROLLOVER_HASHTYPE);
}
