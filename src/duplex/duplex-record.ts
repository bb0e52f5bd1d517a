/**
 * What each side keeps about one duplex channel (persisted by duplex-store.ts).
 */
import { makeDuplexChannel, type DuplexChannel, type DuplexRole, type DuplexState, type DuplexTerms } from '../protocol/duplex-tx.js';

export type DuplexPhase =
  /** Keys and coins being exchanged; no funding transaction signed yet. */
  | 'opening'
  /** State 0 signed by both; the funding may still be waiting for confirmations. */
  | 'open'
  /** A close (cooperative, unilateral or rollover) was signed or broadcast; the funding output is not yet spent for good. */
  | 'closing'
  /** The funding output is spent by a confirmed transaction. */
  | 'closed'
  /** The opening stopped: no funding was signed, or the one signed can never confirm. */
  | 'aborted';

/** A fully signed state: both signatures (64-byte compact, SIGHASH_ALL|ANYONECANPAY). */
export interface SignedState extends DuplexState {
  readonly sigA: Uint8Array;
  readonly sigB: Uint8Array;
}

export type CloseKind = 'cooperative' | 'unilateral' | 'rollover';

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
  /**
   * Earlier unilateral versions of this side (older states, replaced when a countersignature came
   * after the force close): one of them in the mempool is ours, replaced by a routine bump.
   */
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

export interface DuplexRecord {
  readonly tempId: string;
  channelId?: string;
  readonly role: DuplexRole;
  phase: DuplexPhase;
  /** Tip height when the opening started (openings that stall are abandoned). */
  openedHeight?: number;
  /** B: tip height when B signed its funding inputs (a funding the node never sees is given up on). */
  fundingSignedHeight?: number;
  /**
   * B: its funding inputs were given back to the wallet because the funding never reached the
   * node. The record stays open: if the funding still confirms, B's coins are in the channel as
   * agreed; if B's coins are spent elsewhere first, it can never confirm and the record is aborted.
   */
  ownInputsReleased?: boolean;
  /** B: the source address of the connection that asked for the opening (limits per address). */
  readonly openedBy?: string;
  /** Our duplex key index (Wallet.nextDuplexKey). */
  readonly keyIndex: number;
  /** Complete once both keys and contributions are known. */
  terms?: DuplexTerms;
  fundingFeeRateSatPerVb: number;
  minFundingConfirmations: number;
  /** Unsigned (opening) then fully signed (A only; B never sees A's witnesses) funding transaction. */
  fundingTxHex?: string;
  fundingConfirmed: boolean;
  /** Height of the block that confirmed the funding (where a search for its spend starts). */
  fundingHeight?: number;
  /** Our own coins and outputs in the funding transaction (A builds it from both sides'). */
  ownInputs?: readonly { readonly txid: string; readonly vout: number; readonly valueSat: bigint }[];
  ownOutputs?: readonly { readonly script: Uint8Array; readonly valueSat: bigint }[];
  /** The newest state both signed. */
  current?: SignedState;
  /** A's proposal waiting for B's countersignature (A signs each index once). */
  pending?: DuplexState & { readonly sigA: Uint8Array; readonly requestId?: string; /** This state cancels the refused state of that index. */ readonly cancels?: number };
  /** The highest index A signed and B refused: never reused (B could still countersign it). */
  refusedIndex?: number;
  /** A: B's pay requests already proposed (the last 100), so a repeat is not paid twice. */
  proposedRequests?: string[];
  /** A: the rollover it proposed; every retry reuses it (one state 0 per new channel). */
  rolloverProposal?: { readonly feeRateSatPerVb: number; readonly initialLocktime: number; readonly refused?: boolean };
  /** B's payments to A waiting for A to propose them (B asks; A proposes when online). */
  payBackQueue?: { readonly requestId: string; readonly amountSat: bigint }[];
  close?: CloseRecord;
  settlement?: Settlement;
  /** The channel this one was rolled over from. */
  readonly predecessorId?: string;
  updates: number;
  paidAtoBSat: bigint;
  paidBtoASat: bigint;
}

/** The channel of a record whose funding is known. */
export function recordChannel(record: DuplexRecord): DuplexChannel {
  if (!record.terms || !record.channelId) throw new Error(`internal: duplex ${record.tempId} has no funding yet`);
  const [txid, vout] = record.channelId.split(':');
  return makeDuplexChannel(record.terms, { txid: txid!, vout: Number(vout) });
}
