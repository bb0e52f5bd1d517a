/**
 * Ending a duplex channel together: the cooperative close, and the rollover (close-and-reopen in
 * one transaction, three messages so nobody signs it before holding the new channel's state 0
 * signed by both). docs/duplex.md "Cooperative close" and "The update budget".
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { Transaction } from 'bitcoinjs-lib';
import { toHex } from './bytes.js';
import type { DuplexContext, DuplexEffect, DuplexStep } from './duplex-machine-types.js';
import { expectOpen, expectRole, verifyPeer } from './duplex-machine-common.js';
import { freshLive } from './duplex-machine-opening.js';
import { isLive, liveChannel, liveOf, phaseOf, type CloseRecord, type DuplexChannelState, type LiveState, type SignedState, type StateOf } from './duplex-state.js';
import {
  buildCooperativeCloseTx,
  buildRolloverTx,
  closeSighash,
  duplexOutputs,
  makeDuplexChannel,
  rolloverSighash,
  signedCloseTx,
  signedRolloverTx,
  stateSighash,
  termsOf,
  type DuplexChannel,
  type DuplexState,
} from './duplex-tx.js';
import { checkDuplexTerms, plannedInitialLocktime, updatesLeft } from './duplex-update.js';
import { ProtocolError } from './errors.js';
import { msg, type MessageOf } from './messages.js';

/** This side signed a cooperative close the peer has not completed: it may ask again, or complete the peer's. */
function unansweredClose(state: DuplexChannelState): state is StateOf<'Closing'> {
  return state.type === 'Closing' && state.close.kind === 'cooperative' && state.close.txHex === '';
}

/** Open, or Closing with a cooperative close of ours the peer has not completed. @throws CHANNEL_NOT_OPEN, UPDATE_IN_FLIGHT. */
function closable(state: DuplexChannelState): StateOf<'Open' | 'Closing'> {
  const s = unansweredClose(state) ? state : expectOpen(state);
  if (s.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${s.pending.index}`);
  return s;
}

function closing(state: LiveState, close: CloseRecord): StateOf<'Closing'> {
  return { ...liveOf(state), type: 'Closing', close };
}

/**
 * Signs a cooperative close of the newest state at `feeRateSatPerVb` and asks the peer for its
 * signature. Stored (Closing, no more updates) before the signature leaves: from then on the
 * peer could broadcast that close. Asking again is safe: every close we sign pays the same
 * newest balances.
 */
export function duplexClose(ctx: DuplexContext, state: DuplexChannelState, feeRateSatPerVb: number, tipHeight: number): DuplexStep {
  const s = closable(state);
  const channel = liveChannel(s);
  const current = s.current;
  const tx = buildCooperativeCloseTx(channel, current, feeRateSatPerVb);
  const signature = ctx.sign(s.keyIndex, closeSighash(channel, current, feeRateSatPerVb));
  // txHex stays empty until the peer's signature completes it.
  const close: CloseRecord = { kind: 'cooperative', txid: tx.getId(), txHex: '', feeSat: duplexOutputs(channel, current, feeRateSatPerVb).feeSat, feeRateSatPerVb, broadcastHeight: tipHeight };
  return {
    state: closing(s, close),
    effects: [{ type: 'persist' }, { type: 'send', message: msg('duplex-close', { channelId: s.channelId, index: current.index, feeRateSatPerVb, signature }) }],
  };
}

/** The cooperative close of `current` at `rate`, signed by both: the peer's signature is checked first. */
function completeClose(ctx: DuplexContext, s: LiveState, channel: DuplexChannel, current: DuplexState, rate: number, peerSignature: Uint8Array): { tx: Transaction; own: Uint8Array } {
  const digest = closeSighash(channel, current, rate);
  verifyPeer(ctx, s.terms, digest, peerSignature);
  const own = ctx.sign(s.keyIndex, digest);
  const [sigA, sigB] = ctx.role === 'A' ? [own, peerSignature] : [peerSignature, own];
  return { tx: signedCloseTx(channel, current, rate, sigA, sigB), own };
}

/** The peer asks to close at its rate: checked against our policy (`floor`: half our estimate), completed, broadcast. */
export function onClose(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-close'>, tipHeight: number, floor: number | null): DuplexStep {
  const s = closable(state);
  const current = s.current;
  if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `close of state ${m.index}, the newest is ${current.index}`);
  if (m.feeRateSatPerVb > ctx.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${ctx.policy.maxFeeRateSatPerVb} sat/vB`);
  if (floor === null) throw new TypeError('a close is checked against the fee floor the driver reads');
  if (m.feeRateSatPerVb < floor) throw new ProtocolError('FEE_RATE_INVALID', `below ${floor} sat/vB: the close might not confirm`);
  const channel = liveChannel(s);
  const { tx, own } = completeClose(ctx, s, channel, current, m.feeRateSatPerVb, m.signature);
  const close: CloseRecord = { kind: 'cooperative', txid: tx.getId(), txHex: tx.toHex(), feeSat: duplexOutputs(channel, current, m.feeRateSatPerVb).feeSat, feeRateSatPerVb: m.feeRateSatPerVb, broadcastHeight: tipHeight };
  return {
    state: closing(s, close),
    effects: [
      { type: 'adopt-link' },
      { type: 'persist' },
      { type: 'send', message: msg('duplex-closed', { channelId: s.channelId, closeTxid: close.txid, signature: own }) },
      { type: 'broadcast', txid: close.txid, txHex: close.txHex },
      { type: 'log', line: `closed ${s.channelId} cooperatively at the peer's request: ${close.txid}` },
    ],
  };
}

