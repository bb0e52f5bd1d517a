/**
 * One side of duplex channels (docs/duplex.md): the thin driver of the pure machine
 * (src/protocol/duplex-machine.ts). A opens and sequences every state, B accepts (possibly
 * contributing coins) and asks A for the states in which B pays; both keep every state, close
 * cooperatively, and watch the chain (duplex-watcher.ts).
 *
 * The driver holds the states per channel, the links to the peer, one lock per channel, and the
 * waiters of calls for the peer's answers. For each input it does its awaits first (the tip, a
 * fee estimate, the funding's confirmations), then runs the machine and carries out its effects
 * in order: a `persist` is durable before any later effect of that step runs, so a state is
 * saved before any signature that depends on it leaves the process; the machine's requests to
 * the wallet and the node are answered with the next input at once, under the same lock.
 */
import { randomBytes } from 'node:crypto';
import { address as baddress, Transaction } from 'bitcoinjs-lib';
import { BroadcastRejectedError } from '../chain/backend.js';
import { resolveFeeRate } from '../chain/fee-rate.js';
import {
  channelIdOf,
  duplexOpen,
  duplexReceiveOpen,
  duplexStep,
  isLive,
  liveChannel,
  NEEDS_CLOSE_FLOOR,
  nextIndex,
  phaseOf,
  type DuplexChannelState,
  type DuplexContext,
  type DuplexEffect,
  type DuplexInput,
  type DuplexStep,
  type InputFact,
  type LiveState,
  type SignedState,
} from '../protocol/duplex-machine.js';
import type { DuplexChannel, DuplexRole } from '../protocol/duplex-tx.js';
import { updatesLeft } from '../protocol/duplex-update.js';
import { ProtocolError } from '../protocol/errors.js';
import { errorMessage, type Message, type MessageOf } from '../protocol/messages.js';
import { bitcoinjsNetwork } from '../protocol/network.js';
import type { PeerLink } from '../transport/link.js';
import { logText } from '../transport/log-text.js';
import { WalletError } from '../wallet/errors.js';
import type { Wallet } from '../wallet/wallet.js';
import { scheduleEffects, SETTLED, type EffectHost, type EffectTail, type OtherEffect } from '../driver/effect-runner.js';
import { LinkChallenges } from './link-challenges.js';
import { AnswerWaiters } from './answer-waiters.js';
import { refOf, splitRef } from './duplex-refs.js';
import { chainAfter, ChannelLocks } from './channel-locks.js';
import { checkOpeningLimits } from './duplex-opening.js';
import type { DuplexPeerOptions, OpenDuplexRequest } from './duplex-peer-options.js';
import { summaryOf, viewOf, type DuplexSummary, type DuplexView } from './duplex-view.js';

export type { DuplexSummary, DuplexView };
export { splitRef } from './duplex-refs.js';

export type { DuplexPeerOptions, OpenDuplexRequest };

/** Messages whose step reads the tip (the others need nothing from the node). */
const NEEDS_TIP: ReadonlySet<Message['type']> = new Set(['duplex-accept', 'duplex-fund', 'duplex-update', 'duplex-countersign', 'duplex-close', 'duplex-rollover', 'duplex-rolled-over']);

/** What one run of the machine carries: the link of the message being handled, if any. */
interface Run {
  readonly link: PeerLink | null;
  /** Set when a `send-if-connected` went out. */
  sent: boolean;
  /** The steps answering the machine's requests, scheduled behind the step that asked. */
  readonly followUps: Promise<void>[];
}

/** The effect runner's context of one step: its state (what a `persist` saves) and the new channels saved with it. */
interface StepContext {
  readonly state: DuplexChannelState;
  readonly created: readonly DuplexChannelState[];
  readonly run: Run;
}

function newRun(link: PeerLink | null): Run {
  return { link, sent: false, followUps: [] };
}

export class DuplexPeer {
  readonly role: DuplexRole;
  private readonly ctx: DuplexContext;
  private readonly states = new Map<string, DuplexChannelState>();
  private readonly byChannelId = new Map<string, string>();
  private readonly links = new Map<string, PeerLink>();
  private readonly locks = new ChannelLocks();
  /** Each channel's effect queue (the shared runner's tail). */
  private readonly tails = new Map<string, EffectTail>();
  private readonly waiters: AnswerWaiters;
  private readonly answerTimeoutMs: number;
  private readonly challenges = new LinkChallenges();
  /** Proposals in flight per channel: the next waits for the previous one's countersignature. */
  private readonly proposals = new Map<string, Promise<unknown>>();
  /** tempIds of openings B is answering now (its steps await the node and the wallet). */
  private readonly openingNow = new Set<string>();
  /** The tip height at which a channel's funding was last probed for `duplex-channel`. */
  private readonly channelProbedAt = new Map<string, number>();
  /** The tip height the watcher saw last (in memory): a peer's message never asks the node for it. */
  private tipSeen: number | undefined;

