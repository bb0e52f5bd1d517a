/**
 * The rules of a duplex channel's life: its policy, the checks each side makes on the terms and
 * on every proposed state, and the update budget.
 *
 * Who proposes: only A (the opener) proposes states; B asks A for the states in which B pays
 * (`duplex-pay-request`). With one sequencer no two different states ever share an index, so no
 * party can choose between two fully signed states with the same locktime (with two proposers,
 * simultaneous proposals of state i would give each side a state i signed by the other). The
 * proposer signs first and the receiver countersigns: the proposer is bound by its signature from
 * the moment it sends it, the receiver only once it countersigns. A's balance never drops in a
 * state B did not countersign, and B's never drops in a state it did not ask for.
 *
 * Budget: state `k` may be signed only while `L0 − k·Δ ≥ tip + marginBlocks`, so the newest
 * state always has its whole Δ-block window, in which no older state is final, still ahead of it
 * with `marginBlocks` to spare. That leaves `⌊(L0 − tip − margin) / Δ⌋ − current index` updates.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { outputScriptType } from './dust.js';
import { duplexOutputs, makeDuplexChannel, stateLocktime, type DuplexChannel, type DuplexRole, type DuplexState, type DuplexTerms } from './duplex-tx.js';
import { ProtocolError } from './errors.js';
import type { NetworkName } from './network.js';

export interface DuplexPolicy {
  /** Δ this side proposes (as A) and the smallest it accepts (as B). */
  readonly deltaBlocks: number;
  /** Blocks kept between the newest state's locktime and the tip (see the budget above). */
  readonly marginBlocks: number;
  /** Updates A plans for when it picks L0 = tip + margin + updates·Δ. */
  readonly plannedUpdates: number;
  /** The farthest L0 may be from the tip: how long coins may be locked before a unilateral close. */
  readonly maxLockBlocks: number;
  /** Announce close-and-reopen when this many updates are left. */
  readonly budgetWarningUpdates: number;
  readonly minCapacitySat: bigint;
  readonly maxCapacitySat: bigint;
  readonly minStateFeeRateSatPerVb: number;
  readonly maxStateFeeRateSatPerVb: number;
  /** Ceiling for cooperative closes and for bumping a state with a fee input. */
  readonly maxFeeRateSatPerVb: number;
  readonly minFundingConfirmations: number;
  /** Bump a broadcast state that is still unconfirmed after this many blocks. */
  readonly bumpAfterBlocks: number;
  /** The most B puts into a channel someone else opens (0: B never funds). */
  readonly maxContributionSat: bigint;
  /**
   * A coin of this value each side pays itself in the funding transaction, kept for fee bumping;
   * 0 for none. It is not itself a bump's fee input (a state's outputs are fixed, so a fee
   * input's whole value becomes fee): routine bumps use coins of exactly the planned value,
   * split off the wallet's coins, this one among them (duplex-bump.ts). Against an older state of the peer's it can be spent whole at once, as
   * any confirmed coin up to the fee ceiling (duplex-watcher.ts): overpaying beats losing.
   */
  readonly feeReserveSat: bigint;
}

export function duplexPolicy(options: Partial<DuplexPolicy> & { network: NetworkName }): DuplexPolicy {
  const regtest = options.network === 'regtest';
  const { network: _network, ...overrides } = options;
  const policy: DuplexPolicy = {
    deltaBlocks: regtest ? 6 : 144,
    marginBlocks: regtest ? 3 : 12,
    plannedUpdates: regtest ? 100 : 30,
    maxLockBlocks: regtest ? 10_000 : 52_560,
    budgetWarningUpdates: regtest ? 2 : 5,
    minCapacitySat: 10_000n,
    maxCapacitySat: 100_000_000n,
    minStateFeeRateSatPerVb: 1,
    maxStateFeeRateSatPerVb: 100,
    maxFeeRateSatPerVb: 500,
    minFundingConfirmations: regtest ? 1 : 3,
    bumpAfterBlocks: regtest ? 1 : 3,
    maxContributionSat: regtest ? 10_000_000n : 0n,
    feeReserveSat: regtest ? 20_000n : 50_000n,
    ...overrides,
  };
  for (const key of ['deltaBlocks', 'marginBlocks', 'plannedUpdates', 'maxLockBlocks', 'budgetWarningUpdates', 'minFundingConfirmations', 'bumpAfterBlocks'] as const) {
    if (!Number.isInteger(policy[key]) || policy[key] < 0) throw new RangeError(`${key} must be an integer ≥ 0`);
  }
  if (policy.deltaBlocks < 1) throw new RangeError('deltaBlocks must be ≥ 1');
  if (policy.plannedUpdates < 1) throw new RangeError('plannedUpdates must be ≥ 1');
  return policy;
}

