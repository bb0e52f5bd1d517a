/**
 * The payer's channel state machine: `payerStep(ctx, state, input) → { state, effects }`.
 *
 * Pure like the payee's. The payer's safety rules live here:
 * - it signs the funding (shows it to anyone) only after it holds a valid refund (v1), and the
 *   refund signature is persisted before the funding is sent;
 * - each payment is persisted before it is sent, and never exceeds `maxTotalSat`, the budget the
 *   user agreed to (at most the capacity).
 *
 * States: Proposed → Funding → AwaitingRefundSignature (v1) → AwaitingOpen → Open → Closed,
 * or Aborted before any money moved. An external wallet (PSBT) may take the v1 refund round trip
 * before it signs: Funding → RefundBeforeSigning → AwaitingFundingSignature → AwaitingOpen.
 */
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { toHex } from './bytes.js';
import { fundingScriptOf, makeChannel, type Channel, type ChannelTerms } from './channel.js';
import { dustThresholdSat } from './dust.js';
import { NO_EFFECTS, PERSIST, type PayerEffect, type Step as RoleStep } from './effects.js';
import { ProtocolError } from './errors.js';
import { checkFundingTx, checkUnsignedFundingTx } from './funding.js';
import { msg, PROTOCOL_VERSION, type Message, type MessageOf, type ProposalEcho } from './messages.js';
import type { NetworkName } from './network.js';
import { checkPaymentTotal, paymentSighasher, signPayment } from './payment.js';
import type { PayerPolicy } from './policy.js';
import { refundTemplateHex, verifyPayeeRefund } from './refund.js';
import { variantOf, type VariantName } from './variants/index.js';
import type { PaymentSighasher } from './sighash.js';

/** A step of this machine: it asks only for the payer's effects. */
type Step<S> = RoleStep<S, PayerEffect>;

export interface PayerContext {
  readonly secp: Secp256k1;
  readonly policy: PayerPolicy;
  readonly privateKey: (index: number) => Uint8Array;
}

export interface Proposal {
  readonly tempId: string;
  readonly network: NetworkName;
  readonly variant: VariantName;
  readonly keyIndex: number;
  readonly payerPubkey: Uint8Array;
  readonly capacitySat: bigint;
  readonly expiryHeight: number;
  readonly payerScript: Uint8Array;
  /** The most the payer will ever pay on this channel (≤ capacity). */
  readonly maxTotalSat: bigint;
}

interface Agreed {
  readonly proposal: Proposal;
  readonly terms: ChannelTerms;
  /** The payee's opening cookie, echoed with the proposal in every later opening message (the payee stored nothing). */
  readonly cookie: Uint8Array;
}

interface Funded extends Agreed {
  readonly channel: Channel;
  readonly fundingTxHex: string;
}

/** A funding whose inputs an external wallet chose but has not signed: its txid is already final (segwit). */
interface FundedUnsigned extends Agreed {
  readonly channel: Channel;
  readonly unsignedFundingTxHex: string;
}

export type PayerState =
  | { readonly type: 'Proposed'; readonly proposal: Proposal }
  | (Agreed & { readonly type: 'Funding'; readonly minFundingConfirmations: number })
  | (Funded & { readonly type: 'AwaitingRefundSignature' })
  /** v1 with an external wallet: the refund is asked for an unsigned funding, so the wallet signs only once we hold it. */
  | (FundedUnsigned & { readonly type: 'RefundBeforeSigning' })
  /** The refund is held and verified; waiting for the wallet's signed funding (the same txid). */
  | (FundedUnsigned & { readonly type: 'AwaitingFundingSignature'; readonly payeeRefundSignature: Uint8Array })
  /** `payeeRefundSignature` is null for v2, whose refund needs no payee signature. */
  | (Funded & { readonly type: 'AwaitingOpen'; readonly payeeRefundSignature: Uint8Array | null })
  | (Funded & {
      readonly type: 'Open';
      readonly payeeRefundSignature: Uint8Array | null;
      /** The newest total signed and sent (maybe not yet acknowledged). */
      readonly signedTotalSat: bigint;
      readonly signature: Uint8Array | null;
      /** The highest total the payee acknowledged as durably stored. */
      readonly ackedTotalSat: bigint;
    })
  | (Funded & {
      readonly type: 'Closed';
      readonly signedTotalSat: bigint;
      readonly ackedTotalSat: bigint;
      /** The close (or refund) that spends the funding; the newest we heard of until settled. */
      readonly closeTxid: string;
      /** Set once the spend is confirmed on chain: what it was and what it paid us. */
      readonly settlement?: Settlement;
    })
  | { readonly type: 'Aborted'; readonly proposal: Proposal; readonly reason: string };

