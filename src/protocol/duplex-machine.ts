/**
 * One side of a duplex channel as a pure machine: `duplexStep(ctx, state, input) → { state,
 * effects }` (docs/duplex.md "The machine"). No I/O, no clock, no randomness: the driver
 * (src/duplex/duplex-peer.ts) reads the tip and fee estimates before a step, answers the
 * machine's requests to the wallet and the node with inputs, and carries out the effects in
 * order; an effect after a `persist` runs only once that persist is durable (a state is stored
 * before any signature that depends on it leaves the process).
 *
 * A step that throws has changed nothing: the driver keeps the state it had (and answers the
 * peer with the error's code). States: duplex-state.ts; the steps: duplex-machine-opening.ts,
 * -updates.ts, -closing.ts, -chain.ts.
 */
import { abort, bumped, closeBroadcast, fundingConfirmed, forceClose, inputsReleased, rivalSeen, settled } from './duplex-machine-chain.js';
import { aOnRolledOver, aRollover, bOnRollover, bOnRolloverSigned, duplexClose, onClose, onClosed } from './duplex-machine-closing.js';
import { expectRole } from './duplex-machine-common.js';
import {
  aAcceptChecked,
  aContributed,
  aFundingPublished,
  aFundingRefused,
  aFundingSigned,
  aOnAccept,
  aOnFunded,
  bAccept,
  bContributeFailed,
  bFundChecked,
  bFundingSigned,
  bKeyAllocated,
  bOnFund,
  bOpenerChecked,
} from './duplex-machine-opening.js';
import type { DuplexContext, DuplexInput, DuplexStep } from './duplex-machine-types.js';
import { aOnCountersign, aOnPayRequest, aOnResumed, aPay, aResume, bOnResume, bOnUpdate, bPayBack, onPeerError } from './duplex-machine-updates.js';
import { channelIdOf, phaseOf, type DuplexChannelState } from './duplex-state.js';
import { ProtocolError } from './errors.js';
import type { Message } from './messages.js';

export * from './duplex-machine-types.js';
export * from './duplex-state.js';
export { abortOpening, checkInputFacts, duplexOpen, duplexReceiveOpen, openingReservation } from './duplex-machine-opening.js';
export { answerMempoolSpend, rivalView, settlementOf, type MempoolAnswer } from './duplex-machine-chain.js';
export { nextIndex, resumeDigest } from './duplex-machine-common.js';
export { rolloverParts, successorTempId } from './duplex-machine-closing.js';

/** The messages whose step needs the lowest close fee rate this side accepts (`closeFloorSatPerVb`). */
export const NEEDS_CLOSE_FLOOR: ReadonlySet<Message['type']> = new Set(['duplex-close', 'duplex-rollover']);

/**
 * One step of a channel. `successorL0` is only read for a repeated `duplex-rollover` (the L0 of
 * the new channel B stored for it), which the driver passes in `lookups`.
 * @throws ProtocolError for a refused input (nothing changed); TypeError/RangeError for misuse.
 */
