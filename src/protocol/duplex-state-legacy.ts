/**
 * Reads a duplex record stored by the peer before the machine (one bag of optional fields with a
 * `phase`) as the tagged state it stands for, so channels stored on disk keep working after the
 * upgrade. A record already tagged (`type`) is returned as it is.
 */
import type { FundingInput, FundingOutput } from './duplex-funding.js';
import type { ChannelBase, CloseRecord, DuplexChannelState, LiveChannel, Proposal, QueuedPayBack, Settlement, SignedState } from './duplex-state.js';
import type { DuplexRole, DuplexTerms } from './duplex-tx.js';

/** The stored shape of the older peer (src/duplex/duplex-record.ts before the machine). */
export interface LegacyDuplexRecord {
  readonly tempId: string;
  readonly channelId?: string;
  readonly role: DuplexRole;
  readonly phase: 'opening' | 'open' | 'closing' | 'closed' | 'aborted';
  readonly openedHeight?: number;
  readonly fundingSignedHeight?: number;
  readonly ownInputsReleased?: boolean;
  readonly openedBy?: string;
  readonly keyIndex: number;
  readonly terms?: DuplexTerms;
  readonly fundingFeeRateSatPerVb: number;
  readonly minFundingConfirmations: number;
  readonly fundingTxHex?: string;
  readonly fundingConfirmed: boolean;
  readonly fundingHeight?: number;
  readonly ownInputs?: readonly FundingInput[];
  readonly ownOutputs?: readonly FundingOutput[];
  readonly current?: SignedState;
  readonly pending?: Proposal;
  readonly refusedIndex?: number;
  readonly proposedRequests?: readonly string[];
  readonly rolloverProposal?: { readonly feeRateSatPerVb: number; readonly initialLocktime: number; readonly refused?: boolean };
  readonly payBackQueue?: readonly QueuedPayBack[];
  readonly close?: CloseRecord;
  readonly settlement?: Settlement;
  readonly predecessorId?: string;
  readonly updates: number;
  readonly paidAtoBSat: bigint;
  readonly paidBtoASat: bigint;
}

/**
 * A stored record, new or old, as a state.
 * @throws TypeError for a record that fits neither shape (a corrupt store must not load silently).
 */
export function decodeDuplexState(stored: unknown): DuplexChannelState {
  if (stored === null || typeof stored !== 'object') throw new TypeError('a duplex record must be an object');
  if ('type' in stored && typeof stored.type === 'string') return stored as DuplexChannelState;
  if (!('phase' in stored) || !('tempId' in stored)) throw new TypeError('not a duplex record');
  return fromLegacy(stored as LegacyDuplexRecord);
}

function fromLegacy(r: LegacyDuplexRecord): DuplexChannelState {
  const base: ChannelBase = {
    tempId: r.tempId,
    role: r.role,
    keyIndex: r.keyIndex,
    fundingFeeRateSatPerVb: r.fundingFeeRateSatPerVb,
    minFundingConfirmations: r.minFundingConfirmations,
    openedHeight: r.openedHeight ?? 0,
    openedBy: r.openedBy ?? null,
    ownInputs: r.ownInputs ?? [],
    ownOutputs: r.ownOutputs ?? [],
  };
  const bad = (why: string) => new TypeError(`duplex record ${r.tempId} (${r.phase}): ${why}`);
  if (!r.terms) throw bad('no terms');
  const terms = r.terms;
  const live = (): LiveChannel | null => {
    if (!r.current || !r.channelId || r.fundingTxHex === undefined) return null;
    return {
      ...base,
      channelId: r.channelId,
      terms,
      fundingTxHex: r.fundingTxHex,
      fundingConfirmed: r.fundingConfirmed,
      fundingHeight: r.fundingHeight ?? null,
      fundingSignedHeight: r.fundingSignedHeight ?? null,
      ownInputsReleased: r.ownInputsReleased ?? false,
      current: r.current,
      pending: r.pending ?? null,
      refusedIndex: r.refusedIndex ?? null,
      proposedRequests: r.proposedRequests ?? [],
      rolloverProposal: r.rolloverProposal ? { feeRateSatPerVb: r.rolloverProposal.feeRateSatPerVb, initialLocktime: r.rolloverProposal.initialLocktime, refused: r.rolloverProposal.refused ?? false } : null,
      payBackQueue: r.payBackQueue ?? [],
      predecessorId: r.predecessorId ?? null,
      updates: r.updates,
      paidAtoBSat: r.paidAtoBSat,
      paidBtoASat: r.paidBtoASat,
    };
  };
  switch (r.phase) {
    case 'opening':
      if (r.role === 'B') return { ...base, type: 'Accepted', role: 'B', terms };
      if (r.pending && r.channelId && r.fundingTxHex) return { ...base, type: 'Funding', role: 'A', terms, channelId: r.channelId, fundingTxHex: r.fundingTxHex, state0: r.pending };
      return { ...base, type: 'Proposed', role: 'A', terms };
    case 'aborted':
      return { ...base, type: 'Aborted', terms, live: live() };
    default: {
      const l = live();
      if (!l) throw bad('no state signed by both');
      if (r.phase === 'closed' && r.settlement) return { ...l, type: 'Closed', close: r.close ?? null, settlement: r.settlement };
      if (r.close) return { ...l, type: 'Closing', close: r.close };
      return { ...l, type: 'Open' };
    }
  }
}