/** How a channel ended on chain, as the payer's watcher saw it. */
export interface Settlement {
  readonly by: 'close' | 'refund';
  readonly txid: string;
  /** What the spend paid to the payer's script(s). */
  readonly payerValueSat: bigint;
}

export type PayerInput =
  | { readonly type: 'message'; readonly message: Message }
  /** The wallet's answer to `create-funding`: a signed, unbroadcast transaction. */
  | { readonly type: 'funding-created'; readonly txHex: string }
  /**
   * An external wallet's answer to `create-funding` for a refund-first variant: the funding with
   * its inputs chosen but unsigned, so the refund is signed before the funding can exist signed.
   */
  | { readonly type: 'funding-unsigned'; readonly txHex: string }
  /** Pay `amountSat` more. */
  | { readonly type: 'pay'; readonly amountSat: bigint }
  | { readonly type: 'request-close' }
  /** The watcher saw the funding spent with a confirmation. */
  | { readonly type: 'settled'; readonly settlement: Settlement };

/**
 * Starts a channel proposal (seed step 1).
 * @throws RangeError if the proposal is inconsistent (budget above capacity, bad amounts).
 */
export function payerPropose(proposal: Proposal): Step<PayerState> {
  if (proposal.capacitySat <= 0n) throw new RangeError('capacitySat must be positive');
  if (proposal.maxTotalSat <= 0n || proposal.maxTotalSat > proposal.capacitySat) throw new RangeError('maxTotalSat must be in 1..capacitySat');
  return { state: { type: 'Proposed', proposal }, effects: [{ type: 'persist' }, { type: 'send', message: helloOf(proposal) }] };
}

function helloOf(proposal: Proposal): MessageOf<'hello'> {
  return msg('hello', {
    tempId: proposal.tempId,
    network: proposal.network,
    variant: proposal.variant,
    payerPubkey: proposal.payerPubkey,
    capacitySat: proposal.capacitySat,
    expiryHeight: proposal.expiryHeight,
    payerScript: proposal.payerScript,
  });
}

/** The hello's terms, as the later opening messages echo them. */
function echoOf(proposal: Proposal): ProposalEcho {
  const { network, variant, payerPubkey, capacitySat, expiryHeight, payerScript } = proposal;
  return { network, variant, payerPubkey, capacitySat, expiryHeight, payerScript };
}

function refundRequestOf(state: Agreed & { readonly channel: Channel }): MessageOf<'refund-request'> {
  const { proposal, cookie, channel } = state;
  return msg('refund-request', {
    tempId: proposal.tempId,
    proposal: echoOf(proposal),
    cookie,
    fundingTxid: channel.funding.txid,
    fundingVout: channel.funding.vout,
    refundTx: refundTemplateHex(channel),
  });
}

function fundingOf(state: Agreed & { readonly fundingTxHex: string }): MessageOf<'funding'> {
  return msg('funding', { tempId: state.proposal.tempId, proposal: echoOf(state.proposal), cookie: state.cookie, fundingTx: state.fundingTxHex });
}

const sighashers = new WeakMap<Channel, PaymentSighasher>();
function sighasherFor(channel: Channel): PaymentSighasher {
  let s = sighashers.get(channel);
  if (!s) sighashers.set(channel, (s = paymentSighasher(channel)));
  return s;
}

function unexpected(state: PayerState, what: string): ProtocolError {
  return new ProtocolError('UNEXPECTED_MESSAGE', `${what} in state ${state.type}`);
}

/**
 * One step of a payer channel.
 * @throws ProtocolError when a peer message is refused (state unchanged).
 * @throws RangeError when our own caller asks for something impossible (paying past the budget,
 *   paying on a channel that is not open, leaving dust change).
 */
export function payerStep(ctx: PayerContext, state: PayerState, input: PayerInput): Step<PayerState> {
  switch (input.type) {
    case 'message':
      return onMessage(ctx, state, input.message);
    case 'funding-created':
      return state.type === 'AwaitingFundingSignature' ? onFundingSigned(state, input.txHex) : onFundingCreated(state, input.txHex);
    case 'funding-unsigned':
      return onFundingUnsigned(state, input.txHex);
    case 'pay':
      return onPay(ctx, state, input.amountSat);
    case 'request-close':
      if (state.type !== 'Open') throw new RangeError(`cannot close a channel in state ${state.type}`);
      return { state, effects: [{ type: 'send', message: msg('close-request', { channelId: state.channel.id }) }] };
    case 'settled':
      return onSettled(state, input.settlement);
  }
}

