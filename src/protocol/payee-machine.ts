/**
 * The payee's channel state machine: `payeeStep(ctx, state, input) → { state, effects }`.
 *
 * Pure: no I/O, no clock. The driver supplies the tip height, carries out the effects in order,
 * and replaces its stored state only when the step returns; a step that throws a ProtocolError
 * has changed nothing (the driver sends the error back).
 *
 * Openings hold no state (opening-cookie.ts, docs/design.md "Openings without state"): a hello
 * is answered by {@link payeeAccept}, a v1 refund request by {@link payeeSignRefund}, both pure
 * functions of the message, the payee's secret and the tip; a channel state exists only from
 * {@link payeeOpen}, once a funding checks out.
 *
 * States: AwaitingConfirmation → Open → Expiring → Closing → Closed.
 *
 * The close deadline is `expiry − closeMarginBlocks`: from then on the payer's refund may beat
 * any close, so no payment is taken. Every payment is checked against the tip the driver knows
 * (a number compare on the hot path), and the tip input moves a channel out of Open at the
 * deadline so nothing more is taken however the payment arrives.
 *
 * Closing is decided by the driver's closer across channels (one transaction may close many,
 * see batch-close.ts): the core records the close it was given and tells the payer its txid;
 * the channel is Closed once its funding output is spent on chain, by our close (any fee-bumped
 * version of it) or, if we never closed, by the payer's refund.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { equalBytes } from './bytes.js';
import { makeChannel, type Channel, type ChannelTerms } from './channel.js';
import { PERSIST, type PayeeEffect, type Step as RoleStep } from './effects.js';
import { ProtocolError } from './errors.js';
import { checkFundingTx } from './funding.js';
import { msg, PROTOCOL_VERSION, type Hello, type Message, type MessageOf } from './messages.js';
import { checkCookieAge, openingCookie, openingKeyIndex, verifyOpeningCookie, type ProposalFields } from './opening-cookie.js';
import { paymentSighasher, verifyPayment } from './payment.js';
import { checkHello, type PayeePolicy } from './policy.js';
import { checkRefundTemplate, signPayeeRefund } from './refund.js';
import { variantOf } from './variants/index.js';
import type { PaymentSighasher } from './sighash.js';

/** A step of this machine: it asks only for the payee's effects. */
type Step<S> = RoleStep<S, PayeeEffect>;

export interface PayeeContext {
  readonly secp: Secp256k1;
  readonly policy: PayeePolicy;
  /** The private key of channel key `index` (deterministic derivation: a pure function). */
  readonly privateKey: (index: number) => Uint8Array;
  /** The key of the opening cookies' MAC (derived from the payee's seed: it survives restarts). */
  readonly openingSecret: Uint8Array;
}

interface Negotiated {
  readonly tempId: string;
  readonly terms: ChannelTerms;
  /** Derivation data of the payee's channel key (from the opening cookie): all a close needs to find it again. */
  readonly keyIndex: number;
}

export type PayeeState =
  | (Negotiated & { readonly type: 'AwaitingConfirmation'; readonly channel: Channel; readonly fundingTxHex: string })
  | (Negotiated & { readonly type: 'Open'; readonly channel: Channel; readonly paidSat: bigint; readonly signature: Uint8Array | null })
  /**
   * Zero-conf (only with `allowZeroConf`): payments are taken while the funding is unconfirmed,
   * up to `zeroConfLimitSat` in total; the channel becomes Open when the funding confirms.
   */
  | (Negotiated & { readonly type: 'ZeroConf'; readonly channel: Channel; readonly paidSat: bigint; readonly signature: Uint8Array | null })
  /**
   * The funding lost its confirmations (a reorg) or vanished (a double-spend): no payments are
   * taken until it is confirmed again. What was paid is kept.
   */
  | (Negotiated & { readonly type: 'Suspended'; readonly channel: Channel; readonly paidSat: bigint; readonly signature: Uint8Array | null })
  /**
   * The close deadline has come: no more payments. The closer closes it if something was paid;
   * otherwise the payer's refund settles it after expiry.
   */
  | (Negotiated & { readonly type: 'Expiring'; readonly channel: Channel; readonly paidSat: bigint; readonly signature: Uint8Array | null })
  | (Negotiated & {
      readonly type: 'Closing';
      readonly channel: Channel;
      readonly paidSat: bigint;
      readonly signature: Uint8Array;
      readonly close: CloseRecord;
    })
  | (Negotiated & {
      readonly type: 'Closed';
      readonly channel: Channel;
      readonly paidSat: bigint;
      /** The transaction that spent the funding output. */
      readonly closeTxid: string;
      readonly settledBy: 'close' | 'refund';
    });