/** The peer completed the close we asked for: stored, broadcast, and the close call answered. */
export function onClosed(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-closed'>): DuplexStep {
  if (state.type !== 'Closing' || state.close.kind !== 'cooperative') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no close was asked for');
  const close = state.close;
  if (close.txHex !== '') return { state, effects: [] }; // a repeat
  if (close.txid !== m.closeTxid) throw new ProtocolError('UNEXPECTED_MESSAGE', `${m.closeTxid} is not the close this side signed`);
  const { tx } = completeClose(ctx, state, liveChannel(state), state.current, close.feeRateSatPerVb, m.signature);
  const next: StateOf<'Closing'> = { ...state, close: { ...close, txHex: tx.toHex() } };
  return {
    state: next,
    effects: [{ type: 'persist' }, { type: 'broadcast', txid: close.txid, txHex: next.close.txHex }, { type: 'resolve', key: 'closed', value: close.txid }],
  };
}

// ------------------------------------------------------------------ rollover

/**
 * What both sides derive from a rollover transaction: the new channel it funds (at
 * `initialLocktime`), that channel's state 0, and the two digests each side signs.
 */
export function rolloverParts(channel: DuplexChannel, roll: ReturnType<typeof buildRolloverTx>, initialLocktime: number) {
  const next = makeDuplexChannel(
    { ...termsOf(channel), contributionASat: roll.contributionASat, contributionBSat: roll.contributionBSat, initialLocktime },
    { txid: roll.tx.getId(), vout: 0 },
  );
  const state0: DuplexState = { index: 0, balanceASat: roll.contributionASat, balanceBSat: roll.contributionBSat };
  return { next, state0, closeDigest: rolloverSighash(channel, roll.tx), stateDigest: stateSighash(next, state0) };
}

/** The local id of a rollover's new channel: derived from its id (a pure function, the same after a restart). */
export function successorTempId(newChannelId: string): string {
  return toHex(sha256(new TextEncoder().encode(`paychan duplex successor ${newChannelId}`)).subarray(0, 16));
}

function successorState(state: LiveState, next: DuplexChannel, state0: SignedState, fundingTxHex: string): StateOf<'Open'> {
  const live = freshLive({ ...state, ownInputs: [], ownOutputs: [] }, next.id, termsOf(next), fundingTxHex, state0);
  // B's pay requests not yet proposed move to the new channel.
  return { ...live, tempId: successorTempId(next.id), openedBy: null, predecessorId: state.channelId, payBackQueue: state.payBackQueue, type: 'Open' };
}

/**
 * A: closes the channel into a new one with a fresh update budget. The proposal (fee rate, L0)
 * is stored first and reused by every retry; after B refused one, a new rate but the same L0.
 */