  /** A peer with the channel states its store holds. */
  static async open(options: DuplexPeerOptions): Promise<DuplexPeer> {
    return new DuplexPeer(options, await options.store.loadAll());
  }

  /** @param states every stored channel state, oldest first (see {@link DuplexPeer.open}). */
  constructor(
    readonly options: DuplexPeerOptions,
    states: readonly DuplexChannelState[],
  ) {
    this.role = options.role;
    this.answerTimeoutMs = options.answerTimeoutMs ?? 30_000;
    this.waiters = new AnswerWaiters(this.answerTimeoutMs);
    this.ctx = {
      role: options.role,
      network: options.network,
      secp: options.secp,
      policy: options.policy,
      sign: (keyIndex, digest) => options.secp.ecdsaSign(digest, options.wallet.duplexKey(keyIndex).privateKey),
    };
    for (const state of states) this.index(state);
  }

  /** The watcher tells the tip it read for its check, so steps of the peer can bound their node calls per tip. */
  noteTip(height: number): void {
    this.tipSeen = height;
  }

  private index(state: DuplexChannelState): void {
    this.states.set(state.tempId, state);
    const id = channelIdOf(state);
    if (id !== null) this.byChannelId.set(id, state.tempId);
  }

  private log(line: string): void {
    this.options.log?.(`duplex ${this.role}: ${line}`);
  }

  // ------------------------------------------------------------------ queries

  /** Every channel this side knows, oldest first. */
  list(): DuplexSummary[] {
    return [...this.states.values()].map((s) => summaryOf(viewOf(s), this.options.policy));
  }

  /** The state of a channel by id or tempId, following rollovers to the newest channel if `follow`. */
  state(id: string, follow = false): DuplexChannelState | undefined {
    let state = this.states.get(this.byChannelId.get(id) ?? id);
    while (follow && state && (state.type === 'Closing' || state.type === 'Closed') && state.close?.successorId) {
      const next = this.states.get(this.byChannelId.get(state.close.successorId) ?? '');
      if (!next) break;
      state = next;
    }
    return state;
  }

  /** Every channel's state, oldest first. */
  allStates(): DuplexChannelState[] {
    return [...this.states.values()];
  }

  /** What a reader sees of a channel (by id or tempId, following rollovers if `follow`). */
  get(id: string, follow = false): DuplexView | undefined {
    const state = this.state(id, follow);
    return state ? viewOf(state) : undefined;
  }

  summary(view: Pick<DuplexView, 'tempId'>, tipHeight?: number): DuplexSummary {
    const state = this.states.get(view.tempId);
    if (!state) throw new RangeError(`unknown duplex channel ${view.tempId}`);
    return summaryOf(viewOf(state), this.options.policy, tipHeight);
  }

  /** The channel (terms and funding outpoint) of a channel both signed state 0 of. */
  channelOf(view: Pick<DuplexView, 'tempId'>): DuplexChannel {
    const state = this.states.get(view.tempId);
    const live = state && (isLive(state) ? state : state.type === 'Aborted' ? state.live : null);
    if (!live) throw new RangeError(`duplex ${view.tempId} has no funding yet`);
    return liveChannel(live);
  }

  ownKey(view: Pick<DuplexView, 'tempId'>): { privateKey: Uint8Array; publicKey: Uint8Array } {
    const state = this.states.get(view.tempId);
    if (!state) throw new RangeError(`unknown duplex channel ${view.tempId}`);
    return this.options.wallet.duplexKey(state.keyIndex);
  }

  /** Whether an error's `ref` (a channel, `<channel>/<index>` or `<channel>#<request>`) names one of our channels. */
  knowsRef(ref: string | undefined): boolean {
    const [id] = splitRef(ref);
    return id !== undefined && this.state(id) !== undefined;
  }

  // ------------------------------------------------------------------ running the machine

  /**
   * Runs `fn` under the channel's lock: the one way anything outside the peer (the watcher) may
   * change a channel, so that no step sees it change across one of its awaits. `fn` must not
   * take the same lock again (it would wait for itself).
   */
  locked<T>(tempId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.locked(tempId, fn);
  }

  /**
   * How many operations hold or wait for channel `tempId`'s lock: what a test waits on to know
   * that an operation is queued behind another, instead of sleeping.
   */
  lockQueueLength(tempId: string): number {
    return this.locks.queueLength(tempId);
  }

  /**
   * Steps the channel `tempId` with `input` and carries out the effects. The caller holds the
   * channel's lock. @returns the state after the step.
   * @throws what the step throws (nothing changed then).
   */
  async apply(tempId: string, input: DuplexInput, link: PeerLink | null = null): Promise<DuplexChannelState | undefined> {
    const state = this.states.get(tempId);
    if (!state) throw new RangeError(`unknown duplex channel ${tempId}`);
    await this.run(duplexStep(this.ctx, state, input), newRun(link));
    return this.states.get(tempId);
  }