/** The close transaction a Closing channel is in (shared by every channel of a batch). */
export interface CloseRecord {
  readonly txid: string;
  readonly txHex: string;
  readonly feeSat: bigint;
  readonly vsize: number;
  readonly feeRateSatPerVb: number;
  /** Tip height when this version was broadcast: the fee-bump clock. */
  readonly broadcastHeight: number;
  /** How many channels share it. */
  readonly channels: number;
}

export type PayeeInput =
  /**
   * A message from the payer, with the tip height the driver knew when it arrived (from its
   * block notifications): a payment at or past the close deadline is refused.
   */
  | { readonly type: 'message'; readonly message: Message; readonly tipHeight: number }
  /** A new tip: at the close deadline an Open, ZeroConf or Suspended channel becomes Expiring. */
  | { readonly type: 'tip'; readonly height: number }
  /** A watched transaction reached the confirmations asked for. */
  | { readonly type: 'confirmed'; readonly txid: string }
  /** The close recorded by `close` was accepted by the node. */
  | { readonly type: 'close-broadcast'; readonly txid: string }
  /** The funding of an open channel has fewer confirmations than required (a reorg), or none. */
  | { readonly type: 'funding-unconfirmed' }
  /** The funding output was spent by `txid`, with the confirmations the payee requires. */
  | { readonly type: 'settled'; readonly txid: string; readonly by: 'close' | 'refund' }
  /** The closer built (or fee-bumped) a close spending this channel; it broadcasts it after this step. */
  | { readonly type: 'close'; readonly close: CloseRecord };

/** The first height at which a channel takes no payment: `expiry − closeMarginBlocks`. */
export function closeDeadlineHeight(policy: PayeePolicy, channel: Channel): number {
  return channel.expiryHeight - policy.closeMarginBlocks;
}

/** Channel id used in error replies: the funding outpoint. */
export function payeeStateRef(state: PayeeState): string {
  return state.channel.id;
}

/**
 * A payer's proposal (seed steps 1, 3): checks policy and answers with the channel key and the
 * cookie that vouches for the proposal. Stores nothing; the same hello at the same tip gets the
 * same answer.
 * @throws ProtocolError from {@link checkHello}.
 */
export function payeeAccept(ctx: PayeeContext, hello: Hello, tipHeight: number): MessageOf<'accept'> {
  checkHello(ctx.secp, ctx.policy, hello, tipHeight);
  const cookie = openingCookie(ctx.openingSecret, hello, tipHeight);
  // One HMAC for the key and one native point multiplication (keys.ts): a stranger's hello is cheap.
  const payeePubkey = ctx.secp.publicKeyCreate(ctx.privateKey(openingKeyIndex(cookie)));
  return msg('accept', { tempId: hello.tempId, payeePubkey, minFundingConfirmations: ctx.policy.minFundingConfirmations, cookie });
}

/** An opening message the cookie vouches for: the proposal rebuilt, and the payee's key. */
export interface Vouched {
  readonly terms: ChannelTerms;
  readonly keyIndex: number;
  /** The payee's channel private key (derived once per message: see {@link payeeVouched}). */
  readonly privateKey: Uint8Array;
  /** The height the cookie was issued at. */
  readonly issuedHeight: number;
}

/**
 * Rebuilds a proposal from an opening message's echo. The MAC is checked first, before any
 * other work; then the cookie's age (unless `tipHeight` is null), then the policy as it stood
 * when the cookie was issued; then the key is derived. Done once per message: the result is
 * what {@link payeeSignRefund} and {@link payeeOpen} take.
 * @throws ProtocolError INVALID_COOKIE, COOKIE_EXPIRED, or from {@link checkHello}.
 */
