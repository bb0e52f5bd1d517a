/**
 * The payer driver: runs the pure payer state machine for one channel, against a wallet (to fund
 * it; or an external wallet through a PSBT, see {@link PayerClient.proposeForExternalFunding}), a
 * chain backend (to refund), and a link to the payee.
 *
 * `open()` walks the seed's steps 1–6 and resolves once the payee says the channel is open;
 * `pay()` resolves when the payee acknowledges the new total as durably stored. The payer's own
 * state is in memory here; a durable store plugs in behind the `persist` effect.
 */
import type { ChainBackend } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import { fundingScriptOf, type Channel } from '../protocol/channel.js';
import { toHex } from '../protocol/bytes.js';
import { EffectQueue, type EffectHost, type OtherEffect } from '../driver/effect-runner.js';
import { unknownEffect, type PayerEffect } from '../protocol/effects.js';
import { authMessage } from '../protocol/auth.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeMessage, errorMessage, msg, type Message, type MessageOf } from '../protocol/messages.js';
import type { NetworkName } from '../protocol/network.js';
import { decodeMessageBytes, type WireIds } from '../protocol/wire-bytes.js';
import {
  checkPayments,
  payerPropose,
  payerStep,
  resumeMessage,
  tempIdFrom,
  type PayerContext,
  type PayerInput,
  type PayerState,
  type Settlement,
} from '../protocol/payer-machine.js';
import type { PayerPolicy } from '../protocol/policy.js';
import { refundAuthorization, signRefund, type SignedRefund } from '../protocol/refund.js';
import { variantOf, type VariantName } from '../protocol/variants/index.js';
import type { PeerLink } from '../transport/link.js';
import type { Store } from '../store/store.js';
import type { KeyPair } from '../wallet/keys.js';
import { fundingPsbtOf, fundingTxFromSigned, unsignedFundingTxFromFunded, type FundingPsbt } from '../wallet/psbt-funding.js';

/** What the payer needs from a wallet: a signed, unbroadcast funding transaction. */
export interface FundingSource {
  fund(outputs: { script: Uint8Array; valueSat: bigint }[], feeRateSatPerVb: number): Promise<{ txHex: string; txid: string }>;
  /** Un-reserves the coins of a funding transaction that will never be broadcast. */
  release(txid: string): Promise<unknown>;
}

/**
 * The two things the payer asks of the chain: the tip (to set a new channel's expiry) and a
 * broadcast (its refund). Any {@link ChainBackend} is one; a page passes a small one over HTTP.
 */
export type PayerChain = Pick<ChainBackend, 'getTip' | 'broadcast'>;

/** One step's context for the effect runner. */
interface PayerEffectStep {
  readonly state: PayerState | null;
  readonly tempId: string | null;
  readonly before: PayerState | null | undefined;
  /** Where this step's messages go instead of the link (a paywall's HTTP answer). */
  readonly sink: ((message: Message) => void) | undefined;
}

export interface PayerClientOptions {
  readonly secp: Secp256k1;
  readonly policy: PayerPolicy;
  readonly network: NetworkName;
  readonly backend: PayerChain;
  readonly wallet: FundingSource;
  /** This channel's key (fresh; never used for another channel) and its index. */
  readonly channelKey: KeyPair & { readonly index: number };
  /** Where change and refunds of a new channel go (it becomes the channel's payer script). */
  readonly payoutScript: Uint8Array;
  readonly link: PeerLink;
  /** The payer's state is saved here before anything that depends on it is sent. */
  readonly store: Store;
  readonly fundingFeeRateSatPerVb: number;
  /**
   * Most payments signed and not yet acknowledged; `pay()` waits for a slot beyond it, so a
   * payer streaming payments never floods the link. Default 1,000.
   */
  readonly maxInFlight?: number;
  /** 16 random bytes for the channel's temporary id. */
  readonly random16: () => Uint8Array;
  readonly log?: (line: string) => void;
}

export interface OpenOptions {
  readonly variant: VariantName;
  readonly capacitySat: bigint;
  /** Blocks from the current tip to the refund height. */
  readonly expiryBlocks: number;
  /** The most this channel may ever pay (default: the whole capacity). */
  readonly maxTotalSat?: bigint;
}

/** The payee refused something, or the channel was aborted; `code` is the protocol code. */
export class PeerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PeerError';
  }
}