export function duplexStep(ctx: DuplexContext, state: DuplexChannelState, input: DuplexInput, lookups: { successorL0?: number } = {}): DuplexStep {
  switch (input.type) {
    case 'message':
      return onMessage(ctx, state, input.message, input.tipHeight, input.closeFloorSatPerVb, lookups.successorL0 ?? null, input.challenge);
    case 'contributed':
      if (state.type === 'Contributing') return aContributed(state, input.inputs, input.outputs);
      if (state.type === 'ContributingB') return bAccept(state, input.inputs, input.outputs);
      return unexpected(state, input.type);
    case 'contribute-failed':
      if (state.type === 'ContributingB') return bContributeFailed(state, input.reason);
      return unexpected(state, input.type);
    case 'inputs-checked':
      if (state.type === 'Vetting') return bOpenerChecked(state, input.inputs);
      if (state.type === 'CheckingAccept') return aAcceptChecked(ctx, state, input.inputs);
      if (state.type === 'CheckingFund') return bFundChecked(ctx, state, input.inputs);
      return unexpected(state, input.type);
    case 'key-allocated':
      if (state.type === 'KeyPending') return bKeyAllocated(ctx, state, input.keyIndex, input.publicKey, input.payoutScript);
      return unexpected(state, input.type);
    case 'funding-inputs-signed':
      if (state.type !== 'Open') return unexpected(state, input.type);
      return ctx.role === 'A' ? aFundingSigned(state, input.txHex, input.witnesses) : bFundingSigned(state, input.witnesses);
    case 'funding-published':
      if (state.type === 'Open' && ctx.role === 'A') return aFundingPublished(state);
      return unexpected(state, input.type);
    case 'funding-refused':
      if (state.type === 'Open' && ctx.role === 'A') return aFundingRefused(state, input.reason);
      return unexpected(state, input.type);
    case 'pay':
      return aPay(ctx, state, input.payer, input.amountSat, input.requestId, input.tipHeight);
    case 'pay-back':
      return bPayBack(ctx, state, input.amountSat, input.requestId);
    case 'resume':
      return aResume(ctx, state, input.challenge);
    case 'close':
      return duplexClose(ctx, state, input.feeRateSatPerVb, input.tipHeight);
    case 'rollover':
      return aRollover(ctx, state, input.feeRateSatPerVb, input.tipHeight);
    case 'peer-error':
      return onPeerError(ctx, state, input.code, input.text, input.about, input.tipHeight, input.rolloverAwaited);
    case 'funding-confirmed':
      return fundingConfirmed(state, input.height);
    case 'force-close':
      return forceClose(state);
    case 'close-broadcast':
      return closeBroadcast(state, input.height);
    case 'rival-seen':
      return rivalSeen(state, input.height);
    case 'bumped':
      return bumped(state, input);
    case 'settled':
      return settled(state, input.settlement);
    case 'inputs-released':
      return inputsReleased(state);
    case 'abort':
      return abort(state, input.reason);
  }
}

function onMessage(ctx: DuplexContext, state: DuplexChannelState, m: Message, tipHeight: number, floor: number | null, successorL0: number | null, challenge: Uint8Array | undefined): DuplexStep {
  switch (m.type) {
    case 'duplex-accept':
      expectRole(ctx, 'A', m.type);
      if (state.type !== 'Proposed') throw new ProtocolError('UNEXPECTED_MESSAGE', 'already accepted');
      return aOnAccept(ctx, state, m, tipHeight);
    case 'duplex-fund':
      expectRole(ctx, 'B', m.type);
      if (state.type !== 'Accepted') throw new ProtocolError('UNEXPECTED_MESSAGE', `the channel is ${phaseOf(state)}`);
      return bOnFund(ctx, state, m, tipHeight);
    case 'duplex-funded':
      expectRole(ctx, 'A', m.type);
      if (state.type !== 'Funding') throw new ProtocolError('UNEXPECTED_MESSAGE', 'no funding waiting for B');
      return aOnFunded(ctx, state, m);
    case 'duplex-channel':
      expectRole(ctx, 'B', m.type);
      if (channelIdOf(state) !== m.channelId) throw new ProtocolError('UNKNOWN_CHANNEL', m.channelId);
      // B knows the id already; this says A broadcast it. The driver asks the node (once per tip).
      return { state, effects: [] };
    case 'duplex-update':
      return bOnUpdate(ctx, state, m, tipHeight);
    case 'duplex-countersign':
      return aOnCountersign(ctx, state, m, tipHeight);
    case 'duplex-pay-request':
      return aOnPayRequest(ctx, state, m);
    case 'duplex-close':
      return onClose(ctx, state, m, tipHeight, floor);
    case 'duplex-closed':
      return onClosed(ctx, state, m);
    case 'duplex-rollover':
      return bOnRollover(ctx, state, m, tipHeight, floor, successorL0);
    case 'duplex-rolled-over':
      return aOnRolledOver(ctx, state, m, tipHeight);
    case 'duplex-rollover-signed':
      return bOnRolloverSigned(ctx, state, m);
    case 'duplex-resume':
      return bOnResume(ctx, state, m, challenge);
    case 'duplex-resumed':
      return aOnResumed(ctx, state, m);
    default:
      throw new ProtocolError('UNEXPECTED_MESSAGE', m.type);
  }
}

function unexpected(state: DuplexChannelState, what: string): never {
  throw new TypeError(`internal: ${what} in state ${state.type}`);
}
