/**
 * The record of a unilateral close: the newest state both signed, ready to publish. Built in one
 * place because two steps build it: the watcher's force close, and A's countersignature arriving
 * after that force close (the close must then publish the newer state, or a state B withholds
 * could be one A is owed).
 */
import { duplexOutputs, signedStateTx, type DuplexChannel } from './duplex-tx.js';
import type { CloseRecord, SignedState } from './duplex-state.js';

/** How many of this side's earlier unilateral versions a close remembers. */
const MAX_OLDER_OWN = 8;

/**
 * The unilateral close of `current`, replacing `previous` (if any). What `previous` stood in for
 * (a cooperative close or rollover with the same balances, acceptable if it wins) carries over;
 * an older unilateral close's own state does not: it is an older state, to be beaten.
 */
export function unilateralClose(channel: DuplexChannel, current: SignedState, previous: CloseRecord | undefined): CloseRecord {
  const tx = signedStateTx(channel, current, current.sigA, current.sigB);
  const superseded = previous?.kind === 'unilateral' ? previous.supersededTxid : previous?.txid;
  // Our own older version may be in the mempool already: it is ours, not the peer's attack (the
  // last few suffice: each rebuild replaces the one before it in the mempool).
  const olderOwn = previous?.kind === 'unilateral' ? [...(previous.olderOwnTxids ?? []), previous.txid].slice(-MAX_OLDER_OWN) : [];
  return {
    kind: 'unilateral',
    txid: tx.getId(),
    txHex: tx.toHex(),
    feeSat: duplexOutputs(channel, current, channel.stateFeeRateSatPerVb).feeSat,
    stateIndex: current.index,
    feeRateSatPerVb: channel.stateFeeRateSatPerVb,
    // A rollover that may still confirm instead keeps its new channel in view.
    ...(previous?.successorId ? { successorId: previous.successorId } : {}),
    ...(superseded ? { supersededTxid: superseded } : {}),
    ...(olderOwn.length > 0 ? { olderOwnTxids: olderOwn } : {}),
  };
}

/** Whether `close` is a unilateral close of a state older than `current` (a countersignature came after it). */
export function closeIsStale(close: CloseRecord | undefined, current: SignedState | undefined): boolean {
  return close?.kind === 'unilateral' && current !== undefined && current.index > (close.stateIndex ?? -1);
}