/** A channel waiting for an external wallet's funding: the PSBT to fund and sign, and what it is for. */
export interface ExternalFunding extends Omit<FundingPsbt, 'bip21'> {
  /**
   * A BIP21 URI for wallets that only pay an address (they sign and broadcast at once; give
   * {@link PayerClient.fundWithSigned} the transaction then). Null when the variant's refund needs
   * the payee's signature first (v1): a funding broadcast before it would leave the coins locked
   * 2-of-2 with no refund.
   */
  readonly bip21: string | null;
  /** The id the pending channel is saved under (to finish it after a restart). */
  readonly tempId: string;
  readonly variant: VariantName;
  readonly expiryHeight: number;
  /** The channel output's witness script, hex (also in the PSBT's output). */
  readonly witnessScript: string;
}

type PayWaiter = { total: bigint; resolve: (total: bigint) => void; reject: (e: Error) => void };
type Waiter = { check: (s: PayerState) => boolean; resolve: () => void; reject: (e: Error) => void };

export class PayerClient {
  private readonly ctx: PayerContext;
  private current: PayerState | null = null;
  private tempId: string | null = null;
  private waiters: Waiter[] = [];
  /**
   * Pending `pay()` calls in signing order, so in increasing total: an acknowledgement resolves
   * a prefix of them (a list scan per ack would make deep pipelines quadratic).
   */
  private payWaiters: PayWaiter[] = [];
  /** The new total of the `pay()` whose promise is being made (read by {@link payExecutor}). */
  private paying = 0n;
  /** One executor for every `pay()` promise: no closure per payment. */
  private readonly payExecutor = (resolve: (total: bigint) => void, reject: (e: Error) => void): void => {
    this.payWaiters.push({ total: this.paying, resolve, reject });
  };
  /** `pay()` calls waiting for one of the maxInFlight slots. */
  private slotWaiters: (() => void)[] = [];
  private readonly maxInFlight: number;
  /**
   * The effect runner's queue: every step's effects run after the earlier steps'; a persist is
   * issued when its step is scheduled.
   */
  private readonly queue: EffectQueue<PayerEffect, PayerEffectStep>;
  private broken: Error | null = null;
  /** The current connection's challenge (null until it arrives), and whether we answered it. */
  private challenge: Uint8Array | null = null;
  private authenticated = false;
  /** A close asked for before the connection's challenge arrived: sent right after the auth. */
  private closeWanted = false;
  /** An external wallet funds this channel: `create-funding` waits for {@link fundWithSigned}. */
  private fundsExternally = false;

  constructor(private readonly options: PayerClientOptions) {
    this.ctx = { secp: options.secp, policy: options.policy, privateKey: () => options.channelKey.privateKey };
    this.maxInFlight = options.maxInFlight ?? 1000;
    this.queue = new EffectQueue(this.effectHost);
  }

  /**
   * Continues a channel saved in the store (after a restart). Call {@link resume} once the link
   * to the payee is up, so both sides agree on what was paid.
   * @throws RangeError if the store has no such channel.
   */
  static async restore(options: PayerClientOptions, tempId: string): Promise<PayerClient> {
    const saved = (await options.store.loadPayerChannels()).find((c) => c.tempId === tempId);
    if (!saved) throw new RangeError(`no saved channel ${tempId}`);
    const client = new PayerClient(options);
    client.current = saved.state;
    client.tempId = tempId;
    return client;
  }

  get state(): PayerState | null {
    return this.current;
  }

  /** The id the channel is saved under. */
  get id(): string | null {
    return this.tempId;
  }

  /** The channel once funded. @throws RangeError before funding. */
  get channel(): Channel {
    const s = this.current;
    if (!s || !('channel' in s)) throw new RangeError('the channel has no funding yet');
    return s.channel;
  }

  /**
   * Proposes a channel and waits until the payee accepts payments on it (after the funding has
   * the payee's required confirmations: someone has to mine them on regtest).
   * @throws PeerError if the payee refuses or the refund signature is bad (nothing is lost: the
   *   funding was never shown).
   */
  async open(opts: OpenOptions): Promise<Channel> {
    await this.propose(opts);
    await this.waitFor((s) => s.type === 'Open');
    return this.channel;
  }

