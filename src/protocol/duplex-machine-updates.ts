/**
 * Updates (docs/duplex.md "Updates: one sequencer, two messages"): A proposes every state, B
 * countersigns, B asks A for the states in which B pays; a refused state is cancelled by a state
 * above it; A resumes after a reconnection.
 *
 * Who is bound when: the proposer is bound from the moment it sends (its proposal is persisted
 * first), the receiver when it countersigns (persisted before the countersignature leaves).
 */
import type { DuplexContext, DuplexStep, ErrorAbout } from './duplex-machine-types.js';
import { advanced, budgetNotice, expectOpen, expectRole, expectUsable, nextIndex, resumeDigest, verifyPeer } from './duplex-machine-common.js';
import { isLive, liveChannel, type DuplexChannelState, type LiveState, type StateOf } from './duplex-state.js';
import { closeIsStale, unilateralClose } from './duplex-unilateral.js';
import { stateSighash, type DuplexRole, type DuplexState } from './duplex-tx.js';
import { checkNextState, checkProposalForB, nextState } from './duplex-update.js';
import { isProtocolErrorCode, ProtocolError } from './errors.js';
import { msg, type Message, type MessageOf } from './messages.js';

/** How many proposed pay requests A remembers (a repeat of one is not paid twice). */
const REMEMBERED_REQUESTS = 100;

function updateMessage(live: LiveState, p: NonNullable<LiveState['pending']>): Message {
  return msg('duplex-update', {
    channelId: live.channelId,
    index: p.index,
    balanceASat: p.balanceASat,
    balanceBSat: p.balanceBSat,
    signature: p.sigA,
    ...(p.requestId ? { requestId: p.requestId } : {}),
  });
}

/**
 * A proposes the state in which `payer` pays `amountSat` (B's payments answer B's request
 * `requestId`). The proposal is stored before it leaves: A is bound from then on.
 * @throws ProtocolError CHANNEL_NOT_OPEN, UPDATE_IN_FLIGHT, UNEXPECTED_MESSAGE (a request proposed already), and nextState's codes.
 */
export function aPay(ctx: DuplexContext, state: DuplexChannelState, payer: DuplexRole, amountSat: bigint, requestId: string | null, tipHeight: number): DuplexStep {
  if (ctx.role !== 'A') throw new TypeError('B pays with pay-back');
  const open = expectUsable(state);
  if (open.pending) throw new ProtocolError('UPDATE_IN_FLIGHT', `state ${open.pending.index} waits for B's countersignature (resume to resend it)`);
  if (requestId !== null && open.proposedRequests.includes(requestId)) throw new ProtocolError('UNEXPECTED_MESSAGE', `pay request ${requestId} was already proposed`);
  const channel = liveChannel(open);
  const next = nextState(channel, open.current, payer, amountSat, tipHeight, ctx.policy.marginBlocks, nextIndex(open));
  const sigA = ctx.sign(open.keyIndex, stateSighash(channel, next));
  const pending = { ...next, sigA, ...(requestId !== null ? { requestId } : {}) };
  const proposed: StateOf<'Open'> = {
    ...open,
    pending,
    proposedRequests: requestId !== null ? [...open.proposedRequests.slice(-(REMEMBERED_REQUESTS - 1)), requestId] : open.proposedRequests,
  };
  return { state: proposed, effects: [{ type: 'persist' }, { type: 'send', message: updateMessage(proposed, pending) }] };
}

/**
 * B queues a payment to A (durably) and asks A for it if A is connected; A proposes it now or
 * when it next resumes.
 * @throws RangeError for a non-positive amount; ProtocolError CHANNEL_NOT_OPEN, INSUFFICIENT_BALANCE.
 */
export function bPayBack(ctx: DuplexContext, state: DuplexChannelState, amountSat: bigint, requestId: string): DuplexStep {
  if (ctx.role !== 'B') throw new TypeError('A pays with pay');
  if (amountSat <= 0n) throw new RangeError('a payment must be positive');
  const open = expectUsable(state);
  const queued = open.payBackQueue.reduce((s, q) => s + q.amountSat, 0n);
  const available = open.current.balanceBSat - queued;
  if (amountSat > available) throw new ProtocolError('INSUFFICIENT_BALANCE', `B has ${available} sat not yet promised, cannot pay ${amountSat}`);
  return {
    state: { ...open, payBackQueue: [...open.payBackQueue, { requestId, amountSat }] },
    effects: [{ type: 'persist' }, { type: 'send-if-connected', message: msg('duplex-pay-request', { channelId: open.channelId, amountSat, requestId }) }],
  };
}

/** A, after (re)connecting: its newest index, signed (so B may adopt the connection), and a proposal B may have missed. */
export function aResume(ctx: DuplexContext, state: DuplexChannelState, challenge: Uint8Array): DuplexStep {
  if (ctx.role !== 'A') throw new TypeError('A resumes');
  if (state.type !== 'Open') return { state, effects: [] };
  const signature = ctx.sign(state.keyIndex, resumeDigest(challenge, state.channelId, state.current.index));
  return {
    state,
    effects: [
      { type: 'send', message: msg('duplex-resume', { channelId: state.channelId, index: state.current.index, signature }) },
      ...(state.pending ? [{ type: 'send' as const, message: updateMessage(state, state.pending) }] : []),
    ],
  };
}