function onMessage(ctx: PayerContext, state: PayerState, message: Message): Step<PayerState> {
  switch (message.type) {
    case 'accept':
      return onAccept(ctx, state, message);
    case 'refund-signature': {
      if (state.type === 'RefundBeforeSigning') return onRefundBeforeSigning(ctx, state, message.signature);
      if (state.type !== 'AwaitingRefundSignature') throw unexpected(state, 'refund-signature');
      if (!verifyPayeeRefund(ctx.secp, state.channel, message.signature)) {
        // Seed step 5: abort. Nothing was signed or shown, so nothing is at risk.
        return {
          state: { type: 'Aborted', proposal: state.proposal, reason: 'INVALID_SIGNATURE: the payee signature on the refund does not verify' },
          effects: [
            { type: 'persist' },
            { type: 'release-funding', txid: state.channel.funding.txid },
            { type: 'send', message: msg('error', { code: 'INVALID_SIGNATURE', message: 'refund signature does not verify', action: 'close', ref: state.proposal.tempId }) },
          ],
        };
      }
      const { type: _, ...funded } = state;
      return {
        state: { ...funded, type: 'AwaitingOpen', payeeRefundSignature: message.signature },
        effects: [{ type: 'persist' }, { type: 'send', message: fundingOf(state) }],
      };
    }
    case 'channel-open': {
      if (state.type !== 'AwaitingOpen') throw unexpected(state, 'channel-open');
      if (message.channelId !== state.channel.id) throw new ProtocolError('UNKNOWN_CHANNEL', `payee opened ${message.channelId}, we funded ${state.channel.id}`);
      return {
        state: { ...state, type: 'Open', signedTotalSat: 0n, signature: null, ackedTotalSat: 0n },
        effects: [{ type: 'persist' }],
      };
    }
    case 'payment-ack': {
      if (state.type !== 'Open' && state.type !== 'Closed') throw unexpected(state, 'payment-ack');
      if (message.channelId !== state.channel.id) throw new ProtocolError('UNKNOWN_CHANNEL', message.channelId);
      if (message.totalSat > state.signedTotalSat) throw new ProtocolError('AMOUNT_EXCEEDS_CAPACITY', `ack of ${message.totalSat}, only ${state.signedTotalSat} signed`);
      if (message.totalSat <= state.ackedTotalSat) return { state, effects: NO_EFFECTS };
      // Acks are bookkeeping the payer can always rebuild (the payee's store is authoritative),
      // so they are not persisted one by one.
      return { state: { ...state, ackedTotalSat: message.totalSat }, effects: NO_EFFECTS };
    }
    case 'channel-closed': {
      if (state.type === 'Closed' && message.channelId === state.channel.id) {
        // A fee-bumped close has a new txid; whichever version confirms spends the same funding.
        return message.closeTxid === state.closeTxid ? { state, effects: [] } : { state: { ...state, closeTxid: message.closeTxid }, effects: [{ type: 'persist' }] };
      }
      if (state.type !== 'Open') throw unexpected(state, 'channel-closed');
      if (message.channelId !== state.channel.id) throw new ProtocolError('UNKNOWN_CHANNEL', message.channelId);
      const { payeeRefundSignature: _p, signature: _s, ...rest } = state;
      return {
        state: { ...rest, type: 'Closed', closeTxid: message.closeTxid },
        effects: [{ type: 'persist' }],
      };
    }
    case 'channel-status':
      return onStatus(state, message);
    case 'error':
      // Our auth can reach a restarted payee before the funding we resent on the same connection
      // has made the channel again (a payee stores a channel only once the node took its
      // funding): that funding will open it, on this connection, so this refusal is no failure.
      // The auth was not recorded, though: the client sends it again once the channel is Open.
      if (state.type === 'AwaitingOpen' && message.code === 'UNKNOWN_CHANNEL') return { state, effects: [] };
      // Another payee instance serves the channel now (docs/scale.md): this one ends the
      // connection, and the resume on the next one resends the newest payment, whose
      // acknowledgement covers every payment in flight. They wait; none of them was refused.
      if (message.code === 'CHANNEL_MOVED') return { state, effects: [] };
      return { state, effects: [{ type: 'peer-error', message }] };
    default:
      throw unexpected(state, message.type);
  }
}