  /** Sends the hello of a new channel (seed step 1). */
  private async propose(opts: OpenOptions): Promise<void> {
    if (this.current) throw new RangeError('this client already has a channel');
    const tip = await this.options.backend.getTip();
    const tempId = tempIdFrom(this.options.random16());
    const step = payerPropose({
      tempId,
      network: this.options.network,
      variant: opts.variant,
      keyIndex: this.options.channelKey.index,
      payerPubkey: this.options.channelKey.publicKey,
      capacitySat: opts.capacitySat,
      expiryHeight: tip.height + opts.expiryBlocks,
      payerScript: this.options.payoutScript,
      maxTotalSat: opts.maxTotalSat ?? opts.capacitySat,
    });
    this.tempId = tempId;
    this.current = step.state;
    this.schedule(step.effects);
  }

  /**
   * Opens a channel funded by an external wallet (hardware or desktop), step 1 of 2: proposes it
   * and, once the payee accepted, returns an unsigned PSBT (BIP174) with the channel output only.
   * The wallet adds its inputs and change and signs it (without broadcasting it); give the result
   * to {@link fundWithSigned}. The pending channel is saved before this returns, so another
   * process may finish it ({@link restore}, then {@link fundWithSigned}) within the payee's
   * opening window (its `proposalTimeoutBlocks`).
   * @throws PeerError if the payee refuses the proposal.
   */
  async proposeForExternalFunding(opts: OpenOptions): Promise<ExternalFunding> {
    this.fundsExternally = true;
    await this.propose(opts);
    await this.waitFor((s) => s.type === 'Funding');
    await this.queue.idle(); // the pending channel is saved
    return this.externalFunding();
  }

  /**
   * The PSBT an external wallet funds for this channel (again, e.g. after a restart).
   * @throws RangeError unless the channel waits for its funding.
   */
  externalFunding(): ExternalFunding {
    const s = this.current;
    if ((s?.type !== 'Funding' && s?.type !== 'RefundBeforeSigning' && s?.type !== 'AwaitingFundingSignature') || !this.tempId) {
      throw new RangeError(`no funding to ask for in state ${s?.type ?? 'none'}`);
    }
    const lock = fundingScriptOf(s.terms);
    const psbt = fundingPsbtOf({ network: s.terms.network, script: lock.fundingScript, witnessScript: lock.witnessScript, valueSat: s.terms.capacitySat });
    const bip21 = variantOf(s.terms.variant).opening.type === 'fund-directly' ? psbt.bip21 : null;
    return { ...psbt, bip21, tempId: this.tempId, variant: s.terms.variant, expiryHeight: s.terms.expiryHeight, witnessScript: toHex(lock.witnessScript) };
  }

  /**
   * Step 2 of 2 of {@link proposeForExternalFunding}: takes the wallet's signed PSBT (base64, hex
   * or binary) or signed transaction (hex), checks it pays exactly the channel output (script and
   * amount) and that every input is signed (finalizing it if needed), then continues the opening
   * as if the payer's own wallet had funded it: v1 gets the payee's refund signature before the
   * funding is shown to anyone; then the payee broadcasts it. Resolves once the channel is open
   * (the funding confirmed as the payee requires).
   * @throws PsbtFundingError (PSBT_MALFORMED, PSBT_WRONG_OUTPUT, PSBT_WRONG_AMOUNT, PSBT_NOT_SIGNED)
   *   or ProtocolError (FUNDING_NOT_SEGWIT; FUNDING_MISMATCH when it is not the funding
   *   {@link refundBeforeSigning} got the refund for) when refused: nothing changed, try again.
   * @throws RangeError unless the channel waits for its funding.
   * @throws PeerError if the payee refuses or the refund signature is bad.
   */
  async fundWithSigned(signed: Uint8Array | string): Promise<Channel> {
    const s = this.current;
    if (s?.type !== 'Funding' && s?.type !== 'AwaitingFundingSignature') throw new RangeError(`no funding to take in state ${s?.type ?? 'none'}`);
    const script = fundingScriptOf(s.terms).fundingScript;
    const txHex = fundingTxFromSigned(signed, { network: s.terms.network, script, valueSat: s.terms.capacitySat });
    this.step({ type: 'funding-created', txHex });
    await this.waitFor((st) => st.type === 'Open');
    return this.channel;
  }