/** B: A's signed resume. B adopts the connection, sends its queued pay requests, then `duplex-resumed`. */
export function bOnResume(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-resume'>, challenge: Uint8Array | undefined): DuplexStep {
  expectRole(ctx, 'B', m.type);
  if (!isLive(state)) throw new ProtocolError('CHANNEL_NOT_OPEN', 'the channel is still opening');
  if (challenge === undefined) throw new ProtocolError('AUTH_INVALID', 'no challenge was issued on this connection: a resume cannot be proven on it');
  verifyPeer(ctx, state.terms, resumeDigest(challenge, state.channelId, m.index), m.signature);
  const queue = state.type === 'Open' ? state.payBackQueue : [];
  return {
    state,
    effects: [
      { type: 'adopt-link' },
      { type: 'link-proven' }, // A's signature: the transport stops counting the connection as a stranger's
      ...queue.map((q) => ({ type: 'send' as const, message: msg('duplex-pay-request', { channelId: state.channelId, amountSat: q.amountSat, requestId: q.requestId }) })),
      { type: 'send', message: msg('duplex-resumed', { channelId: state.channelId, index: state.current.index, queuedRequests: queue.length }) },
    ],
  };
}

/** A: B asks to pay; a repeat of a request A proposed already is ignored. */
export function aOnPayRequest(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-pay-request'>): DuplexStep {
  expectRole(ctx, 'A', m.type);
  if (isLive(state) && (state.proposedRequests.includes(m.requestId) || state.pending?.requestId === m.requestId)) return { state, effects: [] };
  return { state, effects: [{ type: 'propose-request', amountSat: m.amountSat, requestId: m.requestId }] };
}

/**
 * B: A's proposal. A repeat of the state B countersigned last is answered again; otherwise B
 * checks it (its balance drops only by exactly an open request of its own), countersigns, and
 * stores the new state before the countersignature leaves.
 */
export function bOnUpdate(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-update'>, tipHeight: number): DuplexStep {
  expectRole(ctx, 'B', m.type);
  if (isLive(state)) {
    const c = state.current;
    if (m.index === c.index && m.balanceASat === c.balanceASat && m.balanceBSat === c.balanceBSat) {
      // A resent a state B already countersigned (its answer was lost): answer again on the
      // connection it came from (a replay of A's message proves nothing about who sent it).
      return { state, effects: [{ type: 'send', message: msg('duplex-countersign', { channelId: state.channelId, index: c.index, signature: c.sigB }) }] };
    }
  }
  const open = expectUsable(state);
  const channel = liveChannel(open);
  const proposed: DuplexState = { index: m.index, balanceASat: m.balanceASat, balanceBSat: m.balanceBSat };
  const requested = m.requestId === undefined ? null : (open.payBackQueue.find((q) => q.requestId === m.requestId)?.amountSat ?? null);
  if (m.requestId !== undefined && requested === null) throw new ProtocolError('BALANCE_MISMATCH', `no open pay request ${m.requestId}`);
  checkProposalForB(channel, open.current, proposed, requested, tipHeight, ctx.policy.marginBlocks);
  const digest = stateSighash(channel, proposed);
  verifyPeer(ctx, open.terms, digest, m.signature);
  const sigB = ctx.sign(open.keyIndex, digest);
  const next = advanced(open, { ...proposed, sigA: m.signature, sigB });
  const after: StateOf<'Open'> = m.requestId === undefined ? next : { ...next, payBackQueue: next.payBackQueue.filter((q) => q.requestId !== m.requestId) };
  return {
    state: after,
    effects: [
      { type: 'adopt-link' },
      { type: 'persist' }, // the new state is durable before B's countersignature leaves
      { type: 'send', message: msg('duplex-countersign', { channelId: open.channelId, index: proposed.index, signature: sigB }) },
      ...(m.requestId !== undefined ? [{ type: 'resolve' as const, key: `request:${m.requestId}`, value: after.current }] : []),
      ...budgetNotice(ctx, after, tipHeight),
    ],
  };
}

/**
 * A: B's countersignature of the pending proposal. A force close stored while the proposal was
 * out publishes the state it was taken on; the newer one (maybe a pay-back to A that B would
 * rather withhold) must go out instead, so the close is rebuilt on it.
 */