/**
 * The payee's durable view after a reconnect: take its acknowledgement, resend the newest
 * payment if the payee does not have it (a total, so resending is always safe), and learn of
 * a close that happened while we were away.
 */
function onStatus(state: PayerState, status: MessageOf<'channel-status'>): Step<PayerState> {
  if (!('channel' in state) || state.channel.id !== status.channelId) throw new ProtocolError('UNKNOWN_CHANNEL', status.channelId);
  if (state.type === 'AwaitingOpen' && status.state === 'Open') {
    // The payee's channel-open was sent while we were away.
    return { state: { ...state, type: 'Open', signedTotalSat: 0n, signature: null, ackedTotalSat: 0n }, effects: [{ type: 'persist' }] };
  }
  if (state.type !== 'Open') return { state, effects: [] };
  if (status.paidSat > state.signedTotalSat) {
    throw new ProtocolError('AMOUNT_EXCEEDS_CAPACITY', `payee claims ${status.paidSat}, we signed only ${state.signedTotalSat}`, 'close');
  }
  const acked = status.paidSat > state.ackedTotalSat ? { ...state, ackedTotalSat: status.paidSat } : state;
  if ((status.state === 'Closing' || status.state === 'Closed') && status.closeTxid !== undefined) {
    const { payeeRefundSignature: _p, signature: _s, ...rest } = acked;
    return {
      state: { ...rest, type: 'Closed', closeTxid: status.closeTxid },
      effects: [{ type: 'persist' }],
    };
  }
  // The payee lacks our newest payment: send it again (the same proof a reconnect sends).
  const proof = status.paidSat < state.signedTotalSat ? proofMessage(state) : null;
  return { state: acked, effects: proof ? [{ type: 'send', message: proof }] : [] };
}

function onSettled(state: PayerState, settlement: Settlement): Step<PayerState> {
  if (state.type === 'Closed') return { state: { ...state, closeTxid: settlement.txid, settlement }, effects: [{ type: 'persist' }] };
  if (state.type !== 'Open' && state.type !== 'AwaitingOpen') throw new RangeError(`cannot settle a channel in state ${state.type}`);
  const signedTotalSat = state.type === 'Open' ? state.signedTotalSat : 0n;
  const ackedTotalSat = state.type === 'Open' ? state.ackedTotalSat : 0n;
  const { proposal, terms, cookie, channel, fundingTxHex } = state;
  return {
    state: { proposal, terms, cookie, channel, fundingTxHex, type: 'Closed', signedTotalSat, ackedTotalSat, closeTxid: settlement.txid, settlement },
    effects: [{ type: 'persist' }],
  };
}

/**
 * The message a payer sends on every (re)connection, to resume where the other side may have
 * lost it: the opening step in progress again (the payee answers repeats idempotently), or a
 * status request for an open channel.
 */
export function resumeMessage(state: PayerState): Message | null {
  switch (state.type) {
    case 'Proposed':
      return helloOf(state.proposal);
    case 'AwaitingRefundSignature':
    case 'RefundBeforeSigning':
      return refundRequestOf(state);
    case 'AwaitingOpen':
      return fundingOf(state);
    case 'Open':
      return msg('status-request', { channelId: state.channel.id });
    default:
      return null;
  }
}

/**
 * The newest payment again, for a payee that lacks it (after a status request): the payee
 * acknowledges it again. It does not make the connection the payer's (anyone may replay it):
 * an `auth` does (./auth.ts).
 */
function proofMessage(state: PayerState): Message | null {
  return state.type === 'Open' && state.signature !== null ? msg('payment', { channelId: state.channel.id, totalSat: state.signedTotalSat, signature: state.signature }) : null;
}

