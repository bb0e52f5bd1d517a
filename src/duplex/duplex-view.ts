/**
 * What readers of a duplex channel see (the app's status and lists, the CLI, tests): a flat,
 * read-only projection of the tagged state (src/protocol/duplex-state.ts), made fresh on each
 * read. Fields a stage does not have are absent here; the state itself never has optional
 * stand-ins for them.
 */
import type { FundingInput } from '../protocol/duplex-funding.js';
import {
  channelIdOf,
  isLive,
  phaseOf,
  type CloseRecord,
  type DuplexChannelState,
  type DuplexPhase,
  type DuplexStateType,
  type Proposal,
  type QueuedPayBack,
  type RolloverProposal,
  type Settlement,
  type SignedState,
} from '../protocol/duplex-state.js';
import type { DuplexRole, DuplexTerms } from '../protocol/duplex-tx.js';
import { updatesLeft, type DuplexPolicy } from '../protocol/duplex-update.js';

export interface DuplexView {
  readonly tempId: string;
  readonly type: DuplexStateType;
  readonly channelId?: string;
  readonly role: DuplexRole;
  readonly phase: DuplexPhase;
  readonly terms?: DuplexTerms;
  readonly fundingConfirmed: boolean;
  readonly current?: SignedState;
  readonly pending?: Proposal;
  readonly payBackQueue: readonly QueuedPayBack[];
  readonly rolloverProposal?: RolloverProposal;
  readonly close?: CloseRecord;
  readonly settlement?: Settlement;
  readonly predecessorId?: string;
  /** Our coins in the funding transaction. */
  readonly ownInputs: readonly FundingInput[];
  /** B: its funding coins went back to the wallet (the funding never reached the node). */
  readonly ownInputsReleased: boolean;
  readonly updates: number;
  readonly paidAtoBSat: bigint;
  readonly paidBtoASat: bigint;
}

export function viewOf(state: DuplexChannelState): DuplexView {
  const channelId = channelIdOf(state);
  const live = isLive(state) ? state : state.type === 'Aborted' ? state.live : null;
  const terms = 'terms' in state ? state.terms : undefined;
  return {
    tempId: state.tempId,
    type: state.type,
    ...(channelId !== null ? { channelId } : {}),
    role: state.role,
    phase: phaseOf(state),
    ...(terms ? { terms } : {}),
    fundingConfirmed: live?.fundingConfirmed ?? false,
    ...(live ? { current: live.current } : {}),
    ...(live?.pending ? { pending: live.pending } : {}),
    payBackQueue: live?.payBackQueue ?? [],
    ...(live?.rolloverProposal ? { rolloverProposal: live.rolloverProposal } : {}),
    ...((state.type === 'Closing' || state.type === 'Closed') && state.close ? { close: state.close } : {}),
    ...(state.type === 'Closed' ? { settlement: state.settlement } : {}),
    ...(live?.predecessorId ? { predecessorId: live.predecessorId } : {}),
    ownInputs: state.ownInputs,
    ownInputsReleased: live?.ownInputsReleased ?? false,
    updates: live?.updates ?? 0,
    paidAtoBSat: live?.paidAtoBSat ?? 0n,
    paidBtoASat: live?.paidBtoASat ?? 0n,
  };
}

/** What the app shows about a channel. */
export interface DuplexSummary {
  readonly tempId: string;
  readonly channelId?: string;
  readonly role: DuplexRole;
  readonly phase: DuplexPhase;
  readonly fundingConfirmed: boolean;
  readonly capacitySat?: bigint;
  readonly index?: number;
  readonly balanceASat?: bigint;
  readonly balanceBSat?: bigint;
  readonly updates: number;
  readonly paidAtoBSat: bigint;
  readonly paidBtoASat: bigint;
  readonly updatesLeft?: number;
  readonly closeTxid?: string;
  readonly closeKind?: string;
  readonly successorId?: string;
}

export function summaryOf(view: DuplexView, policy: DuplexPolicy, tipHeight?: number): DuplexSummary {
  const c = view.current;
  return {
    tempId: view.tempId,
    ...(view.channelId ? { channelId: view.channelId } : {}),
    role: view.role,
    phase: view.phase,
    fundingConfirmed: view.fundingConfirmed,
    ...(view.terms ? { capacitySat: view.terms.contributionASat + view.terms.contributionBSat } : {}),
    ...(c ? { index: c.index, balanceASat: c.balanceASat, balanceBSat: c.balanceBSat } : {}),
    updates: view.updates,
    paidAtoBSat: view.paidAtoBSat,
    paidBtoASat: view.paidBtoASat,
    ...(c && view.terms && tipHeight !== undefined ? { updatesLeft: updatesLeft(view.terms, c.index, tipHeight, policy.marginBlocks) } : {}),
    ...(view.close ? { closeTxid: view.close.txid, closeKind: view.close.kind } : {}),
    ...(view.close?.successorId ? { successorId: view.close.successorId } : {}),
  };
}