export function payeeVouched(ctx: PayeeContext, message: MessageOf<'refund-request' | 'funding'>, tipHeight: number | null): Vouched {
  const proposal: ProposalFields = { tempId: message.tempId, ...message.proposal };
  const issuedHeight = verifyOpeningCookie(ctx.openingSecret, proposal, message.cookie);
  if (tipHeight !== null) checkCookieAge(issuedHeight, tipHeight, ctx.policy.proposalTimeoutBlocks);
  // The policy may have changed since (a restart with new options): what is refused now is refused.
  checkHello(ctx.secp, ctx.policy, msg('hello', proposal), issuedHeight);
  const keyIndex = openingKeyIndex(message.cookie);
  const privateKey = ctx.privateKey(keyIndex);
  const payeePubkey = ctx.secp.publicKeyCreate(privateKey);
  return { terms: { ...message.proposal, payeePubkey }, keyIndex, privateKey, issuedHeight };
}

/**
 * Seed step 4 (v1): signs the payer's refund for the funding outpoint it names, with the key the
 * cookie derives. Stores nothing: a repeat gets the same (RFC 6979) signature again. Signing
 * costs the payee nothing: it has no coins in a channel until it accepts the funding.
 * @param vouched what {@link payeeVouched} made of `request`, with the cookie's age checked.
 * @throws ProtocolError UNEXPECTED_MESSAGE (a variant whose refund needs no payee signature, as v2), or from {@link checkRefundTemplate}.
 */
export function payeeSignRefund(ctx: PayeeContext, request: MessageOf<'refund-request'>, vouched: Vouched): MessageOf<'refund-signature'> {
  const { terms } = vouched;
  // Only a variant whose refund needs the payee's signature has this step.
  if (variantOf(terms.variant).opening.type !== 'refund-first') throw new ProtocolError('UNEXPECTED_MESSAGE', `refund-request for a ${terms.variant} channel`);
  const funding = { txid: request.fundingTxid, vout: request.fundingVout };
  checkRefundTemplate(terms, funding, request.refundTx);
  const signature = signPayeeRefund(ctx.secp, makeChannel(terms, funding), vouched.privateKey);
  return msg('refund-signature', { tempId: request.tempId, signature });
}

/**
 * Seed step 6: a funding for a proposal the cookie vouches for makes a channel. Its first effect
 * hands the funding to the node; the state is stored only once the node took it (a funding the
 * node refuses leaves nothing behind), and everything the payer is told follows the store.
 * @param vouched what {@link payeeVouched} made of `funding`.
 * @param tipHeight the tip the cookie's age is checked against; null when the node already has
 *   this funding (a payee that broadcast it and died before storing it): then the cookie's age
 *   does not matter, the payer's coins are already committed.
 * @throws ProtocolError COOKIE_EXPIRED, or from {@link checkFundingTx}.
 */
export function payeeOpen(ctx: PayeeContext, funding: MessageOf<'funding'>, vouched: Vouched, tipHeight: number | null): Step<PayeeState> {
  if (tipHeight !== null) checkCookieAge(vouched.issuedHeight, tipHeight, ctx.policy.proposalTimeoutBlocks);
  const { terms, keyIndex } = vouched;
  const outpoint = checkFundingTx(terms, funding.fundingTx, null);
  const channel = makeChannel(terms, outpoint);
  const { tempId } = funding;
  const opening = [
    { type: 'broadcast' as const, txid: outpoint.txid, txHex: funding.fundingTx },
    { type: 'persist' as const },
    { type: 'watch-confirmations' as const, txid: outpoint.txid, confirmations: ctx.policy.minFundingConfirmations },
  ];
  if (ctx.policy.allowZeroConf) {
    return {
      state: { tempId, terms, keyIndex, type: 'ZeroConf', channel, paidSat: 0n, signature: null },
      effects: [...opening, { type: 'send', message: msg('channel-open', { tempId, channelId: channel.id }) }],
    };
  }
  return { state: { tempId, terms, keyIndex, type: 'AwaitingConfirmation', channel, fundingTxHex: funding.fundingTx }, effects: opening };
}

/**
 * Cache of per-channel payment sighashers: derived data, rebuilt on demand, so states stay plain
 * serializable values.
 */
const sighashers = new WeakMap<Channel, PaymentSighasher>();
function sighasherFor(channel: Channel): PaymentSighasher {
  let s = sighashers.get(channel);
  if (!s) sighashers.set(channel, (s = paymentSighasher(channel)));
  return s;
}

function unexpected(state: PayeeState, what: string): ProtocolError {
  return new ProtocolError('UNEXPECTED_MESSAGE', `${what} in state ${state.type}`);
}