function onAccept(ctx: PayerContext, state: PayerState, accept: MessageOf<'accept'>): Step<PayerState> {
  if (state.type !== 'Proposed') {
    // The answer to a hello we resent (a reconnect raced the first answer): the first accept
    // stands. The payee kept nothing for either, so the second costs it nothing to forget.
    if (state.type !== 'Aborted' && accept.tempId === state.proposal.tempId) return { state, effects: [] };
    throw unexpected(state, 'accept');
  }
  if (accept.tempId !== state.proposal.tempId) throw new ProtocolError('UNKNOWN_CHANNEL', `accept for ${accept.tempId}`);
  if (!ctx.secp.isPublicKey(accept.payeePubkey)) throw new ProtocolError('INVALID_PUBKEY', 'payeePubkey');
  if (accept.minFundingConfirmations > ctx.policy.maxFundingConfirmations) {
    throw new ProtocolError('UNEXPECTED_MESSAGE', `payee wants ${accept.minFundingConfirmations} confirmations, we accept at most ${ctx.policy.maxFundingConfirmations}`);
  }
  const p = state.proposal;
  const terms: ChannelTerms = {
    variant: p.variant,
    network: p.network,
    payerPubkey: p.payerPubkey,
    payeePubkey: accept.payeePubkey,
    capacitySat: p.capacitySat,
    expiryHeight: p.expiryHeight,
    payerScript: p.payerScript,
  };
  return {
    state: { type: 'Funding', proposal: p, terms, cookie: accept.cookie, minFundingConfirmations: accept.minFundingConfirmations },
    effects: [{ type: 'persist' }, { type: 'create-funding', script: fundingScriptOf(terms).fundingScript, valueSat: p.capacitySat }],
  };
}

function onFundingCreated(state: PayerState, txHex: string): Step<PayerState> {
  if (state.type !== 'Funding') throw new RangeError(`funding created in state ${state.type}`);
  // Our own wallet built it; checking it anyway costs nothing and catches a wallet bug before money moves.
  const funding = checkFundingTx(state.terms, txHex, null);
  const channel = makeChannel(state.terms, funding);
  const funded = { proposal: state.proposal, terms: state.terms, cookie: state.cookie, channel, fundingTxHex: txHex };
  // The variant's opening flow: its refund needs the payee's signature before the funding is shown, or not.
  const flow = variantOf(channel.variant).opening;
  switch (flow.type) {
    case 'refund-first':
      return { state: { ...funded, type: 'AwaitingRefundSignature' }, effects: [{ type: 'persist' }, { type: 'send', message: refundRequestOf(funded) }] };
    case 'fund-directly':
      return { state: { ...funded, type: 'AwaitingOpen', payeeRefundSignature: null }, effects: [{ type: 'persist' }, { type: 'send', message: fundingOf(funded) }] };
    default: {
      const _exhaustive: never = flow;
      throw new RangeError(`unknown opening flow ${String(_exhaustive)}`);
    }
  }
}

function onFundingUnsigned(state: PayerState, txHex: string): Step<PayerState> {
  if (state.type !== 'Funding') throw new RangeError(`funding proposed in state ${state.type}`);
  if (variantOf(state.terms.variant).opening.type !== 'refund-first') throw new RangeError(`${state.terms.variant} needs no refund before the funding: give the signed funding`);
  const funding = checkUnsignedFundingTx(state.terms, txHex);
  const channel = makeChannel(state.terms, funding);
  const next = { proposal: state.proposal, terms: state.terms, cookie: state.cookie, channel, unsignedFundingTxHex: txHex };
  return { state: { ...next, type: 'RefundBeforeSigning' }, effects: [{ type: 'persist' }, { type: 'send', message: refundRequestOf(next) }] };
}

function onRefundBeforeSigning(ctx: PayerContext, state: Extract<PayerState, { type: 'RefundBeforeSigning' }>, signature: Uint8Array): Step<PayerState> {
  if (!verifyPayeeRefund(ctx.secp, state.channel, signature)) {
    // Nothing was signed: the wallet is told (by the abort) not to sign this funding.
    return {
      state: { type: 'Aborted', proposal: state.proposal, reason: 'INVALID_SIGNATURE: the payee signature on the refund does not verify; do not sign the funding' },
      effects: [{ type: 'persist' }, { type: 'send', message: msg('error', { code: 'INVALID_SIGNATURE', message: 'refund signature does not verify', action: 'close', ref: state.proposal.tempId }) }],
    };
  }
  const { type: _, ...held } = state;
  return { state: { ...held, type: 'AwaitingFundingSignature', payeeRefundSignature: signature }, effects: [{ type: 'persist' }] };
}

/** The wallet signed the funding the refund was signed for: it must be that very transaction (same txid). */
function onFundingSigned(state: Extract<PayerState, { type: 'AwaitingFundingSignature' }>, txHex: string): Step<PayerState> {
  checkFundingTx(state.terms, txHex, state.channel.funding);
  const { proposal, terms, cookie, channel, payeeRefundSignature } = state;
  const funded = { proposal, terms, cookie, channel, fundingTxHex: txHex };
  return { state: { ...funded, type: 'AwaitingOpen', payeeRefundSignature }, effects: [{ type: 'persist' }, { type: 'send', message: fundingOf(funded) }] };
}

