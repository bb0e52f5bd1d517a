/**
 * The payee driver: runs the pure payee state machine for many channels against a chain backend
 * and a durable store.
 *
 * It owns what the core may not: the channel table, each channel's input queue and the carrying
 * out of its effects (broadcast, persist, send). Around it, units of their own: the tip tracker
 * (tip-tracker.ts: the tip payments are checked against, the one cookies are issued at, chain
 * switches), and behind small host interfaces the funding watcher (funding-watcher.ts:
 * confirmations, reorged fundings) and the closer (closer.ts: closes, fee bumps, settlement).
 *
 * Openings hold nothing (docs/design.md, "Openings without state"): hellos and v1 refund requests
 * are answered from the message, the payee's secret and the tip, without a table entry or a row;
 * a channel enters the table when its funding's cookie verifies, and its row once the node has
 * taken the funding. A stranger's unfunded proposals cannot fill anything.
 *
 * Ordering and durability. Inputs of one channel are stepped one at a time, in arrival order.
 * A step's effects run in order after the previous step's effects; a `persist` is issued at
 * once (so many payments share one group commit) and every effect after it waits until it is
 * durable — a payment is acknowledged only once stored. A step that broadcasts is fully
 * serialized: the next input waits until the broadcast is done. A new channel's step broadcasts
 * its funding first and stores it only once the node took it (a funding refused, or that the node
 * could not be asked about, leaves nothing: a resend opens it);
 * any other refused broadcast restores (and re-stores) the state before the step.
 */
import { BroadcastRejectedError, type BlockTip, type ChainBackend } from '../chain/backend.js';
import type { Secp256k1 } from '../crypto/secp256k1.js';
import type { SignedBatchClose } from '../protocol/batch-close.js';
import { unknownEffect, type PayeeEffect, type Step } from '../protocol/effects.js';
import { verifyAuth } from '../protocol/auth.js';
import { ProtocolError } from '../protocol/errors.js';
import { checkFundingTx } from '../protocol/funding.js';
import { decodeMessage, errorMessage, type Message, type MessageOf } from '../protocol/messages.js';
import { payeeAccept, payeeOpen, payeeSignRefund, payeeStateRef, payeeStep, payeeVouched, type PayeeContext, type Vouched, type PayeeInput, type PayeeState } from '../protocol/payee-machine.js';
import type { PayeePolicy } from '../protocol/policy.js';
import { isStoreError } from '../store/store-error.js';
import type { ChannelLeases, Store } from '../store/store.js';
import type { PeerLink } from '../transport/link.js';
import { errorReply } from '../transport/error-reply.js';
import { logText } from '../transport/log-text.js';
import type { WalletKeys } from '../wallet/keys.js';
import { EffectQueue, SETTLED, type EffectHost, type OtherEffect } from '../driver/effect-runner.js';
import { ChannelAdoption, type Adoption } from './channel-adoption.js';
import { ChannelEntry, type PayeeEffectStep } from './channel-entry.js';
import { Closer } from './closer.js';
import { FundingWatcher } from './funding-watcher.js';
import { TipTracker } from './tip-tracker.js';

export interface PayeeServiceOptions {
  readonly secp: Secp256k1;
  readonly policy: PayeePolicy;
  readonly backend: ChainBackend;
  readonly store: Store;
  /** Channel keys (a fresh one per channel, derived from the opening cookie) and the cookies' secret come from here. */
  readonly keys: WalletKeys;
  /** Where the payee's share goes when it closes. */
  readonly payoutScript: Uint8Array;
  /** Used when the node has no fee estimate (always on a fresh regtest chain). */
  readonly fallbackFeeRateSatPerVb: number;
  readonly log?: (line: string) => void;
  /** Told of every acknowledged payment (after it is durable): for metrics and books. */
  readonly onPayment?: (channelId: string, totalSat: bigint, deltaSat: bigint) => void;
  /**
   * Most steps of one channel waiting on its effects (mostly payments waiting for the store to
   * make them durable) or on a broadcast; past it, a message for the channel is refused
   * RATE_LIMITED, unprocessed. A stalled store then holds at most this many per channel rather
   * than every payment a payer keeps sending. Default {@link DEFAULT_MAX_PENDING_STEPS_PER_CHANNEL}.
   */
  readonly maxPendingStepsPerChannel?: number;
  /**
   * How long the payee takes payments without learning the chain tip from its node, ms; default
   * {@link DEFAULT_MAX_TIP_AGE_MS}. Past it payments are refused (INTERNAL_ERROR, nothing
   * changed: retry later) until the node answers again: with a frozen tip the payee could
   * acknowledge payments after the real chain passed the channel's close deadline, which the
   * payer could then refund. The tip is read every sixth of this (see docs/design.md, Limits).
   */
  readonly maxTipAgeMs?: number;
}

/**
 * 60 s: ten of a mainnet block's expected 600 s go by before the payee stops taking payments,
 * far from the 12-block close margin; 300 polls of the default 200 ms tip poll, so a slow node
 * or a few failed polls never trip it.
 */