export function aOnCountersign(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-countersign'>, tipHeight: number): DuplexStep {
  expectRole(ctx, 'A', m.type);
  if (!isLive(state)) throw new ProtocolError('STATE_INDEX_MISMATCH', `no proposal ${m.index} waiting`);
  const p = state.pending;
  if (!p || p.index !== m.index) {
    if (state.current.index === m.index) return { state, effects: [] }; // a repeat of an answer already applied
    throw new ProtocolError('STATE_INDEX_MISMATCH', `no proposal ${m.index} waiting`);
  }
  const channel = liveChannel(state);
  verifyPeer(ctx, state.terms, stateSighash(channel, p), m.signature);
  const next = advanced({ ...state, pending: null }, { index: p.index, balanceASat: p.balanceASat, balanceBSat: p.balanceBSat, sigA: p.sigA, sigB: m.signature });
  let after: LiveState = next;
  const effects: DuplexStep['effects'][number][] = [];
  if (next.type === 'Closing' && closeIsStale(next.close, next.current)) {
    const stale = next.close;
    after = { ...next, close: unilateralClose(channel, next.current, stale) };
    effects.push({ type: 'log', line: `${state.channelId}: state ${p.index} countersigned after the force close of state ${stale.stateIndex ?? '?'}: the close publishes state ${p.index} now` });
    effects.push({ type: 'persist' });
    if (stale.bumpReservation) effects.push({ type: 'release', reservation: stale.bumpReservation });
  } else {
    effects.push({ type: 'persist' });
  }
  effects.push({ type: 'resolve', key: `countersign:${p.index}`, value: after.current }, ...budgetNotice(ctx, after, tipHeight));
  return { state: after, effects };
}

/**
 * The peer refused something of ours. A refused state is not gone: B holds A's signature on it
 * and could countersign it any time, and it beats every state below its index. So A at once
 * proposes a state above it with the current balances; once countersigned, the refused state
 * can never be final first. If B refuses that too, A says so loudly.
 */
export function onPeerError(ctx: DuplexContext, state: DuplexChannelState, code: string, text: string, about: ErrorAbout, tipHeight: number, rolloverAwaited: boolean): DuplexStep {
  const error = new ProtocolError(isProtocolErrorCode(code) ? code : 'INTERNAL_ERROR', text);
  if (ctx.role === 'A' && isLive(state) && state.pending && about.index === state.pending.index) return aRefused(ctx, state, code, text, error, tipHeight);
  if (ctx.role === 'B' && about.requestId !== undefined && isLive(state)) {
    // A refused one pay request: it will never be proposed; drop it so B's balance is free again.
    const requestId = about.requestId;
    return { state: { ...state, payBackQueue: state.payBackQueue.filter((q) => q.requestId !== requestId) }, effects: [{ type: 'persist' }, { type: 'reject', key: `request:${requestId}`, error }] };
  }
  if (ctx.role === 'A' && state.type === 'Open' && state.rolloverProposal && rolloverAwaited) {
    // The next attempt may change the rate (a different new channel), never L0.
    return { state: { ...state, rolloverProposal: { ...state.rolloverProposal, refused: true } }, effects: [{ type: 'persist' }, { type: 'reject-all', error }] };
  }
  // Anything else fails the calls waiting on this channel, but never a queued pay request.
  return { state, effects: [{ type: 'reject-all', error }] };
}

function aRefused(ctx: DuplexContext, state: LiveState, code: string, text: string, error: ProtocolError, tipHeight: number): DuplexStep {
  const p = state.pending;
  if (!p) throw new TypeError('no pending state');
  const cleared: LiveState = { ...state, pending: null, refusedIndex: Math.max(state.refusedIndex ?? 0, p.index) };
  const current = state.current;
  const cancel: DuplexState = { index: p.index + 1, balanceASat: current.balanceASat, balanceBSat: current.balanceBSat };
  const channel = liveChannel(state);
  let canCancel = p.cancels === undefined && state.type === 'Open';
  try {
    if (canCancel) checkNextState(channel, current, cancel, tipHeight, ctx.policy.marginBlocks);
  } catch {
    canCancel = false;
  }
  const target = p.cancels ?? p.index;
  const failed = new ProtocolError(error.code, `${text} (state ${target} refused; ${canCancel ? `state ${cancel.index} cancelling it was proposed` : 'it could not be cancelled: B may still claim it'})`);
  const reject = { type: 'reject' as const, key: `countersign:${p.index}`, error: failed };
  if (!canCancel) {
    return {
      state: cleared,
      effects: [
        { type: 'persist' },
        { type: 'log', line: `${state.channelId}: WARNING: B refused state ${target} and its cancellation could not be signed (${code}): B still holds A's signature on it and may claim it` },
        reject,
      ],
    };
  }
  const pending = { ...cancel, sigA: ctx.sign(state.keyIndex, stateSighash(channel, cancel)), cancels: p.index };
  const next: LiveState = { ...cleared, pending };
  return {
    state: next,
    effects: [
      { type: 'persist' },
      { type: 'send', message: updateMessage(next, pending) },
      { type: 'log', line: `${state.channelId}: B refused state ${p.index} (${code}); proposed state ${cancel.index} with the current balances to cancel it` },
      reject,
    ],
  };
}

/** A: B's `duplex-resumed`: the resume call may go on. */
export function aOnResumed(ctx: DuplexContext, state: DuplexChannelState, m: MessageOf<'duplex-resumed'>): DuplexStep {
  expectRole(ctx, 'A', m.type);
  return { state, effects: [{ type: 'resolve', key: 'resumed', value: m.queuedRequests }] };
}

export { expectOpen };