/**
 * One step of a payee channel.
 * @throws ProtocolError when the input is refused; the state is then unchanged.
 * @throws RangeError for a close of a channel that is not open or has nothing paid.
 */
export function payeeStep(ctx: PayeeContext, state: PayeeState, input: PayeeInput): Step<PayeeState> {
  switch (input.type) {
    case 'message':
      return onMessage(ctx, state, input.message, input.tipHeight);
    case 'tip': {
      if (state.type !== 'Open' && state.type !== 'ZeroConf' && state.type !== 'Suspended') return { state, effects: [] };
      if (input.height < closeDeadlineHeight(ctx.policy, state.channel)) return { state, effects: [] };
      return { state: { ...state, type: 'Expiring' }, effects: [{ type: 'persist' }] };
    }
    case 'confirmed':
      return onConfirmed(ctx, state, input);
    case 'close':
      return onClose(state, input.close);
    case 'settled':
      return onSettled(state, input);
    case 'close-broadcast':
      // The node took the close: now the payer may be told (not before: a refused close is undone).
      if (state.type !== 'Closing' || state.close.txid !== input.txid) return { state, effects: [] };
      return { state, effects: [{ type: 'send', message: msg('channel-closed', { channelId: state.channel.id, closeTxid: input.txid }) }] };
    case 'funding-unconfirmed': {
      if (state.type !== 'Open') return { state, effects: [] };
      return { state: { ...state, type: 'Suspended' }, effects: [{ type: 'persist' }] };
    }
  }
}

function onMessage(ctx: PayeeContext, state: PayeeState, message: Message, tipHeight: number): Step<PayeeState> {
  switch (message.type) {
    case 'funding': {
      // A repeat after a reconnect (the driver checked the cookie): say again that the channel is
      // open, if it is. A funding for a new channel never reaches a channel's state (payeeOpen).
      if (state.type === 'AwaitingConfirmation' && message.fundingTx === state.fundingTxHex) return { state, effects: [] };
      if (state.type === 'Closed') throw unexpected(state, 'funding');
      checkFundingTx(state.terms, message.fundingTx, state.channel.funding);
      const open = state.type === 'Open' || state.type === 'ZeroConf' ? [{ type: 'send' as const, message: msg('channel-open', { tempId: state.tempId, channelId: state.channel.id }) }] : [];
      return { state, effects: open };
    }
    case 'payment': {
      if ((state.type === 'Open' || state.type === 'ZeroConf' || state.type === 'Expiring') && message.channelId === state.channel.id) {
        // Before the repeat below too: nothing at all is acknowledged from the deadline on.
        const deadline = closeDeadlineHeight(ctx.policy, state.channel);
        if (state.type === 'Expiring' || tipHeight >= deadline) throw new ProtocolError('CHANNEL_EXPIRING', `the close deadline ${deadline} is reached (tip ${tipHeight})`);
      }
      if (state.type === 'ZeroConf' && message.channelId === state.channel.id && message.totalSat > ctx.policy.zeroConfLimitSat && message.totalSat !== state.paidSat) {
        throw new ProtocolError('ZERO_CONF_LIMIT', `the funding is unconfirmed: at most ${ctx.policy.zeroConfLimitSat} sat until it confirms`);
      }
      if (state.type !== 'Open' && state.type !== 'ZeroConf') {
        if ('channel' in state && state.channel.id === message.channelId) throw new ProtocolError('CHANNEL_NOT_OPEN', `channel is ${state.type}`);
        throw unexpected(state, 'payment');
      }
      if (message.channelId !== state.channel.id) throw new ProtocolError('UNKNOWN_CHANNEL', `payment for ${message.channelId} on channel ${state.channel.id}`);
      if (message.totalSat === state.paidSat && state.signature !== null && equalBytes(message.signature, state.signature)) {
        // The newest payment again (a payer resending after a reconnect): acknowledge it again,
        // nothing to store. Any other non-increasing total is refused below.
        return { state, effects: [{ type: 'send', message: msg('payment-ack', { channelId: state.channel.id, totalSat: state.paidSat }) }] };
      }
      verifyPayment(ctx.secp, state.channel, sighasherFor(state.channel), state.paidSat, message.totalSat, message.signature);
      // Written out rather than spread and msg(): this is every payment's step (same values).
      const { tempId, terms, keyIndex, type, channel } = state;
      const ack: MessageOf<'payment-ack'> = { v: PROTOCOL_VERSION, type: 'payment-ack', channelId: channel.id, totalSat: message.totalSat };
      return {
        state: { tempId, terms, keyIndex, type, channel, paidSat: message.totalSat, signature: message.signature },
        effects: [PERSIST, { type: 'send', message: ack }],
      };
    }
    case 'close-request': {
      if (state.type === 'Closing' || state.type === 'Closed') {
        const closeTxid = state.type === 'Closing' ? state.close.txid : state.closeTxid;
        return { state, effects: [{ type: 'send', message: msg('channel-closed', { channelId: state.channel.id, closeTxid }) }] };
      }
      if (state.type !== 'Open' && state.type !== 'Expiring') throw unexpected(state, 'close-request');
      return { state, effects: [{ type: 'close-requested' }] };
    }
    case 'status-request': {
      if (state.channel.id !== message.channelId) throw new ProtocolError('UNKNOWN_CHANNEL', message.channelId);
      return { state, effects: [{ type: 'send', message: channelStatus(state) }] };
    }
    case 'error':
      return { state, effects: [{ type: 'peer-error', message }] };
    default:
      throw unexpected(state, message.type);
  }
}