  /**
   * v1 only, the safest order (optional step between {@link proposeForExternalFunding} and
   * {@link fundWithSigned}): takes the PSBT the wallet funded but has not signed, and gets the
   * payee's refund signature for that very funding (verified and saved) before the wallet signs
   * anything. A wallet that broadcasts as it signs then cannot lock the coins without a refund.
   * Resolves once the refund is held; then have the wallet sign the same PSBT and give it to
   * {@link fundWithSigned} (a funding with another txid is refused).
   * @throws PsbtFundingError or ProtocolError when the PSBT is refused (nothing changed).
   * @throws RangeError unless the channel waits for its funding, or for a v2 channel.
   * @throws PeerError if the payee refuses or its refund signature is bad.
   */
  async refundBeforeSigning(funded: Uint8Array | string): Promise<void> {
    const s = this.current;
    if (s?.type !== 'Funding') throw new RangeError(`no funding to take in state ${s?.type ?? 'none'}`);
    const script = fundingScriptOf(s.terms).fundingScript;
    const txHex = unsignedFundingTxFromFunded(funded, { network: s.terms.network, script, valueSat: s.terms.capacitySat });
    this.step({ type: 'funding-unsigned', txHex });
    await this.waitFor((st) => st.type === 'AwaitingFundingSignature');
    await this.queue.idle(); // the refund signature is saved
  }