export function aRollover(ctx: DuplexContext, state: DuplexChannelState, feeRateSatPerVb: number, tipHeight: number): DuplexStep {
  if (ctx.role !== 'A') throw new TypeError('A rolls channels over');
  if (state.type === 'Closing' && state.close.successorId) return { state, effects: [{ type: 'resolve', key: 'rolled', value: state.close.successorId }] };
  const open = expectOpen(state);
  const effects: DuplexEffect[] = [];
  let s = open;
  if (!open.rolloverProposal || open.rolloverProposal.refused) {
    if (open.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${open.pending.index}`);
    s = { ...open, rolloverProposal: { feeRateSatPerVb, initialLocktime: open.rolloverProposal?.initialLocktime ?? plannedInitialLocktime(ctx.policy, tipHeight), refused: false } };
    effects.push({ type: 'persist' });
  }
  const proposal = s.rolloverProposal;
  if (!proposal) throw new TypeError('no rollover proposal');
  const channel = liveChannel(s);
  const { stateDigest } = rolloverParts(channel, buildRolloverTx(channel, s.current, proposal.feeRateSatPerVb), proposal.initialLocktime);
  const stateSignature = ctx.sign(s.keyIndex, stateDigest);
  effects.push({ type: 'send', message: msg('duplex-rollover', { channelId: s.channelId, index: s.current.index, initialLocktime: proposal.initialLocktime, feeRateSatPerVb: proposal.feeRateSatPerVb, stateSignature }) });
  return { state: s, effects };
}

/**
 * B: A's rollover. B stores the new channel (state 0 signed by both) before it signs the
 * rollover; a retry must name the same new channel (one state 0 per new channel, ever).
 */
export function bOnRollover(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-rollover'>, tipHeight: number, floor: number | null, successorL0: number | null): DuplexStep {
  expectRole(ctx, 'B', m.type);
  const repeat = state.type === 'Closing' && state.close.kind === 'rollover' ? state : null;
  const s = repeat ?? expectOpen(state);
  const current = s.current;
  if (m.index !== current.index) throw new ProtocolError('STATE_INDEX_MISMATCH', `rollover of state ${m.index}, the newest is ${current.index}`);
  if (m.feeRateSatPerVb > ctx.policy.maxFeeRateSatPerVb) throw new ProtocolError('FEE_RATE_INVALID', `above ${ctx.policy.maxFeeRateSatPerVb} sat/vB`);
  const channel = liveChannel(s);
  if (!repeat && updatesLeft(channel, current.index, tipHeight, ctx.policy.marginBlocks) > ctx.policy.budgetWarningUpdates) {
    throw new ProtocolError('UNEXPECTED_MESSAGE', 'the update budget is not nearly spent: no rollover yet');
  }
  if (!repeat) {
    if (floor === null) throw new TypeError('a rollover is checked against the fee floor the driver reads');
    if (m.feeRateSatPerVb < floor) throw new ProtocolError('FEE_RATE_INVALID', 'the rollover fee rate is too low to confirm');
  }
  let roll: ReturnType<typeof buildRolloverTx>;
  try {
    roll = buildRolloverTx(channel, current, m.feeRateSatPerVb);
  } catch (err) {
    throw new ProtocolError('BALANCE_MISMATCH', (err as Error).message);
  }
  const { next, state0, closeDigest, stateDigest } = rolloverParts(channel, roll, m.initialLocktime);
  // B signs state 0 of one new channel once: a retry must name the same one (`successorL0`: the
  // L0 of the new channel B stored, which the driver looks up).
  if (repeat && (repeat.close.successorId !== next.id || successorL0 !== m.initialLocktime)) {
    throw new ProtocolError('UNEXPECTED_MESSAGE', 'a rollover with other terms was already signed');
  }
  if (!repeat) checkDuplexTerms(ctx.secp, ctx.policy, next, tipHeight);
  verifyPeer(ctx, s.terms, stateDigest, m.stateSignature);
  const stateSignature = ctx.sign(s.keyIndex, stateDigest);
  const closeSignature = ctx.sign(s.keyIndex, closeDigest);
  const answer = { type: 'send' as const, message: msg('duplex-rolled-over', { channelId: s.channelId, newChannelId: next.id, closeSignature, stateSignature }) };
  // A repeat proves nothing new (anyone who saw the first on a plain ws:// stream can replay it):
  // it is answered on the connection it came on, which B does not adopt.
  if (repeat) return { state: repeat, effects: [answer] };
  const successor = successorState(s, next, { ...state0, sigA: m.stateSignature, sigB: stateSignature }, roll.tx.toHex());
  // txHex stays empty until A's rollover signature completes it.
  const close: CloseRecord = { kind: 'rollover', txid: roll.tx.getId(), txHex: '', feeSat: roll.feeSat, feeRateSatPerVb: m.feeRateSatPerVb, broadcastHeight: tipHeight, successorId: next.id };
  return {
    state: closing(s, close),
    // The new channel's state 0, signed by both, is durable before B signs the rollover.
    effects: [{ type: 'adopt-link' }, { type: 'create', state: successor }, { type: 'persist' }, answer],
  };
}

/** A: B's state-0 and rollover signatures: A stores both channels, completes and broadcasts the rollover, and sends its own signature. */
export function aOnRolledOver(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-rolled-over'>, tipHeight: number): DuplexStep {
  expectRole(ctx, 'A', m.type);
  if (isLive(state) && state.type !== 'Open') {
    if (state.type === 'Closing' && state.close.successorId === m.newChannelId) return { state, effects: [] }; // a repeat
    throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was asked for');
  }
  if (state.type !== 'Open' || !state.rolloverProposal) throw new ProtocolError('UNEXPECTED_MESSAGE', 'no rollover was asked for');
  const proposal = state.rolloverProposal;
  const channel = liveChannel(state);
  const roll = buildRolloverTx(channel, state.current, proposal.feeRateSatPerVb);
  const { next, state0, closeDigest, stateDigest } = rolloverParts(channel, roll, proposal.initialLocktime);
  if (next.id !== m.newChannelId) throw new ProtocolError('FUNDING_MISMATCH', `the new channel is ${next.id}, not ${m.newChannelId}`);
  verifyPeer(ctx, state.terms, stateDigest, m.stateSignature);
  verifyPeer(ctx, state.terms, closeDigest, m.closeSignature);
  const ownState = ctx.sign(state.keyIndex, stateDigest);
  const ownClose = ctx.sign(state.keyIndex, closeDigest);
  const tx = signedRolloverTx(channel, roll.tx, ownClose, m.closeSignature);
  const successor = successorState(state, next, { ...state0, sigA: ownState, sigB: m.stateSignature }, tx.toHex());
  const close: CloseRecord = { kind: 'rollover', txid: tx.getId(), txHex: tx.toHex(), feeSat: roll.feeSat, feeRateSatPerVb: proposal.feeRateSatPerVb, broadcastHeight: tipHeight, successorId: next.id };
  return {
    state: closing(state, close),
    effects: [
      { type: 'create', state: successor },
      { type: 'persist' },
      { type: 'send', message: msg('duplex-rollover-signed', { channelId: state.channelId, closeSignature: ownClose }) },
      { type: 'broadcast', txid: close.txid, txHex: close.txHex },
      { type: 'log', line: `rolled ${state.channelId} over into ${next.id}` },
      { type: 'resolve', key: 'rolled', value: next.id },
    ],
  };
}

/** B: A's rollover signature completes the rollover B signed. */
export function bOnRolloverSigned(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-rollover-signed'>): DuplexStep {
  expectRole(ctx, 'B', m.type);
  if (state.type !== 'Closing' || state.close.kind !== 'rollover') throw new ProtocolError('UNEXPECTED_MESSAGE', `no rollover was signed (the channel is ${phaseOf(state)})`);
  const close = state.close;
  if (close.txHex !== '') return { state, effects: [] }; // a repeat
  const channel = liveChannel(state);
  const roll = buildRolloverTx(channel, state.current, close.feeRateSatPerVb);
  const digest = rolloverSighash(channel, roll.tx);
  verifyPeer(ctx, state.terms, digest, m.closeSignature);
  const tx = signedRolloverTx(channel, roll.tx, m.closeSignature, ctx.sign(state.keyIndex, digest));
  const next: StateOf<'Closing'> = { ...state, close: { ...close, txHex: tx.toHex() } };
  return {
    state: next,
    effects: [{ type: 'persist' }, { type: 'broadcast', txid: close.txid, txHex: next.close.txHex }, { type: 'log', line: `rolled ${state.channelId} over into ${close.successorId ?? '?'}` }],
  };
}