  /**
   * Carries out a step's effects through the shared effect runner (src/driver/effect-runner.ts):
   * in order, each after every effect of earlier steps of the channel, and every effect after a
   * `persist` only once that persist is durable. A request to the wallet or the node is answered
   * by the next step, scheduled behind this one; this resolves once every such step ran too.
   * @throws the first failure (the effects after it do not run; nothing unsaved is kept).
   */
  private async run(step: DuplexStep, run: Run): Promise<void> {
    const tempId = step.state.tempId;
    await this.schedule(step, run);
    for (let followUp = run.followUps.shift(); followUp; followUp = run.followUps.shift()) await followUp;
    const tail = this.tails.get(tempId);
    if (tail?.effects === SETTLED && !this.states.has(tempId)) this.tails.delete(tempId);
  }

  private schedule(step: DuplexStep, run: Run): Promise<void> {
    const tempId = step.state.tempId;
    let tail = this.tails.get(tempId);
    if (!tail) this.tails.set(tempId, (tail = { effects: SETTLED }));
    const created = step.effects.flatMap((e) => (e.type === 'create' ? [e.state] : []));
    return scheduleEffects(tail, this.host, { state: step.state, created, run }, step.effects);
  }

  /** Answers a request of the machine with `input`: the next step runs behind the current one. */
  private answer(ctx: StepContext, input: DuplexInput): void {
    const next = duplexStep(this.ctx, ctx.state, input);
    ctx.run.followUps.push(this.schedule(next, ctx.run));
  }

  private readonly host: EffectHost<DuplexEffect, StepContext> = {
    persist: async (ctx) => {
      const { state, created, run } = ctx;
      if (state.type === 'Accepted' && !this.states.has(state.tempId)) this.checkLimitsBeforeAccept(state, run);
      await this.options.store.save([state, ...created]);
      this.index(state);
      for (const c of created) {
        this.index(c);
        const l = run.link ?? this.links.get(state.tempId);
        if (l) this.links.set(c.tempId, l);
        // B's pay requests not yet proposed moved to a rollover's new channel: so do their callers' waits.
        if (c.type === 'Open') for (const q of c.payBackQueue) this.waiters.move(`${state.tempId}:request:${q.requestId}`, `${c.tempId}:request:${q.requestId}`);
      }
    },
    send: (ctx, message) => {
      const l = ctx.run.link ?? this.links.get(ctx.state.tempId);
      if (!l) throw new Error(`duplex ${channelIdOf(ctx.state) ?? ctx.state.tempId}: the peer is not connected`);
      l.send(message);
    },
    carryOut: (ctx, effect) => this.carryOut(ctx, effect),
    failed: () => undefined, // the caller awaiting the step gets the error
  };

  private async carryOut(ctx: StepContext, effect: OtherEffect<DuplexEffect>): Promise<void> {
    const { state, run } = ctx;
    const tempId = state.tempId;
    switch (effect.type) {
      case 'create':
        return; // saved with the step's persist
      case 'send-if-connected': {
        const l = this.links.get(tempId);
        run.sent = l !== undefined && l.isOpen?.() !== false;
        if (run.sent) l?.send(effect.message);
        return;
      }
      case 'broadcast':
        await this.broadcast(effect.txHex).catch((err: Error) => this.log(`${effect.txid} not broadcast yet (${err.message}); the watcher retries`));
        return;
      case 'publish-funding':
        return this.publishFunding(ctx, effect);
      case 'contribute':
        return this.contribute(ctx, effect);
      case 'release':
        await this.options.wallet.release(effect.reservation);
        await this.options.saveWallet();
        return;
      case 'check-inputs':
        return this.answer(ctx, { type: 'inputs-checked', inputs: await this.lookUpInputs(effect.inputs) });
      case 'allocate-key': {
        const key = this.options.wallet.nextDuplexKey();
        // One new address per opening: B's payout, and its fee-reserve coin.
        const payoutScript = this.ownPayoutScript();
        await this.options.saveWallet();
        return this.answer(ctx, { type: 'key-allocated', keyIndex: key.index, publicKey: key.publicKey, payoutScript });
      }
      case 'sign-funding-inputs': {
        const witnesses = this.options.wallet.signContribution(Transaction.fromHex(effect.txHex), effect.inputIndexes);
        return this.answer(ctx, { type: 'funding-inputs-signed', txHex: effect.txHex, witnesses });
      }
      case 'adopt-link':
        if (run.link) this.links.set(tempId, run.link);
        return;
      case 'link-proven':
        run.link?.proven?.(tempId);
        return;
      case 'forget':
        this.states.delete(tempId);
        this.channelProbedAt.delete(tempId);
        for (const [id, t] of this.byChannelId) if (t === tempId) this.byChannelId.delete(id);
        this.links.delete(tempId);
        await this.options.store.delete(tempId);
        return;
      case 'propose-request':
        return this.proposeRequest(state, effect.amountSat, effect.requestId);
      case 'resolve':
        return this.waiters.settle(`${tempId}:${effect.key}`, effect.value);
      case 'reject':
        return this.waiters.settle(`${tempId}:${effect.key}`, undefined, effect.error);
      case 'reject-all':
        // Never a queued pay request: it stays queued and may still be applied.
        this.waiters.rejectChannel(tempId, effect.error);
        return;
      case 'peer-error':
        return this.log(`peer error: ${effect.message.code} ${logText(effect.message.message)}`);
      case 'log':
        return this.log(effect.line);
    }
  }

