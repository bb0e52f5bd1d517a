/**
 * What the chain watcher (src/duplex/duplex-watcher.ts) records about a channel, as steps of the
 * machine: the funding confirmed, a unilateral close taken up, published and bumped, the
 * settlement read from the chain, an opening given up. The watcher reads the node and the
 * wallet and decides when; these steps only change the state (and say which reservations free).
 *
 * Pure reads it needs are here too: how a transaction spending the funding settled the channel,
 * and what a rival spend in the mempool pays us.
 */
import type { Transaction } from 'bitcoinjs-lib';
import { equalBytes } from './bytes.js';
import type { DuplexStep } from './duplex-machine-types.js';
import { abortOpening } from './duplex-machine-opening.js';
import { baseOf, isLive, liveChannel, liveOf, phaseOf, type CloseRecord, type DuplexChannelState, type LiveState, type Settlement, type StateOf } from './duplex-state.js';
import { buildStateTx, type DuplexChannel, type DuplexRole, type DuplexState } from './duplex-tx.js';
import { unilateralClose } from './duplex-unilateral.js';
import { openingReservation } from './duplex-machine-opening.js';

/** The funding has its confirmations: the channel can take updates. Only an open channel changes. */
export function fundingConfirmed(state: DuplexChannelState, height: number | null): DuplexStep {
  if (state.type !== 'Open' || state.fundingConfirmed) return { state, effects: [] };
  return {
    state: { ...state, fundingConfirmed: true, fundingHeight: height ?? state.fundingHeight },
    effects: [{ type: 'persist' }, { type: 'log', line: `${state.channelId}: funding confirmed` }],
  };
}

/**
 * Takes up a unilateral close of the newest state (or rebuilds one whose state is older): it is
 * published as soon as it is final. A bumped version of an older state is replaced: its fee coin
 * is free. @throws RangeError unless the channel is open or closing.
 */
export function forceClose(state: DuplexChannelState): DuplexStep {
  if (state.type !== 'Open' && state.type !== 'Closing') throw new RangeError(`the channel is ${phaseOf(state)}`);
  const previous = state.type === 'Closing' ? state.close : undefined;
  const close = unilateralClose(liveChannel(state), state.current, previous);
  return {
    state: { ...liveOf(state), type: 'Closing', close },
    effects: [{ type: 'persist' }, ...(previous?.bumpReservation ? [{ type: 'release' as const, reservation: previous.bumpReservation }] : [])],
  };
}

function unilateral(state: DuplexChannelState): StateOf<'Closing'> {
  if (state.type !== 'Closing' || state.close.kind !== 'unilateral') throw new RangeError('only a unilateral close is published or bumped');
  return state;
}

/** The published version is in the node since `height` (kept if known already: the bump clock). */
export function closeBroadcast(state: DuplexChannelState, height: number): DuplexStep {
  const s = unilateral(state);
  if (s.close.broadcastHeight !== undefined) return { state, effects: [] };
  return { state: { ...s, close: { ...s.close, broadcastHeight: height } }, effects: [{ type: 'persist' }] };
}

/** Another acceptable spend of the funding holds the mempool since `height`. */
export function rivalSeen(state: DuplexChannelState, height: number): DuplexStep {
  const s = unilateral(state);
  if (s.close.rivalSeenHeight !== undefined) return { state, effects: [] };
  return { state: { ...s, close: { ...s.close, rivalSeenHeight: height } }, effects: [{ type: 'persist' }] };
}

/** A bumped version replaced the published one; the replaced version's fee coin is free. */
export function bumped(state: DuplexChannelState, bump: { txid: string; txHex: string; feeSat: bigint; feeRateSatPerVb: number; height: number; reservation: string }): DuplexStep {
  const s = unilateral(state);
  const previous = s.close.bumpReservation;
  return {
    state: { ...s, close: { ...s.close, txid: bump.txid, txHex: bump.txHex, feeSat: bump.feeSat, feeRateSatPerVb: bump.feeRateSatPerVb, broadcastHeight: bump.height, bumpReservation: bump.reservation } },
    effects: [...(previous && previous !== bump.reservation ? [{ type: 'release' as const, reservation: previous }] : []), { type: 'persist' }],
  };
}

/** The funding output is spent for good. */
export function settled(state: DuplexChannelState, settlement: Settlement): DuplexStep {
  if (!isLive(state)) throw new RangeError(`the channel is ${phaseOf(state)}`);
  const close = state.type === 'Open' ? null : state.close;
  return {
    state: { ...liveOf(state), type: 'Closed', close, settlement },
    effects: [{ type: 'persist' }, { type: 'log', line: `${state.channelId}: settled by ${settlement.kind} ${settlement.txid} (A ${settlement.valueASat}, B ${settlement.valueBSat}, fee ${settlement.feeSat})` }],
  };
}

/** B: its coins in a funding the node never saw go back to the wallet; the channel stays watched. */
export function inputsReleased(state: DuplexChannelState): DuplexStep {
  if (state.type !== 'Open' || state.role !== 'B' || state.ownInputsReleased) return { state, effects: [] };
  return { state: { ...state, ownInputsReleased: true }, effects: [{ type: 'persist' }, { type: 'release', reservation: openingReservation(state.tempId) }] };
}