export const DEFAULT_MAX_TIP_AGE_MS = 60_000;

/**
 * One channel's pending steps at most (see {@link PayeeServiceOptions.maxPendingStepsPerChannel}):
 * a group commit takes ~1 ms, a payer's round trip more; 1,024 payments of one channel waiting
 * is far beyond what a healthy store lets pile up, and ~350 KB of heap when it is stalled.
 */
export const DEFAULT_MAX_PENDING_STEPS_PER_CHANNEL = 1024;

/** The states a channel row can hold; older stores may also hold unfunded proposals, which are skipped. */
const CHANNEL_TYPES = new Set<string>(['AwaitingConfirmation', 'Open', 'ZeroConf', 'Suspended', 'Expiring', 'Closing', 'Closed'] satisfies PayeeState['type'][]);

/** Ignored `error` messages (see PayeeService.ignoredError) are counted in one log line at most this often. */
const IGNORED_ERRORS_LOG_INTERVAL_MS = 60_000;

/**
 * Messages taken only from a connection that authenticated for the channel (`auth`). An `error`
 * is too, but one from anyone else is ignored rather than answered (PayeeService.handle).
 */
const PAYER_ONLY = new Set<Message['type']>(['close-request', 'status-request']);

/**
 * A state read from the store holds separate copies of the byte fields that `terms` and
 * `channel` share; point them at one copy (a Uint8Array costs ~250 bytes of heap).
 */
function compact(state: PayeeState): PayeeState {
  if (!('channel' in state)) return state;
  const t = state.terms;
  const channel = { ...state.channel, payerPubkey: t.payerPubkey, payeePubkey: t.payeePubkey, payerScript: t.payerScript };
  return { ...state, channel } as PayeeState;
}

export class PayeeService {
  private readonly ctx: PayeeContext;
  private readonly entries = new Map<string, ChannelEntry>();
  private readonly tempIdByChannelId = new Map<string, string>();
  private unsubscribe: (() => void) | null = null;
  private readonly closer: Closer;
  private readonly fundings: FundingWatcher;
  /** The notified tip and the tips read (every payment is checked against the highest), and whether they are stale. */
  private tips!: TipTracker;
  /** New channels whose funding is being handed to the node, by tempId: settles when that is done. */
  private readonly openings = new Map<string, Promise<void>>();
  /** Several instances share the store: this one serves only the channels whose lease it holds. */
  private readonly leases: ChannelLeases | undefined;
  /** With leases: taking channels from other instances, dropping lost ones (channel-adoption.ts). */
  private readonly adoption: ChannelAdoption | undefined;
  private readonly maxPendingSteps: number;
  private readonly maxTipAgeMs: number;
  /** Reads the tip now and then, and marks it stale when no read succeeds (see TipTracker). */
  private freshnessTimer: NodeJS.Timeout | null = null;
  /** `error` messages ignored since the last line that said so (see {@link ignoredError}). */
  private ignoredErrors = 0;
  private ignoredErrorsLoggedAtMs = Number.NEGATIVE_INFINITY;