  private checkLimitsBeforeAccept(state: Extract<DuplexChannelState, { type: 'Accepted' }>, run: Run): void {
    // Checked again after the awaits, right before the record exists: the payer's other
    // openings may have come in meanwhile. The caller releases B's coins if this throws.
    checkOpeningLimits(this.states.values(), state.terms.keyA, run.link?.peer);
  }

  private async contribute(ctx: StepContext, effect: Extract<DuplexEffect, { type: 'contribute' }>): Promise<void> {
    const { wallet } = this.options;
    const { state } = ctx;
    await wallet.sync(); // coins that arrived since the last tip poll count too
    let c: Awaited<ReturnType<Wallet['contribute']>>;
    try {
      c = await wallet.contribute(effect.reservation, effect.outputs, effect.feeRateSatPerVb);
    } catch (err) {
      if (err instanceof WalletError && state.role === 'B') return this.answer(ctx, { type: 'contribute-failed', reason: err.code });
      throw err;
    }
    await this.options.saveWallet();
    const next = duplexStep(this.ctx, state, { type: 'contributed', inputs: c.inputs.map((i) => ({ ...i.outpoint, valueSat: i.valueSat })), outputs: c.outputs.slice(1) });
    // B's coins for an opening it will not store (its limits checked again before the save) go back at once.
    const stored = this.schedule(next, ctx.run).catch(async (err: unknown) => {
      if (state.role === 'B') {
        await wallet.release(effect.reservation);
        await this.options.saveWallet();
      }
      throw err;
    });
    ctx.run.followUps.push(stored);
  }

  /** The other side's funding inputs as the node sees them (unspent segwit outputs, the values claimed). */
  private async lookUpInputs(inputs: readonly { txid: string; vout: number }[]): Promise<InputFact[]> {
    const tip = await this.options.backend.getTip();
    const own = new Set(this.options.wallet.coins().map((c) => `${c.outpoint.txid}:${c.outpoint.vout}`));
    const facts: InputFact[] = [];
    for (const input of inputs) {
      const status = await this.options.backend.getOutpointStatus(input, Math.max(0, tip.height - 1));
      const ownCoin = own.has(`${input.txid}:${input.vout}`);
      facts.push(status.state === 'unspent' ? { ...input, state: 'unspent', scriptHex: status.scriptHex, valueSat: status.valueSat, ownCoin } : { ...input, state: status.state, scriptHex: '', valueSat: 0n, ownCoin });
    }
    return facts;
  }

  /**
   * A: broadcasts the signed funding. Only a refusal while A's coins are still unspent means the
   * funding cannot happen (B's witnesses were bad); after a lost connection it may be in the
   * mempool: the channel is kept and the watcher sends it again.
   */
  private async publishFunding(ctx: StepContext, effect: Extract<DuplexEffect, { type: 'publish-funding' }>): Promise<void> {
    const { state } = ctx;
    try {
      await this.broadcast(effect.txHex);
    } catch (err) {
      const refused = err instanceof BroadcastRejectedError;
      const still = refused ? await this.options.backend.getOutpointStatus(effect.firstOwnInput, 0).catch(() => null) : null;
      if (still?.state !== 'unspent') {
        this.log(`funding ${effect.txid} broadcast failed (${(err as Error).message}); the watcher sends it again`);
        this.waiters.settle(`${state.tempId}:opened`, channelIdOf(state) ?? undefined);
        return;
      }
      return this.answer(ctx, { type: 'funding-refused', reason: (err as Error).message });
    }
    return this.answer(ctx, { type: 'funding-published' });
  }

  // ------------------------------------------------------------------ chain helpers

  private ownPayoutScript(): Uint8Array {
    return baddress.toOutputScript(this.options.wallet.receiveAddress(), bitcoinjsNetwork(this.options.network));
  }

  private async feeRate(targetBlocks: number): Promise<number> {
    return Math.min(this.options.policy.maxFeeRateSatPerVb, Math.ceil(await resolveFeeRate(this.options.backend, targetBlocks, this.options.fallbackFeeRateSatPerVb)));
  }