/** L0 for a channel opened at `tipHeight` that can take `policy.plannedUpdates` updates. */
export function plannedInitialLocktime(policy: DuplexPolicy, tipHeight: number): number {
  return tipHeight + policy.marginBlocks + policy.plannedUpdates * policy.deltaBlocks;
}

/** Updates still possible after state `index` at `tipHeight` (0 when the budget is spent). */
export function updatesLeft(channel: Pick<DuplexTerms, 'initialLocktime' | 'deltaBlocks'>, index: number, tipHeight: number, marginBlocks: number): number {
  // State k needs L0 − k·Δ ≥ tip + margin, and a locktime of at least 1.
  const last = Math.min(Math.floor((channel.initialLocktime - tipHeight - marginBlocks) / channel.deltaBlocks), Math.floor((channel.initialLocktime - 1) / channel.deltaBlocks));
  return Math.max(0, last - index);
}

/**
 * B's (and A's own) check of the terms of a new channel.
 * @throws ProtocolError INVALID_PUBKEY, INVALID_SCRIPT, CAPACITY_TOO_SMALL/LARGE, LOCKTIME_INVALID, FEE_RATE_INVALID.
 */
export function checkDuplexTerms(secp: Secp256k1, policy: DuplexPolicy, terms: DuplexTerms, tipHeight: number): void {
  for (const key of [terms.keyA, terms.keyB]) {
    if (key.length !== 33 || !secp.isPublicKey(key)) throw new ProtocolError('INVALID_PUBKEY');
  }
  for (const script of [terms.scriptA, terms.scriptB]) {
    if (outputScriptType(script) === null || outputScriptType(script) === 'p2a') throw new ProtocolError('INVALID_SCRIPT', 'payout scripts must be a standard P2PKH, P2SH, P2WPKH, P2WSH or P2TR');
  }
  const capacity = terms.contributionASat + terms.contributionBSat;
  if (terms.contributionASat < 0n || terms.contributionBSat < 0n) throw new ProtocolError('CAPACITY_TOO_SMALL', 'negative contribution');
  if (capacity < policy.minCapacitySat) throw new ProtocolError('CAPACITY_TOO_SMALL', `${capacity} < ${policy.minCapacitySat}`);
  if (capacity > policy.maxCapacitySat) throw new ProtocolError('CAPACITY_TOO_LARGE', `${capacity} > ${policy.maxCapacitySat}`);
  if (!Number.isInteger(terms.deltaBlocks) || terms.deltaBlocks < policy.deltaBlocks) {
    throw new ProtocolError('LOCKTIME_INVALID', `Δ ${terms.deltaBlocks} is below this peer's minimum of ${policy.deltaBlocks} blocks`);
  }
  if (!Number.isInteger(terms.initialLocktime) || terms.initialLocktime < tipHeight + policy.marginBlocks + terms.deltaBlocks) {
    throw new ProtocolError('LOCKTIME_INVALID', `L0 ${terms.initialLocktime} leaves no update at tip ${tipHeight} (margin ${policy.marginBlocks}, Δ ${terms.deltaBlocks})`);
  }
  if (terms.initialLocktime > tipHeight + policy.maxLockBlocks) {
    throw new ProtocolError('LOCKTIME_INVALID', `L0 ${terms.initialLocktime} is more than ${policy.maxLockBlocks} blocks after the tip ${tipHeight}`);
  }
  const rate = terms.stateFeeRateSatPerVb;
  if (!Number.isInteger(rate) || rate < policy.minStateFeeRateSatPerVb || rate > policy.maxStateFeeRateSatPerVb) {
    throw new ProtocolError('FEE_RATE_INVALID', `state fee rate ${rate} sat/vB outside ${policy.minStateFeeRateSatPerVb}..${policy.maxStateFeeRateSatPerVb}`);
  }
  // State 0 must be a transaction that pays its fee (the funding outpoint does not change its size).
  const probe = makeDuplexChannel(terms, { txid: '00'.repeat(32), vout: 0 });
  try {
    duplexOutputs(probe, { balanceASat: terms.contributionASat, balanceBSat: terms.contributionBSat }, rate);
  } catch (err) {
    throw new ProtocolError('CAPACITY_TOO_SMALL', `state 0 cannot pay its fee: ${(err as Error).message}`);
  }
}

