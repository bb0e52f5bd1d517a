/**
 * What one side keeps about one duplex channel (docs/duplex.md), as tagged noun states: each tag
 * holds exactly what that stage of the channel has, so an open channel always has its newest
 * state signed by both (no optional `current`), and an opening has no channel id yet.
 *
 * These are the persisted states (the store layer may depend on src/protocol only): a driver
 * saves a state whole whenever a step asks it to persist. Records stored by the older peer (one
 * bag of optional fields) are read by {@link decodeLegacyDuplexRecord} (duplex-state-legacy.ts).
 *
 * Opening, A:  Contributing → Proposed → CheckingAccept → Funding → Open
 * Opening, B:  Vetting → KeyPending → ContributingB → Accepted → CheckingFund → Open
 * Then:        Open → Closing (cooperative, unilateral or rollover) → Closed; or Aborted.
 * Only Proposed, Accepted, Funding and every later state are ever persisted; the others are a
 * step's wait for the wallet or the node, kept in memory by the driver.
 */
import type { FundingInput, FundingOutput } from './duplex-funding.js';
import { makeDuplexChannel, type DuplexChannel, type DuplexRole, type DuplexState, type DuplexTerms } from './duplex-tx.js';
import type { MessageOf } from './messages.js';

/** A fully signed state: both signatures (64-byte compact, SIGHASH_ALL|ANYONECANPAY). */
export interface SignedState extends DuplexState {
  readonly sigA: Uint8Array;
  readonly sigB: Uint8Array;
}

/** A's proposal waiting for B's countersignature (A signs each index once). */
export interface Proposal extends DuplexState {
  readonly sigA: Uint8Array;
  /** B's pay request this state answers. */
  readonly requestId?: string;
  /** This state cancels the refused state of that index. */
  readonly cancels?: number;
}

export type CloseKind = 'cooperative' | 'unilateral' | 'rollover';

/** How the channel is being closed. */
export interface CloseRecord {
  readonly kind: CloseKind;
  readonly txid: string;
  /** Empty while this side's signature is out and the peer's has not come back. */
  readonly txHex: string;
  readonly feeSat: bigint;
  /** Tip height when it was (last) broadcast; a unilateral close is bumped after bumpAfterBlocks. */
  readonly broadcastHeight?: number;
  /** The state a unilateral close publishes. */
  readonly stateIndex?: number;
  /** Fee rate of the current version (bumps raise it). */
  readonly feeRateSatPerVb: number;
  /** The next channel's id, for a rollover. */
  readonly successorId?: string;
  /** The cooperative close or rollover this unilateral close stands in for (same balances: fine if it wins). */
  readonly supersededTxid?: string;
  /** Earlier unilateral versions of this side (older states): one of them in the mempool is ours. */
  readonly olderOwnTxids?: readonly string[];
  /** Height at which another acceptable spend was first seen in the mempool. */
  readonly rivalSeenHeight?: number;
  /** The wallet reservation of the fee coin in the current bumped version. */
  readonly bumpReservation?: string;
}

/** How the funding output was finally spent, read from the chain. */
export interface Settlement {
  readonly txid: string;
  readonly confirmations: number;
  readonly kind: CloseKind | 'unknown';
  /** Locktime-derived state index when a state was mined (ours or an old one). */
  readonly stateIndex?: number;
  readonly valueASat: bigint;
  readonly valueBSat: bigint;
  readonly feeSat: bigint;
}

export interface QueuedPayBack {
  readonly requestId: string;
  readonly amountSat: bigint;
}

/** A's rollover proposal: every retry reuses it (one state 0 per new channel). */
export interface RolloverProposal {
  readonly feeRateSatPerVb: number;
  readonly initialLocktime: number;
  readonly refused: boolean;
}