/**
 * The opening stopped, or an open channel's funding can never confirm. An opening's coins go
 * back (B forgets one it signed nothing for); an open B channel it put nothing into is forgotten
 * (nothing of B's is at stake, and such records cost their sender nothing); any other open
 * channel is kept as Aborted.
 */
export function abort(state: DuplexChannelState, reason: string): DuplexStep {
  switch (state.type) {
    case 'Closing':
    case 'Closed':
    case 'Aborted':
      return { state, effects: [] };
    case 'Open': {
      const log = { type: 'log' as const, line: `${state.channelId}: ${reason}` };
      if (state.role === 'B' && state.ownInputs.length === 0 && state.predecessorId === null && !state.fundingConfirmed) return { state, effects: [{ type: 'forget' }, log] };
      return { state: { ...baseOf(state), type: 'Aborted', terms: state.terms, live: liveOf(state) }, effects: [{ type: 'persist' }, log] };
    }
    default:
      return abortOpening(state);
  }
}

// ------------------------------------------------------------------ pure reads for the watcher

/** How a confirmed transaction spending the funding output settled the channel. */
export function settlementOf(channel: DuplexChannel, tx: Transaction, confirmations: number): Settlement {
  const valueOf = (script: Uint8Array) => tx.outs.filter((o) => equalBytes(o.script, script)).reduce((s, o) => s + o.value, 0n);
  const valueASat = valueOf(channel.scriptA);
  const valueBSat = equalBytes(channel.scriptB, channel.scriptA) ? 0n : valueOf(channel.scriptB);
  const only = tx.outs.length === 1 ? tx.outs[0] : undefined;
  const rolled = only !== undefined && equalBytes(only.script, channel.fundingScript);
  const stateIndex = tx.locktime > 0 ? (channel.initialLocktime - tx.locktime) / channel.deltaBlocks : undefined;
  const kind = rolled ? 'rollover' : tx.locktime === 0 ? 'cooperative' : 'unilateral';
  const carried = rolled ? only.value : valueASat + valueBSat;
  return {
    txid: tx.getId(),
    confirmations,
    kind,
    ...(stateIndex !== undefined && Number.isInteger(stateIndex) ? { stateIndex } : {}),
    valueASat,
    valueBSat,
    feeSat: channel.capacitySat - carried,
  };
}

/** What a rival spend of the funding in the mempool is to us: the same state as our newest, and what it pays us. */
export function rivalView(channel: DuplexChannel, role: DuplexRole, newest: DuplexState, rival: Transaction): { sameState: boolean; ourInRivalSat: bigint; ourNewestSat: bigint } {
  const ours = buildStateTx(channel, newest);
  const sameState = rival.locktime === ours.locktime && rival.outs.length === ours.outs.length && rival.outs.every((o, i) => { const our = ours.outs[i]; return our !== undefined && o.value === our.value && equalBytes(o.script, our.script); });
  const ourScript = role === 'A' ? channel.scriptA : channel.scriptB;
  const ourIn = (t: Transaction) => t.outs.filter((o) => equalBytes(o.script, ourScript)).reduce((sum, o) => sum + o.value, 0n);
  return { sameState, ourInRivalSat: ourIn(rival), ourNewestSat: ourIn(ours) };
}

/** What the watcher does about another spend of the funding holding the mempool while our unilateral close is final. */
export type MempoolAnswer =
  /** It pays us at least what our newest state does (an older state): replacing it could only cost fees. `firstSeen`: note it now. */
  | { readonly type: 'LetConfirm'; readonly firstSeen: boolean }
  /** The peer's copy of our newest state, or the close / rollover ours stands in for: same balances, let it confirm. */
  | { readonly type: 'Wait'; readonly firstSeen: boolean }
  /** The same balances, still unconfirmed `bumpAfterBlocks` after it was first seen: bump past it. */
  | { readonly type: 'BumpPast' }
  /** An older state paying us less: replace it at once (a routine bump if it is our own older version). */
  | { readonly type: 'Contest'; readonly ownOlderVersion: boolean };

/**
 * The watcher's answer to a rival spend in the mempool (docs/duplex.md, the 思考 item 2): one
 * paying the same balances is left to confirm and bumped past only once stuck; an older state
 * paying us at least our newest is let confirm; one paying us less is replaced at once.
 */
export function answerMempoolSpend(
  close: CloseRecord,
  rival: { readonly txid: string; readonly sameState: boolean; readonly ourInRivalSat: bigint; readonly ourNewestSat: bigint },
  tipHeight: number,
  bumpAfterBlocks: number,
): MempoolAnswer {
  const acceptable = rival.sameState || rival.txid === close.supersededTxid;
  const firstSeen = close.rivalSeenHeight === undefined;
  if (!acceptable && rival.ourInRivalSat >= rival.ourNewestSat) return { type: 'LetConfirm', firstSeen };
  if (!acceptable) return { type: 'Contest', ownOlderVersion: close.olderOwnTxids?.includes(rival.txid) ?? false };
  if (close.rivalSeenHeight === undefined || tipHeight - close.rivalSeenHeight < bumpAfterBlocks) return { type: 'Wait', firstSeen };
  return { type: 'BumpPast' };
}

export type { LiveState };