/**
 * The state after `payer` pays `amountSat` on top of `current` (what A proposes), numbered
 * `index` (the next one unless A skips an index B refused).
 * @throws RangeError for a non-positive amount; ProtocolError INSUFFICIENT_BALANCE, or
 *   UPDATE_BUDGET_EXHAUSTED / BALANCE_MISMATCH from {@link checkNextState}.
 */
export function nextState(
  channel: DuplexChannel,
  current: DuplexState,
  payer: DuplexRole,
  amountSat: bigint,
  tipHeight: number,
  marginBlocks: number,
  index = current.index + 1,
): DuplexState {
  if (amountSat <= 0n) throw new RangeError('a payment must be positive');
  const from = payer === 'A' ? current.balanceASat : current.balanceBSat;
  if (amountSat > from) throw new ProtocolError('INSUFFICIENT_BALANCE', `${payer} has ${from} sat, cannot pay ${amountSat}`);
  const next: DuplexState = {
    index,
    balanceASat: payer === 'A' ? current.balanceASat - amountSat : current.balanceASat + amountSat,
    balanceBSat: payer === 'B' ? current.balanceBSat - amountSat : current.balanceBSat + amountSat,
  };
  checkNextState(channel, current, next, tipHeight, marginBlocks);
  return next;
}

/**
 * Checks that `next` may follow `current`: a higher index (A skips the index of a state B
 * refused, since B still holds A's signature on it), balances adding up to the capacity, outputs
 * that pay their fee, and a locktime still inside the budget (`L0 − index·Δ ≥ tip + margin`).
 * @throws ProtocolError STATE_INDEX_MISMATCH, BALANCE_MISMATCH, UPDATE_BUDGET_EXHAUSTED.
 */
export function checkNextState(channel: DuplexChannel, current: DuplexState, next: DuplexState, tipHeight: number, marginBlocks: number): void {
  if (!Number.isSafeInteger(next.index) || next.index <= current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `state ${next.index}, expected more than ${current.index}`);
  try {
    duplexOutputs(channel, next, channel.stateFeeRateSatPerVb);
  } catch (err) {
    throw new ProtocolError('BALANCE_MISMATCH', (err as Error).message);
  }
  let locktime: number | null;
  try {
    locktime = stateLocktime(channel, next.index);
  } catch {
    locktime = null;
  }
  if (locktime === null || locktime < tipHeight + marginBlocks) {
    throw new ProtocolError('UPDATE_BUDGET_EXHAUSTED', `state ${next.index} would have locktime ${locktime ?? 'none'}, less than ${marginBlocks} blocks after the tip ${tipHeight}`);
  }
}

/**
 * B's check of a state A proposed: it follows the current one, and B's balance does not drop,
 * or drops by exactly `requestedSat` when the state answers B's pay request.
 * @throws ProtocolError as {@link checkNextState}, or BALANCE_MISMATCH.
 */
export function checkProposalForB(
  channel: DuplexChannel,
  current: DuplexState,
  proposed: DuplexState,
  requestedSat: bigint | null,
  tipHeight: number,
  marginBlocks: number,
): void {
  checkNextState(channel, current, proposed, tipHeight, marginBlocks);
  const dropB = current.balanceBSat - proposed.balanceBSat;
  // With a request named, the state must be exactly that payment (else B would report a
  // pay-back done that never happened); without one, B's balance may only grow.
  if (requestedSat !== null ? dropB !== requestedSat : dropB > 0n) {
    throw new ProtocolError('BALANCE_MISMATCH', `the state takes ${dropB} sat from B, which asked to pay ${requestedSat ?? 'nothing'}`);
  }
}