/** What every state of a channel holds, from the first step on. */
export interface ChannelBase {
  readonly tempId: string;
  readonly role: DuplexRole;
  /** Our duplex key index (the signer derives the key from it). */
  readonly keyIndex: number;
  readonly fundingFeeRateSatPerVb: number;
  readonly minFundingConfirmations: number;
  /** Tip height when the opening started (openings that stall are abandoned). */
  readonly openedHeight: number;
  /** B: the source address of the connection that asked for the opening (limits per address). */
  readonly openedBy: string | null;
  /** Our own coins and outputs in the funding transaction (none in a rollover's channel). */
  readonly ownInputs: readonly FundingInput[];
  readonly ownOutputs: readonly FundingOutput[];
}

/** Totals shown by status; they only grow. */
export interface Counters {
  readonly updates: number;
  readonly paidAtoBSat: bigint;
  readonly paidBtoASat: bigint;
}

/** A channel whose funding is known and whose state 0 both signed. */
export interface LiveChannel extends ChannelBase, Counters {
  readonly channelId: string;
  readonly terms: DuplexTerms;
  /** A: the fully signed funding once A signed its inputs (unsigned before); B: the unsigned one; a rollover's channel: the rollover. */
  readonly fundingTxHex: string;
  readonly fundingConfirmed: boolean;
  /** Height of the block that confirmed the funding (where a search for its spend starts); null until known. */
  readonly fundingHeight: number | null;
  /** B: tip height when B signed its funding inputs (a funding the node never sees is given up on). */
  readonly fundingSignedHeight: number | null;
  /** B: its funding inputs went back to the wallet because the funding never reached the node. */
  readonly ownInputsReleased: boolean;
  /** The newest state both signed. */
  readonly current: SignedState;
  readonly pending: Proposal | null;
  /** The highest index A signed and B refused: never reused (B could still countersign it). */
  readonly refusedIndex: number | null;
  /** A: B's pay requests already proposed (the last 100), so a repeat is not paid twice. */
  readonly proposedRequests: readonly string[];
  readonly rolloverProposal: RolloverProposal | null;
  /** B's payments to A waiting for A to propose them. */
  readonly payBackQueue: readonly QueuedPayBack[];
  /** The channel this one was rolled over from. */
  readonly predecessorId: string | null;
}

/** A's terms before B answered: `keyB` and `scriptB` stand in for B's (only their size matters). */
export type DraftTerms = DuplexTerms;

export type DuplexChannelState =
  /** A: waits for the wallet's coins for its contribution (in memory only). */
  | (ChannelBase & { readonly type: 'Contributing'; readonly role: 'A'; readonly terms: DraftTerms })
  /** A: `duplex-open` sent, waiting for B's `duplex-accept`. */
  | (ChannelBase & { readonly type: 'Proposed'; readonly role: 'A'; readonly terms: DraftTerms })
  /** A: B's accept is in, its inputs are being looked up on the node (in memory only). */
  | (ChannelBase & { readonly type: 'CheckingAccept'; readonly role: 'A'; readonly terms: DraftTerms; readonly accept: MessageOf<'duplex-accept'> })
  /** A: `duplex-fund` sent (state 0 signed by A, funding unsigned), waiting for `duplex-funded`. */
  | (ChannelBase & { readonly type: 'Funding'; readonly role: 'A'; readonly terms: DuplexTerms; readonly channelId: string; readonly fundingTxHex: string; readonly state0: Proposal })
  /** B: A's open passed the cheap checks; A's inputs are being looked up (in memory only). */
  | (ChannelBase & { readonly type: 'Vetting'; readonly role: 'B'; readonly open: MessageOf<'duplex-open'> })
  /** B: waiting for a key of its own and a payout script (in memory only). */
  | (ChannelBase & { readonly type: 'KeyPending'; readonly role: 'B'; readonly open: MessageOf<'duplex-open'> })
  /** B: waiting for the wallet's coins for its contribution (in memory only). */
  | (ChannelBase & { readonly type: 'ContributingB'; readonly role: 'B'; readonly terms: DuplexTerms })
  /** B: `duplex-accept` sent, waiting for A's `duplex-fund`. */
  | (ChannelBase & { readonly type: 'Accepted'; readonly role: 'B'; readonly terms: DuplexTerms })
  /** B: A's fund is in, the other inputs are being looked up (in memory only). */
  | (ChannelBase & { readonly type: 'CheckingFund'; readonly role: 'B'; readonly terms: DuplexTerms; readonly fund: MessageOf<'duplex-fund'>; readonly fundTipHeight: number })
  | (LiveChannel & { readonly type: 'Open' })
  | (LiveChannel & { readonly type: 'Closing'; readonly close: CloseRecord })
  /** The funding output is spent by a confirmed transaction. `close` is ours, if we started one. */
  | (LiveChannel & { readonly type: 'Closed'; readonly close: CloseRecord | null; readonly settlement: Settlement })
  /**
   * The opening stopped (no funding was signed, or the one signed can never confirm). What the
   * channel had is kept for the record: `live` when state 0 was signed.
   */
  | (ChannelBase & { readonly type: 'Aborted'; readonly terms: DuplexTerms; readonly live: LiveChannel | null });