  /** @throws RangeError for a maxPendingStepsPerChannel or maxTipAgeMs out of range. */
  private constructor(private readonly options: PayeeServiceOptions) {
    const keys = options.keys;
    this.maxPendingSteps = options.maxPendingStepsPerChannel ?? DEFAULT_MAX_PENDING_STEPS_PER_CHANNEL;
    if (!Number.isInteger(this.maxPendingSteps) || this.maxPendingSteps < 1) throw new RangeError('maxPendingStepsPerChannel must be an integer ≥ 1');
    this.maxTipAgeMs = options.maxTipAgeMs ?? DEFAULT_MAX_TIP_AGE_MS;
    if (!Number.isInteger(this.maxTipAgeMs) || this.maxTipAgeMs < 60) throw new RangeError('maxTipAgeMs must be an integer ≥ 60');
    this.leases = options.store.leases;
    this.adoption = this.leases
      ? new ChannelAdoption(options.store, this.leases, {
          entry: (tempId) => this.entries.get(tempId),
          serves: (state) => CHANNEL_TYPES.has(state.type),
          register: (tempId, state) => this.register(tempId, state),
          forget: (entry) => {
            if (this.entries.get(entry.tempId) === entry) this.entries.delete(entry.tempId);
            for (const [channelId, tempId] of this.tempIdByChannelId) if (tempId === entry.tempId) this.tempIdByChannelId.delete(channelId);
          },
          log: (line) => options.log?.(line),
        })
      : undefined;
    this.ctx = {
      secp: options.secp,
      policy: options.policy,
      // Keys below the base were allocated by a counter before openings took cookies (older stores).
      privateKey: (i) => keys.payeeChannelPrivateKey(i),
      openingSecret: keys.openingSecret(),
    };
    const host = {
      entries: () => this.entries.values(),
      step: async (tempId: string, input: PayeeInput) => {
        const entry = this.entries.get(tempId);
        if (!entry) throw new RangeError(`unknown channel ${tempId}`);
        await this.run(entry, input, null, true);
        // The closer broadcasts only what is stored: wait for this step's effects (its persist).
        await entry.effects?.idle();
        if (entry.broken) throw entry.broken;
        // A fenced write (another instance took the channel, docs/scale.md) fails no promise the
        // closer sees: it must not broadcast a close the store refused, which would conflict with
        // the new holder's.
        if (entry.moved || this.entries.get(tempId) !== entry) throw new ProtocolError('CHANNEL_MOVED', `${tempId}: another instance serves it now; its close is that instance's`);
      },
      restore: async (tempId: string, state: PayeeState, closeTxid: string) => {
        const entry = this.entries.get(tempId);
        if (!entry) return;
        await entry.inputs;
        const now = entry.state;
        if (now.type !== 'Closing' || now.close.txid !== closeTxid) return; // something came after the close: keep it
        entry.state = state;
        await options.store.savePayeeChannel(tempId, state);
      },
      privateKey: this.ctx.privateKey,
    };
    this.fundings = new FundingWatcher(
      {
        entries: () => this.entries.values(),
        entry: (tempId) => this.entries.get(tempId),
        step: (tempId, input) => {
          const entry = this.entries.get(tempId);
          return entry ? this.run(entry, input, null) : SETTLED;
        },
      },
      options.backend,
      options.policy.minFundingConfirmations,
      (l) => options.log?.(l),
    );
    const p = options.policy;
    this.closer = new Closer(
      host,
      options.backend,
      options.secp,
      options.payoutScript,
      {
        closeMarginBlocks: p.closeMarginBlocks,
        closeConfirmations: p.closeConfirmations,
        bumpAfterBlocks: p.bumpAfterBlocks,
        maxFeeRateSatPerVb: p.maxCloseFeeRateSatPerVb,
        maxBatch: p.maxCloseBatch,
        targetBlocks: 2,
        maxExpiryBlocks: p.maxExpiryBlocks,
      },
      options.fallbackFeeRateSatPerVb,
      (l) => options.log?.(l),
    );
  }

  /**
   * Opens the service on its store: every stored channel is restored, and the confirmations it
   * was waiting for are watched again (a payee that was offline catches up here).
   * @throws what the backend throws if the node's tip cannot be read (payments need it).
   */
  static async open(options: PayeeServiceOptions): Promise<PayeeService> {
    const service = new PayeeService(options);
    service.tips = new TipTracker(options.backend, await options.backend.getTip(), (l) => options.log?.(l), service.maxTipAgeMs);
    let stored = await options.store.loadPayeeChannels();
    if (service.leases) {
      // Serve the channels whose lease this instance gets (free, expired, or its own from before a
      // restart); read them again after taking the leases: every write committed before is seen.
      const held = await service.leases.acquire(stored.filter((c) => CHANNEL_TYPES.has(c.state.type) && c.state.type !== 'Closed').map((c) => c.tempId));
      stored = held.size === 0 ? [] : (await options.store.loadPayeeChannels()).filter((c) => held.has(c.tempId));
    }
    for (const { tempId, state } of stored) {
      if (!CHANNEL_TYPES.has(state.type)) continue; // an unfunded proposal an older version stored: nothing to keep
      service.register(tempId, state);
    }
    return service;
  }

  /** Puts a stored channel in the table, and watches the funding confirmations it waits for. */
  private register(tempId: string, state: PayeeState): ChannelEntry {
    // Nothing uses a channel right after loading: idle ones are packed at once; the others keep
    // one copy of the byte fields their terms and channel share.
    const entry = new ChannelEntry(tempId, state, null);
    if (!entry.pack()) entry.state = compact(state);
    this.entries.set(tempId, entry);
    if ('channel' in state) this.tempIdByChannelId.set(state.channel.id, tempId);
    if (state.type === 'AwaitingConfirmation' || state.type === 'Suspended' || state.type === 'ZeroConf') {
      this.fundings.watch(tempId, state.channel.funding.txid, this.options.policy.minFundingConfirmations);
    }
    return entry;
  }

  /** A message for a channel not in the table, with leases on: adopt it, then handle it (in arrival order). */
  private adoptThenHandle(adoption: ChannelAdoption, message: Message, ref: string, link: PeerLink): Promise<void> {
    const adopted = adoption.adopt(ref);
    return adoption.inTurn(link, () => this.handleAdopted(message, ref, link, adopted));
  }

  private async handleAdopted(message: Message, ref: string, link: PeerLink, adoption: Promise<Adoption>): Promise<void> {
    let adopted: Adoption;
    try {
      adopted = await adoption;
    } catch (err) {
      this.reply(link, err, ref);
      return;
    }
    if (adopted === undefined) {
      if (message.type !== 'error') this.reply(link, new ProtocolError('UNKNOWN_CHANNEL', ref), ref);
      return;
    }
    if (adopted === 'busy') {
      this.reply(link, new ProtocolError('CHANNEL_MOVED', `${ref}: another instance serves it`), ref);
      link.close?.();
      return;
    }
    await this.run(adopted, { type: 'message', message, tipHeight: this.tips.knownHeight() }, link);
  }