/**
 * The payer refused to sign a payment (nothing was signed or sent): a RangeError, as any misuse
 * of the API, with the catalogue code a payee would have answered with.
 */
export class CannotPayError extends RangeError {
  constructor(
    readonly code: 'CHANNEL_NOT_OPEN' | 'AMOUNT_NOT_INCREASING' | 'AMOUNT_EXCEEDS_CAPACITY' | 'CHANGE_BELOW_DUST',
    message: string,
  ) {
    super(message);
    this.name = 'CannotPayError';
  }
}

type OpenState = Extract<PayerState, { type: 'Open' }>;

/** The rule every payment obeys: @returns the new total after paying `amountSat` on top of `fromTotalSat`. */
function nextTotal(state: OpenState, fromTotalSat: bigint, amountSat: bigint): bigint {
  if (amountSat <= 0n) throw new CannotPayError('AMOUNT_NOT_INCREASING', 'amount must be positive');
  const totalSat = fromTotalSat + amountSat;
  if (totalSat > state.proposal.maxTotalSat) {
    throw new CannotPayError('AMOUNT_EXCEEDS_CAPACITY', `paying ${amountSat} would bring the total to ${totalSat}, above the agreed maximum ${state.proposal.maxTotalSat}`);
  }
  try {
    checkPaymentTotal(state.channel, fromTotalSat, totalSat);
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'CHANGE_BELOW_DUST') {
      const rest = state.channel.capacitySat - fromTotalSat;
      throw new CannotPayError(
        'CHANGE_BELOW_DUST',
        `paying ${amountSat} would leave ${state.channel.capacitySat - totalSat} sat change, below dust (${dustThresholdSat(state.channel.payerScript)}); pay ${rest} to spend the whole capacity`,
      );
    }
    throw err;
  }
  return totalSat;
}

/**
 * Checks, signing nothing, that `count` payments of `amountSat` can all follow the newest one,
 * by the rule each of them would meet in {@link payerStep}: a caller refuses a run it cannot
 * finish before paying any of it.
 *
 * Two checks cover the whole run: the totals rise and the change falls with each payment, so
 * the budget is broken first by the last payment, and a dust change (0 < change < dust) can only
 * be left by the last one or, when the last spends the whole capacity, by the one before it.
 * @throws CannotPayError with the code and the reason of the payment that could not be made.
 */
export function checkPayments(state: PayerState, amountSat: bigint, count: number): void {
  if (state.type !== 'Open') throw new CannotPayError('CHANNEL_NOT_OPEN', `cannot pay on a channel in state ${state.type}`);
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  for (const k of count >= 2 ? [count - 1, count] : [count]) {
    try {
      nextTotal(state, state.signedTotalSat + BigInt(k - 1) * amountSat, amountSat);
    } catch (err) {
      if (!(err instanceof CannotPayError)) throw err;
      throw new CannotPayError(err.code, `cannot make ${count} payment(s) of ${amountSat} sat (${state.signedTotalSat} sat paid so far, capacity ${state.channel.capacitySat}): payment ${k}: ${err.message}`);
    }
  }
}

function onPay(ctx: PayerContext, state: PayerState, amountSat: bigint): Step<PayerState> {
  if (state.type !== 'Open') throw new CannotPayError('CHANNEL_NOT_OPEN', `cannot pay on a channel in state ${state.type}`);
  const totalSat = nextTotal(state, state.signedTotalSat, amountSat);
  const signature = signPayment(ctx.secp, state.channel, sighasherFor(state.channel), ctx.privateKey(state.proposal.keyIndex), totalSat);
  // The message written out rather than through msg() (same value): this is every payment's step.
  const payment: MessageOf<'payment'> = { v: PROTOCOL_VERSION, type: 'payment', channelId: state.channel.id, totalSat, signature };
  return { state: { ...state, signedTotalSat: totalSat, signature }, effects: [PERSIST, { type: 'send', message: payment }] };
}

/** A fresh temporary channel id from 16 random bytes (the caller supplies the randomness). */
export function tempIdFrom(random16: Uint8Array): string {
  if (random16.length !== 16) throw new RangeError('tempId needs 16 random bytes');
  return toHex(random16);
}
