/** Small pieces every part of the duplex machine uses: signature checks, role and state guards, counters. */
import { sha256 } from '@noble/hashes/sha2.js';
import { CHALLENGE_BYTES } from './auth.js';
import { concatBytes } from './bytes.js';
import type { DuplexContext, DuplexEffect } from './duplex-machine-types.js';
import { phaseOf, type DuplexChannelState, type LiveChannel, type SignedState, type StateOf } from './duplex-state.js';
import type { DuplexRole, DuplexTerms } from './duplex-tx.js';
import { updatesLeft } from './duplex-update.js';
import { ProtocolError } from './errors.js';

/** @throws ProtocolError INVALID_SIGNATURE unless the other side signed `digest`. */
export function verifyPeer(ctx: DuplexContext, terms: DuplexTerms, digest: Uint8Array, signature: Uint8Array): void {
  const key = ctx.role === 'A' ? terms.keyB : terms.keyA;
  if (!ctx.secp.ecdsaVerify(signature, digest, key)) throw new ProtocolError('INVALID_SIGNATURE');
}

/** @throws ProtocolError UNEXPECTED_MESSAGE when a message goes to the wrong side. */
export function expectRole(ctx: DuplexContext, role: DuplexRole, type: string): void {
  if (ctx.role !== role) throw new ProtocolError('UNEXPECTED_MESSAGE', `${type} is sent to ${role}`);
}

/** @throws ProtocolError CHANNEL_NOT_OPEN unless the channel is Open. */
export function expectOpen(state: DuplexChannelState): StateOf<'Open'> {
  if (state.type !== 'Open') throw new ProtocolError('CHANNEL_NOT_OPEN', `the channel is ${phaseOf(state)}`);
  return state;
}

/** @throws ProtocolError CHANNEL_NOT_OPEN unless the channel is Open with its funding confirmed. */
export function expectUsable(state: DuplexChannelState): StateOf<'Open'> {
  const open = expectOpen(state);
  if (!open.fundingConfirmed) throw new ProtocolError('CHANNEL_NOT_OPEN', `the funding has fewer than ${open.minFundingConfirmations} confirmations`);
  return open;
}

const RESUME_TAG = new TextEncoder().encode('paychan/v1/duplex-resume\0');

/**
 * What A signs to show B that a new connection is A's: the connection's challenge (the 32
 * random bytes B's transport sent first on it, src/protocol/auth.ts), the channel and A's newest
 * index. Bound to the challenge, a resume seen on one connection (a plain `ws://` stream) is
 * worth nothing on another: nobody can replay it to take B's link and divert B's pay requests.
 */
export function resumeDigest(challenge: Uint8Array, channelId: string, index: number): Uint8Array {
  if (challenge.length !== CHALLENGE_BYTES) throw new RangeError(`a challenge is ${CHALLENGE_BYTES} bytes, got ${challenge.length}`);
  const text = new TextEncoder().encode(`\0${channelId}\0${index}`);
  return sha256(concatBytes(RESUME_TAG, challenge, text));
}

/** The counters after `next` replaced `live.current`. */
export function advanced<T extends LiveChannel>(live: T, next: SignedState): T {
  const toB = next.balanceBSat - live.current.balanceBSat;
  return {
    ...live,
    current: next,
    updates: live.updates + 1,
    paidAtoBSat: toB > 0n ? live.paidAtoBSat + toB : live.paidAtoBSat,
    paidBtoASat: toB > 0n ? live.paidBtoASat : live.paidBtoASat - toB,
  };
}

/** Both sides announce, in their logs, that the channel will be rolled over soon. */
export function budgetNotice(ctx: DuplexContext, live: LiveChannel, tipHeight: number): DuplexEffect[] {
  const left = updatesLeft(live.terms, live.current.index, tipHeight, ctx.policy.marginBlocks);
  if (left > ctx.policy.budgetWarningUpdates) return [];
  return [{ type: 'log', line: `${live.channelId}: ${left} update(s) left before the locktime margin; the next one after that rolls the channel over into a new one` }];
}

/**
 * The index of a channel's next state. A state A signed and B refused may still be countersigned
 * by B later: its index is skipped, so whatever B does with it, the next state (an earlier
 * locktime) beats it.
 */
export function nextIndex(live: LiveChannel): number {
  return Math.max(live.current.index, live.refusedIndex ?? 0) + 1;
}