export type DuplexStateType = DuplexChannelState['type'];
export type StateOf<T extends DuplexStateType> = Extract<DuplexChannelState, { type: T }>;
export type LiveState = StateOf<'Open' | 'Closing' | 'Closed'>;

/** The coarse phase apps and status show (and the tests read). */
export type DuplexPhase = 'opening' | 'open' | 'closing' | 'closed' | 'aborted';

export function phaseOf(state: DuplexChannelState): DuplexPhase {
  switch (state.type) {
    case 'Open':
      return 'open';
    case 'Closing':
      return 'closing';
    case 'Closed':
      return 'closed';
    case 'Aborted':
      return 'aborted';
    default:
      return 'opening';
  }
}

/** Whether the state holds a channel both signed state 0 of. */
export function isLive(state: DuplexChannelState): state is LiveState {
  return state.type === 'Open' || state.type === 'Closing' || state.type === 'Closed';
}

/** The channel id once the funding is known (Funding and later), else null. */
export function channelIdOf(state: DuplexChannelState): string | null {
  if (isLive(state) || state.type === 'Funding') return state.channelId;
  if (state.type === 'Aborted') return state.live?.channelId ?? null;
  return null;
}

/** The channel of a live state (its terms and funding outpoint). */
export function liveChannel(state: Pick<LiveChannel, 'terms' | 'channelId'>): DuplexChannel {
  return makeDuplexChannel(state.terms, parseOutpoint(state.channelId));
}

export function parseOutpoint(id: string): { txid: string; vout: number } {
  const colon = id.lastIndexOf(':');
  return { txid: id.slice(0, colon), vout: Number(id.slice(colon + 1)) };
}

/** The base fields of any state, for building the next one. */
export function baseOf(state: ChannelBase): ChannelBase {
  return {
    tempId: state.tempId,
    role: state.role,
    keyIndex: state.keyIndex,
    fundingFeeRateSatPerVb: state.fundingFeeRateSatPerVb,
    minFundingConfirmations: state.minFundingConfirmations,
    openedHeight: state.openedHeight,
    openedBy: state.openedBy,
    ownInputs: state.ownInputs,
    ownOutputs: state.ownOutputs,
  };
}

/** The live fields of a live state (drops its tag and what the tag adds). */
export function liveOf(state: LiveChannel): LiveChannel {
  return {
    ...baseOf(state),
    channelId: state.channelId,
    terms: state.terms,
    fundingTxHex: state.fundingTxHex,
    fundingConfirmed: state.fundingConfirmed,
    fundingHeight: state.fundingHeight,
    fundingSignedHeight: state.fundingSignedHeight,
    ownInputsReleased: state.ownInputsReleased,
    current: state.current,
    pending: state.pending,
    refusedIndex: state.refusedIndex,
    proposedRequests: state.proposedRequests,
    rolloverProposal: state.rolloverProposal,
    payBackQueue: state.payBackQueue,
    predecessorId: state.predecessorId,
    updates: state.updates,
    paidAtoBSat: state.paidAtoBSat,
    paidBtoASat: state.paidBtoASat,
  };
}