  /**
   * Starts following the chain: funding confirmations, and the closer (closes due channels,
   * fee bumps, settlement). The first pass runs at once: a payee that was offline catches up.
   */
  start(): void {
    this.unsubscribe ??= this.options.backend.subscribeTips((tip) => void this.onTip(tip));
    this.adoption?.start();
    this.freshnessTimer ??= setInterval(() => this.checkTip(), Math.floor(this.maxTipAgeMs / 6));
    this.freshnessTimer.unref();
    void this.options.backend.getTip().then(
      (tip) => this.onTip(tip),
      (err: unknown) => this.options.log?.(`cannot read the tip: ${String(err)}`),
    );
  }

  /** What happens on every new tip (also callable directly, e.g. by tests after mining). */
  async onTip(tip: BlockTip): Promise<void> {
    const switched = this.tips.advance(tip); // first: payments from now on are checked against this tip
    for (const entry of this.entries.values()) entry.sweep();
    // A switched chain may have taken away a funding however deep it was: check them all again.
    if (await switched) this.fundings.chainSwitched();
    await this.fundings.checkDepth();
    await this.fundings.checkWatches(this.tips.knownHeight());
    await this.closer.tick(tip);
  }

  /** Marks the tip stale if no read succeeded for too long, and reads it again (TipTracker shares a read in flight: a hung node holds one). */
  private checkTip(): void {
    this.tips.checkFreshness();
    void this.tips.refresh();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.freshnessTimer) clearInterval(this.freshnessTimer);
    this.freshnessTimer = null;
    this.adoption?.stop();
  }

  /** Waits until every effect scheduled so far has run (e.g. before closing the store). */
  async drain(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.inputs.then(() => e.effects?.idle()).catch(() => undefined)));
  }

  /** Current state of a channel, by funding outpoint (`txid:vout`) or tempId. */
  channel(id: string): PayeeState | undefined {
    return this.entries.get(this.tempIdByChannelId.get(id) ?? id)?.state;
  }

  /** Every channel's current state (unpacks idle ones: for tests and tools, not scans). */
  channels(): PayeeState[] {
    return [...this.entries.values()].map((e) => e.state);
  }

  /**
   * Every channel's current state, read without keeping idle ones unpacked (each packed one is
   * unpacked into a fresh object for the caller and not kept): for periodic readers.
   */
  *peekChannels(): Generator<PayeeState> {
    for (const e of this.entries.values()) yield e.peek();
  }

  /** Every channel's state type, without unpacking idle channels (for metrics). */
  channelTypes(): readonly { readonly type: PayeeState['type'] }[] {
    return [...this.entries.values()];
  }

  /**
   * Handles one wire message from a payer's link (in-process links; the payee server's
   * connections decode at the boundary and call {@link handle}). Never throws: a refused message
   * is answered with an `error` on `link`, and changes nothing. Resolves once the message is
   * stepped (its reply may still be waiting for the store).
   */
  receive(text: string, link: PeerLink): Promise<void> {
    let message: Message;
    try {
      message = decodeMessage(text);
    } catch (err) {
      this.reply(link, err, undefined);
      return SETTLED;
    }
    return this.handle(message, link); // not wrapped in another async frame: this runs per payment
  }

  /**
   * Handles one decoded message (see {@link receive}). Replies go to `link`. `link` becomes the
   * channel's link (where the payee sends channel-open and channel-closed on its own) when its
   * funding makes the channel, or when it authenticates (`auth` over its challenge); only an
   * authenticated one is heard on close and status requests and on errors (anyone else's are ignored). A payment, or a repeated funding,
   * never moves the link: anyone can replay one.
   */
  handle(message: Message, link: PeerLink): Promise<void> {
    // Not an async function: this runs once per payment, and the async frame and its await
    // were two more promises each time. Whatever throws still becomes a rejection.
    try {
      if (message.type === 'hello') return this.onHello(message, link);
      if (message.type === 'refund-request') return this.onRefundRequest(message, link);
      if (message.type === 'funding') return this.onFunding(message, link);
      const ref = 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : message.type === 'error' ? message.ref : undefined;
      const tempId = ref === undefined ? undefined : (this.tempIdByChannelId.get(ref) ?? ref);
      const entry = tempId === undefined ? undefined : this.entries.get(tempId);
      if (message.type === 'error' && (entry === undefined || entry.authenticated !== link)) {
        // Only the payer's own connection reports errors on its channel: a stranger knows channel
        // ids (funding outpoints) and could otherwise have its text logged at the frame rate.
        // Never answered (an error is never answered with an error).
        this.ignoredError();
        return SETTLED;
      }
      if ((!entry || tempId === undefined) && this.adoption && ref !== undefined) return this.adoptThenHandle(this.adoption, message, ref, link);
      if (!entry || tempId === undefined) {
        // Never answer an error with an error (two peers could ping-pong forever).
        if (message.type !== 'error') this.reply(link, new ProtocolError(ref === undefined ? 'UNEXPECTED_MESSAGE' : 'UNKNOWN_CHANNEL', ref ?? message.type), ref);
        return SETTLED;
      }
      return this.run(entry, { type: 'message', message, tipHeight: this.tips.knownHeight() }, link);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Counts an `error` message taken from no channel's authenticated connection; logs the count at most once per {@link IGNORED_ERRORS_LOG_INTERVAL_MS}. */
  private ignoredError(): void {
    this.ignoredErrors++;
    const now = performance.now();
    if (now - this.ignoredErrorsLoggedAtMs < IGNORED_ERRORS_LOG_INTERVAL_MS) return;
    this.ignoredErrorsLoggedAtMs = now;
    this.options.log?.(`ignored ${this.ignoredErrors} error message(s) from connections not authenticated as their channel's payer (said at most once a minute)`);
    this.ignoredErrors = 0;
  }

  /**
   * What was paid on a channel so far (its newest acknowledged total; 0 before the first
   * payment), or undefined for a channel the payee does not hold (the paywall's books).
   */
  paidSat(channelId: string): bigint | undefined {
    const state = this.channel(channelId);
    if (!state) return undefined;
    return 'paidSat' in state ? state.paidSat : 0n;
  }

  /**
   * Closes channels now with their newest payments, in one transaction, paying the fee from the
   * payee's share; closing channels that are closing replaces their close with a higher-fee
   * version (BIP125). The closer does this on its own before expiry; this is for "close now".
   * @throws RangeError if a channel is unknown, not open, has nothing paid, or the close is uneconomic.
   * @throws BroadcastRejectedError if the node refuses the close (nothing changes).
   */
  async close(channelIds: string | readonly string[], feeRateSatPerVb?: number): Promise<SignedBatchClose> {
    const ids = typeof channelIds === 'string' ? [channelIds] : channelIds;
    const tempIds = ids.map((id) => {
      const tempId = this.tempIdByChannelId.get(id);
      if (tempId === undefined) throw new RangeError(`unknown channel ${id}`);
      return tempId;
    });
    return this.closer.close(tempIds, feeRateSatPerVb);
  }

  /** Checks every watched funding once (also runs on every new tip): see FundingWatcher.checkWatches. */
  checkWatches(): Promise<void> {
    return this.fundings.checkWatches(this.tips.knownHeight());
  }

  /** A proposal: answered with a cookie, nothing kept (see payeeAccept). */
  private async onHello(hello: MessageOf<'hello'>, link: PeerLink): Promise<void> {
    try {
      if (!this.admitOpening(link)) return;
      // A tempId is the payer's random nonce; one already taken by a channel would collide with it.
      if (this.entries.has(hello.tempId)) throw new ProtocolError('DUPLICATE_CHANNEL', hello.tempId);
      link.send(payeeAccept(this.ctx, hello, await this.tips.cookieHeight()));
    } catch (err) {
      this.reply(link, err, hello.tempId);
    }
  }

  /** A v1 refund to sign: the cookie is checked before anything else, nothing kept (see payeeSignRefund). */
  private async onRefundRequest(request: MessageOf<'refund-request'>, link: PeerLink): Promise<void> {
    try {
      if (!this.admitOpening(link)) return;
      link.send(payeeSignRefund(this.ctx, request, payeeVouched(this.ctx, request, this.tips.knownHeight())));
    } catch (err) {
      this.reply(link, err, request.tempId);
    }
  }

  /**
   * Whether `link` may have one more opening message worked on (`PeerLink.admitOpening`: the
   * transport's budget for unproven connections). A refused one is answered RATE_LIMITED.
   */
  private admitOpening(link: PeerLink): boolean {
    if (link.admitOpening?.() !== false) return true;
    link.send(errorMessage('RATE_LIMITED', 'too many opening messages on this connection; this one was not processed', 'reject'));
    return false;
  }

  /**
   * A funding. A repeat for a channel we hold goes to that channel; a new one, whose cookie
   * verifies and whose transaction pays the channel, is handed to the node and becomes a channel
   * (a row) once the node took it. Two fundings of one tempId make one channel: the second finds
   * the first's entry, which exists from before the broadcast on.
   */
  private async onFunding(funding: MessageOf<'funding'>, link: PeerLink, vouchedBefore?: Vouched): Promise<void> {
    try {
      if (vouchedBefore === undefined && !this.admitOpening(link)) return;
      // The MAC first: a message the cookie does not vouch for costs nothing more. Once per message.
      const vouched = vouchedBefore ?? payeeVouched(this.ctx, funding, null);
      const opening = this.openings.get(funding.tempId);
      if (opening) {
        // The same channel's funding is being broadcast: answer this one as what it then is, a
        // repeat (the node took it) or a new attempt (the node refused it and nothing was kept).
        await opening;
        return this.onFunding(funding, link, vouched);
      }
      const entry = this.entries.get(funding.tempId);
      if (entry) return this.run(entry, { type: 'message', message: funding, tipHeight: this.tips.knownHeight() }, link);
      // A copy of this funding that arrived meanwhile may have started the opening: join it.
      if (!(await this.openChannel(funding, vouched, this.tips.knownHeight(), link))) return this.onFunding(funding, link, vouched);
    } catch (err) {
      this.reply(link, err, funding.tempId);
    }
  }

  /**
   * Makes the channel of a new funding: enters it in the table at once (a concurrent repeat
   * finds it), then broadcasts, stores and watches it. A funding the node refuses leaves nothing.
   * @returns true once handled (opened, or refused by the node and answered); false when a
   *   concurrent copy of the funding made the channel first (the caller steps it there).
   * @throws ProtocolError when the funding or its cookie is refused.
   */
  private async openChannel(funding: MessageOf<'funding'>, vouched: Vouched, tipHeight: number, link: PeerLink): Promise<boolean> {
    let step: Step<PayeeState, PayeeEffect>;
    try {
      step = payeeOpen(this.ctx, funding, vouched, tipHeight);
    } catch (err) {
      if (!(err instanceof ProtocolError && err.code === 'COOKIE_EXPIRED')) throw err;
      // We may have broadcast this funding and died before storing it: the payer's coins are
      // committed, so its cookie's age no longer matters once the node has the funding.
      const { txid } = checkFundingTx(vouched.terms, funding.fundingTx, null);
      if ((await this.options.backend.getTransaction(txid)) === null) throw err;
      step = payeeOpen(this.ctx, funding, vouched, null);
    }
    if (this.entries.has(funding.tempId)) return false; // a concurrent copy of this funding got here first
    if (this.leases) {
      // Several instances: the new channel's lease first (no other instance has its tempId yet,
      // unless the same funding went to two instances: one of them gets it).
      const held = await this.leases.acquire([funding.tempId]);
      if (!held.has(funding.tempId)) throw new ProtocolError('DUPLICATE_CHANNEL', `${funding.tempId} is being opened by another instance`);
      if (this.entries.has(funding.tempId)) return false;
    }
    const state = step.state;
    try {
      // A tempId that already has a row (with leases, a Closed channel is not in the table, nor is
      // one whose instance died) is no new channel: storing this one would overwrite that row and
      // inherit its newest payment. Refused before the broadcast: the payer's coins stay its own.
      if (await this.options.store.hasPayeeChannel?.(funding.tempId)) {
        if (this.entries.has(funding.tempId)) return false; // a concurrent copy of this funding made it meanwhile
        if (this.leases) {
          // A channel no instance serves (we took its free lease above; its holder died before its
          // payer came back): serve it, and step this funding there, where it is a repeat of the
          // channel's own (or refused as another one).
          const stored = await this.options.store.loadPayeeChannel?.(funding.tempId);
          if (stored && stored.state.type !== 'Closed' && CHANNEL_TYPES.has(stored.state.type)) {
            if (!this.entries.has(funding.tempId)) this.register(funding.tempId, stored.state);
            return false;
          }
        }
        throw new ProtocolError('DUPLICATE_CHANNEL', `${funding.tempId} is the tempId of a channel this payee already stored; propose again under a new tempId`);
      }
      if (this.entries.has(funding.tempId)) return false;
      const known = this.tempIdByChannelId.get(state.channel.id);
      if (known !== undefined) throw new ProtocolError('DUPLICATE_CHANNEL', `${state.channel.id} is already a channel`);
    } catch (err) {
      // No channel was made: the lease taken above for it goes back (else it is renewed for good
      // and other instances answer "being opened by another instance" for this tempId).
      if (this.leases && !this.entries.has(funding.tempId)) await this.leases.release(funding.tempId).catch(() => undefined);
      throw err;
    }
    const entry = new ChannelEntry(funding.tempId, state, link);
    this.entries.set(funding.tempId, entry);
    this.tempIdByChannelId.set(state.channel.id, funding.tempId);
    const opening = this.queueOf(entry).scheduleAndWait({ entry, state: entry.state, replyTo: link, before: undefined }, step.effects);
    // Later inputs of the channel (a repeat, a zero-conf payment) wait for the opening.
    const settled = opening.then(
      () => void this.openings.delete(funding.tempId),
      () => {
        this.openings.delete(funding.tempId);
        // However the opening failed (the node refused the funding, or could not be reached, or
        // the store failed), nothing was stored: the row is written only after the broadcast, and
        // a failed write stores nothing. The channel never was; a resent funding tries again
        // (the node takes a transaction it already has; an expired cookie is accepted then).
        // Done here, before the inputs queued behind the opening run, so they find it gone.
        entry.discarded = true;
        if (this.entries.get(funding.tempId) === entry) this.entries.delete(funding.tempId);
        if (this.tempIdByChannelId.get(state.channel.id) === funding.tempId) this.tempIdByChannelId.delete(state.channel.id);
      },
    );
    entry.queued++;
    entry.inputs = settled.then(() => void entry.queued--);
    this.openings.set(funding.tempId, settled);
    try {
      await opening;
      link.proven?.(funding.tempId); // a funding the node took cost its sender coins: no stranger's connection
    } catch (err) {
      this.reply(link, err, funding.tempId);
    }
    return true;
  }

  /**
   * Steps one input for one channel, after the inputs queued before it. Replies go to
   * `replyTo`, or to the channel's link for inputs that did not come from the payer.
   */
  private run(entry: ChannelEntry, input: PayeeInput, replyTo: PeerLink | null, rethrow = false): Promise<void> {
    // A refused `error` is not answered: an error is never answered with an error (two peers
    // could ping-pong forever).
    const answer = input.type !== 'message' || input.message.type !== 'error';
    if (entry.queued === 0) {
      // Nothing of this channel is still running: step now rather than a promise later (this
      // is every payment's path; the queue below cost five promises per payment).
      let waiting: Promise<void> | null;
      try {
        waiting = this.stepInput(entry, input, replyTo);
      } catch (err) {
        return this.refused(entry, err, replyTo, rethrow, answer);
      }
      return waiting === null ? SETTLED : this.queue(entry, waiting, replyTo, rethrow, answer);
    }
    // Inputs waiting behind a broadcast (or an opening): a payer's messages are bounded as in
    // stepInput; the payee's own inputs (closer, funding watcher) never are.
    if (input.type === 'message' && entry.queued >= this.maxPendingSteps) return this.refused(entry, this.pendingRefusal(entry.queued), replyTo, rethrow, answer);
    return this.queue(entry, entry.inputs.then(() => this.stepInput(entry, input, replyTo)), replyTo, rethrow, answer);
  }

  /** Makes later inputs of the channel wait for `next`; answers its failure. */
  private queue(entry: ChannelEntry, next: Promise<void | null>, replyTo: PeerLink | null, rethrow: boolean, answer: boolean): Promise<void> {
    entry.queued++;
    entry.inputs = next.then(
      () => void entry.queued--,
      () => void entry.queued--,
    );
    return next.then(
      () => undefined,
      (err: unknown) => this.refused(entry, err, replyTo, rethrow, answer),
    );
  }

  private refused(entry: ChannelEntry, err: unknown, replyTo: PeerLink | null, rethrow: boolean, answer: boolean): Promise<void> {
    if (rethrow) return Promise.reject(err as Error);
    const link = replyTo ?? entry.link;
    if (link && answer) this.reply(link, err, payeeStateRef(entry.state));
    return SETTLED;
  }

  /**
   * Steps one input of a channel whose earlier inputs are done.
   * @returns null, or, for a step that broadcasts, what later inputs must wait for (the broadcast;
   *   if the node refuses it the state before the step is restored).
   * @throws ProtocolError / RangeError: the input is refused and nothing changed.
   */
  private stepInput(entry: ChannelEntry, input: PayeeInput, replyTo: PeerLink | null): Promise<void> | null {
    if (entry.moved) throw new ProtocolError('CHANNEL_MOVED', `${entry.tempId}: another instance serves it now; reconnect`);
    if (entry.discarded) throw new ProtocolError('UNKNOWN_CHANNEL', `${entry.tempId}: its funding was not taken; send it again`);
    if (entry.broken) throw new ProtocolError('INTERNAL_ERROR', 'this channel is halted after a failure on the payee (its log says which); it is served again after the payee restarts');
    if (input.type === 'message') {
      const type = input.message.type;
      if (type === 'auth') {
        // The payer's key signed this connection's challenge: the connection is the payer's.
        verifyAuth(this.ctx.secp, replyTo?.challenge, entry.state.terms.payerPubkey, input.message);
        if (replyTo) {
          entry.link = replyTo;
          entry.authenticated = replyTo;
          replyTo.proven?.(entry.tempId);
        }
        return null;
      }
      if (PAYER_ONLY.has(type) && (replyTo === null || entry.authenticated !== replyTo)) {
        // Channel ids are public (funding outpoints) and payments can be replayed by anyone who
        // saw them: only a connection that authenticated for this channel may ask.
        throw new ProtocolError('AUTH_REQUIRED', `${type} is taken only on a connection that authenticated as this channel's payer (auth)`);
      }
    }
    // Flag reads and a counter compare, nothing allocated: this runs for every payment.
    if (this.tips.stale && input.type === 'message' && input.message.type === 'payment') throw new ProtocolError('INTERNAL_ERROR', this.tips.staleDetail());
    if (input.type === 'message' && entry.effects !== null && entry.effects.pending >= this.maxPendingSteps) throw this.pendingRefusal(entry.effects.pending);
    const before = entry.state;
    const step = payeeStep(this.ctx, before, input);
    entry.state = step.state;
    // The channel's effect queue (src/driver/effect-runner.ts): a persist is issued now (joining
    // the store's current group commit) and the effects after it wait for it.
    const queue = this.queueOf(entry);
    const effectStep: PayeeEffectStep = { entry, state: step.state, replyTo, before };
    if (!hasBroadcast(step.effects)) {
      queue.schedule(effectStep, step.effects); // pipelined: replies follow durability
      return null;
    }
    return queue.scheduleAndWait(effectStep, step.effects).catch(async (err: unknown) => {
      entry.state = before;
      await this.options.store.savePayeeChannel(entry.tempId, before);
      throw err;
    });
  }

  /** A message refused because `pending` steps of its channel wait already (the store is slow or stalled). */
  private pendingRefusal(pending: number): ProtocolError {
    return new ProtocolError('RATE_LIMITED', `${pending} earlier messages of this channel are still waiting for the payee's store; this one was not processed, retry later`);
  }

  /** The channel's effect queue, made on first use (an idle packed channel holds none). */
  private queueOf(entry: ChannelEntry): EffectQueue<PayeeEffect, PayeeEffectStep> {
    return (entry.effects ??= new EffectQueue(this.effectHost));
  }

  private readonly effectHost: EffectHost<PayeeEffect, PayeeEffectStep> = {
    persist: ({ entry, state, before }) =>
      // A payment on an open channel changes only its total and signature: save just those.
      before?.type === 'Open' && state.type === 'Open' && before.channel === state.channel && state.signature !== null
        ? this.options.store.savePayeePayment(entry.tempId, state.paidSat, state.signature)
        : this.options.store.savePayeeChannel(entry.tempId, state),
    // Nothing after a failed persist of the channel goes out (the runner still runs later steps'
    // effects): a status or an ack would otherwise report a total that is not stored.
    send: (step, message) => {
      if (!step.entry.moved && step.entry.broken === null) this.deliver(step.entry, message, step.replyTo, step.before);
    },
    carryOut: (step, effect) => this.carryOut(step.entry, effect),
    // An opening is stored only once the node took its funding (a refused one leaves no row).
    holdsLaterPersists: (effect) => effect.type === 'broadcast',
    failed: ({ entry }, err) => {
      if (err instanceof ProtocolError || err instanceof BroadcastRejectedError) return; // handled by run()
      if (isStoreError(err, 'FENCED')) {
        entry.moved = true; // another instance holds the channel: dropped (drop), not halted
        return;
      }
      entry.broken = err instanceof Error ? err : new Error(String(err));
      this.options.log?.(`channel ${entry.tempId} halted: ${entry.broken.message}`);
    },
  };

  private deliver(entry: ChannelEntry, message: Message, replyTo: PeerLink | null, before?: PayeeState): void {
    (replyTo ?? entry.link)?.send(message, message.type === 'payment-ack' && before && 'paidSat' in before ? before.paidSat : undefined);
    if (message.type === 'payment-ack' && before && 'paidSat' in before && message.totalSat > before.paidSat) {
      this.options.onPayment?.(message.channelId, message.totalSat, message.totalSat - before.paidSat);
    }
  }

  private async carryOut(entry: ChannelEntry, effect: OtherEffect<PayeeEffect>): Promise<void> {
    switch (effect.type) {
      case 'broadcast':
        try {
          await this.options.backend.broadcast(effect.txHex);
          this.options.log?.(`broadcast funding ${effect.txid}`);
        } catch (err) {
          if (err instanceof BroadcastRejectedError) {
            // The node's own words stay here: they name its software and tell what its mempool
            // holds (conflicts, missing inputs), which is no business of a peer's.
            this.options.log?.(`funding ${effect.txid} refused by the node: ${logText(err.reason)}`);
            throw new ProtocolError('FUNDING_REJECTED', 'the node refused the funding transaction');
          }
          throw err;
        }
        return;
      case 'watch-confirmations':
        this.fundings.watch(entry.tempId, effect.txid, effect.confirmations);
        if ('channel' in entry.state) this.tempIdByChannelId.set(entry.state.channel.id, entry.tempId);
        return;
      case 'close-requested': {
        const id = payeeStateRef(entry.state);
        queueMicrotask(() => void this.close(id).catch((err: unknown) => this.options.log?.(`close on request failed: ${String(err)}`)));
        return;
      }
      case 'peer-error':
        this.options.log?.(`payer reported ${effect.message.code} on ${payeeStateRef(entry.state)}: ${logText(effect.message.message)}`);
        return;
      default:
        unknownEffect(effect);
    }
  }

  /** A refused input's answer: the one error mapping of every route (transport/error-reply.ts). */
  private reply(link: PeerLink, err: unknown, ref: string | undefined): void {
    link.send(errorReply(err, ref, this.options.log));
  }
}

/** A loop, not `effects.some(...)`: no closure per payment. */
function hasBroadcast(effects: readonly PayeeEffect[]): boolean {
  for (const e of effects) if (e.type === 'broadcast') return true;
  return false;
}