function channelStatus(state: PayeeState): Message {
  const paidSat = state.type === 'AwaitingConfirmation' ? 0n : state.paidSat;
  const closeTxid = state.type === 'Closing' ? state.close.txid : state.type === 'Closed' ? state.closeTxid : undefined;
  // Expiring reads as Closing on the wire: no more payments, a close (if anything was paid) to come.
  const type = state.type === 'Suspended' ? ('AwaitingConfirmation' as const) : state.type === 'ZeroConf' ? ('Open' as const) : state.type === 'Expiring' ? ('Closing' as const) : state.type;
  const base = { channelId: state.channel.id, state: type, paidSat };
  return msg('channel-status', closeTxid === undefined ? base : { ...base, closeTxid });
}

function onConfirmed(ctx: PayeeContext, state: PayeeState, input: Extract<PayeeInput, { type: 'confirmed' }>): Step<PayeeState> {
  if ((state.type === 'Suspended' || state.type === 'ZeroConf') && state.channel.funding.txid === input.txid) return { state: { ...state, type: 'Open' }, effects: [{ type: 'persist' }] };
  if (state.type !== 'AwaitingConfirmation' || state.channel.funding.txid !== input.txid) return { state, effects: [] };
  const { fundingTxHex: _, ...rest } = state;
  return {
    state: { ...rest, type: 'Open', paidSat: 0n, signature: null },
    effects: [{ type: 'persist' }, { type: 'send', message: msg('channel-open', { tempId: state.tempId, channelId: state.channel.id }) }],
  };
}

function onClose(state: PayeeState, close: CloseRecord): Step<PayeeState> {
  // Closing again means a fee bump: the same payment, a higher fee, replacing the earlier close.
  if (state.type !== 'Open' && state.type !== 'Expiring' && state.type !== 'Closing') throw new RangeError(`cannot close a channel in state ${state.type}`);
  if (state.signature === null) throw new RangeError('nothing was paid on this channel; let the payer refund');
  const { tempId, terms, keyIndex, channel, paidSat, signature } = state;
  return { state: { tempId, terms, keyIndex, channel, paidSat, signature, type: 'Closing', close }, effects: [{ type: 'persist' }] };
}

function onSettled(state: PayeeState, input: Extract<PayeeInput, { type: 'settled' }>): Step<PayeeState> {
  if (state.type !== 'Open' && state.type !== 'Expiring' && state.type !== 'Closing' && state.type !== 'AwaitingConfirmation' && state.type !== 'Suspended') return { state, effects: [] };
  const { tempId, terms, keyIndex, channel } = state;
  const paidSat = state.type === 'AwaitingConfirmation' ? 0n : state.paidSat;
  return {
    state: { tempId, terms, keyIndex, channel, paidSat, type: 'Closed', closeTxid: input.txid, settledBy: input.by },
    effects: [{ type: 'persist' }, { type: 'send', message: msg('channel-closed', { channelId: channel.id, closeTxid: input.txid }) }],
  };
}