  /** The lowest fee rate this side signs a close or rollover for: half the node's estimate, at least 1 sat/vB. */
  private async minCloseRate(): Promise<number> {
    return Math.max(1, Math.floor((await this.feeRate(6)) / 2));
  }

  /** Broadcasts; a transaction the node already has counts as sent (the backend's contract). */
  async broadcast(txHex: string): Promise<void> {
    await this.options.backend.broadcast(txHex);
  }

  /** Resolves once the channel's funding has its confirmations (the watcher marks it), logging while it waits. */
  async waitConfirmed(tempId: string, timeoutMs = 60 * 60_000): Promise<void> {
    const started = Date.now();
    let logged = false;
    for (;;) {
      const state = this.states.get(tempId);
      if (state?.type === 'Open' && state.fundingConfirmed) return;
      if (state?.type !== 'Open') throw new ProtocolError('CHANNEL_NOT_OPEN', `the channel is ${state ? phaseOf(state) : 'unknown'}`);
      if (Date.now() - started > timeoutMs) throw new Error(`${state.channelId}: the funding did not confirm within ${timeoutMs / 60_000} min`);
      if (!logged) this.log(`${state.channelId}: waiting for ${state.minFundingConfirmations} confirmation(s) of the funding`);
      logged = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Reads the funding's confirmations from the node and marks it confirmed once it has them: the
   * watcher does it on each tip, and a step about to refuse for missing confirmations does it
   * first (the peer may have seen the block before this side's watcher did). The caller holds the
   * channel's lock. @returns whether the funding is confirmed now, and the node's view of it.
   */
  async confirmFunding(tempId: string): Promise<{ confirmed: boolean; known: boolean }> {
    const state = this.states.get(tempId);
    if (!state || !isLive(state)) return { confirmed: false, known: false };
    if (state.fundingConfirmed) return { confirmed: true, known: true };
    const status = await this.options.backend.getTransaction(state.channelId.slice(0, state.channelId.lastIndexOf(':')));
    if (status && status.confirmations >= state.minFundingConfirmations && state.type === 'Open') {
      await this.apply(tempId, { type: 'funding-confirmed', height: status.blockHeight ?? null });
    }
    const after = this.states.get(tempId);
    return { confirmed: after !== undefined && isLive(after) && after.fundingConfirmed, known: status !== null };
  }

  // ------------------------------------------------------------------ opening

  /**
   * A: opens a channel over `link` and resolves with its id once the funding transaction is
   * broadcast (payments wait for its confirmations).
   * @throws ProtocolError from the peer's refusal; WalletError if the wallet cannot fund it.
   */
  async open(request: OpenDuplexRequest): Promise<string> {
    if (this.role !== 'A') throw new TypeError('only A opens duplex channels');
    const { policy, wallet } = this.options;
    const tempId = randomBytes(16).toString('hex');
    const tip = await this.options.backend.getTip();
    const key = wallet.nextDuplexKey();
    await this.options.saveWallet();
    const fundingFeeRateSatPerVb = request.fundingFeeRateSatPerVb ?? (await this.feeRate(6));
    const stateFeeRateSatPerVb = request.stateFeeRateSatPerVb ?? Math.max(policy.minStateFeeRateSatPerVb, Math.min(fundingFeeRateSatPerVb, policy.maxStateFeeRateSatPerVb));
    // One new address per opening: A's payout, and its fee-reserve coin.
    const payoutScript = this.ownPayoutScript();
    const step = duplexOpen(this.ctx, {
      tempId,
      tipHeight: tip.height,
      keyIndex: key.index,
      publicKey: key.publicKey,
      payoutScript,
      contributionASat: request.contributionASat,
      contributionBSat: request.contributionBSat ?? 0n,
      fundingFeeRateSatPerVb,
      stateFeeRateSatPerVb,
    });
    this.links.set(tempId, request.link);
    const opened = this.waiters.wait<string>(`${tempId}:opened`, 'the channel to open');
    try {
      await this.locked(tempId, () => this.run(step, newRun(null)));
    } catch (err) {
      this.waiters.unwait(`${tempId}:opened`);
      opened.catch(() => undefined);
      if (!this.states.has(tempId)) this.links.delete(tempId);
      throw err;
    }
    try {
      return await opened;
    } catch (err) {
      await this.abortOpening(tempId);
      throw err;
    }
  }

  /** Gives the coins of an opening that will not complete back to the wallet (A keeps the aborted record; B forgets it). */
  async abortOpening(tempId: string): Promise<void> {
    await this.locked(tempId, async () => {
      const state = this.states.get(tempId);
      if (!state || phaseOf(state) !== 'opening') return;
      await this.apply(tempId, { type: 'abort', reason: 'opening abandoned' });
    });
  }

  /** B: A's `duplex-open` (no channel exists yet). */
  private async onOpen(m: MessageOf<'duplex-open'>, link: PeerLink): Promise<void> {
    if (this.states.has(m.tempId) || this.openingNow.has(m.tempId)) throw new ProtocolError('DUPLICATE_CHANNEL', m.tempId);
    this.openingNow.add(m.tempId);
    try {
      checkOpeningLimits(this.states.values(), m.keyA, link.peer);
      const tip = await this.options.backend.getTip();
      const step = duplexReceiveOpen(this.ctx, m, tip.height, link.peer ?? null);
      await this.locked(m.tempId, () => this.run(step, newRun(link)));
    } finally {
      this.openingNow.delete(m.tempId);
    }
  }

  /**
   * B: A says the funding is broadcast. If the node has it (in the mempool or mined), the opener
   * paid for it on chain: the connection B adopted for the channel, when this came on it, stops
   * counting as a stranger's. At most one node call per channel and tip: the message costs its
   * sender nothing.
   */
  private async onChannel(tempId: string, link: PeerLink): Promise<void> {
    if (this.links.get(tempId) !== link) return; // someone else naming the channel proves nothing
    const at = this.tipSeen ?? -1;
    if (this.channelProbedAt.get(tempId) === at) return;
    this.channelProbedAt.set(tempId, at);
    const { known } = await this.confirmFunding(tempId);
    if (known) link.proven?.(tempId);
  }

  // ------------------------------------------------------------------ updates

  /**
   * A pays B `amountSat`: proposes the next state and resolves once B countersigned it. When the
   * update budget is spent, the channel is first rolled over into a new one (one transaction),
   * and the payment waits for that one's confirmations. If B does not answer in time the
   * proposal stays signed and pending (it is resent on resume): do not pay again blindly.
   */
  async pay(channelId: string, amountSat: bigint): Promise<SignedState> {
    if (this.role !== 'A') throw new TypeError('B pays with payBack');
    return this.propose(channelId, 'A', amountSat, null);
  }

  private propose(channelId: string, payer: DuplexRole, amountSat: bigint, requestId: string | null): Promise<SignedState> {
    return chainAfter(this.proposals, this.state(channelId)?.tempId ?? channelId, () => this.proposeNow(channelId, payer, amountSat, requestId));
  }

  private async proposeNow(channelId: string, payer: DuplexRole, amountSat: bigint, requestId: string | null): Promise<SignedState> {
    let state = this.state(channelId, true);
    if (!state) throw new RangeError(`unknown duplex channel ${channelId}`);
    const tip = await this.options.backend.getTip();
    if (state.type === 'Open' && this.mustRollOver(state, tip.height)) {
      this.log(`${state.channelId}: update budget spent at tip ${tip.height}: rolling over`);
      const successorId = await this.rollover(state.channelId);
      state = this.state(successorId);
      if (!state) throw new Error(`internal: no channel ${successorId}`);
      await this.waitConfirmed(state.tempId);
    }
    const tempId = state.tempId;
    // The lock covers signing and sending only: B's answer is handled under the same lock.
    // The answer travels in an object: a promise returned from the locked function would hold
    // the lock until B answered, and B's answer needs it.
    const { answered } = await this.locked(tempId, async () => {
      const tipNow = await this.options.backend.getTip(); // read under the lock: the checks follow it
      await this.confirmFunding(tempId);
      const current = this.states.get(tempId);
      if (!current) throw new RangeError(`unknown duplex channel ${channelId}`);
      await this.run(duplexStep(this.ctx, current, { type: 'pay', payer, amountSat, requestId, tipHeight: tipNow.height }), newRun(null));
      const after = this.states.get(tempId);
      const index = after && isLive(after) ? after.pending?.index : undefined;
      if (index === undefined) throw new Error('internal: no proposal after pay');
      return { answered: this.waiters.wait<SignedState>(`${tempId}:countersign:${index}`, `B's countersignature of state ${index} (the proposal stays pending and is resent on resume)`) };
    });
    return answered;
  }

  /** A rollover proposed and not answered is sent again; one B refused only when the budget is spent. */
  private mustRollOver(state: Extract<DuplexChannelState, { type: 'Open' }>, tipHeight: number): boolean {
    if (state.rolloverProposal !== null && !state.rolloverProposal.refused) return true;
    // Counted from the index the next state takes (past a refused one), as the machine numbers it.
    return updatesLeft(state.terms, nextIndex(state) - 1, tipHeight, this.options.policy.marginBlocks) < 1;
  }

  /** A, on B's pay request: proposes it after this message's turn; a failure is B's error for that request. */
  private proposeRequest(state: DuplexChannelState, amountSat: bigint, requestId: string): void {
    const channelId = channelIdOf(state);
    if (channelId === null) return;
    void this.propose(channelId, 'B', amountSat, requestId).catch((err: Error) => {
      const e = err instanceof ProtocolError ? err : new ProtocolError('INTERNAL_ERROR', err.message);
      this.links.get(state.tempId)?.send(errorMessage(e.code, e.message, 'reject', `${channelId}#${requestId}`));
    });
  }

  /**
   * B pays A `amountSat`: queues the request durably and sends it if A is connected; A proposes
   * the state when it gets it (at once, or when it next connects and resumes). `applied`
   * resolves once B countersigned that state.
   */
  async payBack(channelId: string, amountSat: bigint): Promise<{ requestId: string; sent: boolean; applied: Promise<SignedState> }> {
    if (this.role !== 'B') throw new TypeError('A pays with pay');
    if (amountSat <= 0n) throw new RangeError('a payment must be positive');
    const state = this.state(channelId, true);
    if (!state) throw new RangeError(`unknown duplex channel ${channelId}`);
    const tempId = state.tempId;
    return this.locked(tempId, async () => {
      await this.confirmFunding(tempId);
      const current = this.states.get(tempId);
      if (!current) throw new RangeError(`unknown duplex channel ${channelId}`);
      const requestId = randomBytes(16).toString('hex');
      const step = duplexStep(this.ctx, current, { type: 'pay-back', amountSat, requestId });
      const applied = this.waiters.wait<SignedState>(`${tempId}:request:${requestId}`, 'A to propose the pay-back state', null);
      const run: Run = newRun(null);
      try {
        await this.run(step, run);
      } catch (err) {
        this.waiters.unwait(`${tempId}:request:${requestId}`);
        throw err;
      }
      return { requestId, sent: run.sent, applied };
    });
  }

  /**
   * A, after (re)connecting on `link`: tells B its newest state (signed, so B may adopt the
   * connection), resends a proposal B may have missed, and takes B's queued pay requests.
   * Resolves once they are all applied.
   */
  async resume(channelId: string, link: PeerLink): Promise<void> {
    if (this.role !== 'A') throw new TypeError('A resumes');
    const state = this.state(channelId, true);
    if (!state || !isLive(state)) throw new RangeError(`unknown or unopened duplex channel ${channelId}`);
    const tempId = state.tempId;
    this.links.set(tempId, link);
    if (state.type !== 'Open') return;
    const challenge = await this.challenges.of(link, this.answerTimeoutMs);
    const resumed = this.waiters.wait<number>(`${tempId}:resumed`, 'B to answer the resume');
    const pending = state.pending ? this.waiters.wait<SignedState>(`${tempId}:countersign:${state.pending.index}`, `B's countersignature of state ${state.pending.index}`) : null;
    await this.locked(tempId, () => this.apply(tempId, { type: 'resume', challenge }, link));
    await resumed;
    await pending;
    await (this.proposals.get(tempId) ?? Promise.resolve());
  }

  // ------------------------------------------------------------------ closing

  /**
   * Closes the channel now with the newest state, both signatures, no locktime; resolves with
   * the close txid once broadcast. From the moment its signature leaves, this side takes no
   * more updates (the peer could broadcast that close at any time): if the peer never
   * completes it, the watcher publishes the newest state when it is final.
   */
  async close(channelId: string, feeRateSatPerVb?: number): Promise<string> {
    const state = this.state(channelId, true);
    if (!state) throw new RangeError(`unknown duplex channel ${channelId}`);
    const tempId = state.tempId;
    const rate = feeRateSatPerVb ?? (await this.feeRate(6));
    const { answered } = await this.locked(tempId, async () => {
      const tip = await this.options.backend.getTip(); // before the checks, which then hold until the signature leaves
      const current = this.states.get(tempId);
      if (!current) throw new RangeError(`unknown duplex channel ${channelId}`);
      const step = duplexStep(this.ctx, current, { type: 'close', feeRateSatPerVb: rate, tipHeight: tip.height });
      const waiting = this.waiters.wait<string>(`${tempId}:closed`, 'the peer to sign the close');
      try {
        await this.run(step, newRun(null));
      } catch (err) {
        this.waiters.unwait(`${tempId}:closed`);
        throw err;
      }
      return { answered: waiting };
    });
    return answered;
  }

  /**
   * A: closes the channel into a new one (one transaction) with a fresh update budget; resolves
   * with the new id. The proposal (fee rate, L0) is stored first and reused by every retry.
   */
  async rollover(channelId: string): Promise<string> {
    if (this.role !== 'A') throw new TypeError('A rolls channels over');
    const state = this.state(channelId);
    if (!state) throw new RangeError(`unknown duplex channel ${channelId}`);
    const tempId = state.tempId;
    const rate = Math.max(await this.feeRate(2), await this.minCloseRate());
    const tip = await this.options.backend.getTip();
    const { answered } = await this.locked(tempId, async () => {
      const current = this.states.get(tempId);
      if (!current) throw new RangeError(`unknown duplex channel ${channelId}`);
      const waiting = this.waiters.wait<string>(`${tempId}:rolled`, 'B to sign the rollover');
      try {
        await this.run(duplexStep(this.ctx, current, { type: 'rollover', feeRateSatPerVb: rate, tipHeight: tip.height }), newRun(null));
      } catch (err) {
        this.waiters.unwait(`${tempId}:rolled`);
        throw err;
      }
      return { answered: waiting };
    });
    return answered;
  }

  // ------------------------------------------------------------------ messages

  /**
   * A's link lost its connection: the challenge it recorded for it is void, so a resume after the
   * link reconnects waits for the new connection's challenge instead of signing the old one.
   */
  connectionClosed(link: PeerLink): void {
    this.challenges.forget(link);
  }

  /**
   * A message from the peer. Never throws: a refused message is answered with `error` and
   * changes nothing.
   */
  async receive(message: Message, link: PeerLink): Promise<void> {
    // The payee server's greeting on every connection (src/protocol/auth.ts): A signs it in its
    // resume, which proves the connection A's.
    if (message.type === 'challenge') {
      if (this.role === 'A') this.challenges.record(link, message.challenge);
      return;
    }
    try {
      if (message.type === 'duplex-open') {
        if (this.role !== 'B') throw new ProtocolError('UNEXPECTED_MESSAGE', 'this side does not accept duplex channels');
        await this.onOpen(message, link);
        return;
      }
      if (message.type === 'error') {
        const [id, about] = splitRef(message.ref);
        const state = id === undefined ? undefined : this.state(id);
        if (state) {
          this.log(`peer error on ${channelIdOf(state) ?? state.tempId}: ${message.code} ${logText(message.message)}`);
          await this.locked(state.tempId, async () => {
            const tip = await this.options.backend.getTip(); // before anything is read or changed
            const rolloverAwaited = this.waiters.has(`${state.tempId}:rolled`);
            await this.apply(state.tempId, { type: 'peer-error', code: message.code, text: message.message, about, tipHeight: tip.height, rolloverAwaited }, link);
          });
        }
        return;
      }
      const id = 'tempId' in message ? message.tempId : 'channelId' in message ? message.channelId : undefined;
      const state = id === undefined ? undefined : this.state(id);
      if (!state) throw new ProtocolError('UNKNOWN_CHANNEL', id);
      const tempId = state.tempId;
      // A is the client: its one connection is the link. B adopts a connection as the channel's
      // only once a message on it proved to come from A (a valid signature), so a stranger who
      // names a channel cannot divert B's messages.
      if (this.role === 'A' && link !== this.links.get(tempId)) this.links.set(tempId, link);
      await this.locked(tempId, () => this.onMessage(tempId, message, link));
    } catch (err) {
      if (message.type === 'error') return;
      if (!(err instanceof ProtocolError)) this.log(`internal error on ${message.type}: ${(err as Error).stack ?? String(err)}`);
      const e = err instanceof ProtocolError ? err : new ProtocolError('INTERNAL_ERROR', (err as Error).message);
      link.send(errorMessage(e.code, e.message, e.action, refOf(message)));
    }
  }

  /** One message's step, its awaits first (the tip, the fee floor, the funding's confirmations). */
  private async onMessage(tempId: string, message: Message, link: PeerLink): Promise<void> {
    const floor = NEEDS_CLOSE_FLOOR.has(message.type) ? await this.minCloseRate() : null;
    const tipHeight = NEEDS_TIP.has(message.type) ? (await this.options.backend.getTip()).height : (this.tipSeen ?? 0);
    // A saw the funding confirmed, maybe a block before this side's watcher did: ask the node
    // rather than refuse on a stale flag.
    if (message.type === 'duplex-update') await this.confirmFunding(tempId);
    const state = this.states.get(tempId);
    if (!state) throw new ProtocolError('UNKNOWN_CHANNEL', tempId);
    let successorL0: number | undefined;
    if (message.type === 'duplex-rollover' && state.type === 'Closing' && state.close.successorId) {
      const successor = this.state(state.close.successorId);
      if (successor && 'terms' in successor) successorL0 = successor.terms.initialLocktime;
    }
    const step = duplexStep(this.ctx, state, { type: 'message', message, tipHeight, closeFloorSatPerVb: floor, ...(link.challenge ? { challenge: link.challenge } : {}) }, successorL0 === undefined ? {} : { successorL0 });
    await this.run(step, newRun(link));
    if (message.type === 'duplex-channel') await this.onChannel(tempId, link);
  }

  /** The live state of a channel, for the watcher. */
  live(tempId: string): LiveState | undefined {
    const state = this.states.get(tempId);
    return state && isLive(state) ? state : undefined;
  }
}