  /** Resolves when the state satisfies `check`; rejects if the channel is aborted or the payee errs. */
  waitFor(check: (s: PayerState) => boolean): Promise<void> {
    if (this.current && check(this.current)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ check, resolve, reject }));
  }

  /**
   * Pays `amountSat` more and resolves with the new total once the payee acknowledged it as
   * stored. Calls may overlap (pipelining): each signs the next total at once.
   * @throws CannotPayError (a RangeError) above the agreed maximum, before the channel is open, or for dust change.
   */
  pay(amountSat: bigint): Promise<bigint> {
    // Not an async function: this runs per payment, and every promise it saves is garbage saved.
    if (this.payWaiters.length >= this.maxInFlight) return this.payWhenFree(amountSat);
    try {
      this.step({ type: 'pay', amountSat });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const s = this.current;
    if (s?.type !== 'Open') return Promise.reject(new Error('unreachable: paid on a channel that is not open'));
    this.paying = s.signedTotalSat;
    return new Promise<bigint>(this.payExecutor);
  }

  /**
   * Checks that `count` more payments of `amountSat` can all be made, signing nothing.
   * @throws CannotPayError (from the protocol core) with the code and reason when they cannot.
   */
  checkPayments(amountSat: bigint, count: number): void {
    const s = this.current;
    if (!s) throw new RangeError('no channel yet');
    checkPayments(s, amountSat, count);
  }

  private async payWhenFree(amountSat: bigint): Promise<bigint> {
    while (this.payWaiters.length >= this.maxInFlight) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    return this.pay(amountSat);
  }

  /**
   * Wakes as many `pay()` calls waiting for a slot as there are free slots (they recheck; one that
   * finds none waits again), or all of them (`everyone`: the channel failed, each must see it).
   * Waking all on every acknowledgement cost a promise per waiter per ack.
   */
  private slotsFreed(everyone = false): void {
    let free = everyone ? this.slotWaiters.length : this.maxInFlight - this.payWaiters.length;
    while (free-- > 0 && this.slotWaiters.length > 0) this.slotWaiters.shift()!();
  }

  /**
   * Signs `amountSat` more for delivery by the caller (an HTTP header, see paying-fetch.ts)
   * instead of over the link. Resolves once the new total is saved, with the payment to deliver.
   * Feed the payee's acknowledgement back with {@link acknowledge}.
   * @throws RangeError as {@link pay}.
   */
  authorize(amountSat: bigint): Promise<MessageOf<'payment'>> {
    return new Promise((resolve, reject) => {
      this.step({ type: 'pay', amountSat }, (m) => (m.type === 'payment' ? resolve(m) : reject(new Error(`unexpected ${m.type}`))));
    });
  }

  /** Records the payee's acknowledgement of `totalSat` received outside the link. */
  acknowledge(totalSat: bigint): void {
    const s = this.current;
    if (!s || !('channel' in s)) throw new RangeError('no channel');
    this.step({ type: 'message', message: msg('payment-ack', { channelId: s.channel.id, totalSat }) });
  }

  /** Records how the channel ended on chain (the watcher calls this). */
  settle(settlement: Settlement): void {
    this.step({ type: 'settled', settlement });
  }

  /**
   * Asks the payee to close now with the newest payment. The payee takes it only from a
   * connection that authenticated for the channel, so before the connection's challenge has
   * arrived the request waits for it (and goes right after the auth).
   * @throws RangeError if the channel is not open.
   */
  requestClose(): void {
    if (this.current?.type !== 'Open') throw new RangeError(`cannot close a channel in state ${this.current?.type ?? 'none'}`);
    // Asked again on every new connection until the channel is closed: a payee instance that
    // dies, or hands the channel to another (CHANNEL_MOVED), takes the request with it, and a
    // repeated request for a closing channel is answered with its close.
    this.closeWanted = true;
    if (this.challenge === null) return;
    this.authenticate();
    this.step({ type: 'request-close' });
  }

  /**
   * Call on every (re)connection, before anything arrives on it (ws-client's `onOpen`): resends
   * an opening step in progress (the payee answers repeats idempotently). A funded channel
   * resumes when the connection's `challenge` arrives: it authenticates (src/protocol/auth.ts),
   * which makes the connection the channel's link, then asks for the payee's status (whose
   * answer makes us resend an unacknowledged payment, or learn of a close).
   */
  resume(): void {
    this.challenge = null; // the previous connection's: this one's is on its way
    this.authenticated = false;
    if (!this.current || this.current.type === 'Open') return;
    const message = resumeMessage(this.current);
    if (message) this.options.link.send(message);
  }

  /** The payee's challenge for a new connection: authenticate, then resume the channel on it. */
  private onChallenge(challenge: Uint8Array): void {
    this.challenge = challenge;
    this.authenticated = false;
    const s = this.current;
    if (s?.type !== 'Open' && s?.type !== 'AwaitingOpen') return;
    this.authenticate();
    if (s.type !== 'Open') return;
    const status = resumeMessage(s);
    if (status) this.options.link.send(status);
    if (this.closeWanted) {
      this.step({ type: 'request-close' });
    }
  }

  /** Sends the auth for this connection's challenge, once. */
  private authenticate(): void {
    if (this.authenticated || this.challenge === null || this.tempId === null) return;
    this.authenticated = true;
    this.options.link.send(authMessage(this.options.secp, this.challenge, this.tempId, this.options.channelKey.privateKey));
  }

  /**
   * Builds, signs and broadcasts the refund (after expiry; the node refuses it before).
   * @throws BroadcastRejectedError with the node's reason (e.g. non-final before expiry).
   */
  async refund(feeRateSatPerVb: number): Promise<SignedRefund> {
    const s = this.current;
    if (!s || !('channel' in s)) throw new RangeError('nothing to refund: the channel was never funded');
    // The variant says whether the refund needs the payee's signature (held from the opening).
    const authorization = refundAuthorization(s.channel, s.type === 'AwaitingOpen' || s.type === 'Open' || s.type === 'AwaitingFundingSignature' ? s.payeeRefundSignature : null);
    // The refund pays the channel's own payer script (as its change does), so anyone watching the
    // channel — another process, after a restart — recognizes it.
    const refund = signRefund(this.ctx.secp, s.channel, authorization, this.options.channelKey.privateKey, s.channel.payerScript, feeRateSatPerVb);
    await this.options.backend.broadcast(refund.txHex);
    this.options.log?.(`broadcast refund ${refund.txid}`);
    return refund;
  }

  /** Delivers one message from the payee. Never throws; a bad message is answered with an error. */
  receive(text: string): void {
    let message: Message;
    try {
      message = decodeMessage(text);
    } catch (err) {
      this.replyError(err);
      return;
    }
    this.receiveMessage(message);
  }

  /**
   * Delivers one message from its frame's UTF-8 bytes (payments' acks read without a string,
   * protocol/wire-bytes.ts; `ids` interns the connection's channel ids). Never throws, like
   * {@link receive}.
   */
  receiveBytes(bytes: Uint8Array, ids?: WireIds): void {
    let message: Message;
    try {
      message = decodeMessageBytes(bytes, ids);
    } catch (err) {
      this.replyError(err);
      return;
    }
    this.receiveMessage(message);
  }

  /**
   * Delivers one message already decoded (by a caller that routes one connection's messages to
   * many channels, and had to decode them to route them). Never throws, like {@link receive}.
   */
  receiveMessage(message: Message): void {
    if (message.type === 'challenge') {
      this.onChallenge(message.challenge);
      return;
    }
    // Our auth reached a payee that has no channel for it yet (a restarted payee that stores a
    // channel only once the node took its funding; the machine ignores this refusal while the
    // opening is in progress): the payee did not record it, so authenticate again once open.
    if (message.type === 'error' && message.code === 'UNKNOWN_CHANNEL' && this.current?.type === 'AwaitingOpen') this.authenticated = false;
    try {
      this.step({ type: 'message', message });
    } catch (err) {
      this.replyError(err);
    }
  }

  /**
   * Waits until every effect scheduled so far has run, then saves the current state once more:
   * acknowledgements are not saved one by one (the payee's store is authoritative for them, and
   * a resume re-learns them), so this keeps the local view current when the process ends.
   */
  async drain(): Promise<void> {
    await this.queue.idle();
    if (this.current && this.tempId && !this.broken) await this.options.store.savePayerChannel(this.tempId, this.current);
  }

  /** Steps the core now; the effects follow in order. @throws what the step throws. */
  private step(input: PayerInput, sink?: (message: Message) => void): void {
    if (this.broken) throw this.broken;
    const before = this.current;
    if (!before) throw new RangeError('no channel yet');
    const step = payerStep(this.ctx, before, input);
    this.current = step.state;
    this.schedule(step.effects, sink, before);
    // Open on this connection: prove it is ours now, so the payee takes our close and status
    // requests on it (a no-op if this connection's auth was already recorded).
    if (step.state.type === 'Open' && before.type !== 'Open') this.authenticate();
    this.notify();
  }

  /** Chains `effects` after earlier ones; `send`s go to `sink` instead of the link when given. */
  private schedule(effects: readonly PayerEffect[], sink?: (message: Message) => void, before?: PayerState | null): void {
    // A failure goes to effectHost.failed.
    this.queue.schedule({ state: this.current, tempId: this.tempId, before, sink }, effects);
  }

  private readonly effectHost: EffectHost<PayerEffect, PayerEffectStep> = {
    persist: ({ state, tempId, before }) => {
      if (!state || !tempId) throw new Error('unreachable: persist without a channel');
      // A payment changes only the signed total and signature: save just those.
      return before?.type === 'Open' && state.type === 'Open' && before.channel === state.channel && state.signature !== null && state.signedTotalSat > before.signedTotalSat
        ? this.options.store.savePayerPayment(tempId, state.signedTotalSat, state.signature)
        : this.options.store.savePayerChannel(tempId, state);
    },
    // Not through the async carryOut: this runs once per payment.
    send: ({ sink }, message) => (sink ? sink(message) : this.options.link.send(message)),
    carryOut: (_step, effect) => this.carryOut(effect),
    failed: (_step, err) => {
      this.broken = err instanceof Error ? err : new Error(String(err));
      this.options.log?.(`payer halted: ${this.broken.message}`);
      this.fail(this.broken);
    },
  };

  private async carryOut(effect: OtherEffect<PayerEffect>): Promise<void> {
    switch (effect.type) {
      case 'create-funding': {
        // The state (Funding) is saved; the external wallet's answer comes through fundWithSigned.
        if (this.fundsExternally) return;
        const funding = await this.options.wallet.fund([{ script: effect.script, valueSat: effect.valueSat }], this.options.fundingFeeRateSatPerVb);
        // Fed back as the next input; its own effects chain after this one's.
        queueMicrotask(() => {
          try {
            this.step({ type: 'funding-created', txHex: funding.txHex });
          } catch (err) {
            this.fail(err instanceof Error ? err : new Error(String(err)));
          }
        });
        return;
      }
      case 'release-funding':
        await this.options.wallet.release(effect.txid);
        return;
      case 'peer-error':
        this.fail(new PeerError(effect.message.code, `payee: ${effect.message.message}`));
        return;
      default:
        unknownEffect(effect);
    }
  }

  private notify(): void {
    const s = this.current;
    if (!s) return;
    if (s.type === 'Aborted') {
      this.fail(new PeerError('ABORTED', s.reason));
      return;
    }
    if (s.type === 'Open' || s.type === 'Closed') {
      let n = 0;
      while (n < this.payWaiters.length && this.payWaiters[n]!.total <= s.ackedTotalSat) n++;
      if (n > 0) {
        for (const w of this.payWaiters.splice(0, n)) w.resolve(w.total);
        this.slotsFreed();
      }
    }
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.check(s));
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  private fail(err: Error): void {
    const waiters = this.waiters;
    const payWaiters = this.payWaiters;
    this.waiters = [];
    this.payWaiters = [];
    for (const w of waiters) w.reject(err);
    for (const w of payWaiters) w.reject(err);
    this.slotsFreed(true);
  }

  private replyError(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.options.link.send(errorMessage(err.code, err.message, err.action));
      this.fail(new PeerError(err.code, err.message));
      return;
    }
    this.options.log?.(`internal error: ${String(err)}`);
  }
}
